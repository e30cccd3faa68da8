//! ConsumerGroupDescribe (key 69), v0-v1: epochs, assignor and members (subscriptions, current
//! and target assignments) of KIP-848 consumer groups.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::protocol::StrBytes;

use super::group_wire::wire;
use crate::auth::acl::Operation;
use crate::broker::TopicPartition;
use crate::kafka::{Context, error_code, topic_id_to_uuid};

/// "Not requested" value of the authorized-operations field.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Member type of a member that joined with the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn assignment(ctx: &Context, partitions: &BTreeSet<TopicPartition>) -> Assignment {
    let mut topics: Vec<TopicPartitions> = Vec::new();
    for (topic, partition) in partitions {
        let Some(info) = ctx.broker.topic(topic) else {
            continue;
        };
        match topics.iter_mut().find(|t| t.topic_name.as_str() == topic) {
            Some(entry) => entry.partitions.push(*partition),
            None => topics.push(
                TopicPartitions::default()
                    .with_topic_id(topic_id_to_uuid(info.topic_id))
                    .with_topic_name(messages::TopicName(wire(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    Assignment::default().with_topic_partitions(topics)
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ConsumerGroupDescribeRequest,
) -> messages::ConsumerGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let described =
                DescribedGroup::default().with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            if !ctx.allowed_on_group(Operation::Describe, group_id.as_str()) {
                return described
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(err) = ctx.broker.check_coordinator(group_id.as_str()) {
                return described
                    .with_group_id(group_id)
                    .with_error_code(error_code::code(&err))
                    .with_error_message(error_code::message(&err));
            }
            let Some(group) = ctx.broker.describe_consumer_group(group_id.as_str()) else {
                return described
                    .with_group_id(group_id)
                    .with_group_state(StrBytes::from_static_str("Dead"))
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "no consumer group with this id",
                    )));
            };
            let members = group
                .members
                .values()
                .map(|m| {
                    let target = group.target.get(&m.member_id).cloned().unwrap_or_default();
                    let member = Member::default()
                        .with_member_id(wire(m.member_id.clone()))
                        .with_instance_id(m.instance_id.clone().map(wire))
                        .with_rack_id(m.rack_id.clone().map(wire))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(wire(m.client_id.clone()))
                        .with_client_host(wire(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed
                                .iter()
                                .map(|t| messages::TopicName(wire(t.clone())))
                                .collect(),
                        )
                        .with_assignment(assignment(ctx, &m.assigned))
                        .with_target_assignment(assignment(ctx, &target));
                    if version >= 1 {
                        member.with_member_type(MEMBER_TYPE_CONSUMER)
                    } else {
                        member
                    }
                })
                .collect();
            described
                .with_error_code(error_code::NONE)
                .with_group_id(group_id)
                .with_group_state(StrBytes::from_static_str(group.state_name()))
                .with_group_epoch(group.group_epoch)
                .with_assignment_epoch(group.assignment_epoch)
                .with_assignor_name(wire(group.assignor().to_owned()))
                .with_members(members)
        })
        .collect();
    messages::ConsumerGroupDescribeResponse::default().with_groups(groups)
}
