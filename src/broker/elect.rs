//! Leader elections asked for by an operator (ElectLeaders): a replicated partition's raft
//! leader hands its leadership to the preferred replica (the first of the replica list) through
//! raft's leadership transfer, and the request is answered once the metadata names it. Raft
//! never elects a replica that may lack committed records, so there is no unclean election.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::{Broker, peer_service};

/// Which leader an election picks (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElectionType {
    /// The first replica of the partition's replica list.
    Preferred,
    /// Any live replica, even one that may miss committed records: raft never does this.
    Unclean,
}

/// What the leader of a partition answers when asked to hand its leadership over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Handover {
    /// The preferred replica leads (now, or it already did).
    Done,
    /// This broker does not lead the partition (any more).
    NotLeader,
    /// The handover did not happen, and why.
    NotAvailable(String),
}

/// How long an election may take at most, whatever the request's timeout says.
const ELECTION_WAIT_MAX: Duration = Duration::from_secs(60);
/// How long a leader keeps offering the leadership to a preferred replica whose log does not
/// match its own yet, and how often.
const TRANSFER_TRIES_MAX: Duration = Duration::from_secs(2);
const TRANSFER_RETRY: Duration = Duration::from_millis(100);
/// How long an election takes at least before it is given up.
const ELECTION_WAIT_MIN: Duration = Duration::from_secs(1);

impl Broker {
    /// Every partition of every topic this broker knows of, as (topic, partition).
    pub(crate) fn all_partitions(&self) -> Vec<(String, i32)> {
        if let Some(state) = self.cluster_state() {
            let mut all: Vec<(String, i32)> = Vec::new();
            for (name, topic) in &state.topics {
                let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                all.extend((0..count).map(|p| (name.clone(), p)));
            }
            return all;
        }
        self.topics_read()
            .values()
            .flat_map(|topic| {
                let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                (0..count).map(|p| (topic.name.clone(), p))
            })
            .collect()
    }

    /// Elects `topic`'s `partition` leader. `Ok` once the elected replica leads; an election
    /// that is not needed (the preferred replica leads, or any replica does for an unclean one)
    /// is `ElectionNotNeeded`.
    pub(crate) async fn elect_leader(
        &self,
        topic: &str,
        partition: i32,
        election: ElectionType,
        timeout: Duration,
    ) -> Result<()> {
        let timeout = timeout.clamp(ELECTION_WAIT_MIN, ELECTION_WAIT_MAX);
        let unknown = || Error::UnknownTopicOrPartition {
            topic: topic.to_owned(),
            partition,
        };
        let not_needed = || Error::ElectionNotNeeded {
            topic: topic.to_owned(),
            partition,
        };
        let not_available = |reason: String| Error::PreferredLeaderNotAvailable {
            topic: topic.to_owned(),
            partition,
            reason,
        };
        let Some(link) = self.cluster.get() else {
            // A single node leads every partition it has: it is the only (preferred) replica.
            self.partition_exists(topic, partition)?;
            let offline = self
                .topic_state(topic)
                .and_then(|t| {
                    usize::try_from(partition)
                        .ok()
                        .and_then(|p| t.partitions.get(p).cloned())
                })
                .is_some_and(|p| p.is_offline());
            return match (election, offline) {
                (ElectionType::Preferred, true) => {
                    Err(not_available("the partition's log is offline".to_owned()))
                }
                (ElectionType::Unclean, true) => Err(Error::EligibleLeadersNotAvailable {
                    topic: topic.to_owned(),
                    partition,
                }),
                (_, false) => Err(not_needed()),
            };
        };
        let state = Arc::clone(&link.node.published().borrow().state);
        let placed = state.partition(topic, partition).ok_or_else(unknown)?;
        if election == ElectionType::Unclean {
            return match placed.leader {
                Some(_) => Err(not_needed()),
                None => Err(Error::EligibleLeadersNotAvailable {
                    topic: topic.to_owned(),
                    partition,
                }),
            };
        }
        let preferred = *placed.replicas.first().ok_or_else(unknown)?;
        if placed.leader == Some(preferred) {
            return Err(not_needed());
        }
        if !placed.is_replicated() {
            return Err(not_available(format!(
                "its only replica, broker {preferred}, is fenced"
            )));
        }
        if !state.is_unfenced(preferred) {
            return Err(not_available(format!("broker {preferred} is fenced")));
        }
        let Some(mut leader) = placed.leader else {
            return Err(not_available("the partition has no leader".to_owned()));
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut published = link.node.published();
        loop {
            let handover = if leader == self.node_id() {
                self.hand_over_here(topic, partition, preferred, timeout)
                    .await
            } else {
                peer_service::hand_over_on(self, leader, (topic, partition), preferred, timeout)
                    .await
            };
            match handover {
                Handover::Done => break,
                Handover::NotAvailable(reason) => return Err(not_available(reason)),
                // Leadership moved meanwhile (the periodic balancing may have handed it to
                // the preferred replica already): ask the leader the metadata names next.
                Handover::NotLeader => {}
            }
            let moved = published.wait_for(|p| {
                p.state
                    .partition(topic, partition)
                    .is_none_or(|p| p.leader.is_some_and(|l| l != leader))
            });
            let next = match tokio::time::timeout_at(deadline, moved).await {
                Ok(Ok(now)) => now.state.partition(topic, partition).and_then(|p| p.leader),
                _ => None,
            };
            match next {
                Some(next) if next == preferred => break,
                Some(next) => leader = next,
                None => {
                    return Err(not_available(format!(
                        "broker {leader} no longer leads the partition"
                    )));
                }
            }
        }
        // Answered once the metadata names it, so a Metadata request that follows sees it.
        let named = published.wait_for(|p| {
            p.state
                .partition(topic, partition)
                .is_none_or(|p| p.leader == Some(preferred))
        });
        match tokio::time::timeout(timeout, named).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(not_available(format!(
                "broker {preferred} leads but did not report itself within {timeout:?}"
            ))),
        }
    }

