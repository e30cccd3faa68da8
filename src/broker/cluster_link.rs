//! The broker in cluster mode: user topics come from the controller's metadata state. Topic
//! creation and deletion are proposed to the controller and answered once applied; a sync task
//! makes the local catalog follow the published state (create, grow, delete), and on the first
//! join adopts the topics a standalone data dir already had. Produce, fetch and offsets of a
//! user topic's partition are served only by its leader; the others answer "not the leader".
//!
//! Every broker keeps a (possibly empty) local log for every partition of every topic; a
//! partition with one replica is served by its placed leader, a replicated one by its raft
//! leader (`replicas.rs`), which is also the coordinator of an internal partition's keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::error::{Error, Result};
use super::{Broker, TopicInfo, topic_name};
use crate::cluster::ClusterNode;
use crate::metadata::{Command, Outcome, Rejection, State};

/// How often the sync task looks whether the controller state caught up after a start.
const CATCH_UP_POLL: Duration = Duration::from_millis(100);

/// How long an admin request waits for its applied change to reach this broker's state.
const LOCAL_APPLY_WAIT: Duration = Duration::from_secs(10);

/// What a broker in cluster mode holds of the cluster.
#[derive(Debug)]
pub(super) struct ClusterLink {
    pub(super) node: Arc<ClusterNode>,
    /// Local topics whose names the cluster gave to another topic at adoption: left alone.
    conflicts: std::sync::Mutex<BTreeSet<String>>,
    /// Serializes reconciling (the sync task and admin requests both do).
    reconciling: std::sync::Mutex<()>,
    /// The partitions whose reassignment this broker drives now (one task each).
    driving: std::sync::Mutex<BTreeSet<(String, i32)>>,
    /// Whether the replicas removed while this broker was down were looked for.
    leftovers_looked_at: std::sync::atomic::AtomicBool,
    /// Whether the sync task has made the local topics and replicas follow a caught-up state
    /// once (the partitions are loaded); read by `Broker::readiness` and awaited by
    /// `Broker::synced`. Turns true once, never back.
    pub(super) is_synced: watch::Sender<bool>,
}

/// Which broker coordinates a group or a transactional id: the leader of the internal
/// partition its key hashes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CoordinatorAt {
    Here,
    /// Another broker: its id and Kafka endpoint.
    Broker {
        id: i32,
        host: String,
        port: u16,
    },
    /// The internal topic or its partition's leader is not known yet.
    Unavailable,
    /// This broker leads the key's partition and is still loading it.
    Loading,
}

/// Who leads a user topic's partition, as the metadata state says.
pub(super) enum Leadership {
    /// Not a cluster-managed topic (standalone, or internal): served locally.
    Local,
    Leader,
    Follower(Option<i32>),
    Unknown,
}

impl Broker {
    /// Cluster mode: user topics follow `node`'s published metadata from now on.
    pub(crate) fn attach_cluster(self: &Arc<Self>, node: Arc<ClusterNode>) {
        let link = ClusterLink {
            node,
            conflicts: std::sync::Mutex::new(BTreeSet::new()),
            reconciling: std::sync::Mutex::new(()),
            driving: std::sync::Mutex::new(BTreeSet::new()),
            leftovers_looked_at: std::sync::atomic::AtomicBool::new(false),
            is_synced: watch::Sender::new(false),
        };
        if self.cluster.set(link).is_err() {
            tracing::warn!("the broker is already attached to a cluster");
            return;
        }
        let adopt = self.identity.cluster_id.is_none();
        self.serve_peers();
        tokio::spawn(sync(Arc::downgrade(self), adopt));
        match self.producer_ids.use_controller_blocks() {
            Ok(at_least) => {
                tokio::spawn(refill_producer_ids(Arc::downgrade(self), at_least));
            }
            Err(error) => {
                tracing::error!(%error, "could not switch producer ids to controller blocks");
            }
        }
    }

    pub(super) fn cluster_state(&self) -> Option<Arc<State>> {
        let link = self.cluster.get()?;
        Some(Arc::clone(&link.node.published().borrow().state))
    }

