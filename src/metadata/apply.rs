//! [`State::apply`]: the one function that changes committed metadata. Deterministic: the same
//! state and command give the same result on every broker, so it reads no clock, no randomness
//! and no local setting. A refused command leaves the state unchanged.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{Command, Outcome, Rejection};
use super::model::{BrokerRegistration, PartitionMeta, State, TopicId, TopicMeta};
use super::placement;
use crate::limits::{PARTITIONS_PER_TOPIC_MAX, PRODUCER_ID_BLOCK_MAX};

impl State {
    /// Applies one committed command.
    pub(crate) fn apply(&mut self, command: &Command) -> Result<Outcome, Rejection> {
        match command {
            Command::Bootstrap { cluster_id } => self.bootstrap(cluster_id),
            Command::RegisterBroker(registration) => self.register(registration),
            Command::UnregisterBroker { id } => self.unregister(*id),
            Command::FenceBroker { id } => self.fence(*id),
            Command::UnfenceBroker { id } => self.unfence(*id),
            Command::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                assignment,
                configs,
                internal,
            } => self.create_topic(
                name,
                *id,
                (*partitions, *replication_factor),
                assignment.as_deref(),
                configs,
                *internal,
            ),
            Command::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => Ok(Outcome::Done),
                None => Err(Rejection::UnknownTopic { name: name.clone() }),
            },
            Command::CreatePartitions {
                name,
                total,
                assignment,
            } => self.create_partitions(name, *total, assignment.as_deref()),
            Command::SetTopicConfigs { name, configs } => match self.topics.get_mut(name) {
                Some(topic) => {
                    topic.configs = configs.clone();
                    Ok(Outcome::Done)
                }
                None => Err(Rejection::UnknownTopic { name: name.clone() }),
            },
            Command::SetPartitionLeader {
                topic,
                partition,
                leader,
                leader_epoch,
            } => self.set_partition_leader(topic, *partition, *leader, *leader_epoch),
            Command::SetPartitionIsr {
                topic,
                partition,
                leader_epoch,
                isr,
            } => self.set_partition_isr(topic, *partition, *leader_epoch, isr),
            Command::AllocateProducerIds {
                broker,
                count,
                at_least,
            } => self.allocate_producer_ids(*broker, *count, *at_least),
            Command::ReassignPartition {
                topic,
                partition,
                replicas,
            } => self.reassign(topic, *partition, replicas.as_deref()),
            Command::CompleteReassignment {
                topic,
                partition,
                replicas,
            } => self.complete_reassignment(topic, *partition, replicas),
            Command::SetScramCredential {
                user,
                mechanism,
                credential,
            } => {
                self.users
                    .entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
                Ok(Outcome::Done)
            }
            Command::DeleteScramCredential { user, mechanism } => {
                self.delete_scram_credential(user, *mechanism)
            }
            Command::CreateAcls { acls } => {
                self.acls.extend(acls.iter().cloned());
                Ok(Outcome::Done)
            }
            Command::DeleteAcls { acls } => {
                for acl in acls {
                    self.acls.remove(acl);
                }
                Ok(Outcome::Done)
            }
            Command::SetBrokerConfigs { scope, configs } => self.set_broker_configs(scope, configs),
            Command::AlterClientQuota {
                entity,
                set,
                remove,
            } => {
                let values = self.quotas.entry(entity.clone()).or_default();
                values.extend(set.iter().cloned());
                for key in remove {
                    values.remove(key);
                }
                if values.is_empty() {
                    self.quotas.remove(entity);
                }
                Ok(Outcome::Done)
            }
        }
    }

    fn set_broker_configs(
        &mut self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<Outcome, Rejection> {
        let is_node_id = scope.parse::<i32>().is_ok_and(|id| id.to_string() == scope);
        if !scope.is_empty() && !is_node_id {
            return Err(Rejection::InvalidBrokerConfigScope {
                scope: scope.to_owned(),
            });
        }
        if configs.is_empty() {
            self.broker_configs.remove(scope);
        } else {
            self.broker_configs
                .insert(scope.to_owned(), configs.clone());
        }
        Ok(Outcome::Done)
    }

    fn delete_scram_credential(&mut self, user: &str, mechanism: i8) -> Result<Outcome, Rejection> {
        let unknown = || Rejection::UnknownScramCredential {
            user: user.to_owned(),
            mechanism,
        };
        let credentials = self.users.get_mut(user).ok_or_else(unknown)?;
        credentials.remove(&mechanism).ok_or_else(unknown)?;
        if credentials.is_empty() {
            self.users.remove(user);
        }
        Ok(Outcome::Done)
    }

    fn set_partition_isr(
        &mut self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        isr: &[i32],
    ) -> Result<Outcome, Rejection> {
        let meta = self.partition_mut(topic, partition)?;
        let fits = leader_epoch == meta.leader_epoch
            && meta.leader.is_some_and(|leader| isr.contains(&leader))
            && isr.iter().all(|r| meta.replicas.contains(r));
        if !fits {
            return Err(Rejection::InvalidIsr {
                leader_epoch,
                isr: isr.to_vec(),
            });
        }
        meta.isr = meta
            .replicas
            .iter()
            .copied()
            .filter(|r| isr.contains(r))
            .collect();
        Ok(Outcome::Done)
    }

    pub(super) fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<&mut PartitionMeta, Rejection> {
        self.topics
            .get_mut(topic)
            .and_then(|t| {
                usize::try_from(partition)
                    .ok()
                    .and_then(|p| t.partitions.get_mut(p))
            })
            .ok_or_else(|| Rejection::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })
    }

    fn set_partition_leader(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
    ) -> Result<Outcome, Rejection> {
        let meta = self.partition_mut(topic, partition)?;
        if !meta.replicas.contains(&leader) {
            return Err(Rejection::NotAReplica { leader });
        }
        if leader_epoch <= meta.leader_epoch {
            return Err(Rejection::StaleLeaderEpoch {
                proposed: leader_epoch,
                current: meta.leader_epoch,
            });
        }
        meta.leader = Some(leader);
        meta.leader_epoch = leader_epoch;
        Ok(Outcome::Done)
    }

    fn bootstrap(&mut self, cluster_id: &str) -> Result<Outcome, Rejection> {
        match &self.cluster_id {
            Some(existing) if existing != cluster_id => Err(Rejection::ClusterIdMismatch {
                existing: existing.clone(),
            }),
            _ => {
                self.cluster_id = Some(cluster_id.to_owned());
                Ok(Outcome::Done)
            }
        }
    }

    fn register(&mut self, registration: &BrokerRegistration) -> Result<Outcome, Rejection> {
        if let Some(existing) = self.brokers.get(&registration.id)
            && existing.incarnation != registration.incarnation
            && !existing.fenced
        {
            return Err(Rejection::DuplicateBrokerId {
                id: registration.id,
            });
        }
        let mut registration = registration.clone();
        registration.fenced = false;
        let id = registration.id;
        self.brokers.insert(id, registration);
        self.lead_leaderless(id);
        Ok(Outcome::Done)
    }

    fn unregister(&mut self, id: i32) -> Result<Outcome, Rejection> {
        if !self.brokers.contains_key(&id) {
            return Err(Rejection::UnknownBroker { id });
        }
        let holds = self
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .any(|p| p.replicas.contains(&id));
        if holds {
            return Err(Rejection::BrokerHoldsReplicas { id });
        }
        self.brokers.remove(&id);
        Ok(Outcome::Done)
    }

    fn fence(&mut self, id: i32) -> Result<Outcome, Rejection> {
        let broker = self
            .brokers
            .get_mut(&id)
            .ok_or(Rejection::UnknownBroker { id })?;
        broker.fenced = true;
        let unfenced: BTreeSet<i32> = self.unfenced_brokers().map(|b| b.id).collect();
        for partition in self.topics.values_mut().flat_map(|t| &mut t.partitions) {
            partition.isr.retain(|&r| r != id);
            // Raft elects the leaders of replicated partitions; the new one reports itself.
            if partition.leader == Some(id) && !partition.is_replicated() {
                partition.leader = partition.isr.iter().copied().find(|r| unfenced.contains(r));
                partition.leader_epoch += 1;
            }
        }
        Ok(Outcome::Done)
    }

    fn unfence(&mut self, id: i32) -> Result<Outcome, Rejection> {
        let broker = self
            .brokers
            .get_mut(&id)
            .ok_or(Rejection::UnknownBroker { id })?;
        broker.fenced = false;
        self.lead_leaderless(id);
        Ok(Outcome::Done)
    }

    /// `id` just became unfenced: it is back in the in-sync set of its unreplicated partitions
    /// (a replica with no other copy is trivially in sync) and leads those that had no leader.
    fn lead_leaderless(&mut self, id: i32) {
        for partition in self.topics.values_mut().flat_map(|t| &mut t.partitions) {
            if !partition.replicas.contains(&id) {
                continue;
            }
            if partition.is_replicated() {
                // Its raft leader reports it in sync once it has caught up.
                continue;
            }
            if partition.leader.is_none() {
                partition.leader = Some(id);
                partition.leader_epoch += 1;
                partition.isr = vec![id];
            } else if partition.replicas.len() == 1 && !partition.isr.contains(&id) {
                partition.isr.push(id);
            }
        }
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: TopicId,
        (partitions, replication_factor): (i32, i16),
        assignment: Option<&[Vec<i32>]>,
        configs: &BTreeMap<String, String>,
        internal: bool,
    ) -> Result<Outcome, Rejection> {
        if self.topics.contains_key(name) {
            return Err(Rejection::TopicExists {
                name: name.to_owned(),
            });
        }
        if self.topic_by_id(&id).is_some() {
            return Err(Rejection::TopicIdExists);
        }
        let replicas = match assignment {
            Some(assignment) => self.check_assignment(assignment, None)?,
            None => {
                check_partition_count(partitions)?;
                placement::place(self, partitions as usize, replication_factor)?
            }
        };
        self.placement_cursor = self.placement_cursor.wrapping_add(replicas.len() as u64);
        let partitions = replicas
            .into_iter()
            .map(|r| self.new_partition(r))
            .collect();
        self.topics.insert(
            name.to_owned(),
            TopicMeta {
                id,
                partitions,
                configs: configs.clone(),
                internal,
            },
        );
        Ok(Outcome::Done)
    }

    fn create_partitions(
        &mut self,
        name: &str,
        total: i32,
        assignment: Option<&[Vec<i32>]>,
    ) -> Result<Outcome, Rejection> {
        let topic = self
            .topics
            .get(name)
            .ok_or_else(|| Rejection::UnknownTopic {
                name: name.to_owned(),
            })?;
        let current = topic.partitions.len();
        let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        check_partition_count(total)?;
        let Some(added) = (total as usize).checked_sub(current).filter(|&n| n > 0) else {
            return Err(Rejection::InvalidPartitions {
                reason: format!("topic already has {current} partitions, {total} requested"),
            });
        };
        let replicas = match assignment {
            Some(assignment) if assignment.len() != added => {
                return Err(Rejection::InvalidAssignment {
                    reason: format!("{} lists for {added} new partitions", assignment.len()),
                });
            }
            Some(assignment) => self.check_assignment(assignment, Some(factor))?,
            None => placement::place(self, added, factor as i16)?,
        };
        self.placement_cursor = self.placement_cursor.wrapping_add(added as u64);
        let partitions: Vec<PartitionMeta> = replicas
            .into_iter()
            .map(|r| self.new_partition(r))
            .collect();
        if let Some(topic) = self.topics.get_mut(name) {
            topic.partitions.extend(partitions);
        }
        Ok(Outcome::Done)
    }

    /// An explicit assignment: every list non-empty, of one length (`factor` if given), of
    /// distinct registered brokers.
    fn check_assignment(
        &self,
        assignment: &[Vec<i32>],
        factor: Option<usize>,
    ) -> Result<Vec<Vec<i32>>, Rejection> {
        let invalid = |reason: String| Err(Rejection::InvalidAssignment { reason });
        check_partition_count(i32::try_from(assignment.len()).unwrap_or(i32::MAX))?;
        let factor = factor.unwrap_or_else(|| assignment[0].len());
        for (partition, replicas) in assignment.iter().enumerate() {
            if replicas.is_empty() || replicas.len() != factor {
                return invalid(format!(
                    "partition {partition} lists {} replicas, {factor} expected",
                    replicas.len()
                ));
            }
            let distinct: BTreeSet<&i32> = replicas.iter().collect();
            if distinct.len() != replicas.len() {
                return invalid(format!("partition {partition} repeats a broker"));
            }
            if let Some(unknown) = replicas.iter().find(|id| !self.brokers.contains_key(id)) {
                return invalid(format!("broker {unknown} is not registered"));
            }
        }
        Ok(assignment.to_vec())
    }

    /// A new partition, epoch 0: led by its first unfenced replica, or, when replicated, by
    /// none until its raft group elects a leader that reports itself.
    fn new_partition(&self, replicas: Vec<i32>) -> PartitionMeta {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|&r| self.is_unfenced(r))
            .collect();
        let leader = if replicas.len() > 1 {
            None
        } else {
            isr.first().copied()
        };
        PartitionMeta {
            leader,
            leader_epoch: 0,
            isr,
            replicas,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    fn allocate_producer_ids(
        &mut self,
        broker: i32,
        count: i64,
        at_least: i64,
    ) -> Result<Outcome, Rejection> {
        let invalid = |reason: String| Err(Rejection::InvalidProducerIdRequest { reason });
        if !self.brokers.contains_key(&broker) {
            return Err(Rejection::UnknownBroker { id: broker });
        }
        if !(1..=PRODUCER_ID_BLOCK_MAX).contains(&count) || at_least < 0 {
            return invalid(format!("count {count}, at least {at_least}"));
        }
        let first = self.next_producer_id.max(at_least);
        let Some(next) = first.checked_add(count) else {
            return invalid("producer ids are exhausted".to_owned());
        };
        self.next_producer_id = next;
        Ok(Outcome::ProducerIds { first, count })
    }
}

fn check_partition_count(count: i32) -> Result<(), Rejection> {
    if (1..=PARTITIONS_PER_TOPIC_MAX).contains(&count) {
        Ok(())
    } else {
        Err(Rejection::InvalidPartitions {
            reason: format!("{count} requested, must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"),
        })
    }
}
