//! Group administration queries: ListGroups, DescribeGroups, DeleteGroups and the member
//! subscriptions OffsetDelete needs. Reads the coordinator state; deletions are tombstones.

use bytes::Bytes;

use tokio::sync::oneshot;

use super::{Group, GroupState, wait_stored};
use crate::broker::error::{Error, Result};
use crate::broker::{Broker, now_ms};

/// A group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupListing {
    pub(crate) group_id: String,
    /// Empty for groups that only commit offsets.
    pub(crate) protocol_type: String,
    /// Kafka's state name ("Stable", "Empty", ...; KIP-848 groups have their own set).
    pub(crate) state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub(crate) group_type: &'static str,
}

/// A member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDescription {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

/// A group in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDescription {
    pub(crate) state: &'static str,
    pub(crate) protocol_type: String,
    /// The selected protocol; empty unless the group is stable.
    pub(crate) protocol: String,
    pub(crate) members: Vec<MemberDescription>,
}

impl Broker {
    /// Every known group, sorted by id.
    pub(crate) fn list_groups(&self) -> Vec<GroupListing> {
        let state = self.groups.lock();
        state
            .groups
            .values()
            .map(|entry| {
                if entry.consumer.members.is_empty() {
                    GroupListing {
                        group_id: entry.group.group_id.clone(),
                        protocol_type: entry.group.protocol_type.clone().unwrap_or_default(),
                        state: entry.group.state.name(),
                        group_type: "classic",
                    }
                } else {
                    GroupListing {
                        group_id: entry.group.group_id.clone(),
                        protocol_type: "consumer".to_owned(),
                        state: entry.consumer.state_name(),
                        group_type: "consumer",
                    }
                }
            })
            .collect()
    }

    /// DescribeGroups for one group; `None` if the coordinator does not know it.
    pub(crate) fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let state = self.groups.lock();
        let entry = state.groups.get(group_id)?;
        if !entry.consumer.members.is_empty() {
            return Some(super::consumer_ops::describe_as_classic(&entry.consumer));
        }
        let group = &entry.group;
        let is_stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if is_stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if is_stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if is_stable { protocol } else { String::new() },
            members,
        })
    }

    /// DeleteGroups for one group: only an empty group can go; its offsets (committed or in
    /// flight) go with it. Answers once the tombstones are durable.
    pub(crate) async fn delete_group(&self, group_id: &str) -> Result<()> {
        self.check_group(group_id)?;
        let stored = {
            let mut state = self.groups.lock();
            // Sessions past their deadline are over now, not at the next timer tick.
            self.tick_group(&mut state, group_id, now_ms());
            let entry = state
                .groups
                .get(group_id)
                .ok_or_else(|| Error::GroupIdNotFound {
                    group: group_id.to_owned(),
                })?;
            if entry.group.state != GroupState::Empty || !entry.consumer.members.is_empty() {
                return Err(Error::NonEmptyGroup {
                    group: group_id.to_owned(),
                });
            }
            let mut keys: Vec<(String, i32)> = entry.offsets.keys().cloned().collect();
            for key in state.journal.pending_offset_keys(group_id) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            if let Some(entry) = state.groups.get_mut(group_id) {
                entry.group = Group::new(group_id, now_ms());
            }
            let (reply, stored) = oneshot::channel();
            self.write_tombstones(&mut state, group_id, keys, true, Some(reply));
            stored
        };
        wait_stored(stored, group_id).await
    }

    /// The state, protocol type and every member's selected-protocol metadata of a group
    /// (OffsetDelete decodes consumer subscriptions from them).
    pub(crate) fn group_subscriptions(
        &self,
        group_id: &str,
    ) -> Option<(GroupState, String, Vec<Bytes>)> {
        let state = self.groups.lock();
        let group = &state.groups.get(group_id)?.group;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        Some((
            group.state,
            group.protocol_type.clone().unwrap_or_default(),
            group
                .members
                .values()
                .map(|m| m.metadata(&protocol))
                .collect(),
        ))
    }
}
