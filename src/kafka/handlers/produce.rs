//! Produce (key 0), v3-v13: appends every partition's batches in request order (a transactional
//! batch first awaits the coordinator's verification), then returns a future that waits for the
//! durability acks asked for. acks=0 gets no response.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::auth::acl::Operation;
use crate::broker::Metered;
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

/// One partition's state between append and response; `P` waits for its durability.
enum Slot<P> {
    Appended(P),
    Failed(ResponseError, Option<StrBytes>),
    /// NOT_LEADER_OR_FOLLOWER with the leader's (id, epoch) for KIP-951 clients.
    NotLeader((i32, i32), Option<StrBytes>),
}

/// A topic's partitions between append and response.
type TopicSlots<P> = (messages::TopicName, uuid::Uuid, Vec<(i32, Slot<P>)>);

/// Bit of the record batch attributes that marks a transactional batch.
const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
/// Position of the attributes (i16) and batch length (i32) in a v2 batch header.
const ATTRIBUTES_POSITION: usize = 21;
const BATCH_LENGTH_POSITION: usize = 8;
/// Bytes before the batch length counts: base offset + batch length.
const BATCH_LOG_OVERHEAD: usize = 12;

/// Appends in request order (before returning) and builds the response future.
pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ProduceRequest,
) -> Produced {
    let acks = Acks::from_wire(request.acks);
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
    // Kafka: transactional records without a transactional id fail the whole request.
    let is_transactional = request.topic_data.iter().any(|topic| {
        topic.partition_data.iter().any(|p| {
            p.records
                .as_deref()
                .is_some_and(|records| scan_batches(records).is_transactional)
        })
    });
    // ACLs: transactional records need Write on their transactional id.
    let is_unauthorized = is_transactional
        && transactional_id
            .as_deref()
            .is_none_or(|id| !ctx.allowed_on_transactional_id(Operation::Write, id));
    let produced_bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut failed_partitions = 0;
    let mut hinted = std::collections::BTreeSet::new();
    for topic in request.topic_data {
        // v13 addresses topics by id only; older versions by name.
        let name = if version >= 13 {
            ctx.broker
                .topic_by_id(uuid_to_topic_id(topic.topic_id))
                .map(|info| info.name)
        } else {
            Some(topic.name.0.to_string())
        };
        let topic_denied = name
            .as_deref()
            .is_some_and(|name| !ctx.allowed_on_topic(Operation::Write, name));
        let mut slots = Vec::with_capacity(topic.partition_data.len());
        for partition in topic.partition_data {
            let records = partition.records.unwrap_or_default();
            let slot = match (&name, acks) {
                _ if is_unauthorized => Slot::Failed(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    Some(StrBytes::from_static_str(
                        "transactional records need a transactional id the principal may write",
                    )),
                ),
                _ if topic_denied => Slot::Failed(ResponseError::TopicAuthorizationFailed, None),
                (None, _) => Slot::Failed(ResponseError::UnknownTopicId, None),
                (Some(_), None) => Slot::Failed(ResponseError::InvalidRequiredAcks, None),
                (Some(name), Some(acks)) => match request_level_error(&records) {
                    Some((error, message)) => Slot::Failed(error, message),
                    None => {
                        let txn = transactional_id.as_deref().map(|id| (id, version));
                        let appended = append(ctx, name, partition.index, records, acks, txn).await;
                        let hint = match &appended {
                            Err(broker::Error::NotLeader { .. }) => {
                                ctx.leader_hint(name, partition.index)
                            }
                            _ => None,
                        };
                        slot(name, partition.index, appended, hint)
                    }
                },
            };
            match &slot {
                Slot::Failed(..) => failed_partitions += 1,
                Slot::NotLeader((leader, _), _) => {
                    failed_partitions += 1;
                    hinted.insert(*leader);
                }
                Slot::Appended(_) => {}
            }
            slots.push((partition.index, slot));
        }
        topics.push((topic.name, topic.topic_id, slots));
    }
    if acks == Some(Acks::None) {
        return Produced::NoResponse { failed_partitions };
    }
    // timeout_ms bounds the durability wait of the whole request, from now; 0 or less means
    // "do not time out" here, since a single node has no replicas to wait for beyond its own
    // fsync.
    let deadline = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let endpoints = ctx
        .endpoints_of(&hinted)
        .into_iter()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(messages::BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    // Quotas: the bytes count against producer_byte_rate; over it, the answer waits (and says
    // so in throttle_time_ms), which holds the connection's later requests back too.
    let throttle_ms = ctx.meter_quota(Metered::Produce, produced_bytes);
    Produced::Respond(Box::pin(async move {
        let response = respond(version, topics, deadline, endpoints).await;
        throttled(response, throttle_ms).await
    }))
}

async fn throttled(
    response: messages::ProduceResponse,
    throttle_ms: u64,
) -> messages::ProduceResponse {
    if throttle_ms == 0 {
        return response;
    }
    tokio::time::sleep(Duration::from_millis(throttle_ms)).await;
    response.with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX))
}