    /// The coordinator of group `group_id` (`__consumer_offsets`).
    pub(crate) fn group_coordinator(&self, group_id: &str) -> CoordinatorAt {
        self.coordinator_for(super::group::OFFSETS_TOPIC, group_id)
    }

    /// The coordinator of transactional id `transactional_id` (`__transaction_state`).
    pub(crate) fn txn_coordinator(&self, transactional_id: &str) -> CoordinatorAt {
        self.coordinator_for(super::txn::TXN_TOPIC, transactional_id)
    }

    /// Out of cluster mode, this broker; in it, the leader of the key's partition of
    /// `internal_topic` as the controller placed it.
    fn coordinator_for(&self, internal_topic: &str, key: &str) -> CoordinatorAt {
        let Some(state) = self.cluster_state() else {
            return CoordinatorAt::Here;
        };
        let Some(meta) = state.topics.get(internal_topic) else {
            return CoordinatorAt::Unavailable;
        };
        let count = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
        let partition = super::group::partition_for(key, count);
        let Some(placed) = usize::try_from(partition)
            .ok()
            .and_then(|p| meta.partitions.get(p))
        else {
            return CoordinatorAt::Unavailable;
        };
        let mut leader = placed.leader;
        if placed.is_replicated() {
            // Raft decides: this broker coordinates once it leads the partition and loaded it.
            let local = self.topic_state(internal_topic).and_then(|t| {
                usize::try_from(partition)
                    .ok()
                    .and_then(|p| t.partitions.get(p).cloned())
            });
            match local
                .as_ref()
                .and_then(|p| p.raft().map(|g| g.leadership()))
            {
                Some(raft) if raft.leader == u64::try_from(self.node_id()).ok() => {
                    return match local {
                        Some(p) if p.is_coordinating() => CoordinatorAt::Here,
                        _ => CoordinatorAt::Loading,
                    };
                }
                Some(raft) => {
                    leader = raft.leader.and_then(|l| i32::try_from(l).ok()).or(leader);
                }
                // Not attached yet: whatever this broker held is not loaded.
                None if leader == Some(self.node_id()) => return CoordinatorAt::Loading,
                None => {}
            }
        }
        match leader {
            Some(id) if id == self.node_id() => CoordinatorAt::Here,
            Some(id) => match state.brokers.get(&id).filter(|b| !b.fenced) {
                Some(broker) => CoordinatorAt::Broker {
                    id,
                    host: broker.kafka.host.clone(),
                    port: broker.kafka.port,
                },
                None => CoordinatorAt::Unavailable,
            },
            None => CoordinatorAt::Unavailable,
        }
    }

    /// The replication factor of a cluster topic created without one: the configured
    /// `default.replication.factor`, else min(3, registered unfenced brokers).
    pub(super) fn default_replication_factor(&self) -> i16 {
        if let Some(factor) = self.settings.default_replication_factor {
            return factor;
        }
        self.live_broker_count().clamp(1, 3) as i16
    }

    /// Whether the cluster state gives `topic`'s `partition` more than one replica (its log
    /// belongs to a raft group, started or about to be).
    pub(super) fn is_replicated(&self, topic: &str, partition: i32) -> bool {
        self.cluster_state().is_some_and(|state| {
            state
                .partition(topic, partition)
                .is_some_and(|p| p.is_replicated())
        })
    }

    /// Registered unfenced brokers (1 before the cluster state is known).
    pub(super) fn live_broker_count(&self) -> usize {
        self.cluster_state().map_or(1, |state| {
            state.brokers.values().filter(|b| !b.fenced).count()
        })
    }

    /// The brokers a manual assignment of topic `name` may name, each with whether it is
    /// active (unfenced): the cluster's registered brokers, or this node alone out of cluster
    /// mode and for internal topics.
    pub(crate) fn assignable_brokers(&self, name: &str) -> BTreeMap<i32, bool> {
        match self
            .cluster_state()
            .filter(|_| !topic_name::is_internal(name))
        {
            Some(state) => state
                .brokers
                .iter()
                .map(|(&id, registration)| (id, !registration.fenced))
                .collect(),
            None => BTreeMap::from([(self.node_id(), true)]),
        }
    }

