//! Metadata (key 3), v0-v13: the brokers and controller of the cluster view (this node alone
//! out of cluster mode), this node as the leader of every partition it holds; topics by name or (v10+) id; auto-creation when both request and broker allow it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::TopicInfo;
use crate::kafka::error_code;
use crate::kafka::{Context, topic_id_to_uuid, uuid_to_topic_id};

/// "Not requested" value of the authorized-operations bitfields.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Kafka ACL operation codes (AclOperation), as bit positions of the authorized-operations fields.
const OP_READ: u32 = 3;
const OP_WRITE: u32 = 4;
const OP_CREATE: u32 = 5;
const OP_DELETE: u32 = 6;
const OP_ALTER: u32 = 7;
const OP_DESCRIBE: u32 = 8;
const OP_CLUSTER_ACTION: u32 = 9;
const OP_DESCRIBE_CONFIGS: u32 = 10;
const OP_ALTER_CONFIGS: u32 = 11;
const OP_IDEMPOTENT_WRITE: u32 = 12;
/// Without ACLs every client may do every topic operation.
const TOPIC_OPERATIONS_ALL: i32 = bits(&[
    OP_READ,
    OP_WRITE,
    OP_CREATE,
    OP_DELETE,
    OP_ALTER,
    OP_DESCRIBE,
    OP_DESCRIBE_CONFIGS,
    OP_ALTER_CONFIGS,
]);
/// Without ACLs every client may do every cluster operation.
const CLUSTER_OPERATIONS_ALL: i32 = bits(&[
    OP_CREATE,
    OP_ALTER,
    OP_DESCRIBE,
    OP_CLUSTER_ACTION,
    OP_DESCRIBE_CONFIGS,
    OP_ALTER_CONFIGS,
    OP_IDEMPOTENT_WRITE,
]);

