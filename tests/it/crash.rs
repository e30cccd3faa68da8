//! kill -9 while an acks=all producer is writing: after restart every acknowledged record is at
//! its acknowledged offset, and the whole log reads back cleanly (no torn or corrupt batch served).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use tempfile::TempDir;
use tokio::task::JoinSet;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

const PARTITIONS: i32 = 2;
const IN_FLIGHT_MAX: usize = 500;

fn key_of(i: usize) -> String {
    format!("crash-key-{i}")
}

fn value_of(i: usize) -> String {
    let filler = "x".repeat(i % 300);
    format!("crash-value-{i}-{filler}")
}

/// (partition, offset, record index) of every acknowledged record.
type Acked = Arc<Mutex<Vec<(i32, i64, usize)>>>;

/// Produces records `first..` until `stop` is set; every acknowledged record lands in `acked`.
/// Returns the first index it did not use.
async fn produce_until_stopped(
    bootstrap: String,
    topic: String,
    first: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
) -> usize {
    let producer = harness::producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "10000"),
        ],
    );
    let mut pending = JoinSet::new();
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        while pending.len() >= IN_FLIGHT_MAX && !stop.load(Ordering::Relaxed) {
            if let Ok(Some(joined)) =
                tokio::time::timeout(Duration::from_millis(50), pending.join_next()).await
            {
                record_ack(&acked, joined);
            }
        }
        while let Some(joined) = pending.try_join_next() {
            record_ack(&acked, joined);
        }
        let key = key_of(i);
        let value = value_of(i);
        let partition = i32::try_from(i).expect("fits") % PARTITIONS;
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key(&key)
            .payload(&value);
        match producer.send_result(record) {
            Ok(delivery) => {
                let index = i;
                pending.spawn(async move { (index, delivery.await) });
                i += 1;
            }
            // Local queue full: let deliveries complete, then retry the same index.
            Err((_, _)) => tokio::task::yield_now().await,
        }
    }
    // Purges whatever is queued or in flight; acknowledgements already received still resolve Ok.
    drop(producer);
    while let Some(joined) = pending.join_next().await {
        record_ack(&acked, joined);
    }
    i
}

type Joined<E> = Result<(usize, Result<OwnedDeliveryResult, E>), tokio::task::JoinError>;

fn record_ack<E>(acked: &Acked, joined: Joined<E>) {
    let (index, delivery) = joined.expect("delivery task panicked");
    if let Ok(Ok((partition, offset))) = delivery {
        acked
            .lock()
            .expect("acked lock")
            .push((partition, offset, index));
    }
}

/// Waits (polling, async) until at least `count` records are acknowledged.
async fn wait_for_acks(acked: &Acked, count: usize) {
    let deadline = Instant::now() + CLIENT_DEADLINE * 2;
    while acked.lock().expect("acked lock").len() < count {
        assert!(
            Instant::now() < deadline,
            "fewer than {count} acks before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks the restarted broker's log against the acknowledged records; returns high watermarks.
fn verify_after_crash(
    bootstrap: &str,
    topic: &str,
    acked: &[(i32, i64, usize)],
) -> BTreeMap<i32, i64> {
    let mut high_watermarks = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (low, high) = harness::watermarks(bootstrap, topic, partition);
        assert_eq!(low, 0, "log start of partition {partition}");
        // Reading every record from offset 0 works (the recovered log is valid).
        let consumed = harness::consume_to_high_watermark(bootstrap, topic, partition, 0);
        let mut by_offset = BTreeMap::new();
        for (position, message) in consumed.iter().enumerate() {
            assert_eq!(
                message.offset(),
                i64::try_from(position).expect("fits"),
                "partition {partition} offsets are not contiguous"
            );
            // Every stored record is one the producer sent, byte for byte.
            let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf8 key");
            let index: usize = key
                .strip_prefix("crash-key-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unknown record {}", harness::describe(message)));
            assert_eq!(
                message.payload(),
                Some(value_of(index).as_bytes()),
                "{}",
                harness::describe(message)
            );
            by_offset.insert(message.offset(), index);
        }
        for &(p, offset, index) in acked.iter().filter(|(p, _, _)| *p == partition) {
            assert!(
                offset < high,
                "acknowledged record {index} at {p}/{offset} is beyond the high watermark {high} after restart"
            );
            assert_eq!(
                by_offset.get(&offset),
                Some(&index),
                "acknowledged record {index} is not at its acknowledged offset {p}/{offset}"
            );
        }
        high_watermarks.insert(partition, high);
    }
    high_watermarks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_acks_all_produce_keeps_every_acknowledged_record() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let topic = "crashy".to_owned();
    harness::create_topic(
        &broker.bootstrap(),
        &topic,
        PARTITIONS,
        &[("segment.bytes", "262144")],
    )
    .await;

    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let mut next_index = 0;
    for round in 0..5 {
        // Vary the kill point between rounds.
        let wanted = 2_000 + 1_700 * round;
        let stop = Arc::new(AtomicBool::new(false));
        let producer = tokio::spawn(produce_until_stopped(
            broker.bootstrap(),
            topic.clone(),
            next_index,
            Arc::clone(&stop),
            Arc::clone(&acked),
        ));
        let already = acked.lock().expect("acked lock").len();
        wait_for_acks(&acked, already + wanted).await;
        broker.kill9();
        stop.store(true, Ordering::Relaxed);
        next_index = producer.await.expect("producer task");
        let acknowledged = acked.lock().expect("acked lock").len() - already;
        assert!(acknowledged >= wanted, "round {round}: {acknowledged} acks");

        broker.restart();
        let snapshot = acked.lock().expect("acked lock").clone();
        let high_watermarks = verify_after_crash(&broker.bootstrap(), &topic, &snapshot);

        // The broker takes new writes right after the recovered end.
        let producer = harness::producer(&broker.bootstrap(), &[("acks", "all")]);
        for (partition, high) in high_watermarks {
            let key = key_of(next_index);
            let value = value_of(next_index);
            let delivered = producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&value),
                    CLIENT_DEADLINE,
                )
                .await
                .unwrap_or_else(|(error, _)| panic!("produce after restart: {error}"));
            assert_eq!(delivered, (partition, high), "first offset after recovery");
            acked
                .lock()
                .expect("acked lock")
                .push((partition, high, next_index));
            next_index += 1;
        }
    }
}