    /// On the partition's raft leader: hands the leadership to `preferred` once its log
    /// matches to the last entry, and waits (at most `timeout`) until it leads.
    pub(super) async fn hand_over_here(
        &self,
        topic: &str,
        partition: i32,
        preferred: i32,
        timeout: Duration,
    ) -> Handover {
        let Some(group) = self
            .topic_state(topic)
            .and_then(|t| {
                usize::try_from(partition)
                    .ok()
                    .and_then(|p| t.partitions.get(p).cloned())
            })
            .and_then(|p| p.raft().cloned())
        else {
            return Handover::NotLeader;
        };
        let (Ok(me), Ok(target)) = (u64::try_from(self.node_id()), u64::try_from(preferred)) else {
            return Handover::NotAvailable(format!("broker id {preferred}"));
        };
        let leadership = group.leadership();
        if leadership.leader == Some(target) {
            return Handover::Done;
        }
        if leadership.leader != Some(me) {
            return Handover::NotLeader;
        }
        // Its log must match to the last entry at the moment of the transfer: under writes
        // that takes a few looks.
        let deadline = tokio::time::Instant::now() + timeout.min(TRANSFER_TRIES_MAX);
        while !group.transfer_to(target).await {
            if tokio::time::Instant::now() >= deadline {
                return Handover::NotAvailable(format!(
                    "broker {preferred} is not a voter whose log matches the leader's"
                ));
            }
            tokio::time::sleep(TRANSFER_RETRY).await;
            if group.leadership().leader != Some(me) {
                return Handover::NotLeader;
            }
        }
        let taken_over = async {
            loop {
                let now = group.leadership();
                if now.leader == Some(target) {
                    return true;
                }
                group.leadership_changed(&now).await;
            }
        };
        match tokio::time::timeout(timeout, taken_over).await {
            Ok(_) => Handover::Done,
            Err(_) => Handover::NotAvailable(format!(
                "broker {preferred} did not take the leadership over within {timeout:?}"
            )),
        }
    }
}
