//! Topic administration: create, delete, add partitions, describe and alter configs.
//! Every change is persisted in the storage catalog before it becomes visible.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use super::error::{Error, Result};
use super::topic_config::{self, AlterOp, ConfigEntry, ConfigKind, ConfigSource, TopicSettings};
use super::{Broker, TopicInfo, blocking, info, topic_name};
use crate::limits::PARTITIONS_PER_TOPIC_MAX;
use crate::storage;

/// A fresh random topic id (a v4-style UUID, never all zeros).
pub(super) fn new_topic_id() -> [u8; 16] {
    let state = std::collections::hash_map::RandomState::new();
    let mut id = [0u8; 16];
    for (i, chunk) in id.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

/// The config overrides of a creation that set a value (a null one is refused before).
fn overrides(configs: &[(String, Option<String>)]) -> BTreeMap<String, String> {
    configs
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value.clone()?)))
        .collect()
}

fn check_partition_count(topic: &str, count: i32) -> Result<()> {
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&count) {
        return Err(Error::InvalidPartitions {
            topic: topic.to_owned(),
            count,
            reason: format!("must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"),
        });
    }
    Ok(())
}

impl Broker {
    /// Creates `name` with broker defaults if auto-creation is enabled.
    pub(crate) async fn auto_create_topic(&self, name: &str) -> Result<TopicInfo> {
        if !self.settings.auto_create_topics {
            return Err(Error::UnknownTopic {
                topic: name.to_owned(),
            });
        }
        match self.create_topic(name, None, None, &[], false).await {
            Err(Error::TopicAlreadyExists { .. }) => {
                self.topic(name).ok_or_else(|| Error::UnknownTopic {
                    topic: name.to_owned(),
                })
            }
            other => other,
        }
    }

    /// Creates a topic; `None` partitions or replication factor take the broker defaults. In
    /// cluster mode a user topic is created through the controller.
    pub(crate) async fn create_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<TopicInfo> {
        let Some(link) = self.user_topic_link(name) else {
            return self.create_topic_local(
                name,
                partitions,
                replication_factor,
                configs,
                validate_only,
            );
        };
        // Validated here as locally (but for the replication factor, which the controller
        // checks against the brokers it has), then placed by the controller.
        let placeholder = self.create_topic_local(name, partitions, None, configs, true)?;
        let factor = match replication_factor {
            None | Some(-1) => self.default_replication_factor(),
            Some(factor) if factor < 1 => {
                return Err(Error::InvalidReplicationFactor { factor });
            }
            Some(factor) => factor,
        };
        if validate_only {
            if factor as usize > self.live_broker_count() {
                return Err(Error::InvalidReplicationFactor { factor });
            }
            return Ok(placeholder);
        }
        let count = placeholder.partitions.len() as i32;
        self.create_topic_in_cluster(link, name, (count, factor), None, overrides(configs))
            .await
    }

