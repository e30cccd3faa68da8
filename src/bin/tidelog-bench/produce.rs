//! Producing a run's records (acks=all, optionally paced) and the warm-up record.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::broker::TOPIC_READY_TIMEOUT;
use crate::client::Cluster;
use crate::delivery::{ClientWindow, DeliveryTracker, new_tracker};
use crate::latency::{Latency, append_latency_csv, latency_summary};
use crate::records::{WARMUP_SEQUENCE, fill_record, partition_of, pattern};
use crate::runs::{ProduceMode, RunSpec};
use crate::transactions::{TxnClock, TxnStats};

/// Librdkafka producer batch limit (bytes), as the brief asks.
pub(crate) const BATCH_BYTES: u32 = 1_048_576;
/// Producer queue bounds: large enough that the throughput runs never block on the client queue.
const QUEUE_KBYTES_MAX: u32 = 2_097_152;
const QUEUE_MESSAGES_MAX: u32 = 5_000_000;
/// How often librdkafka reports its own latency windows (queue time, broker round trip).
pub(crate) const STATISTICS_INTERVAL_MS: u32 = 1000;

/// Produce results: wall time from first enqueue to last delivery, and delivery latencies.
#[derive(Debug)]
pub(crate) struct ProduceStats {
    pub(crate) elapsed: Duration,
    pub(crate) latency: Latency,
    pub(crate) client_windows: Vec<ClientWindow>,
    /// The transactional run's commits.
    pub(crate) transactions: Option<TxnStats>,
}

