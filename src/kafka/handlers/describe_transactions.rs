//! DescribeTransactions (key 65), v0: the coordinator's view of each transactional id (state,
//! producer id and epoch, timeout, start time, partitions).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeTransactionsRequest,
) -> messages::DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id(messages::ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            if !ctx.allowed_on_transactional_id(Operation::Describe, id.as_str()) {
                return state
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            match ctx.broker.describe_transaction(&id) {
                Ok(described) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, partition) in described.partitions {
                        match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                            Some(existing) => existing.partitions.push(partition),
                            None => topics.push(
                                TopicData::default()
                                    .with_topic(messages::TopicName(StrBytes::from_string(topic)))
                                    .with_partitions(vec![partition]),
                            ),
                        }
                    }
                    state
                        .with_error_code(error_code::NONE)
                        .with_transaction_state(StrBytes::from_static_str(described.state.name()))
                        .with_transaction_timeout_ms(described.timeout_ms)
                        .with_transaction_start_time_ms(described.start_ms)
                        .with_producer_id(messages::ProducerId(described.producer_id))
                        .with_producer_epoch(described.producer_epoch)
                        .with_topics(topics)
                }
                Err(err) => state.with_error_code(error_code::code(&err)),
            }
        })
        .collect();
    messages::DescribeTransactionsResponse::default().with_transaction_states(states)
}