    /// Whether this broker serves `topic`'s `partition` (see [`Leadership`]).
    pub(super) fn leadership(&self, topic: &str, partition: i32) -> Leadership {
        if topic_name::is_internal(topic) {
            return Leadership::Local;
        }
        let Some(state) = self.cluster_state() else {
            return Leadership::Local;
        };
        let Some(meta) = state.topics.get(topic) else {
            return Leadership::Unknown;
        };
        let Some(p) = usize::try_from(partition)
            .ok()
            .and_then(|p| meta.partitions.get(p))
        else {
            return Leadership::Unknown;
        };
        if p.is_replicated() {
            // Raft decides: a replica serves once its own group says it leads.
            let group = self.topic_state(topic).and_then(|local| {
                let found = usize::try_from(partition)
                    .ok()
                    .and_then(|i| local.partitions.get(i))?;
                found.raft().map(|g| g.leadership())
            });
            let me = u64::try_from(self.node_id()).ok();
            return match group {
                Some(raft) if raft.leader.is_some() && raft.leader == me => Leadership::Leader,
                Some(raft) => Leadership::Follower(
                    raft.leader.and_then(|l| i32::try_from(l).ok()).or(p.leader),
                ),
                None => Leadership::Follower(p.leader),
            };
        }
        if p.leader == Some(self.node_id()) {
            Leadership::Leader
        } else {
            Leadership::Follower(p.leader)
        }
    }

    /// The cluster's leaders, replicas and in-sync replicas over a local topic's description.
    pub(super) fn with_cluster_placement(&self, mut info: TopicInfo) -> TopicInfo {
        let Some(state) = self.cluster_state() else {
            return info;
        };
        let Some(meta) = state.topics.get(&info.name) else {
            // A user topic this broker holds but its cluster state does not (yet: a restart
            // replays the metadata log first): it serves none of it, so it names no leader.
            if !topic_name::is_internal(&info.name) {
                for partition in &mut info.partitions {
                    partition.leader = None;
                    partition.isr.clear();
                }
            }
            return info;
        };
        for partition in &mut info.partitions {
            if let Some(p) = usize::try_from(partition.partition)
                .ok()
                .and_then(|i| meta.partitions.get(i))
            {
                partition.leader = p.leader;
                partition.replicas = p.replicas.clone();
                partition.isr = p.isr.clone();
                if p.is_replicated() {
                    // The raft term of the reporting leader: the epoch of its batches.
                    partition.leader_epoch = p.leader_epoch;
                }
                // The leader's log may have failed to open; only the leader knows.
                if p.leader != Some(self.node_id()) {
                    partition.is_offline = p.leader.is_none();
                }
            }
        }
        info
    }

