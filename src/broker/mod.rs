//! Kafka-agnostic broker: the topic registry, produce and fetch orchestration over partition
//! logs, topic administration and background maintenance. Never names a Kafka wire type.

mod acls;
mod admin;
mod blocking;
mod broker_config;
mod cluster_link;
mod elect;
mod error;
mod fetch_wait;
#[cfg(fuzzing)]
pub(crate) mod fuzzing;
mod group;
mod idempotence;
mod internal_writes;
mod maintenance;
mod partition;
mod peer_service;
mod produce;
mod producer_ids;
mod quotas;
mod read;
mod readiness;
mod reassignment;
mod replicas;
mod settings;
mod stats;
mod topic_config;
mod topic_name;
mod txn;
mod users;
mod validate;
#[cfg(test)]
mod validate_bench_tests;

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod single_replica_tests;

/// What tests of the layers above need from storage (a faulty file system, batches), so they
/// never name `storage` themselves (tests/architecture.rs).
#[cfg(test)]
pub(crate) mod test_support {
    pub(crate) use crate::storage::fault::{Fault, Gate, Op};
    pub(crate) use crate::storage::{Fs, Record, build_batch};
}

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

pub(crate) use cluster_link::CoordinatorAt;
pub(crate) use elect::ElectionType;
pub(crate) use error::{Error, Result};
pub(crate) use group::{
    CommitPartition, CommittedOffset, ConsumerHeartbeat, GroupSettings, GroupState, JoinRequest,
    Protocol, TopicPartition, TxnCommit,
};
pub(crate) use produce::{Acks, PendingProduce, ProduceOutcome};
pub(crate) use quotas::{
    CLIENT_ID, CONSUMER_BYTE_RATE, Metered, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER,
};
pub(crate) use read::{FetchedPartition, Isolation, ListedOffset, OffsetSpec, PartitionDirInfo};
pub(crate) use readiness::Readiness;
pub(crate) use settings::{BrokerSettings, Endpoint};
pub(crate) use topic_config::{AlterOp, ConfigEntry, ConfigKind, ConfigSource};
pub(crate) use txn::{TxnError, TxnSettings, TxnState};
pub(crate) use users::CredentialChange;

use partition::Partition;
use topic_config::TopicSettings;

use crate::storage;

/// The state of one topic. Replaced as a whole when its configs or partitions change.
#[derive(Debug)]
struct Topic {
    name: String,
    topic_id: [u8; 16],
    overrides: BTreeMap<String, String>,
    settings: TopicSettings,
    partitions: Vec<Arc<Partition>>,
}

/// What Metadata and admin APIs see of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    pub(crate) topic_id: [u8; 16],
    pub(crate) is_internal: bool,
    pub(crate) partitions: Vec<PartitionInfo>,
}

/// What Metadata sees of a partition; this node leads every partition that is not offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub(crate) partition: i32,
    pub(crate) leader_epoch: i32,
    /// Its log failed to open at start: no leader until a restart opens it.
    pub(crate) is_offline: bool,
    /// The broker serving it (this one out of cluster mode); `None` while offline.
    pub(crate) leader: Option<i32>,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

impl PartitionInfo {
    /// A partition this broker alone holds and serves.
    pub(crate) fn served_here(node_id: i32, partition: i32) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader_epoch: LEADER_EPOCH,
            is_offline: false,
            leader: Some(node_id),
            replicas: vec![node_id],
            isr: vec![node_id],
        }
    }
}

/// Whether [`Broker::open_topic`] opens partitions that exist or creates new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    /// At start: a partition whose log fails to open is reported offline; the others serve.
    Existing,
    /// Creating partitions: a deleted topic's leftover directory is removed first, and a log
    /// that fails to open fails the request.
    New,
}

/// The leader epoch of every partition until replication assigns raft terms.
const LEADER_EPOCH: i32 = 0;

