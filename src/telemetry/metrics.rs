//! Metrics: every metric name (Prometheus style, unit last), the recording functions the layers
//! call, and the process-wide Prometheus recorder, installed only when the admin listener is on
//! (until then every recording is a no-op). Gauges of state (partitions, group lag, open
//! connections) are set from a `Snapshot` at scrape time, so a deleted partition's series ends.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Every exported metric name; README documents them and the Grafana dashboard uses them.
pub mod name {
    /// Counter: requests answered (or failed), by `api` (Kafka API name) and `version`.
    pub const REQUESTS: &str = "tidelog_requests_total";
    /// Counter: requests that failed (closed the connection: undecodable, unsupported version,
    /// acks=0 write failed), by `api` and `version`.
    pub const REQUEST_ERRORS: &str = "tidelog_request_errors_total";
    /// Histogram: from a request's dispatch until its response is ready, by `api`.
    pub const REQUEST_DURATION: &str = "tidelog_request_duration_seconds";
    /// Counter: record batch bytes appended by Produce, by `topic`.
    pub const BYTES_IN: &str = "tidelog_topic_bytes_in_total";
    /// Counter: record bytes returned by Fetch, by `topic`.
    pub const BYTES_OUT: &str = "tidelog_topic_bytes_out_total";
    /// Gauge: a partition's log end offset, by `topic` and `partition`.
    pub const LOG_END_OFFSET: &str = "tidelog_partition_log_end_offset";
    /// Gauge: a partition's high watermark, by `topic` and `partition`.
    pub const HIGH_WATERMARK: &str = "tidelog_partition_high_watermark";
    /// Gauge: a partition's log start offset, by `topic` and `partition`.
    pub const LOG_START_OFFSET: &str = "tidelog_partition_log_start_offset";
    /// Gauge: a partition's bytes on disk (every segment), by `topic` and `partition`.
    pub const LOG_SIZE: &str = "tidelog_partition_log_size_bytes";
    /// Gauge: on a replicated partition's leader, how many raft entries each replica's log
    /// lacks, by `topic`, `partition` and `replica` (node id); -1 before its first match.
    pub const REPLICA_LAG: &str = "tidelog_partition_replica_lag_entries";
    /// Gauge: high watermark minus committed offset, by `group`, `topic` and `partition`, for
    /// the groups this broker coordinates.
    pub const GROUP_LAG: &str = "tidelog_consumer_group_lag_records";
    /// Histogram: fdatasync of a segment file.
    pub const FSYNC_DURATION: &str = "tidelog_storage_fsync_duration_seconds";
    /// Counter: raft leader changes seen by this broker, by `group_kind` (`partition` or
    /// `controller`).
    pub const RAFT_LEADER_CHANGES: &str = "tidelog_raft_leader_changes_total";
    /// Histogram: from a raft proposal (a produced batch) until it is committed and applied.
    pub const RAFT_COMMIT_DURATION: &str = "tidelog_raft_commit_duration_seconds";
    /// Gauge: open Kafka client connections.
    pub const CONNECTIONS_OPEN: &str = "tidelog_connections_open";
    /// Counter: Kafka client connections accepted.
    pub const CONNECTIONS_ACCEPTED: &str = "tidelog_connections_accepted_total";
    /// Counter: failed client authentications (TLS handshakes refused, SASL failures), by
    /// `mechanism`.
    pub const AUTHENTICATION_FAILURES: &str = "tidelog_authentication_failures_total";

    /// Every name above, for the dashboard test and the README.
    pub const ALL: &[&str] = &[
        REQUESTS,
        REQUEST_ERRORS,
        REQUEST_DURATION,
        BYTES_IN,
        BYTES_OUT,
        LOG_END_OFFSET,
        HIGH_WATERMARK,
        LOG_START_OFFSET,
        LOG_SIZE,
        REPLICA_LAG,
        GROUP_LAG,
        FSYNC_DURATION,
        RAFT_LEADER_CHANGES,
        RAFT_COMMIT_DURATION,
        CONNECTIONS_OPEN,
        CONNECTIONS_ACCEPTED,
        AUTHENTICATION_FAILURES,
    ];
}