    /// Creates a topic through the controller; answered once this broker holds it.
    pub(super) async fn create_topic_in_cluster(
        &self,
        link: &ClusterLink,
        name: &str,
        (partitions, replication_factor): (i32, i16),
        assignment: Option<Vec<Vec<i32>>>,
        overrides: BTreeMap<String, String>,
    ) -> Result<TopicInfo> {
        let id = super::admin::new_topic_id();
        let command = Command::CreateTopic {
            name: name.to_owned(),
            id,
            partitions,
            replication_factor,
            assignment,
            configs: overrides,
            internal: false,
        };
        propose(link, &command, name).await?;
        self.hold_topic_here(name, id).await?;
        self.await_raft_leaders(link, name).await?;
        self.leaders_hold_topic(name, id).await;
        self.topic(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_owned(),
        })
    }

    /// Waits until this broker's state has topic `name` with id `topic_id`, then makes sure the
    /// local catalog holds it.
    pub(super) async fn hold_topic_here(&self, name: &str, topic_id: [u8; 16]) -> Result<()> {
        let Some(link) = self.cluster.get() else {
            return Ok(());
        };
        self.await_local(link, |state| {
            state.topics.get(name).is_some_and(|t| t.id == topic_id)
        })
        .await?;
        self.reconcile_topic(name)
    }

    /// Grows a topic through the controller (on the replicas of `assignment` when given, else
    /// placed by it); answered once this broker holds the partitions.
    pub(super) async fn create_partitions_in_cluster(
        &self,
        link: &ClusterLink,
        name: &str,
        total: i32,
        assignment: Option<Vec<Vec<i32>>>,
    ) -> Result<()> {
        let command = Command::CreatePartitions {
            name: name.to_owned(),
            total,
            assignment,
        };
        propose(link, &command, name).await?;
        self.await_local(link, |state| {
            state
                .topics
                .get(name)
                .is_some_and(|t| t.partitions.len() >= total as usize)
        })
        .await?;
        self.reconcile_topic(name)?;
        self.await_raft_leaders(link, name).await
    }

    /// Waits until every replicated partition of `name` has a leader in this broker's state:
    /// raft groups elect theirs, who report themselves, so the first produce after CreateTopics
    /// or CreatePartitions finds one.
    async fn await_raft_leaders(&self, link: &ClusterLink, name: &str) -> Result<()> {
        self.await_local(link, |state| {
            state.topics.get(name).is_none_or(|t| {
                t.partitions
                    .iter()
                    .all(|p| !p.is_replicated() || p.leader.is_some())
            })
        })
        .await
    }

    /// Replaces a topic's configs through the controller; answered once applied here.
    pub(super) async fn set_topic_configs_in_cluster(
        &self,
        link: &ClusterLink,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<()> {
        let command = Command::SetTopicConfigs {
            name: name.to_owned(),
            configs: configs.clone(),
        };
        propose(link, &command, name).await?;
        self.await_local(link, |state| {
            state.topics.get(name).is_some_and(|t| t.configs == configs)
        })
        .await?;
        self.reconcile_topic(name)
    }

    /// Deletes a topic through the controller; answered once this broker dropped it.
    pub(super) async fn delete_topic_in_cluster(
        &self,
        link: &ClusterLink,
        name: &str,
    ) -> Result<[u8; 16]> {
        let id = self
            .cluster_state()
            .and_then(|s| s.topics.get(name).map(|t| t.id));
        propose(
            link,
            &Command::DeleteTopic {
                name: name.to_owned(),
            },
            name,
        )
        .await?;
        self.await_local(link, |state| !state.topics.contains_key(name))
            .await?;
        self.reconcile_topic(name)?;
        id.ok_or_else(|| Error::UnknownTopic {
            topic: name.to_owned(),
        })
    }

    /// Proposes `command` (a refusal is a cluster error) and waits until this broker's state
    /// shows the change (`done`).
    pub(super) async fn propose_and_await(
        &self,
        link: &ClusterLink,
        command: &Command,
        done: impl Fn(&State) -> bool,
    ) -> Result<()> {
        let answer = link
            .node
            .propose(command)
            .await
            .map_err(|error| Error::Cluster {
                reason: error.to_string(),
            })?;
        answer.map_err(|rejection| Error::Cluster {
            reason: rejection.to_string(),
        })?;
        self.await_local(link, done).await
    }

    pub(super) async fn await_local(
        &self,
        link: &ClusterLink,
        done: impl Fn(&State) -> bool,
    ) -> Result<()> {
        let mut published = link.node.published();
        match tokio::time::timeout(LOCAL_APPLY_WAIT, published.wait_for(|p| done(&p.state))).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Cluster {
                reason: format!("the change did not reach this broker within {LOCAL_APPLY_WAIT:?}"),
            }),
        }
    }

    /// Makes the local topic `name` what the cluster state says (created, grown or deleted).
    fn reconcile_topic(&self, name: &str) -> Result<()> {
        let Some(state) = self.cluster_state() else {
            return Ok(());
        };
        let Some(link) = self.cluster.get() else {
            return Ok(());
        };
        if topic_name::is_internal(name) || link.conflicts().contains(name) {
            return Ok(());
        }
        let _serialized = link
            .reconciling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let local = self.topic_state(name);
        match (state.topics.get(name), local) {
            (None, None) => Ok(()),
            (None, Some(_)) => {
                tracing::info!(topic = name, "deleting a topic the cluster deleted");
                self.delete_topic_local(name).map(drop)
            }
            (Some(meta), Some(local)) if local.topic_id != meta.id => {
                tracing::info!(topic = name, "replacing a topic the cluster re-created");
                self.delete_topic_local(name)?;
                self.create_topic_with_id(
                    name,
                    meta.id,
                    meta.partitions.len() as i32,
                    &meta.configs,
                )
                .map(drop)
            }
            (Some(meta), Some(local)) if local.partitions.len() < meta.partitions.len() => {
                self.create_partitions_local(name, meta.partitions.len() as i32, false)?;
                if local.overrides != meta.configs {
                    self.set_topic_overrides_local(name, meta.configs.clone())?;
                }
                Ok(())
            }
            (Some(meta), Some(local)) if local.overrides != meta.configs => {
                self.set_topic_overrides_local(name, meta.configs.clone())
            }
            (Some(_), Some(_)) => Ok(()),
            (Some(meta), None) => self
                .create_topic_with_id(name, meta.id, meta.partitions.len() as i32, &meta.configs)
                .map(drop),
        }
    }

    /// Every user topic of the state and of the catalog, reconciled.
    fn reconcile_all(&self, state: &State) {
        let mut names: BTreeSet<String> = state
            .topics
            .iter()
            .filter(|(_, t)| !t.internal)
            .map(|(name, _)| name.clone())
            .collect();
        names.extend(
            self.topics_read()
                .keys()
                .filter(|name| !topic_name::is_internal(name))
                .cloned(),
        );
        for name in names {
            if let Err(error) = self.reconcile_topic(&name) {
                tracing::error!(topic = %name, %error, "could not follow the cluster's topic");
            }
        }
    }

    /// A standalone data dir joining a cluster: its user topics become cluster topics led
    /// here, with their ids and data. A name the cluster already has for another topic is
    /// left alone (and logged).
    async fn adopt_local_topics(&self, link: &ClusterLink, state: &State) {
        let local: Vec<Arc<super::Topic>> = self
            .topics_read()
            .values()
            .filter(|t| !topic_name::is_internal(&t.name))
            .cloned()
            .collect();
        for topic in local {
            let (name, id) = (topic.name.clone(), topic.topic_id);
            let (partitions, configs) = (topic.partitions.len() as i32, topic.overrides.clone());
            match state.topics.get(&name) {
                Some(meta) if meta.id == id => continue,
                Some(_) => {
                    tracing::error!(topic = %name, "the cluster has another topic of this name: the local one is left alone, not served");
                    link.conflicts().insert(name);
                    continue;
                }
                None => {}
            }
            let me = self.node_id();
            let command = Command::CreateTopic {
                name: name.clone(),
                id,
                partitions,
                replication_factor: 1,
                assignment: Some(vec![vec![me]; partitions as usize]),
                configs,
                internal: false,
            };
            match propose(link, &command, &name).await {
                Ok(()) => tracing::info!(topic = %name, "adopted a local topic into the cluster"),
                Err(error) => {
                    tracing::error!(topic = %name, %error, "could not adopt a local topic: left alone, not served");
                    link.conflicts().insert(name);
                }
            }
        }
    }
}

