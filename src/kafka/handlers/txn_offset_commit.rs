//! TxnOffsetCommit (key 28), v0-v5: offsets committed inside a transaction
//! (`send_offsets_to_transaction`), visible once the transaction commits. v3+ carries the group
//! member (KIP-447); v5 is transactions v2 (the offsets partition joins the transaction itself).

use kafka_protocol::messages;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::group_wire::{code, optional_text, text};
use crate::broker::{CommitPartition, TxnCommit};
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::TxnOffsetCommitRequest,
) -> messages::TxnOffsetCommitResponse {
    let partitions: Vec<CommitPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitPartition {
                topic: text(&t.name),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(text),
            })
        })
        .collect();
    let (member_id, generation, instance_id) = if version >= 3 {
        (
            text(&request.member_id),
            request.generation_id,
            optional_text(request.group_instance_id.as_ref()),
        )
    } else {
        (String::new(), -1, None)
    };
    let commit = TxnCommit {
        transactional_id: text(&request.transactional_id),
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        group_id: text(&request.group_id),
        member_id,
        generation,
        instance_id,
        version,
    };
    let result = ctx.broker.commit_txn_offsets(commit, partitions).await;
    let mut codes = match &result {
        Ok(results) => results.iter().map(code).collect::<Vec<_>>().into_iter(),
        Err(err) => {
            tracing::debug!(error = %err, "TxnOffsetCommit refused");
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(error_code::NONE))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::TxnOffsetCommitResponse::default().with_topics(topics)
}