/// A single-node broker over the partition logs in its data directory.
#[derive(Debug)]
pub(crate) struct Broker {
    settings: BrokerSettings,
    /// The file system partition logs do their I/O on (faults injected in unit tests).
    fs: storage::Fs,
    catalog: Mutex<storage::Catalog>,
    /// Who the data dir belongs to, as `meta.properties` said at open.
    identity: storage::Identity,
    /// Cluster mode: the controller's metadata (set once, by `attach_cluster`).
    cluster: std::sync::OnceLock<cluster_link::ClusterLink>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    shutdown: watch::Sender<bool>,
    groups: group::Coordinator,
    producer_ids: producer_ids::ProducerIds,
    transactions: txn::Coordinator,
    /// Standalone: users and SCRAM credentials of the data dir (cluster mode: the controller's).
    users: users::LocalUsers,
    /// ACLs (standalone: of the data dir; cluster mode: a snapshot of the controller's).
    acls: acls::Acls,
    /// Client quotas (standalone configs) and this broker's quota meters.
    quotas: quotas::Quotas,
    /// Standalone: dynamic broker configs of the data dir (cluster mode: the controller's).
    broker_configs: broker_config::BrokerConfigs,
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Broker {
    /// Opens every topic of the catalog in `settings.data_dir`, recovering logs as needed, and
    /// starts the flushers and the maintenance task on the current tokio runtime.
    pub(crate) fn open(settings: BrokerSettings) -> Result<Arc<Broker>> {
        Broker::open_on(settings, storage::Fs::default())
    }

    /// [`Broker::open`] with partition logs doing their file I/O on `fs`.
    pub(crate) fn open_on(settings: BrokerSettings, fs: storage::Fs) -> Result<Arc<Broker>> {
        let mut directory_id = [0u8; 16];
        getrandom::fill(&mut directory_id).map_err(|error| Error::Catalog {
            source: storage::Error::Io {
                operation: "draw a random directory id",
                path: settings.data_dir.clone(),
                source: std::io::Error::other(error.to_string()),
            },
        })?;
        // A data dir of another node id is refused before anything in it is opened.
        let identity =
            storage::Identity::load_or_create(&settings.data_dir, settings.node_id, || {
                directory_id
            })
            .map_err(|source| Error::Catalog { source })?;
        tracing::info!(
            node_id = identity.node_id,
            directory_id = %identity.directory_id_text(),
            "data dir identity"
        );
        let catalog = storage::Catalog::open(&settings.data_dir)
            .map_err(|source| Error::Catalog { source })?;
        let producer_ids = producer_ids::ProducerIds::open(&settings.data_dir)?;
        let users = users::LocalUsers::open(&settings.data_dir)?;
        let acls = acls::Acls::open(&settings.data_dir)?;
        let quotas = quotas::Quotas::open(&settings.data_dir)?;
        let broker_configs = broker_config::BrokerConfigs::open(&settings.data_dir)?;
        let broker = Arc::new(Broker {
            settings,
            fs,
            identity,
            cluster: std::sync::OnceLock::new(),
            topics: RwLock::new(BTreeMap::new()),
            catalog: Mutex::new(catalog),
            shutdown: watch::Sender::new(false),
            groups: group::Coordinator::default(),
            producer_ids,
            transactions: txn::Coordinator::default(),
            users,
            acls,
            quotas,
            broker_configs,
        });
        {
            let catalog = broker.catalog();
            // Directories of deleted topics, left by a crash mid-delete, must never be opened
            // as a new topic of the same name.
            catalog
                .sweep_orphan_partition_dirs()
                .map_err(|source| Error::Catalog { source })?;
            for record in catalog.topics() {
                let topic = broker.open_topic(&catalog, record, 0, OpenMode::Existing)?;
                broker.topics_mut().insert(record.name.clone(), topic);
            }
        }
        broker.open_groups()?;
        broker.open_transactions()?;
        maintenance::spawn(&broker);
        idempotence::spawn_expiry(&broker);
        tracing::info!(topics = broker.topics_read().len(), data_dir = %broker.settings.data_dir.display(), "broker opened");
        Ok(broker)
    }

    fn catalog(&self) -> std::sync::MutexGuard<'_, storage::Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn topics_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds the in-memory topic for a catalog record, opening partitions from `first_new` on.
    /// The caller holds the catalog lock, which serializes every topic change.
    fn open_topic(
        &self,
        catalog: &storage::Catalog,
        record: &storage::TopicRecord,
        first_new: i32,
        mode: OpenMode,
    ) -> Result<Arc<Topic>> {
        let settings = TopicSettings::resolve(&self.settings, &record.configs)?;
        let mut partitions = Vec::new();
        let existing = self
            .topics_read()
            .get(&record.name)
            .map(|t| t.partitions.clone())
            .unwrap_or_default();
        for index in 0..record.partition_count {
            if let Some(partition) = existing.get(index as usize).filter(|_| index < first_new) {
                // Settings are in-memory rules (rolls, retention, compaction), so a replicated
                // partition's log, which its raft group owns, takes them the same way.
                if !partition.is_offline() {
                    partition.with_leader_state(|log| {
                        log.set_settings(settings.log.clone());
                        Ok(())
                    })?;
                }
                partitions.push(Arc::clone(partition));
                continue;
            }
            let storage_error = |source| Error::Storage {
                topic: record.name.clone(),
                partition: index,
                source,
            };
            if mode == OpenMode::New {
                catalog
                    .discard_leftover_partition_dir(&record.name, index)
                    .map_err(storage_error)?;
            }
            let dir = catalog.partition_dir(&record.name, index);
            let opened = storage::Log::open_on(
                self.fs.clone(),
                &dir,
                record.topic_id,
                settings.log.clone(),
                now_ms(),
            );
            let partition = match (opened, mode) {
                (Ok(log), _) => {
                    let partition = Partition::new(&record.name, index, log);
                    self.spawn_flusher(&partition);
                    partition
                }
                (Err(source), OpenMode::Existing) => {
                    tracing::error!(topic = %record.name, partition = index, error = %source,
                        "partition is offline: its log could not be opened; other partitions are served");
                    Partition::offline(&record.name, index, source.to_string())
                }
                (Err(source), OpenMode::New) => return Err(storage_error(source)),
            };
            partitions.push(partition);
        }
        Ok(Arc::new(Topic {
            name: record.name.clone(),
            topic_id: record.topic_id,
            overrides: record.configs.clone(),
            settings,
            partitions,
        }))
    }

    fn spawn_flusher(&self, partition: &Arc<Partition>) {
        tokio::spawn(Arc::clone(partition).run_flusher(self.shutdown.subscribe()));
    }

    pub(crate) fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    pub(crate) fn cluster_id(&self) -> &str {
        &self.settings.cluster_id
    }

    /// Who the data dir belongs to (node id, directory id, cluster id), as read at open.
    pub(crate) fn identity(&self) -> &storage::Identity {
        &self.identity
    }

    pub(crate) fn advertised(&self) -> &Endpoint {
        &self.settings.advertised
    }

    fn topic_state(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics_read().get(name).cloned()
    }

    /// Whether `topic` has `partition` (wherever it is led): UNKNOWN_TOPIC_OR_PARTITION if not.
    fn partition_exists(&self, topic: &str, partition: i32) -> Result<()> {
        let exists = self
            .topic_state(topic)
            .is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partitions.len()));
        if exists {
            Ok(())
        } else {
            Err(Error::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition,
            })
        }
    }

    /// A partition this broker serves (its leader in cluster mode).
    fn partition(&self, topic: &str, partition: i32) -> Result<(Arc<Topic>, Arc<Partition>)> {
        let unknown = || Error::UnknownTopicOrPartition {
            topic: topic.to_owned(),
            partition,
        };
        let state = self.topic_state(topic).ok_or_else(unknown)?;
        let found = usize::try_from(partition)
            .ok()
            .and_then(|i| state.partitions.get(i))
            .cloned()
            .ok_or_else(unknown)?;
        match self.leadership(topic, partition) {
            cluster_link::Leadership::Local | cluster_link::Leadership::Leader => {}
            cluster_link::Leadership::Follower(leader) => {
                return Err(Error::NotLeader {
                    topic: topic.to_owned(),
                    partition,
                    leader,
                });
            }
            cluster_link::Leadership::Unknown => return Err(unknown()),
        }
        Ok((state, found))
    }

    /// Every topic, sorted by name, internal ones (the offsets topic) flagged `is_internal`:
    /// Kafka lists them in Metadata for all topics and clients filter them.
    pub(crate) fn topics(&self) -> Vec<TopicInfo> {
        let infos: Vec<TopicInfo> = self
            .topics_read()
            .values()
            .map(|t| info(self.node_id(), t))
            .collect();
        infos
            .into_iter()
            .map(|i| self.with_cluster_placement(i))
            .collect()
    }

    pub(crate) fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.topic_state(name)
            .map(|t| self.with_cluster_placement(info(self.node_id(), &t)))
    }

    pub(crate) fn topic_by_id(&self, topic_id: [u8; 16]) -> Option<TopicInfo> {
        let found = self
            .topics_read()
            .values()
            .find(|t| t.topic_id == topic_id)
            .map(|t| info(self.node_id(), t));
        found.map(|i| self.with_cluster_placement(i))
    }

    /// Stops the flushers and maintenance, flushes and closes every log. Appends racing with
    /// shutdown fail with an unknown partition; the server stops taking requests first.
    pub(crate) fn shutdown(&self) -> Result<()> {
        self.shutdown.send_replace(true);
        let topics: Vec<Arc<Topic>> = self.topics_read().values().cloned().collect();
        let mut first_error = None;
        for topic in topics {
            for partition in &topic.partitions {
                if let Some(log) = partition.take_log() {
                    let end = log.log_end_offset();
                    match log.close() {
                        Ok(()) => partition.publish_flushed(end),
                        Err(source) => {
                            tracing::error!(topic = %topic.name, partition = partition.index, error = %source, "closing log failed");
                            first_error.get_or_insert(partition.storage_error(source));
                        }
                    }
                }
                partition.mark_gone();
            }
        }
        tracing::info!("broker closed");
        first_error.map_or(Ok(()), Err)
    }
}

fn info(node_id: i32, topic: &Topic) -> TopicInfo {
    TopicInfo {
        name: topic.name.clone(),
        topic_id: topic.topic_id,
        is_internal: topic_name::is_internal(&topic.name),
        partitions: topic
            .partitions
            .iter()
            .map(|p| {
                let mut info = PartitionInfo::served_here(node_id, p.index);
                if p.is_offline() {
                    info.is_offline = true;
                    info.leader = None;
                    info.isr.clear();
                }
                info
            })
            .collect(),
    }
}
