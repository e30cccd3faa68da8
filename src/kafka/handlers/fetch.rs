//! Fetch (key 1), v4-v18: sessionless full fetches with KIP-74 byte budgets and a min_bytes /
//! max_wait long poll woken by high-watermark changes of the fetched partitions only. Fetch
//! sessions are declined (id 0).

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::leader_epoch_error;
use crate::auth::acl::Operation;
use crate::broker::Metered;
use crate::broker::{FetchedPartition, Isolation};
use crate::kafka::error_code;
use crate::kafka::{Context, uuid_to_topic_id};
use crate::limits;

/// Sessionless marker: session id 0 with epoch -1 (FINAL) or 0 (INITIAL) is a full fetch.
const SESSIONLESS_ID: i32 = 0;
const ISOLATION_READ_COMMITTED: i8 = 1;

/// A requested partition, resolved against the broker once.
struct Wanted {
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    /// Set when the partition cannot be read at all (unknown topic, fenced epoch).
    error: Option<ResponseError>,
    /// Another broker leads it: (id, epoch) for KIP-951 clients.
    leader_hint: Option<(i32, i32)>,
    /// The epoch of the last record the fetcher holds (v12+, -1 when not sent): its log
    /// diverged from ours when that epoch ends here before the fetch offset.
    last_fetched_epoch: i32,
}

struct WantedTopic {
    name: messages::TopicName,
    topic_id: uuid::Uuid,
    /// `None` when the topic (by id) is unknown.
    resolved: Option<String>,
    partitions: Vec<Wanted>,
}

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::FetchRequest,
) -> messages::FetchResponse {
    let response = messages::FetchResponse::default().with_session_id(SESSIONLESS_ID);
    if version >= 7 && (request.session_id != SESSIONLESS_ID || request.session_epoch > 0) {
        tracing::debug!(
            session_id = request.session_id,
            session_epoch = request.session_epoch,
            "fetch session declined"
        );
        return response.with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let read_committed = request.isolation_level == ISOLATION_READ_COMMITTED;
    let mut wanted = resolve(ctx, version, request.topics);
    // The broker's fetch.max.bytes caps what the request asks for, as in Kafka.
    let request_max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(ctx.settings.fetch_bytes_max as usize);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_wait_ms = u64::try_from(request.max_wait_ms)
        .unwrap_or(0)
        .min(limits::FETCH_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(max_wait_ms);
    // Subscribe before the first read so a high-watermark move between read and wait wakes us;
    // only the partitions read here, so flushes of other partitions never wake this fetch.
    let mut changes = ctx.broker.fetch_wait(wanted.iter().flat_map(|topic| {
        let name = topic.resolved.as_deref();
        topic
            .partitions
            .iter()
            .filter(|p| p.error.is_none())
            .filter_map(move |p| Some((name?, p.partition)))
    }));
    loop {
        changes.mark_seen();
        // Reads are blocking file I/O: on the blocking pool, so a slow disk never stalls the
        // async workers serving other partitions.
        let reading = {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || {
                let read = read_all(&ctx, &wanted, request_max_bytes, read_committed);
                (wanted, read)
            })
        };
        let (returned, (topics, read)) = match reading.await {
            Ok(done) => done,
            // A panic resumes here, as if the reads had run inline.
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            // Cancelled: only when the runtime shuts down, so nobody reads the answer.
            Err(_) => return response.with_error_code(ResponseError::UnknownServerError.code()),
        };
        wanted = returned;
        if read.bytes >= min_bytes || read.has_error || Instant::now() >= deadline {
            // Quotas: the bytes returned count against consumer_byte_rate.
            let throttle_ms = ctx.meter_quota(Metered::Fetch, read.bytes);
            if throttle_ms > 0 {
                tokio::time::sleep(Duration::from_millis(throttle_ms)).await;
            }
            let response = response
                .with_responses(topics)
                .with_throttle_time_ms(i32::try_from(throttle_ms).unwrap_or(i32::MAX));
            return if version >= 16 {
                response.with_node_endpoints(node_endpoints(ctx, &wanted))
            } else {
                response
            };
        }
        // Wakes when one of these partitions' high watermark moves or it goes away (deleted,
        // closed at shutdown), or at the deadline.
        let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
    }
}

/// KIP-951: the endpoints of the leaders named in NOT_LEADER_OR_FOLLOWER answers.
fn node_endpoints(ctx: &Context, wanted: &[WantedTopic]) -> Vec<NodeEndpoint> {
    let hinted = wanted
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.leader_hint.map(|(leader, _)| leader))
        .collect();
    ctx.endpoints_of(&hinted)
        .into_iter()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(messages::BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect()
}

/// Resolves topic names or ids and checks leader epochs, once per request.
fn resolve(
    ctx: &Context,
    version: i16,
    topics: Vec<messages::fetch_request::FetchTopic>,
) -> Vec<WantedTopic> {
    topics
        .into_iter()
        .map(|topic| {
            let info = if version >= 13 {
                ctx.broker.topic_by_id(uuid_to_topic_id(topic.topic_id))
            } else {
                ctx.broker.topic(&topic.topic)
            };
            // ACLs: Read on the topic (by the name asked for, or the name of the id).
            let name = info
                .as_ref()
                .map_or(topic.topic.as_str(), |info| info.name.as_str());
            let denied =
                (info.is_some() || version < 13) && !ctx.allowed_on_topic(Operation::Read, name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let ours = info.as_ref().map(|info| {
                        info.partitions
                            .iter()
                            .find(|ours| ours.partition == p.partition)
                    });
                    let error = match ours {
                        None if version >= 13 => Some(ResponseError::UnknownTopicId),
                        None | Some(None) => Some(ResponseError::UnknownTopicOrPartition),
                        Some(Some(ours)) => {
                            leader_epoch_error(p.current_leader_epoch, ours.leader_epoch)
                        }
                    };
                    let leader_hint = ours.flatten().and_then(|ours| ctx.hint_for(ours));
                    let error = match leader_hint {
                        _ if denied => Some(ResponseError::TopicAuthorizationFailed),
                        Some(_) if error.is_none() => Some(ResponseError::NotLeaderOrFollower),
                        _ => error,
                    };
                    Wanted {
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                        error,
                        leader_hint,
                        last_fetched_epoch: p.last_fetched_epoch,
                    }
                })
                .collect();
            WantedTopic {
                name: topic.topic,
                topic_id: topic.topic_id,
                resolved: info.map(|info| info.name),
                partitions,
            }
        })
        .collect()
}

