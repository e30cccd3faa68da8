//! Broker settings, built by `app` from the validated config; the broker never reads config files.

use std::path::PathBuf;
use std::time::Duration;

use super::group::GroupSettings;
use super::txn::TxnSettings;
use crate::storage::LogSettings;

/// Host and port clients are told to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Everything the broker needs to know about its environment and defaults.
#[derive(Debug, Clone)]
pub(crate) struct BrokerSettings {
    pub(crate) node_id: i32,
    pub(crate) cluster_id: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) advertised: Endpoint,
    /// Partitions of a topic created without an explicit count (`num.partitions`).
    pub(crate) default_partitions: i32,
    /// Replicas of a cluster topic created without a replication factor; `None`: min(3,
    /// registered brokers).
    pub(crate) default_replication_factor: Option<i16>,
    /// Create unknown topics on metadata requests that allow it (`auto.create.topics.enable`).
    pub(crate) auto_create_topics: bool,
    /// Log defaults for topics without overrides (`log.segment.bytes`, `log.retention.ms`, ...).
    pub(crate) log: LogSettings,
    /// Largest record batch accepted by default (`message.max.bytes`).
    pub(crate) message_bytes_max: u32,
    /// Whether acks=1 produce requests also wait for fsync (acks=all always does).
    pub(crate) acks_one_waits_for_fsync: bool,
    /// How often segment age rolls and retention are checked.
    pub(crate) retention_check_interval: Duration,
    /// The group coordinator's settings (`group.*`, `offsets.*`).
    pub(crate) groups: GroupSettings,
    /// The transaction coordinator's and producers' settings (`transaction.*`).
    pub(crate) transactions: TxnSettings,
}

#[cfg(any(test, fuzzing))]
impl BrokerSettings {
    /// Settings for an in-process test broker: broker defaults, auto-creation off, 3 default
    /// partitions, data in `data_dir`, clients told to connect to `host:port`.
    pub(crate) fn for_test(
        node_id: i32,
        cluster_id: &str,
        data_dir: &std::path::Path,
        advertised: Endpoint,
    ) -> BrokerSettings {
        BrokerSettings {
            node_id,
            cluster_id: cluster_id.to_owned(),
            data_dir: data_dir.to_path_buf(),
            advertised,
            default_partitions: 3,
            default_replication_factor: None,
            auto_create_topics: false,
            log: LogSettings::default(),
            message_bytes_max: crate::limits::MESSAGE_BYTES_MAX_DEFAULT,
            acks_one_waits_for_fsync: false,
            retention_check_interval: Duration::from_secs(300),
            groups: GroupSettings::default(),
            transactions: TxnSettings::default(),
        }
    }
}