pub(crate) fn produce(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    spec: &RunSpec,
    linger_ms: u64,
    latency_csv: Option<&Path>,
    deadline: Instant,
) -> Result<ProduceStats> {
    let mut config = cluster.client_config();
    config
        .set("acks", "all")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", BATCH_BYTES.to_string())
        .set("queue.buffering.max.kbytes", QUEUE_KBYTES_MAX.to_string())
        .set(
            "queue.buffering.max.messages",
            QUEUE_MESSAGES_MAX.to_string(),
        )
        .set("compression.type", "none")
        .set("message.timeout.ms", "120000")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    if let Some(max_in_flight) = spec.max_in_flight {
        config.set(
            "max.in.flight.requests.per.connection",
            max_in_flight.to_string(),
        );
    }
    match spec.mode {
        ProduceMode::Plain => config.set("enable.idempotence", "false"),
        ProduceMode::Idempotent => config.set("enable.idempotence", "true"),
        // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
        ProduceMode::Transactional { .. } => config
            .set(
                "transactional.id",
                format!("tidelog-bench-{}-{}", std::process::id(), spec.name),
            )
            .set("transaction.timeout.ms", "120000"),
    };
    let tracker = new_tracker(cluster, "producer", spec.record_count);
    let producer: ThreadedProducer<DeliveryTracker> =
        ThreadedProducer::from_config_and_context(&config, tracker)
            .context("creating the producer")?;
    let tracker = Arc::clone(producer.context());
    // Warm up outside the timed part: connect and learn the partition leaders.
    producer
        .client()
        .fetch_metadata(Some(topic), TOPIC_READY_TIMEOUT)
        .context("producer metadata warm-up")?;
    let pattern = pattern(spec.record_bytes);
    let mut record_value = vec![0u8; spec.record_bytes];
    let mut txn = match spec.mode {
        ProduceMode::Transactional { commit_interval } => {
            Some(TxnClock::start(&producer, commit_interval)?)
        }
        ProduceMode::Plain | ProduceMode::Idempotent => None,
    };
    warm_up(
        &producer,
        topic,
        partitions,
        &mut record_value,
        &pattern,
        deadline,
    )?;
    if let Some(txn) = &mut txn {
        txn.restart(&producer)?;
    }

    let started = Instant::now();
    let started_ns = tracker.nanos_since_origin();
    let mut queue_full_count = 0u64;
    for sequence in 0..spec.record_count {
        if let Some(rate) = spec.rate_per_sec {
            let due = started + Duration::from_nanos(sequence.saturating_mul(1_000_000_000) / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        fill_record(&mut record_value, &pattern, sequence);
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, 0)
            .partition(partition_of(sequence, partitions))
            .payload(&record_value[..]);
        loop {
            record.delivery_opaque = usize::try_from(tracker.nanos_since_origin()).unwrap_or(0);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    queue_full_count += 1;
                    ensure!(
                        Instant::now() < deadline,
                        "overall timeout while enqueuing record {sequence} (producer queue full)"
                    );
                    thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("enqueuing record {sequence}: {error}"),
            }
        }
        if let Some(txn) = &mut txn
            && sequence.is_multiple_of(64)
        {
            txn.tick(&producer)?;
        }
        if sequence.is_multiple_of(4096) {
            ensure!(
                Instant::now() < deadline,
                "overall timeout after enqueuing {sequence} of {} records",
                spec.record_count
            );
        }
    }
    if queue_full_count > 0 {
        eprintln!("  producer queue was full {queue_full_count} times");
    }
    let transactions = txn.map(|txn| txn.finish(&producer)).transpose()?;

    // Wait for every delivery report.
    loop {
        let delivered = tracker.delivered_count.load(Ordering::Relaxed);
        let failed = tracker.failed_count.load(Ordering::Relaxed);
        if failed > 0 {
            let first = tracker.first_error.lock().expect("never poisoned").clone();
            bail!(
                "{failed} records failed delivery (first: {})",
                first.unwrap_or_default()
            );
        }
        if delivered == spec.record_count {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "overall timeout waiting for deliveries: {delivered} of {} delivered, {} in flight",
            spec.record_count,
            producer.in_flight_count()
        );
        thread::sleep(Duration::from_millis(2));
    }
    let elapsed = Duration::from_nanos(
        tracker
            .last_delivery_ns
            .load(Ordering::Relaxed)
            .saturating_sub(started_ns),
    );
    let deliveries = std::mem::take(&mut *tracker.deliveries.lock().expect("never poisoned"));
    drop(producer);
    let client_windows =
        std::mem::take(&mut *tracker.client_windows.lock().expect("never poisoned"));
    if let Some(path) = latency_csv {
        append_latency_csv(path, &spec.name, started_ns, &deliveries)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut latencies_us: Vec<u32> = deliveries.iter().map(|d| d.latency_us).collect();
    Ok(ProduceStats {
        elapsed,
        latency: latency_summary(&mut latencies_us),
        client_windows,
        transactions,
    })
}

/// Produces the warm-up record of every partition, waits for their delivery, and forgets them.
fn warm_up(
    producer: &ThreadedProducer<DeliveryTracker>,
    topic: &str,
    partitions: i32,
    record_value: &mut [u8],
    pattern: &[u8],
    deadline: Instant,
) -> Result<()> {
    let tracker = producer.context();
    fill_record(record_value, pattern, WARMUP_SEQUENCE);
    for partition in 0..partitions {
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, 0)
            .partition(partition)
            .payload(&record_value[..]);
        producer
            .send(record)
            .map_err(|(error, _)| error)
            .with_context(|| format!("enqueuing the warm-up record of partition {partition}"))?;
    }
    let expected = u64::try_from(partitions).context("partition count")?;
    let ready_by = (Instant::now() + TOPIC_READY_TIMEOUT).min(deadline);
    loop {
        let done = tracker.delivered_count.load(Ordering::Relaxed)
            + tracker.failed_count.load(Ordering::Relaxed);
        if done == expected {
            break;
        }
        ensure!(
            Instant::now() < ready_by,
            "warm-up records not delivered: {done} of {expected} reports"
        );
        thread::sleep(Duration::from_millis(1));
    }
    if let Some(error) = tracker.first_error.lock().expect("never poisoned").take() {
        bail!("warm-up record failed: {error}");
    }
    tracker.delivered_count.store(0, Ordering::Relaxed);
    tracker
        .client_windows
        .lock()
        .expect("never poisoned")
        .clear();
    tracker.deliveries.lock().expect("never poisoned").clear();
    Ok(())
}
