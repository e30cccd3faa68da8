//! The broker layer's error type: every way a Kafka-agnostic broker operation can fail.
//! Mapping to Kafka error codes happens only in `kafka/error_code.rs`.

use crate::storage;

/// A failed broker operation, with enough context to diagnose it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    #[error("unknown topic {topic}")]
    UnknownTopic { topic: String },
    #[error("{topic}-{partition} is led by broker {leader:?}, not this one")]
    NotLeader {
        topic: String,
        partition: i32,
        leader: Option<i32>,
    },
    #[error("group {group} is coordinated by another broker")]
    NotCoordinator { group: String },
    #[error("the cluster controller did not answer: {reason}")]
    Cluster { reason: String },
    #[error("topic {topic} already exists")]
    TopicAlreadyExists { topic: String },
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopicName { topic: String, reason: &'static str },
    #[error("invalid partition count {count} for topic {topic}: {reason}")]
    InvalidPartitions {
        topic: String,
        count: i32,
        reason: String,
    },
    #[error(
        "invalid replication factor {factor}: partitions are not replicated yet, only 1 is supported"
    )]
    InvalidReplicationFactor { factor: i16 },
    #[error("invalid config {key}: {reason}")]
    InvalidConfig { key: String, reason: String },
    /// Broker configs that cannot change at runtime (Kafka's static keys, and every key
    /// Tidelog reads, which it reads at start only).
    #[error("cannot update these configs dynamically: {keys:?}")]
    StaticBrokerConfigs { keys: Vec<String> },
    /// Per-broker configs set on the cluster-wide default.
    #[error(
        "these configs can be set only for a broker id, not as the cluster-wide default: {keys:?}"
    )]
    PerBrokerConfigsAtDefault { keys: Vec<String> },
    #[error("corrupt record batch at byte {position} of the request: {reason}")]
    CorruptMessage { position: usize, reason: String },
    #[error("record batch of {batch_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    MessageTooLarge { batch_bytes: usize, max_bytes: u32 },
    #[error(
        "records of the batch decompress to more than {bytes_max} bytes \
         ({ratio} times max.message.bytes {max_bytes})"
    )]
    DecompressedTooLarge {
        bytes_max: usize,
        ratio: usize,
        max_bytes: u32,
    },
    #[error("record batch of {batch_bytes} bytes exceeds segment.bytes {segment_bytes_max}")]
    RecordListTooLarge {
        batch_bytes: usize,
        segment_bytes_max: u64,
    },
    #[error("invalid record batch: {reason}")]
    InvalidRecord { reason: String },
    #[error("unsupported compression codec {codec}")]
    UnsupportedCompression { codec: u8 },
    #[error("{topic}-{partition}: {source}")]
    OutOfOrderSequence {
        topic: String,
        partition: i32,
        source: storage::ProducerError,
    },
    #[error("{topic}-{partition}: {source}")]
    InvalidProducerEpoch {
        topic: String,
        partition: i32,
        source: storage::ProducerError,
    },
    #[error("{topic}-{partition}: {source}")]
    TransactionCoordinatorFenced {
        topic: String,
        partition: i32,
        source: storage::ProducerError,
    },
    #[error("{topic}-{partition}: {source}")]
    InvalidTxnState {
        topic: String,
        partition: i32,
        source: storage::ProducerError,
    },
    #[error("acks=all needs {min_insync_replicas} in-sync replicas, this partition has 1")]
    NotEnoughReplicas { min_insync_replicas: i32 },
    #[error("offset {offset} is outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("storage failure on {topic}-{partition}")]
    Storage {
        topic: String,
        partition: i32,
        #[source]
        source: storage::Error,
    },
    #[error("{topic}-{partition} is offline: {reason}")]
    PartitionOffline {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("{topic}-{partition} could not be made durable: its log stopped accepting writes")]
    FlushFailed { topic: String, partition: i32 },
    #[error("topic {topic} is internal: clients cannot write to it")]
    InternalTopic { topic: String },
    #[error("invalid group id {group:?}")]
    InvalidGroupId { group: String },
    #[error("member {member_id} is not a member of group {group}")]
    UnknownMemberId { group: String, member_id: String },
    #[error("generation {generation} of group {group} is not the current one ({current})")]
    IllegalGeneration {
        group: String,
        generation: i32,
        current: i32,
    },
    #[error("group {group} is rebalancing")]
    RebalanceInProgress { group: String },
    #[error("group.instance.id {instance_id} of group {group} belongs to another member")]
    FencedInstanceId { group: String, instance_id: String },
    #[error("session timeout {session_timeout_ms} ms is outside the broker's allowed range")]
    InvalidSessionTimeout { session_timeout_ms: i32 },
    #[error("protocol type or protocols are incompatible with group {group}")]
    InconsistentGroupProtocol { group: String },
    #[error("group {group} requires a member id; rejoin with {member_id}")]
    MemberIdRequired { group: String, member_id: String },
    #[error("member metadata of {bytes} bytes for group {group} exceeds {bytes_max} bytes")]
    MemberMetadataTooLarge {
        group: String,
        bytes: usize,
        bytes_max: usize,
    },
    #[error("assignor {assignor:?} is not served (uniform, range)")]
    UnsupportedAssignor { assignor: String },
    #[error("member epoch {member_epoch} of group {group} is fenced")]
    FencedMemberEpoch { group: String, member_epoch: i32 },
    #[error("member epoch {member_epoch} of group {group} is stale")]
    StaleMemberEpoch { group: String, member_epoch: i32 },
    #[error("invalid group request: {reason}")]
    InvalidGroupRequest { reason: &'static str },
    #[error("group {group} has reached group.max.size")]
    GroupMaxSizeReached { group: String },
    #[error("group {group} does not exist")]
    GroupIdNotFound { group: String },
    #[error("group {group} still has members")]
    NonEmptyGroup { group: String },
    #[error("offset metadata of group {group} exceeds {bytes_max} bytes")]
    OffsetMetadataTooLarge { group: String, bytes_max: usize },
    #[error("the coordinator of group {group} stopped waiting for this request")]
    CoordinatorNotAvailable { group: String },
    #[error("the coordinator of group {group} is still loading its offsets partition")]
    CoordinatorLoadInProgress { group: String },
    #[error("the offsets log of group {group} stopped accepting writes")]
    CoordinatorLogFailed { group: String },
    #[error("a record of group {group} is too large for one batch of the offsets topic")]
    GroupRecordTooLarge { group: String },
    #[error("transactional id {transactional_id:?}: {error}")]
    Transaction {
        transactional_id: String,
        error: super::txn::TxnError,
    },
    #[error("not attempted: another part of the request failed")]
    OperationNotAttempted,
    #[error("partition {partition} of topic {topic} already has the leader an election would pick")]
    ElectionNotNeeded { topic: String, partition: i32 },
    #[error("the preferred leader of partition {partition} of topic {topic} cannot lead: {reason}")]
    PreferredLeaderNotAvailable {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("partition {partition} of topic {topic} has no leader and raft elects none unclean")]
    EligibleLeadersNotAvailable { topic: String, partition: i32 },
    #[error("invalid replica assignment: {reason}")]
    InvalidReplicaAssignment { reason: String },
    #[error("no reassignment of partition {partition} of topic {topic} is in progress")]
    NoReassignmentInProgress { topic: String, partition: i32 },
    #[error("broker {id} is not registered")]
    BrokerNotRegistered { id: i32 },
    #[error("broker {id} cannot be unregistered: {reason}")]
    BrokerInUse { id: i32, reason: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("user {user} has no such SCRAM credential")]
    UnknownScramCredential { user: String },
    #[error("unacceptable credential: {reason}")]
    UnacceptableCredential { reason: String },
    #[error("topic catalog update failed")]
    Catalog {
        #[source]
        source: storage::Error,
    },
}

/// The broker layer's result type.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A standalone broker's state file, read through `load` (the bytes of `file` in `data_dir`,
/// `None` when there is none yet) and parsed by `parse`; bytes `parse` refuses are the catalog
/// error `CorruptState` of that file with `parse`'s reason.
pub(super) fn load_state_file<T>(
    data_dir: &std::path::Path,
    load: fn(&std::path::Path) -> storage::Result<Option<Vec<u8>>>,
    file: &str,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, &'static str>,
) -> Result<Option<T>> {
    let Some(bytes) = load(data_dir).map_err(|source| Error::Catalog { source })? else {
        return Ok(None);
    };
    parse(&bytes).map(Some).map_err(|reason| Error::Catalog {
        source: storage::Error::CorruptState {
            path: data_dir.join(file),
            reason,
        },
    })
}
