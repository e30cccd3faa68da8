//! The workload: idempotent acks=all producers that write unique values and record each outcome,
//! and consumers (assign-based and group-based) that record every record they read. Each runs on
//! its own thread until told to stop, bounded by a deadline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::checker::{Outcome, Read, Tp, Write};
use crate::rng::Rng;
use crate::system::{Target, client_config};

/// Records a producer may have sent but not seen answered.
const IN_FLIGHT_MAX: usize = 1_000;
/// How long a stopping producer waits for its last answers before purging.
const FLUSH_DEADLINE: Duration = Duration::from_secs(30);
/// librdkafka's own delivery timeout: longer than any single fault.
const MESSAGE_TIMEOUT_MS: &str = "30000";
/// Producer instances per producer (a fatal error replaces the instance).
const INSTANCES_MAX: usize = 100;
const POLL: Duration = Duration::from_millis(5);

/// Delivery reports: (index into the producer's writes, outcome).
#[derive(Default)]
struct Reports {
    done: Mutex<Vec<(usize, Outcome)>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let outcome = match result {
            Ok(message) => Outcome::Acked {
                offset: message.offset(),
            },
            // Sent or queued: it may be in the log.
            Err((error, _)) => Outcome::Unknown {
                error: error.to_string(),
            },
        };
        self.done
            .lock()
            .expect("reports lock")
            .push((*index, outcome));
    }
}

/// Shared progress counters, read by the run to know the system works.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) acknowledged: AtomicUsize,
    pub(crate) read: AtomicUsize,
}

/// What one producer thread writes.
#[derive(Clone, Debug)]
pub(crate) struct ProducerPlan {
    pub(crate) id: usize,
    pub(crate) target: Target,
    pub(crate) rate_per_s: u32,
    pub(crate) rng: Rng,
}

pub(crate) fn spawn_producer(
    plan: ProducerPlan,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    deadline: Instant,
) -> anyhow::Result<JoinHandle<(Vec<Write>, Vec<String>)>> {
    std::thread::Builder::new()
        .name(format!("producer-{}", plan.id))
        .spawn(move || run_producer(plan, &stop, &progress, deadline))
        .context("spawn a producer thread")
}

/// Writes until `stop` (or `deadline`); returns every write and the fatal errors seen.
fn run_producer(
    mut plan: ProducerPlan,
    stop: &AtomicBool,
    progress: &Progress,
    deadline: Instant,
) -> (Vec<Write>, Vec<String>) {
    let mut writes = Vec::new();
    let mut fatal = Vec::new();
    for instance in 0..INSTANCES_MAX {
        let name = format!("p{}.{instance}", plan.id);
        let producer: BaseProducer<Reports> = match client_config(&plan.target.bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
            .set("request.timeout.ms", "10000")
            .set("retry.backoff.ms", "100")
            .set("linger.ms", "5")
            .set("compression.type", "none")
            .set("client.id", &name)
            .create_with_context(Reports::default())
        {
            Ok(producer) => producer,
            Err(error) => {
                fatal.push(format!("{name}: cannot create: {error}"));
                break;
            }
        };
        let first = writes.len();
        let outcome = produce(
            &mut plan,
            &name,
            &producer,
            &mut writes,
            stop,
            progress,
            deadline,
        );
        finish(&producer, &mut writes[first..], progress);
        if let Err(error) = outcome {
            fatal.push(format!("{name}: {error}"));
        }
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
    }
    (writes, fatal)
}

/// Sends paced, unique values until stop, the deadline, or a fatal error (returned).
fn produce(
    plan: &mut ProducerPlan,
    name: &str,
    producer: &BaseProducer<Reports>,
    writes: &mut Vec<Write>,
    stop: &AtomicBool,
    progress: &Progress,
    deadline: Instant,
) -> Result<(), String> {
    let first = writes.len();
    let interval = Duration::from_secs(1) / plan.rate_per_s;
    let mut next_send = Instant::now();
    let mut seq: u64 = 0;
    let mut answered = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let in_flight = writes.len() - first - answered;
        if in_flight < IN_FLIGHT_MAX && Instant::now() >= next_send {
            let partition = i32::try_from(
                plan.rng
                    .below(usize::try_from(plan.target.partitions).expect("positive partitions")),
            )
            .expect("partition fits i32");
            let value = value_of(name, seq);
            let index = writes.len() - first;
            let record = BaseRecord::<'_, String, String, Box<usize>>::with_opaque_to(
                &plan.target.topic,
                Box::new(index),
            )
            .partition(partition)
            .key(&value)
            .payload(&value);
            let tp = Tp::new(&plan.target.topic, partition);
            match producer.send(record) {
                Ok(()) => {
                    writes.push(Write {
                        value: value.into_bytes(),
                        tp,
                        producer: name.to_owned(),
                        seq,
                        outcome: Outcome::Unknown {
                            error: "no delivery report".to_owned(),
                        },
                    });
                    seq += 1;
                    next_send += interval;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
                Err((error, _)) => {
                    // Never queued: definitely not written.
                    writes.push(Write {
                        value: value.into_bytes(),
                        tp,
                        producer: name.to_owned(),
                        seq,
                        outcome: Outcome::Failed {
                            error: error.to_string(),
                        },
                    });
                    seq += 1;
                    answered += 1;
                    next_send += interval;
                }
            }
        }
        producer.poll(POLL);
        answered += apply_reports(producer, &mut writes[first..], progress);
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Err(format!("fatal error {code:?}: {reason}"));
        }
        // Do not burst to catch up after a stall.
        let now = Instant::now();
        if next_send + Duration::from_secs(1) < now {
            next_send = now;
        }
    }
    Ok(())
}

