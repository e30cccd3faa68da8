//! ConsumerGroupHeartbeat (key 68), v0-v1: the KIP-848 consumer protocol (`group.protocol=consumer`);
//! joins (epoch 0), heartbeats and leaves (epoch -1/-2) with a server-side assignor.
//! Topic ids on the wire become topic names for the coordinator and back.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};

use super::group_wire::{optional_text, text, wire};
use crate::auth::acl::Operation;
use crate::broker::{self, ConsumerHeartbeat};
use crate::kafka::{Context, error_code, topic_id_to_uuid, uuid_to_topic_id};

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::ConsumerGroupHeartbeatRequest,
) -> messages::ConsumerGroupHeartbeatResponse {
    if !ctx.allowed_on_group(Operation::Read, request.group_id.as_str()) {
        return messages::ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let response = messages::ConsumerGroupHeartbeatResponse::default();
    let fail = |err: &broker::Error| {
        messages::ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error_code::code(err))
            .with_error_message(error_code::message(err))
    };
    if request.subscribed_topic_regex.is_some() && request.subscribed_topic_names.is_none() {
        return fail(&broker::Error::InvalidGroupRequest {
            reason: "subscribed_topic_regex is not supported; subscribe to topic names",
        });
    }
    let owned = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .filter_map(|t| {
                let topic = ctx.broker.topic_by_id(uuid_to_topic_id(t.topic_id))?;
                Some(t.partitions.iter().map(move |p| (topic.name.clone(), *p)))
            })
            .flatten()
            .collect()
    });
    let heartbeat = ConsumerHeartbeat {
        member_id: text(&request.member_id),
        member_epoch: request.member_epoch,
        instance_id: optional_text(request.instance_id.as_ref()),
        rack_id: optional_text(request.rack_id.as_ref()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        subscribed_topics: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| text(n)).collect()),
        server_assignor: optional_text(request.server_assignor.as_ref()),
        owned,
    };
    let answer = match ctx
        .broker
        .consumer_heartbeat(request.group_id.as_str(), heartbeat)
    {
        Ok(answer) => answer,
        Err(err) => return fail(&err),
    };
    let assignment = answer.assignment.map(|partitions| {
        let mut topics: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in partitions {
            let Some(info) = ctx.broker.topic(&topic) else {
                continue;
            };
            let topic_id = topic_id_to_uuid(info.topic_id);
            match topics.iter_mut().find(|t| t.topic_id == topic_id) {
                Some(entry) => entry.partitions.push(partition),
                None => topics.push(
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        Assignment::default().with_topic_partitions(topics)
    });
    response
        .with_error_code(error_code::NONE)
        .with_member_id(Some(wire(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(ctx.broker.consumer_heartbeat_interval_ms())
        .with_assignment(assignment)
}
