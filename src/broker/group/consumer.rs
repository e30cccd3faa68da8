//! KIP-848 consumer groups: the group epoch, a server-side target assignment (uniform or range)
//! and per-member reconciliation (a partition is granted only once its previous owner has
//! acknowledged revoking it). Pure: fed heartbeats, topic partition counts and `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use crate::broker::error::{Error, Result};

/// A topic partition by name.
pub(crate) type TopicPartition = (String, i32);

/// Assignors this coordinator runs; the first is the default.
pub(crate) const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// One ConsumerGroupHeartbeat, as the state machine sees it.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topics: Option<Vec<String>>,
    pub(crate) server_assignor: Option<String>,
    /// Partitions the member owns now; `None` = unchanged since its last heartbeat.
    pub(crate) owned: Option<Vec<TopicPartition>>,
}

/// The answer: the member's id and epoch, and its assignment if it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeartbeatResponse {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) assignment: Option<Vec<TopicPartition>>,
}

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) member_epoch: i32,
    previous_epoch: i32,
    pub(crate) subscribed: BTreeSet<String>,
    /// What the coordinator considers the member's partitions (revoked ones stay until acked).
    pub(crate) assigned: BTreeSet<TopicPartition>,
    last_sent: Option<BTreeSet<TopicPartition>>,
    assignor: Option<String>,
    last_heartbeat_ms: i64,
}

/// A KIP-848 consumer group.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerGroup {
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    pub(crate) target: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// Partition counts of the subscribed topics when the target was computed.
    topic_counts: BTreeMap<String, i32>,
}

impl ConsumerGroup {
    /// KIP-848 state names, for ListGroups and ConsumerGroupDescribe.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .all(|m| m.member_epoch == self.assignment_epoch)
        {
            "Stable"
        } else {
            "Reconciling"
        }
    }

    pub(crate) fn assignor(&self) -> &str {
        self.members
            .values()
            .find_map(|m| m.assignor.as_deref())
            .unwrap_or(ASSIGNORS[0])
    }

    /// Handles one heartbeat; `partitions` gives a topic's partition count (None = unknown).
    pub(crate) fn heartbeat(
        &mut self,
        group_id: &str,
        request: Heartbeat,
        partitions: &dyn Fn(&str) -> Option<i32>,
        now_ms: i64,
    ) -> Result<HeartbeatResponse> {
        if let Some(assignor) = &request.server_assignor
            && !ASSIGNORS.contains(&assignor.as_str())
        {
            return Err(Error::UnsupportedAssignor {
                assignor: assignor.clone(),
            });
        }
        let member_id = request.member_id.clone();
        match request.member_epoch {
            -1 | -2 => {
                self.remove(&member_id);
                return Ok(HeartbeatResponse {
                    member_id,
                    member_epoch: request.member_epoch,
                    assignment: None,
                });
            }
            0 => self.join(&request, now_ms)?,
            epoch => {
                let member =
                    self.members
                        .get_mut(&member_id)
                        .ok_or_else(|| Error::UnknownMemberId {
                            group: group_id.to_owned(),
                            member_id: member_id.clone(),
                        })?;
                if epoch != member.member_epoch && epoch != member.previous_epoch {
                    return Err(Error::FencedMemberEpoch {
                        group: group_id.to_owned(),
                        member_epoch: epoch,
                    });
                }
                member.last_heartbeat_ms = now_ms;
                if let Some(topics) = &request.subscribed_topics {
                    let topics: BTreeSet<String> = topics.iter().cloned().collect();
                    if topics != member.subscribed {
                        member.subscribed = topics;
                        self.group_epoch += 1;
                    }
                }
            }
        }
        self.refresh_target(partitions);
        Ok(self.reconcile(&member_id, request.owned))
    }

    fn join(&mut self, request: &Heartbeat, now_ms: i64) -> Result<()> {
        let Some(topics) = &request.subscribed_topics else {
            return Err(Error::InvalidGroupRequest {
                reason: "a joining member must send its subscribed topic names",
            });
        };
        self.remove(&request.member_id);
        self.members.insert(
            request.member_id.clone(),
            ConsumerMember {
                member_id: request.member_id.clone(),
                instance_id: request.instance_id.clone(),
                rack_id: request.rack_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                member_epoch: 0,
                previous_epoch: 0,
                subscribed: topics.iter().cloned().collect(),
                assigned: BTreeSet::new(),
                last_sent: None,
                assignor: request.server_assignor.clone(),
                last_heartbeat_ms: now_ms,
            },
        );
        self.group_epoch += 1;
        Ok(())
    }

    /// Removes a member (leave or expiry); its partitions become free at once.
    pub(crate) fn remove(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// Members whose session expired.
    pub(crate) fn expired(&self, session_timeout_ms: i64, now_ms: i64) -> Vec<String> {
        self.members
            .values()
            .filter(|m| now_ms - m.last_heartbeat_ms > session_timeout_ms)
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Recomputes the target assignment if the group epoch or a topic's size moved.
    fn refresh_target(&mut self, partitions: &dyn Fn(&str) -> Option<i32>) {
        let topics: BTreeSet<&String> = self.members.values().flat_map(|m| &m.subscribed).collect();
        let counts: BTreeMap<String, i32> = topics
            .into_iter()
            .filter_map(|t| Some((t.clone(), partitions(t)?)))
            .collect();
        if counts != self.topic_counts {
            self.topic_counts = counts;
            self.group_epoch += 1;
        }
        if self.assignment_epoch == self.group_epoch {
            return;
        }
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.subscribed.clone()))
            .collect();
        self.target = if self.assignor() == "range" {
            assign_range(&subscriptions, &self.topic_counts)
        } else {
            assign_uniform(&subscriptions, &self.topic_counts, &self.target)
        };
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target: revoke first, then grant what others released.
    fn reconcile(
        &mut self,
        member_id: &str,
        owned: Option<Vec<TopicPartition>>,
    ) -> HeartbeatResponse {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held_by_others: BTreeSet<TopicPartition> = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .flat_map(|m| m.assigned.iter().cloned())
            .collect();
        let epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return HeartbeatResponse {
                member_id: member_id.to_owned(),
                member_epoch: -1,
                assignment: None,
            };
        };
        let revoking: BTreeSet<TopicPartition> =
            member.assigned.difference(&target).cloned().collect();
        let is_revoked = owned
            .as_ref()
            .is_some_and(|owned| owned.iter().all(|tp| !revoking.contains(tp)));
        if revoking.is_empty() || is_revoked {
            member.assigned.retain(|tp| target.contains(tp));
            for tp in &target {
                if !held_by_others.contains(tp) {
                    member.assigned.insert(tp.clone());
                }
            }
            if member.member_epoch != epoch {
                member.previous_epoch = member.member_epoch;
                member.member_epoch = epoch;
            }
        }
        // While revoking, the member is told to keep only what stays in its target.
        let visible: BTreeSet<TopicPartition> =
            member.assigned.intersection(&target).cloned().collect();
        let assignment = (member.last_sent.as_ref() != Some(&visible)).then(|| {
            member.last_sent = Some(visible.clone());
            visible.into_iter().collect()
        });
        HeartbeatResponse {
            member_id: member_id.to_owned(),
            member_epoch: member.member_epoch,
            assignment,
        }
    }

    /// Offset commits of a consumer group carry the member epoch (KIP-848 fencing).
    pub(crate) fn check_commit(&self, group_id: &str, member_id: &str, epoch: i32) -> Result<()> {
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| Error::UnknownMemberId {
                group: group_id.to_owned(),
                member_id: member_id.to_owned(),
            })?;
        if epoch > member.member_epoch {
            Err(Error::FencedMemberEpoch {
                group: group_id.to_owned(),
                member_epoch: epoch,
            })
        } else if epoch < member.member_epoch && epoch != member.previous_epoch {
            Err(Error::StaleMemberEpoch {
                group: group_id.to_owned(),
                member_epoch: epoch,
            })
        } else {
            Ok(())
        }
    }
}