/// Waits for every appended partition until the one `deadline` (Kafka's delayed produce: a
/// partition not durable by then is REQUEST_TIMED_OUT), then builds the response.
async fn respond<P>(
    version: i16,
    topics: Vec<TopicSlots<P>>,
    deadline: Option<Instant>,
    endpoints: Vec<NodeEndpoint>,
) -> messages::ProduceResponse
where
    P: Future<Output = broker::Result<ProduceOutcome>>,
{
    let mut responses = Vec::with_capacity(topics.len());
    for (name, topic_id, slots) in topics {
        let mut partition_responses = Vec::with_capacity(slots.len());
        for (index, slot) in slots {
            let (response, hint) = match slot {
                Slot::Appended(pending) => (wait(pending, deadline).await, None),
                Slot::Failed(error, message) => (Err((error, message)), None),
                Slot::NotLeader(hint, message) => (
                    Err((ResponseError::NotLeaderOrFollower, message)),
                    Some(hint),
                ),
            };
            let mut response = partition_response(version, index, response);
            if let Some((leader, epoch)) = hint.filter(|_| version >= 10) {
                response = response.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(messages::BrokerId(leader))
                        .with_leader_epoch(epoch),
                );
            }
            partition_responses.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    let response = messages::ProduceResponse::default().with_responses(responses);
    if version >= 10 {
        response.with_node_endpoints(endpoints)
    } else {
        response
    }
}

/// Appends one partition's records (a transactional batch first awaits its verification).
async fn append(
    ctx: &Context,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: Acks,
    transactional: Option<(&str, i16)>,
) -> broker::Result<PendingProduce> {
    match transactional {
        None => {
            ctx.broker
                .append_off_worker(topic, partition, records, acks)
                .await
        }
        Some((transactional_id, version)) => {
            ctx.broker
                .append_transactional(topic, partition, records, acks, transactional_id, version)
                .await
        }
    }
}

/// What a partition's append leaves to wait for.
fn slot(
    topic: &str,
    partition: i32,
    appended: broker::Result<PendingProduce>,
    hint: Option<(i32, i32)>,
) -> Slot<impl Future<Output = broker::Result<ProduceOutcome>> + use<>> {
    match appended {
        Ok(pending) => Slot::Appended(pending.wait()),
        Err(err @ broker::Error::NotLeader { .. }) => match hint {
            Some(hint) => Slot::NotLeader(hint, error_code::message(&err)),
            None => Slot::Failed(
                error_code::for_broker_error(&err),
                error_code::message(&err),
            ),
        },
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

/// Waits for durability, at most until `deadline` (the request's `timeout_ms` after it came).
async fn wait(
    pending: impl Future<Output = broker::Result<ProduceOutcome>>,
    deadline: Option<Instant>,
) -> PartitionResult {
    let waited = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, pending).await,
        None => Ok(pending.await),
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

/// What the request-level checks need to know of a partition's record bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct BatchScan {
    /// Batches framed by their length fields (at least what could be framed).
    batch_count: usize,
    is_transactional: bool,
}

/// Walks the batch headers of `records`. Stops quietly at bytes it cannot frame: the broker's
/// validation reports those as corrupt.
fn scan_batches(records: &[u8]) -> BatchScan {
    let mut scan = BatchScan::default();
    let mut rest = records;
    while let Some(attributes) = read_array::<2>(rest, ATTRIBUTES_POSITION) {
        scan.batch_count += 1;
        scan.is_transactional |= i16::from_be_bytes(attributes) & ATTRIBUTE_TRANSACTIONAL != 0;
        let Some(length) = read_array::<4>(rest, BATCH_LENGTH_POSITION) else {
            break;
        };
        let Ok(length) = usize::try_from(i32::from_be_bytes(length)) else {
            break;
        };
        match rest.get(BATCH_LOG_OVERHEAD.saturating_add(length)..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    scan
}

fn read_array<const N: usize>(bytes: &[u8], position: usize) -> Option<[u8; N]> {
    bytes
        .get(position..position.checked_add(N)?)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
}

/// Kafka's request-level rule for v3+ produce data (ProduceRequest.validateRecords): exactly
/// one batch per partition.
fn request_level_error(records: &[u8]) -> Option<(ResponseError, Option<StrBytes>)> {
    let scan = scan_batches(records);
    if scan.batch_count > 1 {
        return Some((
            ResponseError::InvalidRecord,
            Some(StrBytes::from_static_str(
                "produce requests must carry exactly one record batch per partition",
            )),
        ));
    }
    None
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

    #[track_caller]
    fn check(records: &[u8], batch_count: usize, is_transactional: bool) {
        assert_eq!(
            scan_batches(records),
            BatchScan {
                batch_count,
                is_transactional
            }
        );
    }

    #[test]
    fn scan_counts_batches_and_finds_the_transactional_attribute() {
        let plain = batch_header(0, 49);
        let transactional = batch_header(ATTRIBUTE_TRANSACTIONAL, 49);
        check(&plain, 1, false);
        check(&transactional, 1, true);
        check(&[plain.clone(), transactional].concat(), 2, true);
        check(&[plain.clone(), plain.clone()].concat(), 2, false);
        check(&[], 0, false);
        check(&plain[..30], 1, false);
        check(&batch_header(0, -7), 1, false);
        check(&batch_header(0, i32::MAX), 1, false);
    }

    /// A partition that becomes durable `after_ms` after the request arrived.
    fn durable_after(
        after_ms: u64,
    ) -> impl Future<Output = broker::Result<ProduceOutcome>> + use<> {
        let at = Instant::now() + Duration::from_millis(after_ms);
        async move {
            tokio::time::sleep_until(at).await;
            Ok(ProduceOutcome {
                base_offset: 0,
                log_append_time_ms: -1,
                log_start_offset: 0,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn produce_timeout_is_one_deadline_for_the_whole_request() {
        // Issue 7 item 6: timeout_ms was applied per partition, one after another, so three
        // partitions durable after 60, 120 and 180 ms all beat a 100 ms timeout.
        let slots = vec![
            (0, Slot::Appended(durable_after(60))),
            (1, Slot::Appended(durable_after(120))),
            (2, Slot::Appended(durable_after(180))),
        ];
        let topics = vec![(messages::TopicName::default(), uuid::Uuid::nil(), slots)];
        let deadline = Instant::now() + Duration::from_millis(100);
        let response = respond(9, topics, Some(deadline), Vec::new()).await;
        let codes: Vec<i16> = response.responses[0]
            .partition_responses
            .iter()
            .map(|p| p.error_code)
            .collect();
        let timed_out = ResponseError::RequestTimedOut.code();
        assert_eq!(codes, vec![error_code::NONE, timed_out, timed_out]);
        assert_eq!(
            Instant::now(),
            deadline,
            "answered at the deadline, not later"
        );
    }

    #[test]
    fn request_rules_reject_several_batches() {
        let plain = batch_header(0, 49);
        assert_eq!(request_level_error(&plain), None);
        let two = [plain.clone(), plain.clone()].concat();
        assert!(matches!(
            request_level_error(&two),
            Some((ResponseError::InvalidRecord, _))
        ));
    }
}
