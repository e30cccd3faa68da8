//! DescribeProducers (key 61), v0: the idempotent and transactional producers each partition
//! keeps state for (epoch, last sequence, open transaction), as `kafka-transactions.sh` shows.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeProducersRequest,
) -> messages::DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            // ACLs: Read on the topic.
            let denied = !ctx.allowed_on_topic(Operation::Read, topic.name.as_str());
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    if denied {
                        return response
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match ctx.broker.describe_producers(&topic.name, index) {
                        Ok(producers) => response
                            .with_error_code(error_code::NONE)
                            .with_active_producers(
                                producers
                                    .into_iter()
                                    .map(|p| {
                                        ProducerState::default()
                                            .with_producer_id(messages::ProducerId(p.producer_id))
                                            .with_producer_epoch(i32::from(p.producer_epoch))
                                            .with_last_sequence(p.last_sequence)
                                            .with_last_timestamp(p.last_timestamp)
                                            .with_coordinator_epoch(p.coordinator_epoch)
                                            .with_current_txn_start_offset(
                                                p.current_txn_start_offset,
                                            )
                                    })
                                    .collect(),
                            ),
                        Err(err) => response
                            .with_error_code(error_code::code(&err))
                            .with_error_message(error_code::message(&err)),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    messages::DescribeProducersResponse::default().with_topics(topics)
}
