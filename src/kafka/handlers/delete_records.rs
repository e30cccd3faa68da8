//! DeleteRecords (v0–2): moves each partition's log start offset forward through the broker
//! (offset -1 = the high watermark) and reports the new low watermark.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};

use crate::auth::acl::Operation;
use crate::kafka::{Context, error_code};

/// Bounds of the request's own timeout (how long a replicated partition's leader waits for
/// the move to be committed and its log start to follow).
const TIMEOUT_MIN: Duration = Duration::from_millis(100);
const TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// The low watermark reported with an error, as Kafka does.
const LOW_WATERMARK_UNKNOWN: i64 = -1;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DeleteRecordsRequest,
) -> messages::DeleteRecordsResponse {
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0))
        .clamp(TIMEOUT_MIN, TIMEOUT_MAX);
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        topics.push(delete(ctx, topic, timeout).await);
    }
    messages::DeleteRecordsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(topics)
}

async fn delete(
    ctx: &Context,
    topic: &DeleteRecordsTopic,
    timeout: Duration,
) -> DeleteRecordsTopicResult {
    let mut partitions = Vec::with_capacity(topic.partitions.len());
    // ACLs: Delete on the topic.
    let denied = !ctx.allowed_on_topic(Operation::Delete, topic.name.as_str());
    for p in &topic.partitions {
        let result =
            DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
        if denied {
            partitions.push(
                result
                    .with_low_watermark(LOW_WATERMARK_UNKNOWN)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let deleted = ctx
            .broker
            .delete_records(topic.name.as_str(), p.partition_index, p.offset, timeout)
            .await;
        partitions.push(match deleted {
                Ok(low_watermark) => result
                    .with_low_watermark(low_watermark)
                    .with_error_code(error_code::NONE),
                Err(err) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = p.partition_index, error = %err, "delete records failed");
                    result
                        .with_low_watermark(LOW_WATERMARK_UNKNOWN)
                        .with_error_code(error_code::code(&err))
                }
        });
    }
    DeleteRecordsTopicResult::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions)
}