/// What one pass over the partitions returned.
struct ReadSummary {
    bytes: usize,
    has_error: bool,
}

/// Reads every partition within the budgets. KIP-74: until some partition returned data, the
/// first batch is returned even when it exceeds the budgets, so consumers always progress.
fn read_all(
    ctx: &Context,
    wanted: &[WantedTopic],
    request_max_bytes: usize,
    read_committed: bool,
) -> (Vec<FetchableTopicResponse>, ReadSummary) {
    let mut remaining = request_max_bytes;
    let mut summary = ReadSummary {
        bytes: 0,
        has_error: false,
    };
    let mut topics = Vec::with_capacity(wanted.len());
    for topic in wanted {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let fetched = match (p.error, &topic.resolved) {
                (Some(error), _) => Err(error),
                (None, None) => Err(ResponseError::UnknownTopicOrPartition),
                (None, Some(name)) => {
                    let min_one = summary.bytes == 0;
                    let budget = p.partition_max_bytes.min(remaining);
                    let isolation = if read_committed {
                        Isolation::ReadCommitted
                    } else {
                        Isolation::ReadUncommitted
                    };
                    let diverging = diverging_epoch(ctx, name, p);
                    // A diverged fetcher gets no records (read at most where its epoch ends here,
                    // for the watermarks), only where to truncate to.
                    let (offset, budget, min_one) = match diverging {
                        Some((_, end)) if end >= 0 => (p.fetch_offset.min(end), 0, false),
                        Some(_) => (p.fetch_offset, 0, false),
                        None => (p.fetch_offset, budget, min_one),
                    };
                    ctx.broker
                        .fetch_isolated(name, p.partition, offset, budget, min_one, isolation)
                        .map(|fetched| (fetched, diverging))
                        .map_err(|err| {
                            tracing::debug!(topic = %name, partition = p.partition, error = %err, "fetch failed");
                            error_code::for_broker_error(&err)
                        })
                }
            };
            let data = PartitionData::default().with_partition_index(p.partition);
            let data = match fetched {
                Ok((fetched, diverging)) => {
                    summary.bytes += fetched.records.len();
                    if let Some(name) = &topic.resolved {
                        crate::telemetry::metrics::bytes_out(name, fetched.records.len() as u64);
                    }
                    remaining = remaining.saturating_sub(fetched.records.len());
                    let data = partition_data(data, fetched);
                    match diverging {
                        Some((epoch, end_offset)) => data.with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        ),
                        None => data,
                    }
                }
                Err(error) => {
                    summary.has_error = true;
                    let data = data
                        .with_error_code(error.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1);
                    match p.leader_hint {
                        Some((leader, epoch)) => data.with_current_leader(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(messages::BrokerId(leader))
                                .with_leader_epoch(epoch),
                        ),
                        None => data,
                    }
                }
            };
            tracing::debug!(
                topic = topic.resolved.as_deref().unwrap_or("?"),
                partition = p.partition,
                fetch_offset = p.fetch_offset,
                last_fetched_epoch = p.last_fetched_epoch,
                error_code = data.error_code,
                high_watermark = data.high_watermark,
                bytes = data.records.as_ref().map_or(0, |records| records.len()),
                diverging_end = data.diverging_epoch.end_offset,
                "fetch answered"
            );
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (topics, summary)
}

/// KIP-320 for a fetcher that names the epoch of its last record: when that epoch ends in our
/// log before the fetch offset (or is not ours), the largest epoch at or below it and where it
/// ends, so the fetcher truncates there; None when the logs agree.
fn diverging_epoch(ctx: &Context, topic: &str, wanted: &Wanted) -> Option<(i32, i64)> {
    if wanted.last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end_offset) = ctx
        .broker
        .leader_epoch_end_offset(topic, wanted.partition, wanted.last_fetched_epoch)
        .ok()?;
    // Kafka's test (Partition.fetchRecords): an epoch ours does not reach counts as diverged.
    (epoch < wanted.last_fetched_epoch || end_offset < wanted.fetch_offset)
        .then_some((epoch, end_offset))
}

fn partition_data(data: PartitionData, fetched: FetchedPartition) -> PartitionData {
    // Kafka sends null unless read_committed.
    let aborted = fetched.aborted_transactions.map(|aborted| {
        aborted
            .into_iter()
            .map(|(producer_id, first_offset)| {
                AbortedTransaction::default()
                    .with_producer_id(messages::ProducerId(producer_id))
                    .with_first_offset(first_offset)
            })
            .collect()
    });
    data.with_error_code(error_code::NONE)
        .with_high_watermark(fetched.high_watermark)
        .with_last_stable_offset(fetched.last_stable_offset)
        .with_log_start_offset(fetched.log_start_offset)
        .with_aborted_transactions(aborted)
        .with_records(Some(fetched.records))
}
