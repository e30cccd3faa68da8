//! Broker settings, built by `app` from the validated config; the broker never reads config files.

use std::path::PathBuf;
use std::time::Duration;

use super::group::GroupSettings;
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
}