    /// Creates a topic with a manual assignment: one replica list per partition (the first
    /// replica the preferred leader), checked by the caller against
    /// [`Broker::assignable_brokers`]. In cluster mode the controller checks it again when it
    /// applies the creation (a broker may have been unregistered since).
    pub(crate) async fn create_topic_assigned(
        &self,
        name: &str,
        assignment: Vec<Vec<i32>>,
        configs: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<TopicInfo> {
        let count = i32::try_from(assignment.len()).unwrap_or(i32::MAX);
        let factor = i16::try_from(assignment.first().map_or(0, Vec::len)).unwrap_or(i16::MAX);
        let Some(link) = self.user_topic_link(name) else {
            let factor = Some(factor);
            return self.create_topic_local(name, Some(count), factor, configs, validate_only);
        };
        let placeholder = self.create_topic_local(name, Some(count), None, configs, true)?;
        if validate_only {
            return Ok(placeholder);
        }
        let shape = (count, factor);
        self.create_topic_in_cluster(link, name, shape, Some(assignment), overrides(configs))
            .await
    }

    /// The cluster link a topic named `name` is created through: none for an internal topic
    /// (each broker holds its own) or out of cluster mode.
    fn user_topic_link(&self, name: &str) -> Option<&super::cluster_link::ClusterLink> {
        self.cluster
            .get()
            .filter(|_| !topic_name::is_internal(name))
    }

    /// Creates a topic in this broker's catalog only (standalone, internal topics).
    pub(crate) fn create_topic_local(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<TopicInfo> {
        topic_name::validate(name)?;
        let count = partitions.unwrap_or(self.settings.default_partitions);
        check_partition_count(name, count)?;
        if let Some(factor) = replication_factor.filter(|f| *f != 1) {
            return Err(Error::InvalidReplicationFactor { factor });
        }
        let mut overrides = BTreeMap::new();
        for (key, value) in configs {
            let value = value.clone().ok_or_else(|| Error::InvalidConfig {
                key: key.clone(),
                reason: "a null value is not allowed".to_owned(),
            })?;
            overrides.insert(key.clone(), value);
        }
        TopicSettings::resolve(&self.settings, &overrides)?;
        if self.topics_read().contains_key(name) {
            return Err(Error::TopicAlreadyExists {
                topic: name.to_owned(),
            });
        }
        if !validate_only {
            return self.create_topic_with_id(name, new_topic_id(), count, &overrides);
        }
        Ok(TopicInfo {
            name: name.to_owned(),
            topic_id: new_topic_id(),
            is_internal: topic_name::is_internal(name),
            partitions: (0..count)
                .map(|partition| super::PartitionInfo::served_here(self.node_id(), partition))
                .collect(),
        })
    }

    /// Creates a validated topic with the given id in the local catalog and opens its logs.
    pub(super) fn create_topic_with_id(
        &self,
        name: &str,
        topic_id: [u8; 16],
        count: i32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicInfo> {
        blocking::in_place(|| {
            let mut catalog = self.catalog();
            if self.topics_read().contains_key(name) {
                return Err(Error::TopicAlreadyExists {
                    topic: name.to_owned(),
                });
            }
            let record = storage::TopicRecord {
                name: name.to_owned(),
                topic_id,
                partition_count: count,
                configs: overrides.clone(),
            };
            catalog
                .put(record.clone())
                .map_err(|source| Error::Catalog { source })?;
            let topic = self.open_topic(&catalog, &record, 0, super::OpenMode::New)?;
            let described = info(self.node_id(), &topic);
            self.topics_mut().insert(name.to_owned(), topic);
            tracing::info!(topic = name, partitions = count, "topic created");
            Ok(described)
        })
    }

    /// Deletes a topic and all its data (through the controller for a user topic in cluster
    /// mode); returns its id.
    pub(crate) async fn delete_topic(&self, name: &str) -> Result<[u8; 16]> {
        match self.cluster.get() {
            Some(link) if !topic_name::is_internal(name) => {
                self.delete_topic_in_cluster(link, name).await
            }
            _ => self.delete_topic_local(name),
        }
    }

    /// Deletes a topic from this broker's catalog and disk.
    pub(super) fn delete_topic_local(&self, name: &str) -> Result<[u8; 16]> {
        blocking::in_place(|| {
            if topic_name::is_internal(name) && self.topic_state(name).is_some() {
                return Err(Error::InternalTopic {
                    topic: name.to_owned(),
                });
            }
            let mut catalog = self.catalog();
            let topic = self
                .topics_mut()
                .remove(name)
                .ok_or_else(|| Error::UnknownTopic {
                    topic: name.to_owned(),
                })?;
            catalog
                .remove(name)
                .map_err(|source| Error::Catalog { source })?;
            // The catalog no longer names the topic: a crash from here on leaves directories the
            // next start sweeps, and each one is renamed aside before its removal. The catalog
            // lock stays held so a new topic of the same name waits for the old data to go.
            let mut first_error = None;
            for partition in &topic.partitions {
                let deleted = match partition.take_log() {
                    Some(log) => log.delete(),
                    None => catalog.delete_partition_dir(name, partition.index),
                };
                partition.mark_gone();
                if let Err(source) = deleted {
                    tracing::error!(topic = name, partition = partition.index, error = %source, "deleting partition data failed");
                    first_error.get_or_insert(partition.storage_error(source));
                }
            }
            if let Some(error) = first_error {
                return Err(error);
            }
            tracing::info!(topic = name, "topic deleted");
            Ok(topic.topic_id)
        })
    }

    /// Grows a topic to `total_count` partitions (through the controller for a user topic in
    /// cluster mode, on the replicas `assignment` lists for each new partition when given: the
    /// caller checked it names registered brokers; out of cluster mode it can only name this
    /// node, which holds every partition anyway).
    pub(crate) async fn create_partitions(
        &self,
        name: &str,
        total_count: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<()> {
        match self.cluster.get() {
            Some(link) if !topic_name::is_internal(name) && !validate_only => {
                self.create_partitions_local(name, total_count, true)?;
                self.create_partitions_in_cluster(link, name, total_count, assignment)
                    .await
            }
            _ => self.create_partitions_local(name, total_count, validate_only),
        }
    }

    /// Grows a topic in this broker's catalog.
    pub(super) fn create_partitions_local(
        &self,
        name: &str,
        total_count: i32,
        validate_only: bool,
    ) -> Result<()> {
        blocking::in_place(|| {
            let mut catalog = self.catalog();
            let current = self.topic_state(name).ok_or_else(|| Error::UnknownTopic {
                topic: name.to_owned(),
            })?;
            let existing = current.partitions.len() as i32;
            if total_count <= existing {
                return Err(Error::InvalidPartitions {
                    topic: name.to_owned(),
                    count: total_count,
                    reason: format!(
                        "topic already has {existing} partitions; the count can only grow"
                    ),
                });
            }
            check_partition_count(name, total_count)?;
            if validate_only {
                return Ok(());
            }
            let record = storage::TopicRecord {
                name: name.to_owned(),
                topic_id: current.topic_id,
                partition_count: total_count,
                configs: current.overrides.clone(),
            };
            catalog
                .put(record.clone())
                .map_err(|source| Error::Catalog { source })?;
            let topic = self.open_topic(&catalog, &record, existing, super::OpenMode::New)?;
            self.topics_mut().insert(name.to_owned(), topic);
            tracing::info!(topic = name, partitions = total_count, "partitions added");
            Ok(())
        })
    }

    /// Every topic config of `name` with its value and source.
    pub(crate) fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>> {
        let topic = self.topic_state(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_owned(),
        })?;
        Ok(topic_config::describe_topic(
            &self.settings,
            &topic.overrides,
        ))
    }

    /// Changes a topic's config overrides (all of them unless `incremental`); through the
    /// controller for a user topic in cluster mode.
    pub(crate) async fn alter_topic_configs(
        &self,
        name: &str,
        ops: &[AlterOp],
        incremental: bool,
        validate_only: bool,
    ) -> Result<()> {
        let current = self.topic_state(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_owned(),
        })?;
        let overrides = topic_config::alter(&current.overrides, ops, incremental)?;
        TopicSettings::resolve(&self.settings, &overrides)?;
        if validate_only {
            return Ok(());
        }
        match self.cluster.get() {
            Some(link) if !topic_name::is_internal(name) => {
                self.set_topic_configs_in_cluster(link, name, overrides)
                    .await
            }
            _ => self.set_topic_overrides_local(name, overrides),
        }
    }

    /// Replaces a topic's config overrides (validated) in the local catalog.
    pub(super) fn set_topic_overrides_local(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<()> {
        let mut catalog = self.catalog();
        let current = self.topic_state(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_owned(),
        })?;
        let record = storage::TopicRecord {
            name: name.to_owned(),
            topic_id: current.topic_id,
            partition_count: current.partitions.len() as i32,
            configs: overrides,
        };
        catalog
            .put(record.clone())
            .map_err(|source| Error::Catalog { source })?;
        let topic = self.open_topic(
            &catalog,
            &record,
            record.partition_count,
            super::OpenMode::New,
        )?;
        self.topics_mut().insert(name.to_owned(), topic);
        tracing::info!(topic = name, "topic configs altered");
        Ok(())
    }

    /// The broker's static configs, under their Kafka names.
    pub(super) fn static_broker_configs(&self) -> Vec<ConfigEntry> {
        let s = &self.settings;
        let opt = |v: Option<u64>| v.map_or_else(|| "-1".to_owned(), |v| v.to_string());
        let defaults = storage::LogSettings::default();
        let advertised = format!("PLAINTEXT://{}:{}", s.advertised.host, s.advertised.port);
        let entries: [(&str, String, bool, ConfigKind, &'static str); 14] = [
            (
                "advertised.listeners",
                advertised,
                false,
                ConfigKind::List,
                "the listener address clients are told to connect to",
            ),
            (
                "broker.id",
                s.node_id.to_string(),
                false,
                ConfigKind::Int,
                "this broker's node id",
            ),
            (
                "log.dirs",
                s.data_dir.display().to_string(),
                false,
                ConfigKind::String,
                "the data directory",
            ),
            (
                "num.partitions",
                s.default_partitions.to_string(),
                s.default_partitions == 1,
                ConfigKind::Int,
                "partitions of auto-created topics",
            ),
            (
                "auto.create.topics.enable",
                s.auto_create_topics.to_string(),
                s.auto_create_topics,
                ConfigKind::Boolean,
                "create unknown topics on metadata requests",
            ),
            (
                "default.replication.factor",
                "1".to_owned(),
                true,
                ConfigKind::Int,
                "replicas of new topics",
            ),
            (
                "min.insync.replicas",
                "1".to_owned(),
                true,
                ConfigKind::Int,
                "replicas that must hold an acks=all write",
            ),
            (
                "log.segment.bytes",
                s.log.segment_bytes_max.to_string(),
                s.log.segment_bytes_max == defaults.segment_bytes_max,
                ConfigKind::Int,
                "size at which a segment is rolled",
            ),
            (
                "log.roll.ms",
                opt(s.log.segment_ms_max),
                s.log.segment_ms_max == defaults.segment_ms_max,
                ConfigKind::Long,
                "age at which a segment is rolled",
            ),
            (
                "log.retention.ms",
                opt(s.log.retention_ms),
                s.log.retention_ms == defaults.retention_ms,
                ConfigKind::Long,
                "age after which segments are deleted",
            ),
            (
                "log.retention.bytes",
                opt(s.log.retention_bytes),
                s.log.retention_bytes == defaults.retention_bytes,
                ConfigKind::Long,
                "partition size kept",
            ),
            (
                "log.index.interval.bytes",
                s.log.index_interval_bytes.to_string(),
                s.log.index_interval_bytes == defaults.index_interval_bytes,
                ConfigKind::Int,
                "bytes between offset index entries",
            ),
            (
                "message.max.bytes",
                s.message_bytes_max.to_string(),
                s.message_bytes_max == crate::limits::MESSAGE_BYTES_MAX_DEFAULT,
                ConfigKind::Int,
                "largest record batch accepted",
            ),
            (
                "log.retention.check.interval.ms",
                s.retention_check_interval.as_millis().to_string(),
                s.retention_check_interval.as_millis() == 300_000,
                ConfigKind::Long,
                "how often retention runs",
            ),
        ];
        let g = &s.groups;
        let d = super::GroupSettings::default();
        let groups: [(&str, String, bool, ConfigKind, &'static str); 5] = [
            (
                "offsets.topic.num.partitions",
                g.offsets_topic_partitions.to_string(),
                g.offsets_topic_partitions == d.offsets_topic_partitions,
                ConfigKind::Int,
                "partitions of the internal offsets topic",
            ),
            (
                "offsets.retention.minutes",
                (g.offsets_retention_ms / 60_000).to_string(),
                g.offsets_retention_ms == d.offsets_retention_ms,
                ConfigKind::Int,
                "how long offsets of an empty group are kept",
            ),
            (
                "group.min.session.timeout.ms",
                g.session_timeout_ms_min.to_string(),
                g.session_timeout_ms_min == d.session_timeout_ms_min,
                ConfigKind::Int,
                "smallest session timeout a member may ask for",
            ),
            (
                "group.max.session.timeout.ms",
                g.session_timeout_ms_max.to_string(),
                g.session_timeout_ms_max == d.session_timeout_ms_max,
                ConfigKind::Int,
                "largest session timeout a member may ask for",
            ),
            (
                "group.initial.rebalance.delay.ms",
                g.initial_rebalance_delay_ms.to_string(),
                g.initial_rebalance_delay_ms == d.initial_rebalance_delay_ms,
                ConfigKind::Int,
                "how long the first rebalance of an empty group waits for more members",
            ),
        ];
        entries
            .into_iter()
            .chain(groups)
            .map(|(name, value, is_default, kind, doc)| ConfigEntry {
                name: name.to_owned(),
                value: Some(value),
                source: if is_default {
                    ConfigSource::Default
                } else {
                    ConfigSource::StaticBroker
                },
                read_only: true,
                sensitive: false,
                doc,
                kind,
                synonyms: Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::new_topic_id;

    #[test]
    fn topic_ids_are_distinct_and_nonzero() {
        let a = new_topic_id();
        let b = new_topic_id();
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
    }
}
