//! Kafka topic configs: the keys a topic may override, their validation, defaults and the
//! one mapping from dotted Kafka names to typed storage and broker settings.

use std::collections::BTreeMap;

use super::error::{Error, Result};
use super::settings::BrokerSettings;
use crate::storage::{CompactionSettings, Compression, LogSettings};

/// Where a described config value comes from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    TopicOverride,
    /// A dynamic config of this broker (AlterConfigs on its node id).
    DynamicBroker,
    /// A dynamic cluster-wide default (AlterConfigs on the empty broker name).
    DynamicDefaultBroker,
    StaticBroker,
    Default,
}

/// The value type of a config (Kafka's DescribeConfigs `config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigKind {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
    /// A key Tidelog stores without knowing its type (Kafka's UNKNOWN).
    Unknown,
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigEntry {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: ConfigSource,
    pub(crate) read_only: bool,
    pub(crate) sensitive: bool,
    pub(crate) doc: &'static str,
    pub(crate) kind: ConfigKind,
    /// Where else the value could come from, most specific first, as DescribeConfigs lists
    /// synonyms; empty when the entry itself is the only one.
    pub(crate) synonyms: Vec<Synonym>,
}

/// One synonym of a described config: a value the config has at another level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Synonym {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: ConfigSource,
}

/// A change requested by AlterConfigs / IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AlterOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

/// Timestamp stamped on stored batches (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampPolicy {
    CreateTime,
    LogAppendTime,
}

/// A topic's effective settings: broker defaults with the topic's overrides applied.
#[derive(Debug, Clone)]
pub(crate) struct TopicSettings {
    pub(crate) log: LogSettings,
    pub(crate) message_bytes_max: u32,
    pub(crate) timestamp_policy: TimestampPolicy,
    pub(crate) min_insync_replicas: i32,
    /// `compression.type`: `None` stores batches as the producer compressed them.
    pub(crate) codec: Option<Compression>,
    /// `cleanup.policy` contains `compact` (the log gets `compaction` once resolved).
    is_compacted: bool,
    /// Compaction parameters, kept even for delete-only topics until the policy changes.
    compaction: CompactionSettings,
}

struct KeySpec {
    name: &'static str,
    kind: ConfigKind,
    doc: &'static str,
}

const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "cleanup.policy",
        kind: ConfigKind::List,
        doc: "delete (retention removes old segments), compact (keep the latest record per key) or both",
    },
    KeySpec {
        name: "compression.type",
        kind: ConfigKind::String,
        doc: "codec of stored batches; producer keeps the producer's compression",
    },
    KeySpec {
        name: "delete.retention.ms",
        kind: ConfigKind::Long,
        doc: "how long tombstones stay readable once compacted",
    },
    KeySpec {
        name: "flush.messages",
        kind: ConfigKind::Long,
        doc: "records between forced fsyncs; every value is met, as each append is fsynced before the high watermark moves",
    },
    KeySpec {
        name: "flush.ms",
        kind: ConfigKind::Long,
        doc: "longest time between forced fsyncs; every value is met, as each append is fsynced before the high watermark moves",
    },
    KeySpec {
        name: "index.interval.bytes",
        kind: ConfigKind::Int,
        doc: "bytes between two offset index entries",
    },
    KeySpec {
        name: "max.message.bytes",
        kind: ConfigKind::Int,
        doc: "largest record batch accepted",
    },
    KeySpec {
        name: "max.compaction.lag.ms",
        kind: ConfigKind::Long,
        doc: "longest a record stays uncompacted; also caps segment.ms of compacted topics",
    },
    KeySpec {
        name: "message.timestamp.type",
        kind: ConfigKind::String,
        doc: "CreateTime or LogAppendTime",
    },
    KeySpec {
        name: "min.cleanable.dirty.ratio",
        kind: ConfigKind::Double,
        doc: "share of uncompacted bytes that triggers compaction",
    },
    KeySpec {
        name: "min.compaction.lag.ms",
        kind: ConfigKind::Long,
        doc: "shortest time a record stays uncompacted",
    },
    KeySpec {
        name: "min.insync.replicas",
        kind: ConfigKind::Int,
        doc: "replicas that must hold an acks=all write",
    },
    KeySpec {
        name: "retention.bytes",
        kind: ConfigKind::Long,
        doc: "partition size kept before old segments are deleted, -1 for no limit",
    },
    KeySpec {
        name: "retention.ms",
        kind: ConfigKind::Long,
        doc: "age after which segments are deleted, -1 for no limit",
    },
    KeySpec {
        name: "segment.bytes",
        kind: ConfigKind::Int,
        doc: "size at which a segment is rolled",
    },
    KeySpec {
        name: "segment.index.bytes",
        kind: ConfigKind::Int,
        doc: "preallocated size of each index file",
    },
    KeySpec {
        name: "segment.ms",
        kind: ConfigKind::Long,
        doc: "age at which a segment is rolled",
    },
];

