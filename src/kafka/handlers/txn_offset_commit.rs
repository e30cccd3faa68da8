//! TxnOffsetCommit (key 28), v0-v5: offsets committed inside a transaction
//! (`send_offsets_to_transaction`), visible once the transaction commits. v3+ carries the group
//! member (KIP-447); v5 is transactions v2 (the offsets partition joins the transaction itself).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::group_wire::{code, optional_text, text};
use crate::auth::acl::Operation;
use crate::broker::{CommitPartition, TxnCommit};
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::TxnOffsetCommitRequest,
) -> messages::TxnOffsetCommitResponse {
    // ACLs: Write on the transactional id and Read on the group (else every partition fails),
    // Read on each topic.
    if !ctx.allowed_on_transactional_id(Operation::Write, request.transactional_id.as_str()) {
        return denied(request, ResponseError::TransactionalIdAuthorizationFailed);
    }
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Every partition of the request answered `error`.
fn denied(
    request: messages::TxnOffsetCommitRequest,
    error: ResponseError,
) -> messages::TxnOffsetCommitResponse {
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
                        .with_error_code(error.code())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::TxnOffsetCommitResponse::default().with_topics(topics)
}