/// Histogram buckets, in seconds: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A gauge not set for this long is dropped from the output (a deleted partition, a group gone).
const GAUGE_IDLE: Duration = Duration::from_secs(120);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("another metrics recorder is already installed in this process")]
    RecorderTaken,
    #[error("invalid histogram buckets")]
    Buckets(#[source] metrics_exporter_prometheus::BuildError),
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();
static CONNECTIONS_OPEN_COUNT: AtomicI64 = AtomicI64::new(0);

/// The process's Prometheus recorder, installed at the first call (every later call, e.g. by
/// a second in-process broker, shares it). Recordings before it are not kept.
pub fn prometheus() -> Result<&'static PrometheusHandle, Error> {
    if let Some(handle) = PROMETHEUS.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .map_err(Error::Buckets)?
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        .build_recorder();
    let handle = recorder.handle();
    // Two threads racing here: the loser's recorder is refused and its handle dropped.
    if metrics::set_global_recorder(recorder).is_err() {
        return PROMETHEUS.get().ok_or(Error::RecorderTaken);
    }
    describe();
    Ok(PROMETHEUS.get_or_init(|| handle))
}

/// HELP lines, and the counters that must show (as 0) before their first event.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(name::REQUESTS, "Kafka requests by API and version");
    describe_counter!(
        name::REQUEST_ERRORS,
        "Kafka requests that failed and closed the connection"
    );
    describe_histogram!(
        name::REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Kafka request latency, dispatch to response ready"
    );
    describe_counter!(
        name::BYTES_IN,
        metrics::Unit::Bytes,
        "Record batch bytes produced, by topic"
    );
    describe_counter!(
        name::BYTES_OUT,
        metrics::Unit::Bytes,
        "Record bytes fetched, by topic"
    );
    describe_gauge!(name::LOG_END_OFFSET, "Log end offset, by partition");
    describe_gauge!(name::HIGH_WATERMARK, "High watermark, by partition");
    describe_gauge!(name::LOG_START_OFFSET, "Log start offset, by partition");
    describe_gauge!(
        name::LOG_SIZE,
        metrics::Unit::Bytes,
        "Bytes on disk, by partition"
    );
    describe_gauge!(
        name::REPLICA_LAG,
        "Raft entries a replica lacks of the leader's log (-1: not matched yet)"
    );
    describe_gauge!(
        name::GROUP_LAG,
        "High watermark minus the group's committed offset"
    );
    describe_histogram!(
        name::FSYNC_DURATION,
        metrics::Unit::Seconds,
        "fdatasync of a segment file"
    );
    describe_counter!(name::RAFT_LEADER_CHANGES, "Raft leader changes seen");
    describe_histogram!(
        name::RAFT_COMMIT_DURATION,
        metrics::Unit::Seconds,
        "Raft proposal to commit and apply"
    );
    describe_gauge!(name::CONNECTIONS_OPEN, "Open Kafka client connections");
    describe_counter!(
        name::CONNECTIONS_ACCEPTED,
        "Kafka client connections accepted"
    );
    describe_counter!(
        name::AUTHENTICATION_FAILURES,
        "Failed client authentications"
    );
    metrics::counter!(name::REQUEST_ERRORS, "api" => "unknown", "version" => "unsupported")
        .absolute(0);
    metrics::counter!(name::AUTHENTICATION_FAILURES, "mechanism" => "TLS").absolute(0);
    metrics::counter!(name::AUTHENTICATION_FAILURES, "mechanism" => "SASL").absolute(0);
    metrics::counter!(name::RAFT_LEADER_CHANGES, "group_kind" => "partition").absolute(0);
    metrics::counter!(name::RAFT_LEADER_CHANGES, "group_kind" => "controller").absolute(0);
}

/// Drains histogram samples into their buckets; app runs it periodically, so memory stays
/// bounded between scrapes.
pub fn run_upkeep() {
    if let Some(handle) = PROMETHEUS.get() {
        handle.run_upkeep();
    }
}

/// Whether metrics are kept (the recorder is installed): callers skip building labels if not.
pub(crate) fn is_exported() -> bool {
    PROMETHEUS.get().is_some()
}

/// One answered (or failed) Kafka request; the caller bounds the label values.
pub(crate) fn request(api: String, version: String, elapsed: Duration, is_error: bool) {
    let labels = [("api", api), ("version", version)];
    metrics::counter!(name::REQUESTS, &labels).increment(1);
    if is_error {
        metrics::counter!(name::REQUEST_ERRORS, &labels).increment(1);
    }
    let [(_, api), _] = labels;
    metrics::histogram!(name::REQUEST_DURATION, "api" => api).record(elapsed.as_secs_f64());
}

