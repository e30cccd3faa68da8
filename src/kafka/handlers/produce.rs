//! Produce (key 0), v3-v13: appends every partition's batches synchronously in request order,
//! then returns a future that waits for the durability acks asked for. acks=0 gets no response.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{self, Acks, PendingProduce, ProduceOutcome};
use crate::kafka::error_code;
use crate::kafka::{Context, uuid_to_topic_id};

/// The rest of a produce request once its appends happened.
pub(crate) type PendingResponse = Pin<Box<dyn Future<Output = messages::ProduceResponse> + Send>>;

/// What the synchronous part of a produce request leaves to do.
#[must_use]
pub(crate) enum Produced {
    /// Await, then send the response.
    Respond(PendingResponse),
    /// acks=0: no response is sent; `failed_partitions` could not be appended.
    NoResponse { failed_partitions: usize },
}

impl std::fmt::Debug for Produced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Produced::Respond(_) => f.write_str("Respond(..)"),
            Produced::NoResponse { failed_partitions } => f
                .debug_struct("NoResponse")
                .field("failed_partitions", failed_partitions)
                .finish(),
        }
    }
}

/// One partition's state between append and response.
enum Slot {
    Appended(PendingProduce),
    Failed(ResponseError, Option<StrBytes>),
}

/// Bit of the record batch attributes that marks a transactional batch.
const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
/// Position of the attributes (i16) and batch length (i32) in a v2 batch header.
const ATTRIBUTES_POSITION: usize = 21;
const BATCH_LENGTH_POSITION: usize = 8;
/// Bytes before the batch length counts: base offset + batch length.
const BATCH_LOG_OVERHEAD: usize = 12;

/// Appends in request order (before returning) and builds the response future.
pub(crate) fn handle(ctx: &Context, version: i16, request: messages::ProduceRequest) -> Produced {
    let acks = Acks::from_wire(request.acks);
    let is_transactional = request.transactional_id.is_some();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut failed_partitions = 0;
    for topic in request.topic_data {
        // v13 addresses topics by id only; older versions by name.
        let name = if version >= 13 {
            ctx.broker
                .topic_by_id(uuid_to_topic_id(topic.topic_id))
                .map(|info| info.name)
        } else {
            Some(topic.name.0.to_string())
        };
        let mut slots = Vec::with_capacity(topic.partition_data.len());
        for partition in topic.partition_data {
            let records = partition.records.unwrap_or_default();
            let slot = match (&name, acks) {
                (None, _) => Slot::Failed(ResponseError::UnknownTopicId, None),
                (Some(_), None) => Slot::Failed(ResponseError::InvalidRequiredAcks, None),
                (Some(_), Some(_)) if is_transactional || has_transactional_batch(&records) => {
                    Slot::Failed(
                        ResponseError::InvalidRequest,
                        Some(StrBytes::from_static_str("transactions are not supported")),
                    )
                }
                (Some(name), Some(acks)) => append(ctx, name, partition.index, records, acks),
            };
            if matches!(slot, Slot::Failed(..)) {
                failed_partitions += 1;
            }
            slots.push((partition.index, slot));
        }
        topics.push((topic.name, topic.topic_id, slots));
    }
    if acks == Some(Acks::None) {
        return Produced::NoResponse { failed_partitions };
    }
    let timeout = u64::try_from(request.timeout_ms)
        .ok()
        .map(Duration::from_millis);
    Produced::Respond(Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, topic_id, slots) in topics {
            let mut partition_responses = Vec::with_capacity(slots.len());
            for (index, slot) in slots {
                let response = match slot {
                    Slot::Appended(pending) => wait(pending, timeout).await,
                    Slot::Failed(error, message) => Err((error, message)),
                };
                partition_responses.push(partition_response(version, index, response));
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(partition_responses),
            );
        }
        messages::ProduceResponse::default().with_responses(responses)
    }))
}

fn append(ctx: &Context, topic: &str, partition: i32, records: Bytes, acks: Acks) -> Slot {
    match ctx.broker.append(topic, partition, records, acks) {
        Ok(pending) => Slot::Appended(pending),
        Err(err) => {
            tracing::debug!(topic, partition, error = %err, "produce rejected");
            Slot::Failed(
                error_code::for_broker_error(&err),
                error_code::message(&err),
            )
        }
    }
}

type PartitionResult = Result<ProduceOutcome, (ResponseError, Option<StrBytes>)>;

/// Waits for durability, at most `timeout` (the request's `timeout_ms`).
async fn wait(pending: PendingProduce, timeout: Option<Duration>) -> PartitionResult {
    let waited = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, pending.wait()).await,
        None => Ok(pending.wait().await),
    };
    match waited {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(err)) => Err(broker_failure(&err)),
        Err(_elapsed) => Err((ResponseError::RequestTimedOut, None)),
    }
}

fn broker_failure(err: &broker::Error) -> (ResponseError, Option<StrBytes>) {
    tracing::warn!(error = %err, "produce failed after append");
    (error_code::for_broker_error(err), error_code::message(err))
}

fn partition_response(
    version: i16,
    index: i32,
    result: PartitionResult,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(outcome) => response
            .with_error_code(error_code::NONE)
            .with_base_offset(outcome.base_offset)
            .with_log_append_time_ms(outcome.log_append_time_ms)
            .with_log_start_offset(outcome.log_start_offset),
        Err((error, message)) => response
            .with_error_code(error.code())
            .with_base_offset(-1)
            .with_error_message(if version >= 8 { message } else { None }),
    }
}

/// Whether any batch in `records` has the transactional attribute. Stops quietly at bytes it
/// cannot frame: the broker's validation reports those.
fn has_transactional_batch(records: &[u8]) -> bool {
    let mut rest = records;
    while let Some(attributes) = rest.get(ATTRIBUTES_POSITION..ATTRIBUTES_POSITION + 2) {
        let attributes = i16::from_be_bytes([attributes[0], attributes[1]]);
        if attributes & ATTRIBUTE_TRANSACTIONAL != 0 {
            return true;
        }
        let Some(length) = rest.get(BATCH_LENGTH_POSITION..BATCH_LENGTH_POSITION + 4) else {
            return false;
        };
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let Ok(length) = usize::try_from(length) else {
            return false;
        };
        let Some(next) = rest.get(BATCH_LOG_OVERHEAD.saturating_add(length)..) else {
            return false;
        };
        rest = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_header(attributes: i16, batch_length: i32) -> Vec<u8> {
        let mut header = vec![0u8; 61];
        header[8..12].copy_from_slice(&batch_length.to_be_bytes());
        header[21..23].copy_from_slice(&attributes.to_be_bytes());
        header
    }

    #[test]
    fn transactional_attribute_is_found_in_any_batch() {
        let plain = batch_header(0, 49);
        let transactional = batch_header(ATTRIBUTE_TRANSACTIONAL, 49);
        assert!(!has_transactional_batch(&plain));
        assert!(has_transactional_batch(&transactional));
        assert!(has_transactional_batch(
            &[plain.clone(), transactional].concat()
        ));
        assert!(!has_transactional_batch(&[plain.clone(), plain].concat()));
        assert!(!has_transactional_batch(&[]));
        assert!(!has_transactional_batch(&batch_header(0, -7)));
        assert!(!has_transactional_batch(&batch_header(0, i32::MAX)));
    }
}
