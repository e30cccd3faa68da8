//! Tests that partitions do not hold each other up, through the Produce and Fetch handlers
//! on a real broker in a temporary directory: a slow disk under one partition, flushes of one
//! partition waking fetches of another (counted reads and gated fsyncs, never timings).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
use tempfile::TempDir;

use super::admin_tests::{context, name};
use super::{fetch, produce};
use crate::broker::test_support::{self as support, Fault, Gate, Op};
use crate::broker::{Acks, Broker, BrokerSettings, Endpoint};
use crate::kafka::{Context, KafkaSettings};

/// How long a test waits for something that should happen promptly before it fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn one_record(value: &[u8]) -> Bytes {
    let record = support::Record {
        key: None,
        value: Some(value.to_vec()),
    };
    Bytes::from(support::build_batch(&[record], 1_000))
}

fn context_on(dir: &TempDir, fs: support::Fs) -> Context {
    let settings = BrokerSettings::for_test(
        1,
        "isolation-test",
        dir.path(),
        Endpoint {
            host: "broker.test".to_owned(),
            port: 19092,
        },
    );
    let broker = Broker::open_on(settings, fs).expect("broker opens in a fresh directory");
    let peer = "127.0.0.1:1".parse().expect("socket address");
    Context::new(broker, Arc::new(KafkaSettings::default()), peer)
}

/// Produces one record to `topic`'s `partition` through the handler; returns the partition's
/// error code once the record is as durable as `acks` asks (acks=0: once it is appended).
async fn produce_one(ctx: &Context, topic: &str, partition: i32, value: &[u8], acks: i16) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(60_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(name(topic)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(one_record(value))),
                ]),
        ]);
    match produce::handle(ctx, 9, request).await {
        produce::Produced::Respond(response) => response
            .await
            .responses
            .first()
            .and_then(|topic| topic.partition_responses.first())
            .map_or(-1, |partition| partition.error_code),
        produce::Produced::NoResponse { failed_partitions } => -i16::from(failed_partitions > 0),
    }
}

/// Waits on a blocking thread until `count` operations reached `gate`.
async fn wait_entered(gate: &Gate, count: usize) {
    let gate = gate.clone();
    let entered = tokio::task::spawn_blocking(move || gate.wait_entered(count, DEADLINE))
        .await
        .expect("waiting for the gate");
    assert!(entered, "{count} fsyncs should have reached the gate");
}

/// The records a fetch response returned for its first partition.
fn first_records(response: &kafka_protocol::messages::FetchResponse) -> Bytes {
    response
        .responses
        .first()
        .and_then(|topic| topic.partitions.first())
        .and_then(|partition| partition.records.clone())
        .unwrap_or_default()
}

