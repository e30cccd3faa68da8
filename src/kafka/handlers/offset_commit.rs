//! OffsetCommit (key 8), v2-v9: commits offsets (with leader epoch and metadata) for a group,
//! durably, as records of the offsets topic; per-partition error codes in request order.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};

use super::group_wire::{code, optional_text, text};
use crate::auth::acl::Operation;
use crate::broker::CommitPartition;
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::OffsetCommitRequest,
) -> messages::OffsetCommitResponse {
    // ACLs: Read on the group (else every partition fails) and on each topic.
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return denied(request, ResponseError::GroupAuthorizationFailed);
    }
    let topic_allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| ctx.allowed_on_topic(Operation::Read, t.name.as_str()))
        .collect();
    let partitions: Vec<CommitPartition> = request
        .topics
        .iter()
        .zip(&topic_allowed)
        .filter(|(_, allowed)| **allowed)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(|p| CommitPartition {
                topic: text(&t.name),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(text),
            })
        })
        .collect();
    // v2-v4 may ask for a retention time; -1 means the broker's offsets.retention.minutes.
    let retention_ms =
        (version <= 4 && request.retention_time_ms >= 0).then_some(request.retention_time_ms);
    let result = ctx
        .broker
        .commit_offsets(
            &text(&request.group_id),
            request.generation_id_or_member_epoch,
            &text(&request.member_id),
            optional_text(request.group_instance_id.as_ref()).as_deref(),
            retention_ms,
            partitions,
        )
        .await;
    let mut codes = match &result {
        Ok(results) => results.iter().map(code).collect::<Vec<_>>().into_iter(),
        Err(err) => {
            let count = request
                .topics
                .iter()
                .zip(&topic_allowed)
                .filter(|(_, allowed)| **allowed)
                .map(|(t, _)| t.partitions.len())
                .sum();
            vec![error_code::code(err); count].into_iter()
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(topic_allowed)
        .map(|(t, allowed)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if allowed {
                        codes.next().unwrap_or(error_code::NONE)
                    } else {
                        ResponseError::TopicAuthorizationFailed.code()
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::OffsetCommitResponse::default().with_topics(topics)
}

/// Every partition of the request answered `error`.
fn denied(
    request: messages::OffsetCommitRequest,
    error: ResponseError,
) -> messages::OffsetCommitResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::OffsetCommitResponse::default().with_topics(topics)
}
