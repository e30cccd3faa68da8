//! The runtime side of KIP-848 consumer groups: ConsumerGroupHeartbeat and the describe views,
//! under the coordinator lock. Consumer group membership is kept in memory only; committed
//! offsets are persisted like every other group's.

use std::collections::BTreeSet;

use super::GroupEntry;
use super::admin::{GroupDescription, MemberDescription};
use super::consumer::{ConsumerGroup, Heartbeat, HeartbeatResponse};
use crate::broker::error::{Error, Result};
use crate::broker::{Broker, now_ms};

/// DescribeGroups' view of a consumer group: its state and members, without metadata.
pub(super) fn describe_as_classic(group: &ConsumerGroup) -> GroupDescription {
    GroupDescription {
        state: group.state_name(),
        protocol_type: "consumer".to_owned(),
        protocol: group.assignor().to_owned(),
        members: group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: bytes::Bytes::new(),
                assignment: bytes::Bytes::new(),
            })
            .collect(),
    }
}

impl Broker {
    /// The heartbeat interval KIP-848 members are told to use.
    pub(crate) fn consumer_heartbeat_interval_ms(&self) -> i32 {
        self.settings.groups.consumer_heartbeat_interval_ms
    }

    /// ConsumerGroupHeartbeat: joins, leaves or keeps a member of a consumer group, answering
    /// its epoch and (when changed) its assignment.
    pub(crate) fn consumer_heartbeat(
        &self,
        group_id: &str,
        mut request: Heartbeat,
    ) -> Result<HeartbeatResponse> {
        self.check_group(group_id)?;
        if request.member_id.is_empty() {
            if request.member_epoch != 0 {
                return Err(Error::UnknownMemberId {
                    group: group_id.to_owned(),
                    member_id: String::new(),
                });
            }
            request.member_id = self.groups.new_member_id(&request.client_id);
        }
        let now = now_ms();
        let mut state = self.groups.lock();
        let entry = state
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| GroupEntry::new(group_id, now));
        if !entry.group.members.is_empty() {
            return Err(Error::InconsistentGroupProtocol {
                group: group_id.to_owned(),
            });
        }
        let partitions = |topic: &str| {
            self.topic(topic)
                .map(|t| i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))
        };
        let result = entry
            .consumer
            .heartbeat(group_id, request, &partitions, now);
        if entry.is_unused() {
            state.groups.remove(group_id);
        }
        result
    }

    /// The consumer group `group_id`, if it has members (ConsumerGroupDescribe).
    pub(crate) fn describe_consumer_group(&self, group_id: &str) -> Option<ConsumerGroup> {
        let state = self.groups.lock();
        let entry = state.groups.get(group_id)?;
        (!entry.consumer.members.is_empty()).then(|| entry.consumer.clone())
    }

    /// Topics the members of consumer group `group_id` subscribe to (OffsetDelete).
    pub(crate) fn consumer_subscriptions(&self, group_id: &str) -> BTreeSet<String> {
        let state = self.groups.lock();
        state
            .groups
            .get(group_id)
            .map(|e| {
                e.consumer
                    .members
                    .values()
                    .flat_map(|m| m.subscribed.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}
