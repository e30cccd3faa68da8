//! Consumer groups through their coordinators: ListGroups (every broker), DescribeGroups with
//! each member's decoded assignment, OffsetFetch, OffsetCommit outside any generation (for a
//! group without members), DeleteGroups.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Serialize;

use super::error::ClientError;
use super::metadata::topic_name;
use super::session::{Client, Target};

const LIST_GROUPS_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
/// OffsetFetch v7: one group per request (v8 batches groups).
const OFFSET_FETCH_VERSION: i16 = 7;
/// OffsetCommit v8: by topic name (v10 by id).
const OFFSET_COMMIT_VERSION: i16 = 8;
const DELETE_GROUPS_VERSION: i16 = 2;

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GroupListing {
    pub(crate) group: String,
    pub(crate) state: String,
    pub(crate) protocol_type: String,
    pub(crate) coordinator: i32,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MemberInfo {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) host: String,
    /// (topic, partitions) assigned to it, when the group uses the consumer protocol.
    pub(crate) assignment: Vec<(String, Vec<i32>)>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GroupDescription {
    pub(crate) group: String,
    pub(crate) state: String,
    pub(crate) protocol_type: String,
    /// The assignor (for consumer groups).
    pub(crate) protocol: String,
    pub(crate) coordinator: i32,
    pub(crate) members: Vec<MemberInfo>,
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CommittedOffset {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// Every group of the cluster (each broker lists the groups it coordinates), sorted by id.
pub(crate) fn list_groups(client: &mut Client) -> Result<Vec<GroupListing>, ClientError> {
    let brokers: Vec<i32> = client.brokers().keys().copied().collect();
    let mut groups = Vec::new();
    for broker in brokers {
        let response = client.retry("ListGroups", |client| {
            let response = client.call(
                Target::Broker(broker),
                &ListGroupsRequest::default(),
                LIST_GROUPS_VERSION,
            )?;
            ClientError::check(
                response.error_code,
                format!("listing the groups of broker {broker}"),
            )?;
            Ok(response)
        })?;
        groups.extend(response.groups.into_iter().map(|g| GroupListing {
            group: g.group_id.as_str().to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            coordinator: broker,
        }));
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    groups.dedup_by(|a, b| a.group == b.group);
    Ok(groups)
}

/// The state and members of `group`; a group nobody knows is `Dead` with no members.
pub(crate) fn describe_group(
    client: &mut Client,
    group: &str,
) -> Result<GroupDescription, ClientError> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    client.retry("DescribeGroups", |client| {
        let coordinator = client.coordinator(group)?;
        let response = client.call(
            Target::Broker(coordinator),
            &request,
            DESCRIBE_GROUPS_VERSION,
        )?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id.as_str() == group)
            .ok_or_else(|| ClientError::protocol("DescribeGroups answered without the group"))?;
        ClientError::check_with(
            described.error_code,
            format!("group {group}"),
            described.error_message.as_deref(),
        )?;
        let consumer = described.protocol_type.as_str() == "consumer";
        let members = described
            .members
            .into_iter()
            .map(|m| MemberInfo {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: if consumer {
                    decode_assignment(m.member_assignment)
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            group: group.to_owned(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            coordinator,
            members,
        })
    })
}

/// A consumer-protocol assignment (version, then the struct); empty when it does not decode.
fn decode_assignment(mut bytes: Bytes) -> Vec<(String, Vec<i32>)> {
    if bytes.remaining() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .map(|tp| (tp.topic.as_str().to_owned(), tp.partitions))
                .collect()
        })
        .unwrap_or_default()
}

/// Every offset `group` has committed, sorted by topic and partition.
pub(crate) fn committed_offsets(
    client: &mut Client,
    group: &str,
) -> Result<Vec<CommittedOffset>, ClientError> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let mut offsets = client.retry("OffsetFetch", |client| {
        let coordinator = client.coordinator(group)?;
        let response = client.call(Target::Broker(coordinator), &request, OFFSET_FETCH_VERSION)?;
        ClientError::check(response.error_code, format!("the offsets of group {group}"))?;
        let mut offsets = Vec::new();
        for topic in response.topics {
            for p in topic.partitions {
                ClientError::check(
                    p.error_code,
                    format!(
                        "the offset of group {group} in {}-{}",
                        topic.name.as_str(),
                        p.partition_index
                    ),
                )?;
                if p.committed_offset >= 0 {
                    offsets.push(CommittedOffset {
                        topic: topic.name.as_str().to_owned(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                    });
                }
            }
        }
        Ok(offsets)
    })?;
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(offsets)
}

/// Commits `offsets` for `group` outside any generation: the coordinator accepts it only while
/// the group has no members.
pub(crate) fn commit_offsets(
    client: &mut Client,
    group: &str,
    offsets: &[CommittedOffset],
) -> Result<(), ClientError> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for o in offsets {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(o.partition)
            .with_committed_offset(o.offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(StrBytes::from_static_str("")));
        match topics.iter_mut().find(|t| t.name.as_str() == o.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&o.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    client.retry("OffsetCommit", |client| {
        let coordinator = client.coordinator(group)?;
        let response = client.call(Target::Broker(coordinator), &request, OFFSET_COMMIT_VERSION)?;
        for topic in &response.topics {
            for p in &topic.partitions {
                ClientError::check(
                    p.error_code,
                    format!(
                        "committing group {group}'s offset of {}-{}",
                        topic.name.as_str(),
                        p.partition_index
                    ),
                )?;
            }
        }
        Ok(())
    })
}

/// Deletes `group` (its committed offsets with it); it must have no members.
pub(crate) fn delete_group(client: &mut Client, group: &str) -> Result<(), ClientError> {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    client.retry("DeleteGroups", |client| {
        let coordinator = client.coordinator(group)?;
        let response = client.call(Target::Broker(coordinator), &request, DELETE_GROUPS_VERSION)?;
        let result = response
            .results
            .iter()
            .find(|r| r.group_id.as_str() == group)
            .ok_or_else(|| ClientError::protocol("DeleteGroups answered without the group"))?;
        ClientError::check(result.error_code, format!("deleting group {group}"))
    })
}
