//! A consumer-group member thread with its context, and the paced stream producer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::client::{ClientLog, Cluster};
use crate::delivery::{DeliveryTracker, new_tracker};
use crate::group::{
    GROUP_AUTO_COMMIT_MS, GROUP_HEARTBEAT_MS, GROUP_PARTITIONS, GROUP_SESSION_TIMEOUT_MS,
    GROUP_STREAM_MAX, GROUP_STREAM_RATE, MEMBER_LABELS,
};
use crate::group_shared::GroupShared;
use crate::records::{fill_record, partition_of, pattern};

/// A member's librdkafka context: logs, and records its assignments for the rebalance timing.
#[derive(Debug)]
struct MemberContext {
    log: ClientLog,
    member: usize,
    shared: Arc<GroupShared>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        self.shared.rebalance_count.fetch_add(1, Ordering::Relaxed);
        match rebalance {
            rdkafka::consumer::Rebalance::Assign(assignment) => {
                let mask = assignment
                    .elements()
                    .iter()
                    .filter_map(|element| u32::try_from(element.partition()).ok())
                    .filter(|&partition| partition < 64)
                    .fold(0u64, |mask, partition| mask | (1u64 << partition));
                self.shared.assigned_mask[self.member].store(mask, Ordering::SeqCst);
                self.shared.assigned_ns[self.member].store(self.shared.now_ns(), Ordering::SeqCst);
            }
            rdkafka::consumer::Rebalance::Revoke(_) => {
                self.shared.assigned_mask[self.member].store(0, Ordering::SeqCst);
            }
            rdkafka::consumer::Rebalance::Error(error) => {
                self.log.show(format_args!("rebalance error: {error}"));
            }
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(error) = result {
            // A commit with nothing new to commit reports _NO_OFFSET; that is not a failure.
            if !matches!(
                error,
                KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
            ) {
                let count = self
                    .shared
                    .commit_error_count
                    .fetch_add(1, Ordering::Relaxed);
                if count < 5 {
                    self.log.show(format_args!("commit failed: {error}"));
                }
            }
        }
    }
}

/// One group member on its own thread: subscribes, then polls until told to stop or leave.
/// With `marks_join`, the rebalance measurement starts at its subscribe().
pub(crate) fn spawn_member(
    cluster: &Cluster,
    group_id: &str,
    topic: &str,
    member: usize,
    shared: &Arc<GroupShared>,
    marks_join: bool,
    deadline: Instant,
) -> Result<JoinHandle<()>> {
    let mut config = cluster.client_config();
    config
        .set("client.id", MEMBER_LABELS[member])
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", GROUP_AUTO_COMMIT_MS.to_string())
        .set("enable.auto.offset.store", "true")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", GROUP_SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", GROUP_HEARTBEAT_MS.to_string())
        .set("enable.partition.eof", "false")
        // as in the single-consumer runs: never idle on librdkafka 2.0's queue thresholds
        .set("queued.min.messages", "10000000")
        .set("queued.max.messages.kbytes", "2097151");
    let context = MemberContext {
        log: cluster.client_log(MEMBER_LABELS[member]),
        member,
        shared: Arc::clone(shared),
    };
    let consumer: BaseConsumer<MemberContext> =
        BaseConsumer::from_config_and_context(&config, context)
            .with_context(|| format!("creating group {}", MEMBER_LABELS[member]))?;
    let shared = Arc::clone(shared);
    let topic = topic.to_owned();
    thread::Builder::new()
        .name(MEMBER_LABELS[member].into())
        .spawn(move || {
            if let Err(error) = run_member(&consumer, &topic, member, &shared, marks_join, deadline)
            {
                shared.fail(format!("{}: {error:#}", MEMBER_LABELS[member]));
            }
            if shared.should_leave[member].load(Ordering::SeqCst) {
                shared.start_phase();
            }
            let closing = Instant::now();
            drop(consumer); // rd_kafka_consumer_close: commits, leaves the group
            let close_ns = u64::try_from(closing.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shared.close_ns[member].store(close_ns, Ordering::SeqCst);
        })
        .context("spawning a group member")
}

fn run_member(
    consumer: &BaseConsumer<MemberContext>,
    topic: &str,
    member: usize,
    shared: &GroupShared,
    marks_join: bool,
    deadline: Instant,
) -> Result<()> {
    let pattern = pattern(100);
    if marks_join {
        shared.start_phase();
    }
    consumer.subscribe(&[topic]).context("subscribe")?;
    let mut error_count = 0u64;
    loop {
        if shared.should_stop.load(Ordering::SeqCst)
            || shared.should_leave[member].load(Ordering::SeqCst)
        {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "overall timeout");
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => shared.receive(
                member,
                message.partition(),
                message.payload().unwrap_or_default(),
                &pattern,
            )?,
            Some(Err(error)) => {
                error_count += 1;
                if error_count <= 5 {
                    eprintln!("  {} error: {error}", MEMBER_LABELS[member]);
                }
                ensure!(
                    error_count < 1000,
                    "too many consumer errors (last: {error})"
                );
            }
        }
    }
}

/// Produces 100 B records at `GROUP_STREAM_RATE` from sequence `first` until told to stop.
pub(crate) fn spawn_stream_producer(
    cluster: &Cluster,
    topic: &str,
    shared: &Arc<GroupShared>,
    should_stop: &Arc<AtomicBool>,
    deadline: Instant,
) -> Result<JoinHandle<Result<u64>>> {
    let mut config = cluster.client_config();
    config
        .set("client.id", "group-stream")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("message.timeout.ms", "60000");
    let producer: ThreadedProducer<DeliveryTracker> =
        ThreadedProducer::from_config_and_context(&config, new_tracker(cluster, "group-stream", 0))
            .context("creating the stream producer")?;
    let shared = Arc::clone(shared);
    let should_stop = Arc::clone(should_stop);
    let topic = topic.to_owned();
    thread::Builder::new()
        .name("group-stream".into())
        .spawn(move || -> Result<u64> {
            let pattern = pattern(100);
            let mut value = vec![0u8; 100];
            let first = shared.bulk_count;
            let started = Instant::now();
            let mut sent = 0u64;
            while !should_stop.load(Ordering::SeqCst) {
                ensure!(
                    Instant::now() < deadline && started.elapsed() < GROUP_STREAM_MAX,
                    "stream producer ran out of time"
                );
                let due = started
                    + Duration::from_nanos(sent.saturating_mul(1_000_000_000) / GROUP_STREAM_RATE);
                let now = Instant::now();
                if due > now {
                    thread::sleep((due - now).min(Duration::from_millis(50)));
                    continue;
                }
                let sequence = first + sent;
                fill_record(&mut value, &pattern, sequence);
                let record = BaseRecord::<(), [u8], usize>::with_opaque_to(&topic, 0)
                    .partition(partition_of(sequence, GROUP_PARTITIONS))
                    .payload(&value[..]);
                producer
                    .send(record)
                    .map_err(|(error, _)| error)
                    .with_context(|| format!("enqueuing stream record {sequence}"))?;
                sent += 1;
                shared.stream_next.store(sequence + 1, Ordering::SeqCst);
            }
            producer
                .flush(Duration::from_secs(30))
                .context("flushing the stream")?;
            let tracker = producer.context();
            let failed = tracker.failed_count.load(Ordering::Relaxed);
            ensure!(failed == 0, "{failed} stream records failed delivery");
            Ok(sent)
        })
        .context("spawning the stream producer")
}