impl ClusterLink {
    /// Claims the driving of `topic`'s `partition`'s reassignment; false if already claimed.
    pub(super) fn start_driving(&self, topic: &str, partition: i32) -> bool {
        self.driving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((topic.to_owned(), partition))
    }

    /// True the first time only: whether to look for data of replicas removed while this
    /// broker was down.
    pub(super) fn first_look_at_leftovers(&self) -> bool {
        !self
            .leftovers_looked_at
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// Gives up driving `topic`'s `partition`'s reassignment.
    pub(super) fn stop_driving(&self, topic: &str, partition: i32) {
        self.driving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(topic.to_owned(), partition));
    }

    fn conflicts(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.conflicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Proposes `command` and maps a refusal to the broker error Kafka clients expect.
async fn propose(link: &ClusterLink, command: &Command, topic: &str) -> Result<()> {
    match link.node.propose(command).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(rejection)) => Err(match rejection {
            Rejection::TopicExists { .. } | Rejection::TopicIdExists => Error::TopicAlreadyExists {
                topic: topic.to_owned(),
            },
            Rejection::UnknownTopic { .. } => Error::UnknownTopic {
                topic: topic.to_owned(),
            },
            Rejection::InvalidReplicationFactor { .. } => Error::InvalidReplicationFactor {
                factor: match command {
                    Command::CreateTopic {
                        replication_factor, ..
                    } => *replication_factor,
                    _ => 0,
                },
            },
            Rejection::InvalidAssignment { reason } => Error::InvalidReplicaAssignment { reason },
            Rejection::InvalidPartitions { reason } => Error::InvalidPartitions {
                topic: topic.to_owned(),
                count: 0,
                reason,
            },
            other => Error::Cluster {
                reason: other.to_string(),
            },
        }),
        Err(error) => Err(Error::Cluster {
            reason: error.to_string(),
        }),
    }
}

