//! AlterPartitionReassignments (key 45), v0: per partition, a target replica list starts (or
//! replaces) a reassignment and null cancels the one in progress (KIP-455). Answered once the
//! controller recorded it; ListPartitionReassignments shows the move until it is done.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::AlterPartitionReassignmentsRequest,
) -> messages::AlterPartitionReassignmentsResponse {
    if !ctx.allowed_on_cluster(Operation::Alter) {
        return messages::AlterPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let replicas = partition
                .replicas
                .map(|replicas| replicas.into_iter().map(|id| id.0).collect());
            let outcome = ctx
                .broker
                .alter_reassignment(topic.name.as_str(), partition.partition_index, replicas)
                .await;
            let response = ReassignablePartitionResponse::default()
                .with_partition_index(partition.partition_index);
            partitions.push(match outcome {
                Ok(()) => response.with_error_code(error_code::NONE),
                Err(err) => response
                    .with_error_code(error_code::code(&err))
                    .with_error_message(error_code::message(&err)),
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    messages::AlterPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(error_code::NONE)
        .with_responses(responses)
}
