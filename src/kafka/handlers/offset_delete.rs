//! OffsetDelete (key 47), v0: deletes committed offsets of a group, except for topics a
//! non-empty consumer group is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::protocol::Decodable;

use super::group_wire::text;
use crate::auth::acl::Operation;
use crate::broker::GroupState;
use crate::kafka::{Context, error_code};

/// Topics the members of a non-empty "consumer" group subscribe to, from their
/// ConsumerProtocolSubscription metadata (version prefix, then the v0+ body).
fn subscribed_topics(ctx: &Context, group_id: &str) -> Option<BTreeSet<String>> {
    let (state, protocol_type, metadata) = ctx.broker.group_subscriptions(group_id)?;
    // KIP-848 members state their subscriptions directly.
    let mut topics = ctx.broker.consumer_subscriptions(group_id);
    if state == GroupState::Empty || protocol_type != "consumer" {
        return Some(topics);
    }
    for bytes in metadata {
        let mut buf = bytes.clone();
        let Some(version) = buf.get(..2).map(|v| i16::from_be_bytes([v[0], v[1]])) else {
            continue;
        };
        let mut body = buf.split_off(2);
        let version = version.clamp(0, 3);
        if let Ok(subscription) = messages::ConsumerProtocolSubscription::decode(&mut body, version)
        {
            topics.extend(subscription.topics.iter().map(text));
        }
    }
    Some(topics)
}

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::OffsetDeleteRequest,
) -> messages::OffsetDeleteResponse {
    let group_id = text(&request.group_id);
    let response = messages::OffsetDeleteResponse::default();
    // ACLs: Delete on the group, Read on each topic.
    if !ctx.allowed_on_group(Operation::Delete, &group_id) {
        return response.with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let denied: std::collections::BTreeSet<String> = request
        .topics
        .iter()
        .filter(|t| !ctx.allowed_on_topic(Operation::Read, t.name.as_str()))
        .map(|t| text(&t.name))
        .collect();
    let Some(subscribed) = subscribed_topics(ctx, &group_id) else {
        return response.with_error_code(ResponseError::GroupIdNotFound.code());
    };
    let deletable: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| !subscribed.contains(t.name.as_str()) && !denied.contains(t.name.as_str()))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (text(&t.name), p.partition_index))
        })
        .collect();
    if let Err(err) = ctx.broker.delete_offsets(&group_id, &deletable).await {
        return response.with_error_code(error_code::code(&err));
    }
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let code = if denied.contains(t.name.as_str()) {
                ResponseError::TopicAuthorizationFailed.code()
            } else if subscribed.contains(t.name.as_str()) {
                ResponseError::GroupSubscribedToTopic.code()
            } else {
                error_code::NONE
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    response
        .with_error_code(error_code::NONE)
        .with_topics(topics)
}
