//! Every hard bound of the broker as a named constant, with compile-time checks between them.
//! Lengths read from the network or from disk are checked against these before allocating.

/// Largest Kafka request frame accepted by default (`socket.request.max.bytes`, Kafka's 100 MiB).
pub const REQUEST_BYTES_MAX_DEFAULT: u32 = 100 * 1024 * 1024;
/// Hard ceiling for the configurable request frame limit.
pub const REQUEST_BYTES_MAX_CEILING: u32 = 1024 * 1024 * 1024;
/// Default largest record batch accepted by produce (`message.max.bytes`, Kafka's default).
pub const MESSAGE_BYTES_MAX_DEFAULT: u32 = 1024 * 1024 + 12;
/// A produced batch's records may decompress to at most this many times the topic's
/// `max.message.bytes` (32 MiB at the 1 MiB default). Kafka itself has no such cap; ours bounds
/// the work one small request can cause (a 6.5 KB zstd batch can expand to 70 MB) while leaving
/// room for data that compresses 32:1 even in batches as large as `max.message.bytes`
/// (record data typically compresses 3-10:1). A batch over it gets MESSAGE_TOO_LARGE, on which
/// the Java producer splits the batch and retries.
pub const BATCH_DECOMPRESSED_RATIO_MAX: usize = 32;
/// Decompressed bytes buffered at once while a batch's records are checked one by one.
pub const RECORD_STREAM_BUFFER_BYTES: usize = 64 * 1024;
/// Requests of one connection being processed or waiting to be written, at once.
pub const CONNECTION_IN_FLIGHT_MAX: usize = 64;
/// Default concurrent client connections of the listener (`max_connections`). At the cap a new
/// client is still served: the connection idle the longest is closed to make room.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Largest configurable connection cap (each connection is a file descriptor and a task).
pub const CONNECTIONS_MAX_CEILING: usize = 1_000_000;
/// Default time a connection may stay without reading or writing a byte before it is closed
/// (`connections.max.idle.ms`, Kafka's 10 minutes); waiting for its own response is not idle.
pub const CONNECTION_IDLE_MS_DEFAULT: u64 = 10 * 60 * 1000;
/// A request whose body stops arriving for this long closes its connection: its bytes hold
/// request budget that other connections may be waiting for.
pub const REQUEST_BODY_STALL_MS: u64 = 30_000;
/// Default broker-wide budget of request bytes read but not yet answered
/// (`queued.max.request.bytes`; Kafka's default is unbounded). A frame's length is taken from it
/// before its body is buffered and given back once its response is written.
pub const QUEUED_REQUEST_BYTES_MAX_DEFAULT: u64 = 256 * 1024 * 1024;
/// Largest configurable request budget.
pub const QUEUED_REQUEST_BYTES_MAX_CEILING: u64 = 64 * 1024 * 1024 * 1024;
/// Each connection may have one request of at most this size in flight outside the budget, so
/// small requests (heartbeats, joins, commits, metadata) never wait behind bulk data.
pub const REQUEST_UNBUDGETED_BYTES_MAX: usize = 8 * 1024;
/// Bytes read at once while no request of the connection is admitted: a length prefix and,
/// usually, a whole small request. Together with the unbudgeted request this bounds what a
/// connection holds outside the budget.
pub const REQUEST_PREFIX_READ_BYTES: usize = 4 * 1024;
/// Smallest configurable `fetch_max_bytes` (Kafka's lower bound for `fetch.max.bytes`).
pub const FETCH_BYTES_MAX_MIN: u32 = 1024;
/// Longest cluster id accepted in the config.
pub const CLUSTER_ID_LEN_MAX: usize = 128;
/// Most brokers `cluster.bootstrap_expect` may wait for before the first controller quorum forms.
pub const CLUSTER_BOOTSTRAP_EXPECT_MAX: u32 = 64;
/// Uncompressed bytes per block of the xerial snappy framing we write (Java's block size).
pub const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;
/// Default largest fetch response, summed over partitions (`fetch.max.bytes`, Kafka's 55 MiB); the
/// first batch is still returned when larger, so consumers progress.
pub const FETCH_BYTES_MAX_DEFAULT: u32 = 55 * 1024 * 1024;
/// How long shutdown waits for connections to finish the requests they already read.
pub const SHUTDOWN_DRAIN_MS: u64 = 30_000;
/// Pause after a failed accept (e.g. out of file descriptors), doubling up to the maximum.
pub const ACCEPT_BACKOFF_MS_MIN: u64 = 5;
pub const ACCEPT_BACKOFF_MS_MAX: u64 = 1_000;
/// Default segment size (`segment.bytes`, Kafka's 1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Smallest segment size accepted (Kafka's lower bound for `segment.bytes`).
pub const SEGMENT_BYTES_MIN: u64 = 14;
/// Largest segment size accepted: segment positions are stored as u32 in the offset index.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Bytes between two sparse offset-index entries (`index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;
/// Preallocated size of one offset or time index file (`segment.index.bytes`).
pub const INDEX_FILE_BYTES_DEFAULT: u32 = 10 * 1024 * 1024;
/// Longest topic name Kafka allows.
pub const TOPIC_NAME_LEN_MAX: usize = 249;
/// Most partitions one topic may have on this broker.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Most replicas a partition may have (`topics.default_replication_factor`).
pub const REPLICATION_FACTOR_MAX: i16 = 64;
/// Most producer ids one metadata command hands a broker at once (Kafka's blocks are 1,000).
pub const PRODUCER_ID_BLOCK_MAX: i64 = 1 << 20;
/// Largest cluster RPC frame (raft entries of many batches, or a snapshot chunk).
pub const CLUSTER_FRAME_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Bytes of segment data one snapshot chunk carries at most (a snapshot of a compacted
/// partition streams its segments in chunks, never loaded whole).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;
/// Calls one peer connection serves at once; more wait until one is answered.
pub const CLUSTER_CONNECTION_IN_FLIGHT_MAX: usize = 256;
/// Peer connections the cluster listener serves at once.
pub const CLUSTER_CONNECTIONS_MAX: usize = 4096;
/// Calls queued for one peer before callers wait.
pub const CLUSTER_PEER_QUEUE_MAX: usize = 1024;
/// How long opening a connection to a peer may take.
pub const CLUSTER_CONNECT_TIMEOUT_MS: u64 = 3000;
/// Answers of applied metadata commands the controller keeps for their proposers.
pub const CONTROLLER_ANSWERS_KEPT: usize = 4096;
/// Largest metadata command (one record of the metadata log), decoded.
pub const CONTROLLER_COMMAND_BYTES_MAX: usize = 1024 * 1024;
/// Most distinct keys one compaction pass maps (about 32 bytes each); a pass whose dirty
/// segments hold more cleans the segments mapped so far and continues on the next pass.
pub const COMPACTION_KEYS_MAX: usize = 4 * 1024 * 1024;
/// Largest protocol metadata one group member may send in JoinGroup (the sum over its
/// protocols); the persisted group record must still fit in one batch of the offsets topic.
pub const GROUP_MEMBER_METADATA_BYTES_MAX: usize = 256 * 1024;
/// Group and offset writes appended to the offsets topic and not yet durable, at once; a write
/// beyond it is refused with COORDINATOR_NOT_AVAILABLE (clients retry).
pub const GROUP_PENDING_WRITES_MAX: usize = 64 * 1024;
/// Coordinator writes queued for one replicated internal partition (offsets, transaction state)
/// and not yet in its raft leader's log; a write beyond it is refused as the coordinator being
/// unavailable (clients retry).
pub const INTERNAL_WRITES_QUEUED_MAX: usize = 4096;
/// Largest read of the offsets topic while the group coordinator rebuilds its state on start.
pub const GROUP_LOAD_READ_BYTES: usize = 1024 * 1024;
/// Largest decoded batch body accepted while rebuilding group state (the coordinator writes
/// uncompressed batches; a compacted or foreign batch may be compressed).
pub const GROUP_LOAD_DECODED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest read of the transaction state topic while the transaction coordinator rebuilds its
/// state on start.
pub const TXN_LOAD_READ_BYTES: usize = 1024 * 1024;
/// Largest decoded batch body accepted while rebuilding transaction state (the coordinator
/// writes uncompressed batches of one record).
pub const TXN_LOAD_DECODED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest decoded body of a control batch (a transaction marker: one small record).
pub const CONTROL_BATCH_DECODED_BYTES_MAX: usize = 64 * 1024;
/// Largest producer-id block file read back: one decimal i64 and a newline.
pub const PRODUCER_ID_FILE_BYTES_MAX: u64 = 32;
/// Largest standalone security file read back (SCRAM credentials, about 300 bytes a user; ACLs).
pub const USERS_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Most SCRAM users a broker stores (a bound on the user file and the controller state).
pub const SCRAM_USERS_MAX: usize = 100_000;
/// Most ACLs a broker stores.
pub const ACLS_MAX: usize = 100_000;
/// Most client-quota entities a broker stores.
pub const QUOTA_ENTITIES_MAX: usize = 100_000;
/// Most dynamic configs of one BROKER resource (a node, or the cluster-wide default).
pub const BROKER_CONFIGS_PER_SCOPE_MAX: usize = 1_000;
/// Most quota meters (one per metered user and client id) a broker keeps.
pub const QUOTA_METERS_MAX: usize = 100_000;
/// Largest producer-state snapshot file read back (about 200 bytes per producer id).
pub const PRODUCER_SNAPSHOT_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Largest aborted-transaction index file read back: at most one 34-byte entry per batch of
/// its segment, so far less than the segment itself.
pub const TXN_INDEX_BYTES_MAX: u64 = SEGMENT_BYTES_MAX;
/// Longest fetch long-poll wait honoured.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;
/// Longest value a broker publishes under one gossip key (an endpoint, a version, a rack, an
/// extra value); a peer publishing a longer one is ignored.
pub const GOSSIP_VALUE_BYTES_MAX: usize = 256;
/// Longest name of a Kafka listener, an extra key or an identifier (incarnation, cluster id,
/// software version) a broker publishes by gossip.
pub const GOSSIP_NAME_BYTES_MAX: usize = 64;
/// Most Kafka listeners one broker publishes by gossip.
pub const GOSSIP_LISTENERS_MAX: usize = 16;
/// Most Kafka listeners one broker may have (`listeners.<name>`); each is gossiped.
pub const LISTENERS_MAX: usize = 16;
/// Concurrent connections of the admin HTTP listener (probes and scrapes); more are closed at
/// once, unanswered.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Largest admin HTTP request head (request line and headers) read; a longer one gets 431.
pub const ADMIN_REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Most headers an admin HTTP request may carry.
pub const ADMIN_REQUEST_HEADERS_MAX: usize = 32;
/// An admin HTTP connection is closed this long after it was accepted, answered or not.
pub const ADMIN_CONNECTION_TIMEOUT_MS: u64 = 10_000;
/// Most partitions whose gauges (offsets, size, replica lag) one scrape of /metrics exports;
/// the rest are left out, so a broker with very many partitions keeps its scrapes small.
pub const METRICS_PARTITIONS_MAX: usize = 10_000;
/// Most (group, partition) consumer-lag series one scrape of /metrics exports.
pub const METRICS_GROUP_LAG_SERIES_MAX: usize = 10_000;
/// Largest PEM file (certificate chain, key, CA bundle) the TLS setup reads.
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// How often, at most, a TLS handshake looks at the certificate and key files for a change.
pub const TLS_RELOAD_CHECK_MS: u64 = 1_000;
/// Most extra key-values (readiness and the like) one broker publishes by gossip.
pub const GOSSIP_EXTRAS_MAX: usize = 16;
/// Most bytes (keys plus values) one broker publishes by gossip; a peer publishing more is ignored.
pub const GOSSIP_PUBLISHED_BYTES_MAX: usize = 4096;
/// Most gossip node states (live and dead, every generation) one membership view considers.
pub const GOSSIP_MEMBERS_MAX: usize = 1024;
/// Most seed addresses a broker gossips with before it knows its peers.
pub const GOSSIP_SEEDS_MAX: usize = 64;
/// Longest cluster name gossip carries in every SYN.
pub const GOSSIP_CLUSTER_NAME_BYTES_MAX: usize = 128;
/// Shortest cluster key accepted for gossip datagram authentication (128 bits).
pub const GOSSIP_CLUSTER_KEY_BYTES_MIN: usize = 16;
/// Longest cluster key accepted for gossip datagram authentication.
pub const GOSSIP_CLUSTER_KEY_BYTES_MAX: usize = 1024;
/// Largest gossip datagram sent or accepted: the largest UDP payload over IPv4.
pub const GOSSIP_DATAGRAM_BYTES_MAX: usize = 65_507;
/// Largest difference between an authenticated gossip datagram's timestamp and the receiver's
/// clock (either way); older datagrams are dropped as possible replays.
pub const GOSSIP_DATAGRAM_AGE_MS_MAX: u64 = 60_000;
/// Sender sessions (one per gossip socket) whose datagram counters the replay guard remembers.
pub const GOSSIP_REPLAY_SESSIONS_MAX: usize = 4096;
/// At most one log line per this interval about dropped gossip datagrams (the rest are counted).
pub const GOSSIP_DROP_LOG_INTERVAL_MS: u64 = 10_000;
/// Append callbacks of one partition's raft log waiting for the next group fsync.
pub const RAFT_LOG_FLUSH_QUEUE_MAX: usize = 1024;
/// Bytes of raft entries one `limited_get_log_entries` read returns at most (one entry always).
pub const RAFT_LOG_READ_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes of its newest entries one raft log keeps in memory for replication and apply: some
/// dozens of producer batches of up to 1 MiB, so that a follower a few batches behind in
/// applying, or a leader replicating to one, reads no segment file (a follower's segments are
/// written past the page cache, so such a read goes to the disk).
pub const RAFT_TAIL_CACHE_BYTES_PER_LOG: usize = 32 * 1024 * 1024;
/// Bytes of newest entries all raft logs of the process keep in memory together.
pub const RAFT_TAIL_CACHE_BYTES_TOTAL: usize = 256 * 1024 * 1024;

const _: () = assert!(REQUEST_BYTES_MAX_DEFAULT <= REQUEST_BYTES_MAX_CEILING);
const _: () = assert!(MESSAGE_BYTES_MAX_DEFAULT < REQUEST_BYTES_MAX_DEFAULT);
const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(INDEX_INTERVAL_BYTES_DEFAULT < INDEX_FILE_BYTES_DEFAULT);
const _: () = assert!(GROUP_LOAD_READ_BYTES <= GROUP_LOAD_DECODED_BYTES_MAX);
const _: () = assert!(GROUP_MEMBER_METADATA_BYTES_MAX < GROUP_LOAD_DECODED_BYTES_MAX);
const _: () = assert!(GOSSIP_NAME_BYTES_MAX <= GOSSIP_VALUE_BYTES_MAX);
const _: () = assert!(GOSSIP_VALUE_BYTES_MAX < GOSSIP_PUBLISHED_BYTES_MAX);
// One broker's published data fits in a datagram many times over.
const _: () = assert!(GOSSIP_PUBLISHED_BYTES_MAX * 8 < GOSSIP_DATAGRAM_BYTES_MAX);
const _: () = assert!(GOSSIP_CLUSTER_KEY_BYTES_MIN <= GOSSIP_CLUSTER_KEY_BYTES_MAX);
const _: () = assert!(BATCH_DECOMPRESSED_RATIO_MAX >= 1);
const _: () = assert!(
    RECORD_STREAM_BUFFER_BYTES < MESSAGE_BYTES_MAX_DEFAULT as usize * BATCH_DECOMPRESSED_RATIO_MAX
);
const _: () = assert!(CONNECTIONS_MAX_DEFAULT <= CONNECTIONS_MAX_CEILING);
const _: () = assert!(REQUEST_BODY_STALL_MS < CONNECTION_IDLE_MS_DEFAULT);
// The default budget admits the largest default request, so every request can be served.
const _: () = assert!(QUEUED_REQUEST_BYTES_MAX_DEFAULT >= REQUEST_BYTES_MAX_DEFAULT as u64);
const _: () = assert!(QUEUED_REQUEST_BYTES_MAX_DEFAULT <= QUEUED_REQUEST_BYTES_MAX_CEILING);
// What all connections may hold outside the budget stays small next to the budget itself.
const _: () = assert!(
    ((REQUEST_UNBUDGETED_BYTES_MAX + REQUEST_PREFIX_READ_BYTES) * CONNECTIONS_MAX_DEFAULT) as u64
        <= QUEUED_REQUEST_BYTES_MAX_DEFAULT / 2
);
const _: () = assert!(FETCH_BYTES_MAX_DEFAULT >= MESSAGE_BYTES_MAX_DEFAULT);
const _: () = assert!(FETCH_BYTES_MAX_MIN <= FETCH_BYTES_MAX_DEFAULT);
const _: () = assert!(ACCEPT_BACKOFF_MS_MIN <= ACCEPT_BACKOFF_MS_MAX);
const _: () = assert!(RAFT_LOG_READ_BYTES_MAX >= MESSAGE_BYTES_MAX_DEFAULT as usize);
const _: () = assert!(RAFT_TAIL_CACHE_BYTES_PER_LOG <= RAFT_TAIL_CACHE_BYTES_TOTAL);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES < CLUSTER_FRAME_BYTES_MAX);
const _: () = assert!(LISTENERS_MAX <= GOSSIP_LISTENERS_MAX);
