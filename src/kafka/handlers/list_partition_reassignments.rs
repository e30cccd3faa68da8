//! ListPartitionReassignments (key 46), v0: the reassignments in progress (KIP-455) with their
//! full replica list, the replicas being added and those being removed; of every partition, or
//! of the partitions named (a named partition with none in progress is left out, as in Kafka).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{self, BrokerId};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::ListPartitionReassignmentsRequest,
) -> messages::ListPartitionReassignmentsResponse {
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return messages::ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted: Option<Vec<(String, i32)>> = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|&p| (t.name.to_string(), p)))
            .collect()
    });
    let brokers = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for moving in ctx.broker.reassignments(wanted.as_deref()) {
        by_topic.entry(moving.topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(moving.partition)
                .with_replicas(brokers(moving.replicas))
                .with_adding_replicas(brokers(moving.adding))
                .with_removing_replicas(brokers(moving.removing)),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OngoingTopicReassignment::default()
                .with_name(messages::TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    messages::ListPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(error_code::NONE)
        .with_topics(topics)
}