fn spec(key: &str) -> Result<&'static KeySpec> {
    KEYS.iter()
        .find(|k| k.name == key)
        .ok_or_else(|| Error::InvalidConfig {
            key: key.to_owned(),
            reason: "unknown or unsupported topic config".to_owned(),
        })
}

fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn parse_i64(key: &str, value: &str, min: i64, max: i64) -> Result<i64> {
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, format!("{value:?} is not a number")))?;
    if parsed < min || parsed > max {
        return Err(invalid(key, format!("{parsed} is outside [{min}, {max}]")));
    }
    Ok(parsed)
}

fn non_negative_or_none(value: i64) -> Option<u64> {
    u64::try_from(value).ok()
}

impl TopicSettings {
    /// The settings of a topic without overrides.
    pub(crate) fn from_broker(broker: &BrokerSettings) -> TopicSettings {
        TopicSettings {
            log: broker.log.clone(),
            message_bytes_max: broker.message_bytes_max,
            timestamp_policy: TimestampPolicy::CreateTime,
            min_insync_replicas: 1,
            codec: None,
            is_compacted: false,
            compaction: CompactionSettings::default(),
        }
    }

    /// Broker defaults with `overrides` applied; fails on the first invalid override.
    pub(crate) fn resolve(
        broker: &BrokerSettings,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicSettings> {
        let mut settings = TopicSettings::from_broker(broker);
        for (key, value) in overrides {
            settings.apply(key, value)?;
        }
        settings.finish();
        Ok(settings)
    }

    /// Hands the compaction settings to the log once every override is applied.
    fn finish(&mut self) {
        if self.is_compacted {
            // Kafka rolls a compacted topic's segment by max.compaction.lag.ms too.
            if let Some(max_lag_ms) = self.compaction.max_compaction_lag_ms {
                let segment_ms_max = self.log.segment_ms_max.unwrap_or(u64::MAX);
                self.log.segment_ms_max = Some(segment_ms_max.min(max_lag_ms));
            }
            self.log.compaction = Some(self.compaction.clone());
        }
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        spec(key)?;
        match key {
            "cleanup.policy" => {
                let policies: Vec<&str> = value.split(',').map(str::trim).collect();
                if policies.iter().any(|p| *p != "delete" && *p != "compact") {
                    return Err(invalid(key, "must be delete, compact or compact,delete"));
                }
                self.is_compacted = policies.contains(&"compact");
                self.compaction.is_retention_enabled = policies.contains(&"delete");
            }
            "delete.retention.ms" => {
                self.compaction.delete_retention_ms = parse_i64(key, value, 0, i64::MAX)? as u64
            }
            "max.compaction.lag.ms" => {
                let max_lag_ms = parse_i64(key, value, 1, i64::MAX)?;
                self.compaction.max_compaction_lag_ms =
                    (max_lag_ms < i64::MAX).then_some(max_lag_ms as u64);
            }
            "min.cleanable.dirty.ratio" => {
                let ratio: f64 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|ratio| (0.0..=1.0).contains(ratio))
                    .ok_or_else(|| invalid(key, format!("{value:?} is not a ratio in [0, 1]")))?;
                self.compaction.min_cleanable_dirty_ratio_ppm = (ratio * 1e6).round() as u32
            }
            "min.compaction.lag.ms" => {
                self.compaction.min_compaction_lag_ms = parse_i64(key, value, 0, i64::MAX)? as u64
            }
            "compression.type" => {
                self.codec = match value {
                    "producer" => None,
                    "uncompressed" => Some(Compression::None),
                    "gzip" => Some(Compression::Gzip),
                    "snappy" => Some(Compression::Snappy),
                    "lz4" => Some(Compression::Lz4),
                    "zstd" => Some(Compression::Zstd),
                    _ => {
                        return Err(invalid(
                            key,
                            "must be producer, uncompressed, gzip, snappy, lz4 or zstd",
                        ));
                    }
                };
            }
            // Every append group is fsynced before the high watermark moves, which meets any
            // bound; the value is validated as Kafka does and kept for describing only.
            "flush.messages" => {
                parse_i64(key, value, 1, i64::MAX)?;
            }
            "flush.ms" => {
                parse_i64(key, value, 0, i64::MAX)?;
            }
            "index.interval.bytes" => {
                self.log.index_interval_bytes =
                    parse_i64(key, value, 0, i64::from(i32::MAX))? as u32
            }
            "max.message.bytes" => {
                self.message_bytes_max = parse_i64(key, value, 0, i64::from(i32::MAX))? as u32
            }
            "message.timestamp.type" => {
                self.timestamp_policy = match value {
                    "CreateTime" => TimestampPolicy::CreateTime,
                    "LogAppendTime" => TimestampPolicy::LogAppendTime,
                    _ => return Err(invalid(key, "must be CreateTime or LogAppendTime")),
                }
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = parse_i64(key, value, 1, i64::from(i32::MAX))? as i32
            }
            "retention.bytes" => {
                self.log.retention_bytes =
                    non_negative_or_none(parse_i64(key, value, -1, i64::MAX)?)
            }
            "retention.ms" => {
                self.log.retention_ms = non_negative_or_none(parse_i64(key, value, -1, i64::MAX)?)
            }
            "segment.bytes" => {
                let min = crate::limits::SEGMENT_BYTES_MIN as i64;
                self.log.segment_bytes_max = parse_i64(key, value, min, i64::from(i32::MAX))? as u64
            }
            "segment.index.bytes" => {
                self.log.index_file_bytes = parse_i64(key, value, 4096, i64::from(i32::MAX))? as u32
            }
            "segment.ms" => {
                self.log.segment_ms_max = Some(parse_i64(key, value, 1, i64::MAX)? as u64)
            }
            _ => return Err(invalid(key, "unknown or unsupported topic config")),
        }
        Ok(())
    }
}

