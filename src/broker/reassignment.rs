//! Partition reassignment (AlterPartitionReassignments, ListPartitionReassignments; KIP-455)
//! in cluster mode. The controller records the target; the partition's raft leader drives the
//! membership change (new replicas join as learners, are promoted once caught up, then the
//! replicas not in the target are removed, the leader last after handing its leadership to
//! a target voter) and reports completion; a broker whose replica was removed stops its group
//! and empties its copy of the partition, so a later re-add starts clean.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::error::{Error, Result};
use super::partition::Partition;
use super::{Broker, Topic};
use crate::metadata::{BrokerRegistration, Command, PartitionMeta, Rejection, State};
use crate::replication::partition::PartitionGroup;
use crate::storage;

/// How often a leader looks at a reassignment it drives (only while one is in progress).
const REASSIGNMENT_TICK: Duration = Duration::from_millis(250);
/// A learner this many raft entries (batches) behind the leader or fewer is caught up: it is
/// promoted to voter.
const CATCH_UP_ENTRIES_MAX: u64 = 64;

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reassignment {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) adding: Vec<i32>,
    pub(crate) removing: Vec<i32>,
}

/// What one look at a reassignment led to.
enum Step {
    /// Not done yet: look again.
    Wait,
    /// Done, or no longer this broker's to drive.
    Stop,
}

impl Broker {
    /// Starts moving `topic`'s `partition` to `replicas`, or with `None` cancels the move in
    /// progress. Answered once the controller recorded it; the move itself follows.
    pub(crate) async fn alter_reassignment(
        &self,
        topic: &str,
        partition: i32,
        replicas: Option<Vec<i32>>,
    ) -> Result<()> {
        let Some(link) = self.cluster.get() else {
            // A single node holds its only replica of every partition.
            self.partition_exists(topic, partition)?;
            return match replicas {
                Some(replicas) if replicas == [self.node_id()] => Ok(()),
                Some(replicas) => Err(Error::InvalidReplicaAssignment {
                    reason: format!("a single node holds every replica itself, not {replicas:?}"),
                }),
                None => Err(Error::NoReassignmentInProgress {
                    topic: topic.to_owned(),
                    partition,
                }),
            };
        };
        let command = Command::ReassignPartition {
            topic: topic.to_owned(),
            partition,
            replicas,
        };
        match link.node.propose(&command).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(rejection)) => Err(match rejection {
                Rejection::UnknownPartition { .. } | Rejection::UnknownTopic { .. } => {
                    Error::UnknownTopicOrPartition {
                        topic: topic.to_owned(),
                        partition,
                    }
                }
                Rejection::NoReassignmentInProgress { .. } => Error::NoReassignmentInProgress {
                    topic: topic.to_owned(),
                    partition,
                },
                Rejection::InvalidAssignment { reason } => {
                    Error::InvalidReplicaAssignment { reason }
                }
                other => Error::Cluster {
                    reason: other.to_string(),
                },
            }),
            Err(error) => Err(Error::Cluster {
                reason: error.to_string(),
            }),
        }
    }

    /// The reassignments in progress, of every partition or of those `wanted` names.
    pub(crate) fn reassignments(&self, wanted: Option<&[(String, i32)]>) -> Vec<Reassignment> {
        let Some(state) = self.cluster_state() else {
            return Vec::new();
        };
        let moving = |topic: &str, partition: i32, p: &PartitionMeta| {
            p.is_reassigning().then(|| Reassignment {
                topic: topic.to_owned(),
                partition,
                replicas: p.replicas.clone(),
                adding: p.adding_replicas.clone(),
                removing: p.removing_replicas.clone(),
            })
        };
        match wanted {
            Some(wanted) => wanted
                .iter()
                .filter_map(|(topic, partition)| {
                    moving(topic, *partition, state.partition(topic, *partition)?)
                })
                .collect(),
            None => {
                state
                    .topics
                    .iter()
                    .flat_map(|(name, topic)| {
                        topic.partitions.iter().enumerate().filter_map(|(i, p)| {
                            moving(name, i32::try_from(i).unwrap_or(i32::MAX), p)
                        })
                    })
                    .collect()
            }
        }
    }

    /// After each reconcile: drives the reassignment of every partition whose raft group this
    /// broker leads (one task per partition), and retires this broker's replicas of
    /// partitions it is no longer a replica of.
    pub(super) async fn follow_reassignments(self: &Arc<Self>, state: &State) {
        let Some(link) = self.cluster.get() else {
            return;
        };
        let me = self.node_id();
        // Once after a start: a replica removed while this broker was down left its data.
        let look_for_leftovers = link.first_look_at_leftovers();
        for (name, meta) in &state.topics {
            let Some(local) = self.local_copy(name, meta.id, meta.internal) else {
                continue;
            };
            for (index, placed) in meta.partitions.iter().enumerate() {
                let Some(partition) = local.partitions.get(index) else {
                    continue;
                };
                let Some(group) = partition.raft() else {
                    if look_for_leftovers
                        && placed.is_replicated()
                        && !placed.replicas.contains(&me)
                        && has_replica_data(partition)
                    {
                        self.retire_leftover(partition).await;
                    }
                    continue;
                };
                if !placed.replicas.contains(&me) {
                    self.retire_replica(partition, group).await;
                } else if placed.is_reassigning()
                    && group.leadership().leader == u64::try_from(me).ok()
                    && link.start_driving(name, partition.index)
                {
                    tokio::spawn(drive(
                        Arc::downgrade(self),
                        Arc::clone(partition),
                        Arc::clone(group),
                    ));
                }
            }
        }
    }

    /// This broker's replica was removed: stops its raft group and replaces its copy of the
    /// partition (segments and raft state) with an empty log.
    async fn retire_replica(self: &Arc<Self>, partition: &Arc<Partition>, group: &PartitionGroup) {
        partition.mark_gone();
        group.shutdown().await;
        let broker = Arc::clone(self);
        let (topic, index) = (partition.topic.clone(), partition.index);
        let reset = super::produce::off_worker(move || broker.empty_partition(&topic, index)).await;
        match reset {
            Ok(()) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, "replica removed: its raft group stopped and its data deleted");
            }
            Err(error) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, %error, "the removed replica's data could not be deleted");
            }
        }
    }

    /// A replica removed while this broker was down: its data (and raft state) is deleted.
    async fn retire_leftover(self: &Arc<Self>, partition: &Arc<Partition>) {
        if let Some(log) = partition.take_log() {
            drop(log);
        }
        partition.mark_gone();
        let broker = Arc::clone(self);
        let (topic, index) = (partition.topic.clone(), partition.index);
        match super::produce::off_worker(move || broker.empty_partition(&topic, index)).await {
            Ok(()) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, "data of a replica removed while this broker was away deleted");
            }
            Err(error) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, %error, "the removed replica's data could not be deleted");
            }
        }
    }

    /// Deletes the partition's directory and opens an empty log in its place.
    fn empty_partition(&self, name: &str, index: i32) -> Result<()> {
        let catalog = self.catalog();
        let Some(topic) = self.topic_state(name) else {
            return Ok(());
        };
        let slot = usize::try_from(index)
            .ok()
            .filter(|&i| i < topic.partitions.len());
        let Some(slot) = slot else {
            return Ok(());
        };
        let storage_error = |source: storage::Error| Error::Storage {
            topic: name.to_owned(),
            partition: index,
            source,
        };
        catalog
            .delete_partition_dir(name, index)
            .map_err(storage_error)?;
        let log = storage::Log::open_on(
            self.fs.clone(),
            &catalog.partition_dir(name, index),
            topic.topic_id,
            topic.settings.log.clone(),
            super::now_ms(),
        )
        .map_err(storage_error)?;
        let fresh = Partition::new(name, index, log);
        self.spawn_flusher(&fresh);
        let mut partitions = topic.partitions.clone();
        partitions[slot] = fresh;
        self.topics_mut().insert(
            name.to_owned(),
            Arc::new(Topic {
                name: topic.name.clone(),
                topic_id: topic.topic_id,
                overrides: topic.overrides.clone(),
                settings: topic.settings.clone(),
                partitions,
            }),
        );
        Ok(())
    }
}