/// Follows the published state until the broker is gone or shut down.
async fn sync(broker: Weak<Broker>, mut adopt: bool) {
    let (mut published, mut shutdown) = match broker.upgrade() {
        Some(broker) => match broker.cluster.get() {
            Some(link) => (link.node.published(), broker.shutdown.subscribe()),
            None => return,
        },
        None => return,
    };
    let mut caught_up = false;
    loop {
        let state = Arc::clone(&published.borrow_and_update().state);
        let Some(strong) = broker.upgrade() else {
            return;
        };
        // Only a caught-up state says which topics are gone (after a restart the log replays
        // before the topics reappear); adopting needs this broker registered: the topics are
        // assigned to it.
        // Once is enough: from then on every published state is complete as of its index.
        caught_up = caught_up
            || strong
                .cluster
                .get()
                .is_some_and(|link| link.node.caught_up());
        let ready = state.cluster_id.is_some()
            && caught_up
            && (!adopt || state.brokers.contains_key(&strong.node_id()));
        if ready {
            if adopt && let Some(link) = strong.cluster.get() {
                strong.adopt_local_topics(link, &state).await;
                adopt = false;
                continue;
            }
            let reconciling = Arc::clone(&strong);
            let reconciled_state = Arc::clone(&state);
            let reconciled =
                tokio::task::spawn_blocking(move || reconciling.reconcile_all(&reconciled_state))
                    .await;
            if let Err(error) = reconciled {
                tracing::error!(%error, "the topic sync task failed");
            }
            strong.attach_replicas(&state).await;
            if let Some(link) = strong.cluster.get() {
                link.is_synced.send_replace(true);
            }
        } else {
            drop(strong);
        }
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
            // Catching up changes no state: look again.
            _ = tokio::time::sleep(CATCH_UP_POLL), if !caught_up => {}
        }
    }
}

/// How long to wait before asking the controller for producer ids again after a failure.
const PRODUCER_ID_RETRY: Duration = Duration::from_millis(500);

/// Keeps at least half a block of controller-allocated producer ids in hand.
async fn refill_producer_ids(broker: Weak<Broker>, at_least: i64) {
    loop {
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let mut shutdown = strong.shutdown.subscribe();
        if *shutdown.borrow() {
            return;
        }
        if strong.producer_ids.wants_block() {
            let Some(link) = strong.cluster.get() else {
                return;
            };
            let command = Command::AllocateProducerIds {
                broker: strong.node_id(),
                count: super::producer_ids::BLOCK_SIZE,
                at_least,
            };
            match link.node.propose(&command).await {
                Ok(Ok(Outcome::ProducerIds { first, count })) => {
                    tracing::debug!(first, count, "producer ids from the controller");
                    strong.producer_ids.add_block(first..first + count);
                    continue;
                }
                other => {
                    tracing::debug!(?other, "no producer ids from the controller yet; retrying");
                    drop(strong);
                    tokio::select! {
                        _ = tokio::time::sleep(PRODUCER_ID_RETRY) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    continue;
                }
            }
        }
        let low = Arc::clone(&strong);
        drop(strong);
        tokio::select! {
            _ = low.producer_ids.running_low() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
