//! ListOffsets through librdkafka: offsets_for_times finds the first offset whose timestamp is at
//! or after the target; fetch_watermarks reports log start and high watermark.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

/// Produces one record per request (so one batch each) with the given timestamps to partition 0.
async fn produce_one_per_batch(bootstrap: &str, topic: &str, timestamps: &[i64]) {
    let producer = harness::producer(bootstrap, &[("linger.ms", "0")]);
    for (i, timestamp) in timestamps.iter().enumerate() {
        let value = format!("ts-{i}");
        let (partition, offset) = producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&value)
                    .timestamp(*timestamp),
                CLIENT_DEADLINE,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("record {i} not delivered: {error}"));
        assert_eq!((partition, offset), (0, i64::try_from(i).expect("fits")));
    }
}

/// offsets_for_times for one target timestamp on partition 0.
fn offset_for_time(bootstrap: &str, topic: &str, timestamp: i64) -> Offset {
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(topic, 0, Offset::Offset(timestamp))
        .expect("add partition");
    let result = harness::consumer(bootstrap)
        .offsets_for_times(query, CLIENT_DEADLINE)
        .expect("offsets_for_times");
    let element = result
        .find_partition(topic, 0)
        .expect("partition 0 in result");
    element
        .error()
        .unwrap_or_else(|e| panic!("offsets_for_times({timestamp}) partition error: {e}"));
    element.offset()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_returns_first_offset_at_or_after_target() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = "by-time";
    harness::create_topic(&bootstrap, topic, 1, &[]).await;
    let t0 = harness::now_ms() - 3_600_000;
    // Offsets:             0       1            2            3            4            5
    let timestamps = [
        t0,
        t0 + 3_000,
        t0 + 1_000,
        t0 + 2_000,
        t0 + 5_000,
        t0 + 5_000,
    ];
    produce_one_per_batch(&bootstrap, topic, &timestamps).await;

    let cases = [
        (t0 - 10_000, Offset::Offset(0)), // before everything: the first record
        (t0, Offset::Offset(0)),          // exact match on the first record
        (t0 + 1, Offset::Offset(1)),      // first record with ts >= target is offset 1 (t0+3000)
        (t0 + 1_000, Offset::Offset(1)),  // offset 2 has t0+1000 exactly, but offset 1 comes first
        (t0 + 3_000, Offset::Offset(1)),  // exact match
        (t0 + 3_001, Offset::Offset(4)),  // next record at or after is offset 4
        (t0 + 5_000, Offset::Offset(4)),  // two records with the same timestamp: the first
        (t0 + 5_001, Offset::End),        // after everything: -1, which librdkafka reports as End
    ];
    for (target, expected) in cases {
        assert_eq!(
            offset_for_time(&bootstrap, topic, target),
            expected,
            "offsets_for_times(t0 + {})",
            target - t0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_on_empty_partition_returns_end() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "empty", 1, &[]).await;
    assert_eq!(offset_for_time(&bootstrap, "empty", 0), Offset::End);
    assert_eq!(harness::watermarks(&bootstrap, "empty", 0), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_watermarks_after_produce_reports_start_and_end() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = "marks";
    harness::create_topic(&bootstrap, topic, 2, &[]).await;
    assert_eq!(harness::watermarks(&bootstrap, topic, 0), (0, 0));
    assert_eq!(harness::watermarks(&bootstrap, topic, 1), (0, 0));
    let now = harness::now_ms();
    produce_one_per_batch(&bootstrap, topic, &[now, now, now, now, now]).await;
    assert_eq!(harness::watermarks(&bootstrap, topic, 0), (0, 5));
    assert_eq!(harness::watermarks(&bootstrap, topic, 1), (0, 0));

    // A consumer positioned with OffsetTail resolves the end through ListOffsets first.
    let consumer = harness::consumer(&bootstrap);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::OffsetTail(2))
        .expect("add partition");
    consumer.assign(&assignment).expect("assign");
    let mut offsets = Vec::new();
    harness::wait_until(CLIENT_DEADLINE, "two tail records", || {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => offsets.push(message.offset()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => panic!("tail consume failed: {error}"),
        }
        offsets.len() >= 2
    });
    assert_eq!(offsets, vec![3, 4]);
}
