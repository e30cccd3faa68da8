//! OffsetForLeaderEpoch (key 23), v2-v4: where a leader epoch ends, so consumers can detect log
//! truncation (KIP-320). The epoch history itself lives in the broker.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};

use super::leader_epoch_error;
use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::OffsetForLeaderEpochRequest,
) -> messages::OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let info = ctx.broker.topic(&topic.topic);
        let denied = !ctx.allowed_on_topic(Operation::Describe, topic.topic.as_str());
        let partitions = topic
            .partitions
            .into_iter()
            .map(|p| {
                let ours = info
                    .as_ref()
                    .and_then(|info| info.partitions.iter().find(|o| o.partition == p.partition));
                let result = match ours {
                    _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    Some(ours) => {
                        match leader_epoch_error(p.current_leader_epoch, ours.leader_epoch) {
                            Some(error) => Err(error),
                            None => ctx
                                .broker
                                .leader_epoch_end_offset(&topic.topic, p.partition, p.leader_epoch)
                                .map_err(|err| error_code::for_broker_error(&err)),
                        }
                    }
                };
                tracing::debug!(
                    topic = topic.topic.as_str(),
                    partition = p.partition,
                    current_leader_epoch = p.current_leader_epoch,
                    leader_epoch = p.leader_epoch,
                    answer = ?result,
                    "epoch end offset answered"
                );
                let response = EpochEndOffset::default().with_partition(p.partition);
                match result {
                    Ok((leader_epoch, end_offset)) => response
                        .with_error_code(error_code::NONE)
                        .with_leader_epoch(leader_epoch)
                        .with_end_offset(end_offset),
                    Err(error) => response
                        .with_error_code(error.code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1),
                }
            })
            .collect();
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    messages::OffsetForLeaderEpochResponse::default().with_topics(topics)
}