const fn bits(ops: &[u32]) -> i32 {
    let mut value = 0;
    let mut i = 0;
    while i < ops.len() {
        value |= 1 << ops[i];
        i += 1;
    }
    value
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::MetadataRequest,
) -> messages::MetadataResponse {
    let broker = &ctx.broker;
    let view = ctx.cluster_view();
    let brokers = view
        .brokers
        .iter()
        .map(|b| {
            messages::metadata_response::MetadataResponseBroker::default()
                .with_node_id(messages::BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        Some(topics) if version == 0 && topics.is_empty() => None,
        other => other,
    };
    // Auto-creation is implied before v4, then the client says whether it wants it.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let include_topic_operations = version >= 8 && request.include_topic_authorized_operations;
    let topics = match requested {
        // ACLs: listing all topics leaves out those the principal may not Describe.
        None => broker
            .topics()
            .into_iter()
            .filter(|info| ctx.allowed_on_topic(Operation::Describe, &info.name))
            .map(|info| topic_response(&info))
            .collect(),
        Some(topics) => requested_topics(ctx, version, topics, allow_auto_create).await,
    };
    let topics = if ctx.listener.is_default {
        topics
    } else {
        let reachable = view.brokers.iter().map(|b| b.id).collect();
        without_listener(topics, &reachable, &ctx.live_broker_ids(), version)
    };
    let topics = topics
        .into_iter()
        .map(|topic| {
            if include_topic_operations && topic.error_code == error_code::NONE {
                let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
                let operations = authorized(ctx, TOPIC_OPERATIONS_ALL, |op| {
                    ctx.allowed_on_topic(op, name)
                });
                topic.with_topic_authorized_operations(operations)
            } else {
                topic
            }
        })
        .collect();
    let cluster_operations =
        if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            authorized(ctx, CLUSTER_OPERATIONS_ALL, |op| ctx.allowed_on_cluster(op))
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
    messages::MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(
            Some(view.cluster_id)
                .filter(|id| !id.is_empty())
                .map(StrBytes::from_string),
        )
        .with_controller_id(messages::BrokerId(view.controller_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

/// The bits of `all` whose operation `allowed` allows (all of them without authorization).
fn authorized(ctx: &Context, all: i32, allowed: impl Fn(Operation) -> bool) -> i32 {
    if !ctx.authorizes() {
        return all;
    }
    Operation::ALL
        .into_iter()
        .filter(|op| {
            u32::try_from(op.code()).is_ok_and(|bit| all & (1 << bit) != 0) && allowed(*op)
        })
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Answers the requested topics in request order, once each.
async fn requested_topics(
    ctx: &Context,
    version: i16,
    topics: Vec<messages::metadata_request::MetadataRequestTopic>,
    allow_auto_create: bool,
) -> Vec<messages::metadata_response::MetadataResponseTopic> {
    let mut seen_names = std::collections::BTreeSet::new();
    let mut seen_ids = std::collections::BTreeSet::new();
    let mut responses = Vec::with_capacity(topics.len());
    for topic in topics {
        match topic.name {
            Some(name) => {
                if !seen_names.insert(name.0.clone()) {
                    continue;
                }
                responses.push(topic_by_name(ctx, name, allow_auto_create).await);
            }
            None if version >= 10 => {
                if !seen_ids.insert(topic.topic_id) {
                    continue;
                }
                let found = ctx.broker.topic_by_id(uuid_to_topic_id(topic.topic_id));
                responses.push(match found {
                    Some(info) if !ctx.allowed_on_topic(Operation::Describe, &info.name) => {
                        messages::metadata_response::MetadataResponseTopic::default()
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_name(None)
                            .with_topic_id(topic.topic_id)
                    }
                    Some(info) => topic_response(&info),
                    // Kafka answers an unknown id with a null name (the default is "").
                    None => messages::metadata_response::MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_name(None)
                        .with_topic_id(topic.topic_id),
                });
            }
            // Names are non-nullable before v10; the decoder never yields this.
            None => responses.push(
                messages::metadata_response::MetadataResponseTopic::default()
                    .with_error_code(ResponseError::InvalidRequest.code()),
            ),
        }
    }
    responses
}

async fn topic_by_name(
    ctx: &Context,
    name: messages::TopicName,
    allow_auto_create: bool,
) -> messages::metadata_response::MetadataResponseTopic {
    let denied = || {
        messages::metadata_response::MetadataResponseTopic::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_name(Some(name.clone()))
    };
    if !ctx.allowed_on_topic(Operation::Describe, &name) {
        return denied();
    }
    if let Some(info) = ctx.broker.topic(&name) {
        return topic_response(&info);
    }
    // Auto-creation needs Create on the cluster or on the topic.
    if allow_auto_create
        && !ctx.allowed_on_cluster(Operation::Create)
        && !ctx.allowed_on_topic(Operation::Create, &name)
    {
        return denied();
    }
    // Like Kafka, a topic that may not be auto-created is unknown, whatever its name.
    if !allow_auto_create {
        return messages::metadata_response::MetadataResponseTopic::default()
            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
            .with_name(Some(name));
    }
    let result = ctx.broker.auto_create_topic(&name).await;
    match result {
        Ok(info) => {
            tracing::debug!(topic = %info.name, "auto-created topic");
            topic_response(&info)
        }
        Err(err) => {
            tracing::debug!(topic = %name.0, error = %err, "metadata for unknown topic");
            messages::metadata_response::MetadataResponseTopic::default()
                .with_error_code(error_code::code(&err))
                .with_name(Some(name))
        }
    }
}

/// Kafka's answer for a partition whose leader is live but has no listener of the client's
/// name: no leader, LISTENER_NOT_FOUND (v6+; LEADER_NOT_AVAILABLE before), so the client does
/// not try a broker it cannot reach on this listener.
fn without_listener(
    topics: Vec<messages::metadata_response::MetadataResponseTopic>,
    reachable: &std::collections::BTreeSet<i32>,
    live: &std::collections::BTreeSet<i32>,
    version: i16,
) -> Vec<messages::metadata_response::MetadataResponseTopic> {
    let error = if version >= 6 {
        ResponseError::ListenerNotFound
    } else {
        ResponseError::LeaderNotAvailable
    };
    topics
        .into_iter()
        .map(|mut topic| {
            for partition in &mut topic.partitions {
                let leader = partition.leader_id.0;
                if partition.error_code == error_code::NONE
                    && !reachable.contains(&leader)
                    && live.contains(&leader)
                {
                    partition.error_code = error.code();
                    partition.leader_id = messages::BrokerId(-1);
                }
            }
            topic
        })
        .collect()
}

fn topic_response(info: &TopicInfo) -> messages::metadata_response::MetadataResponseTopic {
    let ids = |ids: &[i32]| {
        ids.iter()
            .map(|&id| messages::BrokerId(id))
            .collect::<Vec<_>>()
    };
    let partitions = info
        .partitions
        .iter()
        .map(|p| {
            let partition = messages::metadata_response::MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas));
            match p.leader {
                // As Kafka reports a partition whose only replica is offline.
                Some(leader) if !p.is_offline => partition
                    .with_error_code(error_code::NONE)
                    .with_leader_id(messages::BrokerId(leader))
                    .with_isr_nodes(ids(&p.isr))
                    .with_offline_replicas(Vec::new()),
                _ => partition
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(messages::BrokerId(-1))
                    .with_isr_nodes(Vec::new())
                    .with_offline_replicas(ids(&p.replicas)),
            }
        })
        .collect();
    messages::metadata_response::MetadataResponseTopic::default()
        .with_error_code(error_code::NONE)
        .with_name(Some(messages::TopicName(StrBytes::from_string(
            info.name.clone(),
        ))))
        .with_topic_id(topic_id_to_uuid(info.topic_id))
        .with_is_internal(info.is_internal)
        .with_partitions(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operation_bitfields_match_kafka() {
        // Values a Kafka 4.x broker reports to a super user.
        assert_eq!(TOPIC_OPERATIONS_ALL, 3576);
        assert_eq!(CLUSTER_OPERATIONS_ALL, 8096);
    }
}
