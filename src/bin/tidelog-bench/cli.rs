//! Command-line options of the benchmark (clap).

use std::path::PathBuf;

use clap::Parser;

/// Benchmark a Tidelog broker with librdkafka: produce (acks=all; plain, idempotent and
/// transactional), consume back (read_committed) and verify, measure delivery latency at a fixed
/// rate, and consume with a consumer group and time its rebalances; then, on a broker of its own,
/// produce and consume over PLAINTEXT, SSL and SASL_SSL (the TLS/plaintext ratio) and time SASL
/// authentications (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN); then a 3-broker cluster.
#[derive(Debug, Clone, Parser)]
#[command(name = "tidelog-bench", version)]
pub(crate) struct Args {
    /// Records of 100 B in the first throughput run (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records_100b: u64,
    /// Records of 1 KiB in the second throughput run (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) records_1k: u64,
    /// Skip the idempotent twins of the 100 B and 1 KiB runs (same records, enable.idempotence).
    #[arg(long)]
    pub(crate) skip_idempotent: bool,
    /// Plain/idempotent pairs of each throughput run, alternating, so the idempotence cost is a
    /// median over pairs rather than one noisy difference.
    #[arg(long, default_value_t = 3)]
    pub(crate) idempotence_rounds: u32,
    /// `max.in.flight.requests.per.connection` of the plain producers (default: librdkafka's,
    /// 1000000; an idempotent producer uses at most 5, the Java client's default for both):
    /// `--max-in-flight 5` compares idempotence at equal pipelining.
    #[arg(long)]
    pub(crate) max_in_flight: Option<u32>,
    /// Records of 100 B in the transactional run, read back with read_committed (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records_txn: u64,
    /// The transactional run commits its transaction this often, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub(crate) txn_commit_ms: u64,
    /// Length of the fixed-rate latency run in seconds (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub(crate) latency_secs: u64,
    /// Records per second in the latency run.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) latency_rate: u64,
    /// Record value size in the latency run, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub(crate) latency_record_bytes: usize,
    /// Partitions of each benchmark topic.
    #[arg(long, default_value_t = 4)]
    pub(crate) partitions: i32,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    pub(crate) linger_ms: u64,
    /// The broker binary to start (default: `tidelog` next to this executable).
    #[arg(long, conflicts_with = "bootstrap")]
    pub(crate) broker_bin: Option<PathBuf>,
    /// Use an already running broker at HOST:PORT instead of starting one.
    #[arg(long)]
    pub(crate) bootstrap: Option<String>,
    /// With --bootstrap: the broker's pid, to sample its RSS and CPU time.
    #[arg(long, requires = "bootstrap")]
    pub(crate) broker_pid: Option<u32>,
    /// Overall time limit for the whole benchmark, in seconds.
    #[arg(long, default_value_t = 900)]
    pub(crate) timeout_secs: u64,
    /// Keep the broker's temporary data directory and log instead of removing them.
    #[arg(long)]
    pub(crate) keep_data: bool,
    /// Append every record's delivery latency to this CSV file (for plotting or digging).
    #[arg(long)]
    pub(crate) latency_csv: Option<PathBuf>,
    /// Records of 100 B in the consumer group run (6 partitions, 3 members, then a member joins
    /// and one leaves while a stream flows).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) group_records: u64,
    /// Skip the consumer group run.
    #[arg(long)]
    pub(crate) skip_group: bool,
    /// Skip the cluster run (3 brokers started as processes: the plain runs again, then the
    /// controller leader's kill -9); it needs the broker binary, so `--bootstrap` skips it too.
    #[arg(long)]
    pub(crate) skip_cluster: bool,
    /// Skip the cluster's runs with replication factor 1 (the plain runs again on a cluster
    /// whose default replication factor is 1: partitions spread, nothing replicated).
    #[arg(long)]
    pub(crate) skip_rf1: bool,
    /// Freshly formed 3-broker clusters whose controller leader is killed (kill -9), each timed
    /// to the next successful CreateTopics through a survivor, and as many whose partition
    /// leader is killed under an acks=all stream, each timed to the next acknowledged write
    /// (0 skips both).
    #[arg(long, default_value_t = 3)]
    pub(crate) failover_rounds: u32,
    /// Records of 1 KiB written (idempotent, acks=all) to a replication-factor-3 topic while one
    /// broker of a fresh cluster is down (kill -9); after its restart, the time until its
    /// replicas' logs are as long as the others' gives the catch-up rate (0 skips it).
    #[arg(long, default_value_t = 300_000)]
    pub(crate) catch_up_records: u64,
    /// Records of 100 B, then of 1 KiB, produced (acks=all) and consumed over each of the
    /// PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-256) listeners of one broker started for the
    /// security run, with a certificate it generates (0 skips these runs; the security run
    /// needs the broker binary, so `--bootstrap` skips it).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) security_records: u64,
    /// Full SASL authentications per mechanism (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN) against
    /// the security run's SASL_PLAINTEXT listener, each on a fresh connection (connect,
    /// SaslHandshake, SaslAuthenticate, server signature checked, close): one after another,
    /// then over `--scram-connections` connections at once (0 skips them).
    #[arg(long, default_value_t = 2000)]
    pub(crate) scram_auths: u64,
    /// Connections authenticating at once in the second authentication round (1 skips it).
    #[arg(long, default_value_t = 4)]
    pub(crate) scram_connections: u32,
    /// Librdkafka `debug` contexts (e.g. `broker,topic,msg`); shows every client log line.
    #[arg(long)]
    pub(crate) client_debug: Option<String>,
}