pub(crate) fn bytes_in(topic: &str, bytes: u64) {
    if !is_exported() {
        return;
    }
    metrics::counter!(name::BYTES_IN, "topic" => topic.to_owned()).increment(bytes);
}

pub(crate) fn bytes_out(topic: &str, bytes: u64) {
    if !is_exported() {
        return;
    }
    metrics::counter!(name::BYTES_OUT, "topic" => topic.to_owned()).increment(bytes);
}

pub(crate) fn fsync(elapsed: Duration) {
    metrics::histogram!(name::FSYNC_DURATION).record(elapsed.as_secs_f64());
}

/// `group_kind`: `partition` or `controller`.
pub(crate) fn raft_leader_changed(group_kind: &'static str) {
    metrics::counter!(name::RAFT_LEADER_CHANGES, "group_kind" => group_kind).increment(1);
}

pub(crate) fn raft_committed(elapsed: Duration) {
    metrics::histogram!(name::RAFT_COMMIT_DURATION).record(elapsed.as_secs_f64());
}

/// Counts a Kafka connection as open until dropped (also when its task is aborted).
#[derive(Debug)]
pub(crate) struct OpenConnection(());

pub(crate) fn connection_opened() -> OpenConnection {
    CONNECTIONS_OPEN_COUNT.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(name::CONNECTIONS_ACCEPTED).increment(1);
    OpenConnection(())
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        CONNECTIONS_OPEN_COUNT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `mechanism`: `TLS` (a refused handshake) or `SASL` (a failed SASL exchange).
pub(crate) fn authentication_failed(mechanism: &'static str) {
    metrics::counter!(name::AUTHENTICATION_FAILURES, "mechanism" => mechanism).increment(1);
}

/// One partition's offsets and size, as this broker has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    /// On a replicated partition's leader: (replica node id, raft entries it lacks; None
    /// before its first match).
    pub replica_lags: Vec<(u64, Option<u64>)>,
}

/// One group's lag on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// Sets the state gauges (called at scrape time, before rendering).
pub(crate) fn set_state(partitions: &[PartitionGauges], group_lags: &[GroupLag]) {
    metrics::gauge!(name::CONNECTIONS_OPEN)
        .set(CONNECTIONS_OPEN_COUNT.load(Ordering::Relaxed) as f64);
    for p in partitions {
        let labels = [
            ("topic", p.topic.clone()),
            ("partition", p.partition.to_string()),
        ];
        metrics::gauge!(name::LOG_END_OFFSET, &labels).set(p.log_end_offset as f64);
        metrics::gauge!(name::HIGH_WATERMARK, &labels).set(p.high_watermark as f64);
        metrics::gauge!(name::LOG_START_OFFSET, &labels).set(p.log_start_offset as f64);
        metrics::gauge!(name::LOG_SIZE, &labels).set(p.size_bytes as f64);
        for (replica, lag) in &p.replica_lags {
            let lag = lag.map_or(-1.0, |lag| lag as f64);
            metrics::gauge!(
                name::REPLICA_LAG,
                "topic" => p.topic.clone(),
                "partition" => p.partition.to_string(),
                "replica" => replica.to_string()
            )
            .set(lag);
        }
    }
    for g in group_lags {
        metrics::gauge!(
            name::GROUP_LAG,
            "group" => g.group.clone(),
            "topic" => g.topic.clone(),
            "partition" => g.partition.to_string()
        )
        .set(g.lag as f64);
    }
}

/// Renders every metric in Prometheus' text format; empty before `prometheus()` was called.
pub fn render() -> String {
    PROMETHEUS
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn metric_names_follow_prometheus_conventions() {
        for metric in name::ALL {
            assert!(metric.starts_with("tidelog_"), "{metric}");
            assert!(
                metric.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{metric}"
            );
        }
        let mut sorted = name::ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), name::ALL.len(), "a name is listed twice");
    }

    #[test]
    fn readme_documents_every_metric() {
        let readme = include_str!("../../README.md");
        for metric in name::ALL {
            assert!(
                readme.contains(&format!("`{metric}`")),
                "README lacks `{metric}`"
            );
        }
    }
}
