//! AddPartitionsToTxn (key 24), v0-v5: v0-v3 (clients) add partitions to one transaction;
//! v4+ (the broker-to-broker form) batch several transactions, each possibly verify-only
//! (KIP-890: "is the partition already in the transaction?").

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};

use crate::auth::acl::Operation;
use crate::broker::{self, TopicPartition};
use crate::kafka::Context;
use crate::kafka::error_code;

/// First version of the batched (broker-to-broker) form.
const BATCHED_VERSION: i16 = 4;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::AddPartitionsToTxnRequest,
) -> messages::AddPartitionsToTxnResponse {
    let response = messages::AddPartitionsToTxnResponse::default();
    if version < BATCHED_VERSION {
        if let Some(denied) = denied(ctx, &request) {
            return response.with_results_by_topic_v3_and_below(by_topic(denied));
        }
        let results = ctx
            .broker
            .add_partitions_to_txn(
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                &partitions(&request.v3_and_below_topics),
            )
            .await;
        let codes = results
            .into_iter()
            .map(|(tp, result)| (tp, result.map_or_else(|e| error_code::code(&e), |()| 0)))
            .collect();
        return response.with_results_by_topic_v3_and_below(by_topic(codes));
    }
    // v4+ batches come from brokers (KIP-890): ClusterAction on the cluster.
    if !ctx.allowed_on_cluster(Operation::ClusterAction) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        let wanted = partitions(&transaction.topics);
        let codes = if transaction.verify_only {
            let mut codes = Vec::with_capacity(wanted.len());
            for tp in wanted {
                let verified = ctx
                    .broker
                    .verify_transaction(
                        &transaction.transactional_id,
                        transaction.producer_id.0,
                        transaction.producer_epoch,
                        &tp,
                        false,
                    )
                    .await;
                codes.push((tp, txn_code(verified)));
            }
            codes
        } else {
            let set = wanted.iter().cloned().collect();
            let added = ctx
                .broker
                .add_to_transaction(
                    &transaction.transactional_id,
                    transaction.producer_id.0,
                    transaction.producer_epoch,
                    &set,
                    0,
                )
                .await;
            let code = txn_code(added);
            wanted.into_iter().map(|tp| (tp, code)).collect()
        };
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(by_topic(codes)),
        );
    }
    response
        .with_error_code(error_code::NONE)
        .with_results_by_transaction(results)
}

fn txn_code(result: Result<(), broker::TxnError>) -> i16 {
    result.map_or_else(|e| error_code::for_txn_error(e).code(), |()| 0)
}

/// ACLs of a client's (v0-3) request: Write on the transactional id (else every partition
/// fails), then Write on every topic (else those fail and the rest are not attempted).
fn denied(
    ctx: &Context,
    request: &messages::AddPartitionsToTxnRequest,
) -> Option<Vec<(TopicPartition, i16)>> {
    let wanted = partitions(&request.v3_and_below_topics);
    if !ctx.allowed_on_transactional_id(
        Operation::Write,
        request.v3_and_below_transactional_id.as_str(),
    ) {
        let code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return Some(wanted.into_iter().map(|tp| (tp, code)).collect());
    }
    let denied_topics: std::collections::BTreeSet<String> = request
        .v3_and_below_topics
        .iter()
        .filter(|t| !ctx.allowed_on_topic(Operation::Write, t.name.as_str()))
        .map(|t| t.name.to_string())
        .collect();
    if denied_topics.is_empty() {
        return None;
    }
    Some(
        wanted
            .into_iter()
            .map(|tp| {
                let code = if denied_topics.contains(&tp.0) {
                    ResponseError::TopicAuthorizationFailed.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                };
                (tp, code)
            })
            .collect(),
    )
}

fn partitions(topics: &[AddPartitionsToTxnTopic]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| (topic.name.0.to_string(), *partition))
        })
        .collect()
}

/// Results grouped by topic, topics and partitions in request order.
fn by_topic(codes: Vec<(TopicPartition, i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in codes {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(code);
        match out.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(existing) => existing.results_by_partition.push(result),
            None => out.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(messages::TopicName(topic.into()))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    out
}