/// Drives one partition's reassignment while this broker leads it.
async fn drive(broker: Weak<Broker>, partition: Arc<Partition>, group: Arc<PartitionGroup>) {
    tracing::info!(topic = %partition.topic, partition = partition.index, "driving the partition's reassignment");
    loop {
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let mut shutdown = strong.shutdown.subscribe();
        let step = match strong.cluster.get() {
            Some(link) => {
                let state = Arc::clone(&link.node.published().borrow().state);
                match state.partition(&partition.topic, partition.index) {
                    Some(meta)
                        if meta.is_reassigning() && !partition.changes().borrow().is_gone =>
                    {
                        step(&strong, &state, &partition, &group, meta).await
                    }
                    _ => Step::Stop,
                }
            }
            None => Step::Stop,
        };
        if matches!(step, Step::Stop) {
            if let Some(link) = strong.cluster.get() {
                link.stop_driving(&partition.topic, partition.index);
            }
            return;
        }
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep(REASSIGNMENT_TICK) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// One look at a reassignment on the partition's leader: the next membership change it needs.
async fn step(
    broker: &Broker,
    state: &State,
    partition: &Partition,
    group: &PartitionGroup,
    meta: &PartitionMeta,
) -> Step {
    let (topic, index) = (partition.topic.as_str(), partition.index);
    let Ok(me) = u64::try_from(broker.node_id()) else {
        return Step::Stop;
    };
    if group.leadership().leader != Some(me) {
        return Step::Stop;
    }
    let target_order = meta.target_replicas();
    let target: BTreeSet<u64> = target_order
        .iter()
        .filter_map(|&r| u64::try_from(r).ok())
        .collect();
    let members = group.members();
    if members.is_joint {
        if let Err(error) = group.finish_joint().await {
            tracing::debug!(topic, partition = index, %error, "finishing a half-done voter change");
        }
        return Step::Wait;
    }
    let all: BTreeSet<u64> = members.voters.union(&members.learners).copied().collect();
    // 1. Every new replica joins as a learner.
    let missing: Vec<u64> = target.difference(&all).copied().collect();
    for id in &missing {
        let address = i32::try_from(*id)
            .ok()
            .and_then(|id| state.brokers.get(&id))
            .map(BrokerRegistration::cluster_rpc_addr);
        let Some(address) = address else {
            tracing::warn!(
                topic,
                partition = index,
                broker = id,
                "a new replica is not registered"
            );
            continue;
        };
        match group.add_learner(*id, address).await {
            Ok(()) => tracing::info!(
                topic,
                partition = index,
                broker = id,
                "new replica added as a learner"
            ),
            Err(error) => {
                tracing::warn!(topic, partition = index, broker = id, %error, "adding a learner failed")
            }
        }
    }
    if !missing.is_empty() {
        return Step::Wait;
    }
    // 2. Learners of the target vote once caught up.
    let learning: BTreeSet<u64> = target.intersection(&members.learners).copied().collect();
    if !learning.is_empty() {
        let caught_up = learning.iter().all(|id| {
            group
                .lag_of(*id)
                .is_some_and(|lag| lag <= CATCH_UP_ENTRIES_MAX)
        });
        if caught_up {
            match group.promote(learning.clone()).await {
                Ok(()) => {
                    tracing::info!(topic, partition = index, voters = ?learning, "caught-up replicas promoted to voters")
                }
                Err(error) => {
                    tracing::warn!(topic, partition = index, %error, "promoting learners failed")
                }
            }
        }
        return Step::Wait;
    }
    // 3. Replicas not in the target leave; the leader hands its leadership over first.
    let extra: BTreeSet<u64> = all.difference(&target).copied().collect();
    if extra.contains(&me) {
        for id in target_order.iter().filter_map(|&r| u64::try_from(r).ok()) {
            if group.transfer_to(id).await {
                tracing::info!(
                    topic,
                    partition = index,
                    to = id,
                    "leaving the partition: leadership handed to a target replica"
                );
                return Step::Stop;
            }
        }
        return Step::Wait;
    }
    if !extra.is_empty() {
        match group.remove_members(extra.clone()).await {
            Ok(()) => {
                tracing::info!(topic, partition = index, removed = ?extra, "replicas removed from the raft group")
            }
            Err(error) => {
                tracing::warn!(topic, partition = index, %error, "removing replicas failed")
            }
        }
        return Step::Wait;
    }
    // 4. The group is exactly the target: the controller lists it as the replicas.
    let report = Command::CompleteReassignment {
        topic: topic.to_owned(),
        partition: index,
        replicas: target_order,
    };
    let Some(link) = broker.cluster.get() else {
        return Step::Stop;
    };
    match link.node.propose(&report).await {
        Ok(Ok(_)) => {
            tracing::info!(topic, partition = index, "reassignment complete");
            Step::Stop
        }
        // The target changed meanwhile: the next look follows the new one.
        Ok(Err(_)) => Step::Wait,
        Err(error) => {
            tracing::debug!(topic, partition = index, %error, "completion not taken; retrying");
            Step::Wait
        }
    }
}

/// Whether a partition log not attached to a raft group holds records or raft state (what a
/// replica leaves behind).
fn has_replica_data(partition: &Partition) -> bool {
    partition
        .read_log(|log| {
            let vote = log.read_raft_state(storage::RaftStateFile::Vote)?;
            Ok(log.log_end_offset() > 0 || vote.is_some())
        })
        .unwrap_or(false)
}

impl Broker {
    /// Removes broker `id`'s registration (UnregisterBroker), the last step of draining it:
    /// refused while it runs (it would register again at once) or holds a replica of any
    /// partition; the controller leader then takes it out of the controller group.
    pub(crate) async fn unregister_broker(&self, id: i32) -> Result<()> {
        let Some(link) = self.cluster.get() else {
            return Err(if id == self.node_id() {
                Error::BrokerInUse {
                    id,
                    reason: "it is this running single node".to_owned(),
                }
            } else {
                Error::BrokerNotRegistered { id }
            });
        };
        let state = Arc::clone(&link.node.published().borrow().state);
        match state.brokers.get(&id) {
            None => return Err(Error::BrokerNotRegistered { id }),
            Some(broker) if !broker.fenced => {
                return Err(Error::BrokerInUse {
                    id,
                    reason: "it is running; stop it first".to_owned(),
                });
            }
            Some(_) => {}
        }
        match link.node.propose(&Command::UnregisterBroker { id }).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(Rejection::UnknownBroker { .. })) => Err(Error::BrokerNotRegistered { id }),
            Ok(Err(Rejection::BrokerHoldsReplicas { .. })) => Err(Error::BrokerInUse {
                id,
                reason: "it still holds replicas; reassign them first".to_owned(),
            }),
            Ok(Err(other)) => Err(Error::Cluster {
                reason: other.to_string(),
            }),
            Err(error) => Err(Error::Cluster {
                reason: error.to_string(),
            }),
        }
    }
}