/// Every partition of `topics`, sorted.
fn partitions_of(counts: &BTreeMap<String, i32>, topic: &str) -> Vec<TopicPartition> {
    let count = counts.get(topic).copied().unwrap_or(0);
    (0..count).map(|p| (topic.to_owned(), p)).collect()
}

/// Range: per topic, contiguous runs of partitions over its subscribers sorted by member id.
fn assign_range(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for topic in counts.keys() {
        let subscribers: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let all = partitions_of(counts, topic);
        let (base, extra) = (all.len() / subscribers.len(), all.len() % subscribers.len());
        let mut next = all.into_iter();
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = base + usize::from(i < extra);
            let slot = target.entry(member.clone()).or_default();
            slot.extend(next.by_ref().take(take));
        }
    }
    target
}

/// Uniform: balanced over subscribers, keeping each partition with its previous owner while
/// that owner is under its share.
fn assign_uniform(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    counts: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, BTreeSet<TopicPartition>>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let all: Vec<TopicPartition> = counts
        .keys()
        .flat_map(|t| partitions_of(counts, t))
        .collect();
    let share = all.len().div_ceil(subscriptions.len().max(1));
    let eligible = |tp: &TopicPartition| -> Vec<&String> {
        subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(&tp.0))
            .map(|(m, _)| m)
            .collect()
    };
    let mut unassigned = Vec::new();
    for tp in all {
        let owner = previous
            .iter()
            .find(|(m, parts)| {
                parts.contains(&tp) && subscriptions.get(*m).is_some_and(|t| t.contains(&tp.0))
            })
            .map(|(m, _)| m.clone());
        match owner {
            Some(owner) if target.get(&owner).is_some_and(|p| p.len() < share) => {
                target.entry(owner).or_default().insert(tp);
            }
            _ => unassigned.push(tp),
        }
    }
    for tp in unassigned {
        let least = eligible(&tp)
            .into_iter()
            .min_by_key(|m| (target.get(*m).map_or(0, BTreeSet::len), (*m).clone()))
            .cloned();
        if let Some(member) = least {
            target.entry(member).or_default().insert(tp);
        }
    }
    target
}
