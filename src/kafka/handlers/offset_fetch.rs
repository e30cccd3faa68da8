//! OffsetFetch (key 9), v1-v9: the committed offsets of a group (v8+: of several groups), for
//! the partitions asked or (v2+, null topics) every partition with a committed offset.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};

use super::group_wire::{text, wire};
use crate::auth::acl::Operation;
use crate::broker::CommittedOffset;
use crate::kafka::{Context, error_code};

/// One partition's answer: offset -1 and no metadata when nothing was committed; an error code
/// (UNSTABLE_OFFSET_COMMIT while a transactional commit of it is pending and the client asked
/// for stable offsets, KIP-447).
type Answer = (i32, i64, i32, Option<String>, i16);

/// Committed offsets of `group_id` grouped by topic, in the order asked.
fn lookup(
    ctx: &Context,
    group_id: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<(String, Vec<Answer>)> {
    let listing_all = asked.is_none();
    let requested = asked.map(|topics| {
        topics
            .into_iter()
            .flat_map(|(topic, partitions)| partitions.into_iter().map(move |p| (topic.clone(), p)))
            .collect()
    });
    let found = ctx.broker.fetch_offsets(group_id, requested);
    let mut by_topic: Vec<(String, Vec<Answer>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (topic, partition, committed) in found {
        let answer = match committed {
            _ if require_stable && ctx.broker.is_offset_unstable(group_id, &topic, partition) => (
                partition,
                -1,
                -1,
                Some(String::new()),
                ResponseError::UnstableOffsetCommit.code(),
            ),
            Some(CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                ..
            }) => (partition, offset, leader_epoch, metadata, error_code::NONE),
            None => (partition, -1, -1, Some(String::new()), error_code::NONE),
        };
        let slot = *index.entry(topic.clone()).or_insert_with(|| {
            by_topic.push((topic, Vec::new()));
            by_topic.len() - 1
        });
        if let Some((_, answers)) = by_topic.get_mut(slot) {
            answers.push(answer);
        }
    }
    // ACLs: Describe on each topic; listing all leaves the others out, asking names them.
    by_topic
        .into_iter()
        .filter_map(|(topic, answers)| {
            if ctx.allowed_on_topic(Operation::Describe, &topic) {
                Some((topic, answers))
            } else if listing_all {
                None
            } else {
                let code = ResponseError::TopicAuthorizationFailed.code();
                let denied = answers
                    .into_iter()
                    .map(|(partition, ..)| (partition, -1, -1, None, code))
                    .collect();
                Some((topic, denied))
            }
        })
        .collect()
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::OffsetFetchRequest,
) -> messages::OffsetFetchResponse {
    let response = messages::OffsetFetchResponse::default();
    let require_stable = version >= 7 && request.require_stable;
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                if !ctx.allowed_on_group(Operation::Describe, g.group_id.as_str()) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code());
                }
                if let Err(err) = ctx.broker.check_coordinator(g.group_id.as_str()) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(error_code::code(&err));
                }
                let asked = g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (text(&t.name), t.partition_indexes))
                        .collect()
                });
                let topics = lookup(ctx, g.group_id.as_str(), asked, require_stable)
                    .into_iter()
                    .map(|(topic, answers)| {
                        let partitions = answers
                            .into_iter()
                            .map(|(partition, offset, epoch, metadata, code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(partition)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(metadata.map(wire))
                                    .with_error_code(code)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(messages::TopicName(wire(topic)))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
                    .with_error_code(error_code::NONE)
            })
            .collect();
        return response.with_groups(groups);
    }
    // v0-1 have no top-level error code: they get no offsets.
    if !ctx.allowed_on_group(Operation::Describe, request.group_id.as_str()) {
        return if version >= 2 {
            response.with_error_code(ResponseError::GroupAuthorizationFailed.code())
        } else {
            response
        };
    }
    if let Err(err) = ctx.broker.check_coordinator(request.group_id.as_str()) {
        // v0-1 have no top-level error code: they get nothing, and look the coordinator up
        // again on their next failure.
        return if version >= 2 {
            response.with_error_code(error_code::code(&err))
        } else {
            response
        };
    }
    // v1 has no "all topics" form: a null list is read as empty.
    let asked = match request.topics {
        None if version < 2 => Some(Vec::new()),
        other => other.map(|topics| {
            topics
                .into_iter()
                .map(|t| (text(&t.name), t.partition_indexes))
                .collect()
        }),
    };
    let topics = lookup(ctx, request.group_id.as_str(), asked, require_stable)
        .into_iter()
        .map(|(topic, answers)| {
            let partitions = answers
                .into_iter()
                .map(|(partition, offset, epoch, metadata, code)| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(if version >= 5 { epoch } else { -1 })
                        .with_metadata(metadata.map(wire))
                        .with_error_code(code)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(messages::TopicName(wire(topic)))
                .with_partitions(partitions)
        })
        .collect();
    let response = response.with_topics(topics);
    if version >= 2 {
        response.with_error_code(error_code::NONE)
    } else {
        response
    }
}
