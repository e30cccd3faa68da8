//! DeleteRecords (v0–2): moves each partition's log start offset forward through the broker
//! (offset -1 = the high watermark) and reports the new low watermark.

use kafka_protocol::messages;
use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};

use crate::kafka::{Context, error_code};

/// The low watermark reported with an error, as Kafka does.
const LOW_WATERMARK_UNKNOWN: i64 = -1;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DeleteRecordsRequest,
) -> messages::DeleteRecordsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| delete(ctx, topic))
        .collect();
    messages::DeleteRecordsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(topics)
}

fn delete(ctx: &Context, topic: &DeleteRecordsTopic) -> DeleteRecordsTopicResult {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            match ctx
                .broker
                .delete_records(topic.name.as_str(), p.partition_index, p.offset)
            {
                Ok(low_watermark) => result
                    .with_low_watermark(low_watermark)
                    .with_error_code(error_code::NONE),
                Err(err) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = p.partition_index, error = %err, "delete records failed");
                    result
                        .with_low_watermark(LOW_WATERMARK_UNKNOWN)
                        .with_error_code(error_code::code(&err))
                }
            }
        })
        .collect();
    DeleteRecordsTopicResult::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions)
}
