//! OffsetCommit (key 8), v2-v9: commits offsets (with leader epoch and metadata) for a group,
//! durably, as records of the offsets topic; per-partition error codes in request order.

use kafka_protocol::messages;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};

use super::group_wire::{code, optional_text, text};
use crate::broker::CommitPartition;
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::OffsetCommitRequest,
) -> messages::OffsetCommitResponse {
    let partitions: Vec<CommitPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
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
            let count = request.topics.iter().map(|t| t.partitions.len()).sum();
            vec![error_code::code(err); count].into_iter()
        }
    };
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
                        .with_error_code(codes.next().unwrap_or(error_code::NONE))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::OffsetCommitResponse::default().with_topics(topics)
}