/// Flushes (bounded), then purges whatever is left, so every write has its last word.
fn finish(producer: &BaseProducer<Reports>, writes: &mut [Write], progress: &Progress) {
    let _ = producer.flush(FLUSH_DEADLINE);
    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    let _ = producer.flush(Duration::from_secs(5));
    apply_reports(producer, writes, progress);
}

fn apply_reports(
    producer: &BaseProducer<Reports>,
    writes: &mut [Write],
    progress: &Progress,
) -> usize {
    let done = std::mem::take(&mut *producer.context().done.lock().expect("reports lock"));
    for (index, outcome) in &done {
        if matches!(outcome, Outcome::Acked { .. }) {
            progress.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
        writes[*index].outcome = outcome.clone();
    }
    done.len()
}

/// A unique value: the producer instance and sequence, then filler so sizes vary.
fn value_of(producer: &str, seq: u64) -> String {
    let filler = usize::try_from(seq % 97).expect("small") + 16;
    format!("{producer}-s{seq} {}", "x".repeat(filler))
}

/// One consumer: assign-based (every partition from the beginning) or group-based (subscribe).
#[derive(Clone, Debug)]
pub(crate) struct ConsumerPlan {
    pub(crate) name: String,
    pub(crate) target: Target,
    pub(crate) group: Option<String>,
}

pub(crate) fn spawn_consumer(
    plan: ConsumerPlan,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    deadline: Instant,
) -> anyhow::Result<JoinHandle<anyhow::Result<Vec<Read>>>> {
    std::thread::Builder::new()
        .name(plan.name.clone())
        .spawn(move || run_consumer(&plan, &stop, &progress, deadline))
        .context("spawn a consumer thread")
}

fn run_consumer(
    plan: &ConsumerPlan,
    stop: &AtomicBool,
    progress: &Progress,
    deadline: Instant,
) -> anyhow::Result<Vec<Read>> {
    let group = plan
        .group
        .clone()
        .unwrap_or_else(|| format!("{}-{}", plan.name, std::process::id()));
    let consumer: BaseConsumer = client_config(&plan.target.bootstrap)
        .set("group.id", &group)
        .set("client.id", &plan.name)
        .set(
            "enable.auto.commit",
            if plan.group.is_some() {
                "true"
            } else {
                "false"
            },
        )
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_uncommitted")
        .set("fetch.wait.max.ms", "200")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("check.crcs", "true")
        .set("enable.partition.eof", "false")
        .create()
        .context("create a consumer")?;
    if plan.group.is_some() {
        consumer
            .subscribe(&[&plan.target.topic])
            .context("subscribe")?;
    } else {
        let mut assignment = TopicPartitionList::new();
        for partition in 0..plan.target.partitions {
            assignment
                .add_partition_offset(&plan.target.topic, partition, Offset::Beginning)
                .context("build the assignment")?;
        }
        consumer.assign(&assignment).context("assign")?;
    }
    let mut reads = Vec::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Errors during faults are expected; the client retries by itself.
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            reads.push(Read {
                reader: plan.name.clone(),
                tp: Tp::new(message.topic(), message.partition()),
                offset: message.offset(),
                value: message.payload().unwrap_or_default().to_vec(),
            });
            progress.read.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(reads)
}