fn opt_to_string(value: Option<u64>) -> String {
    value.map_or_else(|| "-1".to_owned(), |v| v.to_string())
}

/// Kafka's defaults of the compaction keys (not broker-configurable yet).
fn compaction_default(key: &str) -> Option<String> {
    Some(match key {
        "delete.retention.ms" => CompactionSettings::default()
            .delete_retention_ms
            .to_string(),
        "max.compaction.lag.ms" => i64::MAX.to_string(),
        "min.cleanable.dirty.ratio" => "0.5".to_owned(),
        "min.compaction.lag.ms" => "0".to_owned(),
        _ => return None,
    })
}

/// The value a topic key takes from the broker's defaults.
fn broker_default(broker: &BrokerSettings, key: &str) -> String {
    if let Some(value) = compaction_default(key) {
        return value;
    }
    let log = &broker.log;
    match key {
        "cleanup.policy" => "delete".to_owned(),
        "compression.type" => "producer".to_owned(),
        // Kafka's defaults (Long.MAX_VALUE: never forced by count or time).
        "flush.messages" | "flush.ms" => i64::MAX.to_string(),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "max.message.bytes" => broker.message_bytes_max.to_string(),
        "message.timestamp.type" => "CreateTime".to_owned(),
        "min.insync.replicas" => "1".to_owned(),
        "retention.bytes" => opt_to_string(log.retention_bytes),
        "retention.ms" => opt_to_string(log.retention_ms),
        "segment.bytes" => log.segment_bytes_max.to_string(),
        "segment.index.bytes" => log.index_file_bytes.to_string(),
        "segment.ms" => opt_to_string(log.segment_ms_max),
        _ => String::new(),
    }
}

/// Every topic config with its effective value and source.
pub(crate) fn describe_topic(
    broker: &BrokerSettings,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    KEYS.iter()
        .map(|spec| {
            let (value, source) = match overrides.get(spec.name) {
                Some(v) => (v.clone(), ConfigSource::TopicOverride),
                None => (broker_default(broker, spec.name), ConfigSource::Default),
            };
            ConfigEntry {
                name: spec.name.to_owned(),
                value: Some(value),
                source,
                read_only: false,
                sensitive: false,
                doc: spec.doc,
                kind: spec.kind,
                synonyms: Vec::new(),
            }
        })
        .collect()
}

/// Applies alter operations to a topic's overrides. Non-incremental alters replace the whole set.
/// Values are validated afterwards by [`TopicSettings::resolve`].
pub(crate) fn alter(
    current: &BTreeMap<String, String>,
    ops: &[AlterOp],
    incremental: bool,
) -> Result<BTreeMap<String, String>> {
    alter_keys(current, ops, incremental, |key| {
        // cleanup.policy, the one list, is "delete" when not overridden.
        Ok((spec(key)?.kind == ConfigKind::List).then_some("delete"))
    })
}

/// Applies alter operations to a set of configs (all of them replaced unless `incremental`).
/// `list_start` checks a key and tells whether it is a list (APPEND and SUBTRACT apply), with
/// the value a list has when not set.
pub(super) fn alter_keys(
    current: &BTreeMap<String, String>,
    ops: &[AlterOp],
    incremental: bool,
    list_start: impl Fn(&str) -> Result<Option<&'static str>>,
) -> Result<BTreeMap<String, String>> {
    let mut next = if incremental {
        current.clone()
    } else {
        BTreeMap::new()
    };
    for op in ops {
        match op {
            AlterOp::Set(key, value) => {
                list_start(key)?;
                next.insert(key.clone(), value.clone());
            }
            AlterOp::Delete(key) => {
                list_start(key)?;
                next.remove(key);
            }
            AlterOp::Append(key, value) | AlterOp::Subtract(key, value) => {
                let Some(start) = list_start(key)? else {
                    return Err(invalid(
                        key,
                        "APPEND and SUBTRACT apply only to list configs",
                    ));
                };
                let existing = next.get(key).map_or(start, String::as_str);
                let mut items: Vec<String> = existing
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if matches!(op, AlterOp::Append(..)) {
                    if !items.iter().any(|i| i == value) {
                        items.push(value.clone());
                    }
                } else {
                    items.retain(|i| i != value);
                }
                next.insert(key.clone(), items.join(","));
            }
        }
    }
    Ok(next)
}

#[path = "topic_config_tests.rs"]
#[cfg(test)]
mod tests;