/// Regression (issue 7, 9): a segment roll fsynced under the partition lock on the async
/// worker serving the produce, so a slow disk under one partition took the workers and with
/// them every other partition's produces and fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_roll_fsync_of_one_partition_stalls_produce_and_fetch_of_others() {
    let dir = TempDir::new().expect("tempdir");
    let fs = support::Fs::default();
    let ctx = context_on(&dir, fs.clone());
    // Two one-record batches do not fit in 100 bytes: the second append rolls.
    let tiny = vec![("segment.bytes".to_owned(), Some("100".to_owned()))];
    ctx.broker
        .create_topic_local("slow", Some(2), None, &tiny, false)
        .expect("create slow");
    ctx.broker
        .create_topic_local("fast", Some(1), None, &[], false)
        .expect("create fast");
    let gate = Gate::default();
    for partition in 0..2 {
        let partition_dir = dir.path().join(format!("slow-{partition}"));
        fs.inject_always(&partition_dir, Op::Fsync, Fault::Block(gate.clone()));
    }
    // A first record per slow partition, appended (acks=0) but not durable: its group-commit
    // fsync is held at the gate, so the roll below has data to fsync.
    for partition in 0..2 {
        assert_eq!(produce_one(&ctx, "slow", partition, b"first", 0).await, 0);
    }
    wait_entered(&gate, 2).await;
    // As many rolling produces as there are workers, each stuck in its roll's fsync.
    let rolling: Vec<_> = (0..2)
        .map(|partition| {
            let ctx = ctx.clone();
            tokio::spawn(async move { produce_one(&ctx, "slow", partition, b"rolls", -1).await })
        })
        .collect();
    wait_entered(&gate, 4).await;
    // Waited for on this (non-worker) thread with a std channel: with every worker stuck, no
    // tokio timer would fire.
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
    {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let produced = produce_one(&ctx, "fast", 0, b"fast", -1).await;
            let fetched = fetch::handle(&ctx, 12, long_poll("fast", 0)).await;
            // A fetch of the slow partition (nothing durable there yet) is answered too.
            let mut empty_poll = long_poll("slow", 0);
            empty_poll.max_wait_ms = 0;
            let fetched_slow = fetch::handle(&ctx, 12, empty_poll).await;
            let slow_error = fetched_slow
                .responses
                .first()
                .and_then(|topic| topic.partitions.first())
                .map_or(-1, |partition| partition.error_code);
            let _ = done_tx.send((produced, first_records(&fetched), slow_error));
        });
    }
    let answered = done_rx.recv_timeout(DEADLINE);
    gate.open();
    let (produced, fast_records, slow_error) =
        answered.expect("the other partitions are served while the slow disk holds its fsyncs");
    assert_eq!(produced, 0, "the produce to the fast partition succeeds");
    assert!(
        !fast_records.is_empty(),
        "the fetch of the fast partition returns its record"
    );
    assert_eq!(
        slow_error, 0,
        "the slow partition answers a fetch while its roll waits"
    );
    for produce in rolling {
        let code = tokio::time::timeout(DEADLINE, produce)
            .await
            .expect("the rolling produces finish once the disk is back")
            .expect("task");
        assert_eq!(code, 0, "the rolling produce succeeds");
    }
}

/// A fetch of `topic`'s `partition` from offset 0 that waits up to a minute for one byte.
fn long_poll(topic: &str, partition: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(60_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(name(topic)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

/// Regression (issue 7, 10): every flush on any partition woke every parked long-poll fetch,
/// which then re-read all its partitions.
#[tokio::test(flavor = "current_thread")]
async fn flush_of_any_partition_wakes_every_parked_fetch() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    ctx.broker
        .create_topic_local("t", Some(2), None, &[], false)
        .expect("create");
    let fetching = {
        let ctx = ctx.clone();
        tokio::spawn(async move { fetch::handle(&ctx, 12, long_poll("t", 0)).await })
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while ctx.broker.fetch_read_count("t", 0) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the fetch reads");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Each durable append to partition 1 lets every other task run while its fsync is on the
    // blocking pool: a fetch woken by it would re-read partition 0 by then.
    for value in [b"b1", b"b2", b"b3"] {
        let pending = ctx
            .broker
            .append("t", 1, one_record(value), Acks::All)
            .expect("append to partition 1");
        pending.wait().await.expect("durable");
    }
    assert_eq!(
        ctx.broker.fetch_read_count("t", 0),
        1,
        "flushes of partition 1 must not wake a fetch of partition 0"
    );
    let pending = ctx
        .broker
        .append("t", 0, one_record(b"a1"), Acks::All)
        .expect("append to partition 0");
    pending.wait().await.expect("durable");
    let response = tokio::time::timeout(DEADLINE, fetching)
        .await
        .expect("the fetch is answered once partition 0 has data")
        .expect("fetch task");
    let records = first_records(&response);
    assert!(
        !records.is_empty(),
        "the fetch returns partition 0's record"
    );
    assert_eq!(
        ctx.broker.fetch_read_count("t", 0),
        2,
        "one wake-up, one re-read"
    );
}
