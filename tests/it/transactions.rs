//! Transactions with librdkafka: commit and abort seen by read_committed and read_uncommitted
//! consumers, zombie fencing of two producers with one transactional id, and a kill -9 in the
//! middle of a transaction (aborted by its timeout after the restart).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::raw;

/// A transactional producer (`transaction.timeout.ms` as given).
pub(crate) fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    timeout_ms: u32,
) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("linger.ms", "1")
        .set("reconnect.backoff.max.ms", "500")
        // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100.
        .set("socket.timeout.ms", timeout_ms.min(30_000).to_string())
        .create()
        .expect("create a transactional producer");
    producer
        .init_transactions(CLIENT_DEADLINE)
        .expect("init_transactions");
    producer
}

/// Sends `values` to `partition` inside the current transaction and flushes them.
pub(crate) fn send_all(producer: &BaseProducer, topic: &str, partition: i32, values: &[String]) {
    for value in values {
        let record = BaseRecord::to(topic)
            .partition(partition)
            .key("k")
            .payload(value.as_str());
        producer.send(record).map_err(|(e, _)| e).expect("enqueue");
    }
    producer.flush(CLIENT_DEADLINE).expect("flush");
}

fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// A consumer reading `partitions` of `topic` from the start at `isolation`.
pub(crate) fn reader(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    isolation: &str,
) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{topic}-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create a consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// Values read until every assigned partition reported its end, after `must_see` values.
pub(crate) fn read_until_end(
    consumer: &BaseConsumer,
    partitions: usize,
    must_see: usize,
) -> Vec<String> {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let mut seen = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    while seen.len() < must_see || at_end.len() < partitions {
        assert!(
            Instant::now() < deadline,
            "read {} of {must_see} values, {} of {partitions} partitions at their end: {seen:?}",
            seen.len(),
            at_end.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                seen.push(payload(&message.detach()));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("consume failed: {error}"),
        }
    }
    seen
}

/// ListOffsets (latest, read_committed) of one partition: its last stable offset.
pub(crate) fn last_stable_offset(addr: std::net::SocketAddr, topic: &str, partition: i32) -> i64 {
    let (error_code, offset) = raw::latest_offset(addr, topic, partition, 1);
    assert_eq!(error_code, 0, "ListOffsets read_committed");
    offset
}

fn payload(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_as_read_committed_and_read_uncommitted_see_them() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "txn", 2, &[]).await;
    let producer = transactional_producer(&bootstrap, "txn-commit-abort", 60_000);
    producer.begin_transaction().expect("begin");
    send_all(&producer, "txn", 0, &values("committed", 5));
    send_all(&producer, "txn", 1, &values("committed", 5));
    producer
        .commit_transaction(CLIENT_DEADLINE)
        .expect("commit");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "txn", 0, &values("aborted", 4));
    send_all(&producer, "txn", 1, &values("aborted", 4));
    producer.abort_transaction(CLIENT_DEADLINE).expect("abort");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "txn", 0, &values("again", 3));
    producer
        .commit_transaction(CLIENT_DEADLINE)
        .expect("commit");

    let committed = reader(&bootstrap, "txn", &[0, 1], "read_committed");
    let mut seen = read_until_end(&committed, 2, 13);
    seen.sort();
    let mut expected: Vec<String> = [
        values("committed", 5),
        values("committed", 5),
        values("again", 3),
    ]
    .concat();
    expected.sort();
    assert_eq!(
        seen, expected,
        "read_committed sees the committed records only"
    );

    let uncommitted = reader(&bootstrap, "txn", &[0, 1], "read_uncommitted");
    let seen = read_until_end(&uncommitted, 2, 21);
    assert_eq!(
        seen.len(),
        21,
        "read_uncommitted sees every record: {seen:?}"
    );
    assert_eq!(seen.iter().filter(|v| v.starts_with("aborted")).count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_output_and_offsets_atomically() {
    const INPUT: usize = 60;
    const PER_TRANSACTION: usize = 10;
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "ctp-in", 1, &[]).await;
    harness::create_topic(&bootstrap, "ctp-out", 1, &[]).await;
    let plain = harness::producer(&bootstrap, &[]);
    for i in 0..INPUT {
        let value = format!("{i}");
        let record = rdkafka::producer::FutureRecord::to("ctp-in")
            .partition(0)
            .key("k")
            .payload(&value);
        plain
            .send(record, CLIENT_DEADLINE)
            .await
            .expect("produce the input");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "ctp-group")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("create the consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("ctp-in", 0, Offset::Stored)
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let producer = transactional_producer(&bootstrap, "ctp-txn", 60_000);
    let metadata = consumer.group_metadata().expect("group metadata");
    let mut transactions = 0;
    let mut batch: Vec<OwnedMessage> = Vec::new();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while transactions * PER_TRANSACTION < INPUT {
        assert!(
            Instant::now() < deadline,
            "{transactions} transactions done in time"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => batch.push(message.detach()),
            Some(Err(error)) => panic!("consume failed: {error}"),
            None => {}
        }
        if batch.len() < PER_TRANSACTION {
            continue;
        }
        let next_offset = batch.last().expect("a batch").offset() + 1;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("ctp-in", 0, Offset::Offset(next_offset))
            .expect("offsets");
        producer.begin_transaction().expect("begin");
        let outputs: Vec<String> = batch
            .iter()
            .map(|m| format!("out-{}", payload(m)))
            .collect();
        send_all(&producer, "ctp-out", 0, &outputs);
        producer
            .send_offsets_to_transaction(&offsets, &metadata, CLIENT_DEADLINE)
            .expect("send offsets to the transaction");
        if transactions == 2 {
            // An aborted round: neither its output nor its offsets count; it is redone.
            producer.abort_transaction(CLIENT_DEADLINE).expect("abort");
            let committed = consumer
                .committed(CLIENT_DEADLINE)
                .expect("committed offsets");
            let at = committed
                .find_partition("ctp-in", 0)
                .map(|p| p.offset())
                .expect("partition");
            assert_eq!(
                at,
                Offset::Offset(20),
                "the aborted offsets are not committed"
            );
            consumer
                .seek("ctp-in", 0, Offset::Offset(20), CLIENT_DEADLINE)
                .expect("rewind");
            batch.clear();
            transactions += 1;
            continue;
        }
        producer
            .commit_transaction(CLIENT_DEADLINE)
            .expect("commit");
        batch.clear();
        transactions += 1;
    }
    let committed = consumer
        .committed(CLIENT_DEADLINE)
        .expect("committed offsets");
    let at = committed
        .find_partition("ctp-in", 0)
        .map(|p| p.offset())
        .expect("partition");
    assert_eq!(at, Offset::Offset(50), "five committed rounds of ten");
    let output = reader(&bootstrap, "ctp-out", &[0], "read_committed");
    let seen = read_until_end(&output, 1, 50);
    let expected: Vec<String> = (0..50).map(|i| format!("out-{i}")).collect();
    assert_eq!(
        seen, expected,
        "each input transformed exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "zombie", 1, &[]).await;
    let zombie = transactional_producer(&bootstrap, "txn-zombie", 60_000);
    zombie.begin_transaction().expect("begin");
    send_all(&zombie, "zombie", 0, &values("zombie", 3));
    // The new producer's init aborts the zombie's open transaction and fences it.
    let fresh = transactional_producer(&bootstrap, "txn-zombie", 60_000);
    let zombie_commit = zombie.commit_transaction(CLIENT_DEADLINE);
    let Err(KafkaError::Transaction(error)) = zombie_commit else {
        panic!("the zombie committed: {zombie_commit:?}");
    };
    assert!(
        error.is_fatal() || error.code() == RDKafkaErrorCode::ProducerFenced,
        "the zombie is fenced: {error:?}"
    );
    fresh.begin_transaction().expect("begin");
    send_all(&fresh, "zombie", 0, &values("fresh", 2));
    fresh
        .commit_transaction(CLIENT_DEADLINE)
        .expect("the new producer commits");
    let committed = reader(&bootstrap, "zombie", &[0], "read_committed");
    let seen = read_until_end(&committed, 1, 2);
    assert_eq!(
        seen,
        values("fresh", 2),
        "only the new producer's records are committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_transaction_aborts_it_after_the_restart_and_readers_move_past_it() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start_with_env(
        dir.path(),
        &[(
            "TIDELOG_TRANSACTIONS__ABORT_TIMED_OUT_CHECK_INTERVAL_MS",
            "200",
        )],
    );
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "crash", 1, &[]).await;
    let producer = transactional_producer(&bootstrap, "txn-crash", 3_000);
    producer.begin_transaction().expect("begin");
    send_all(&producer, "crash", 0, &values("before", 3));
    producer
        .commit_transaction(CLIENT_DEADLINE)
        .expect("commit");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "crash", 0, &values("open", 4));
    broker.kill9();
    drop(producer);
    broker.restart();
    let bootstrap = broker.bootstrap();
    // The open transaction holds the last stable offset until its timeout aborts it; then the
    // last stable offset reaches the high watermark (past the ABORT marker).
    let (_, high) = harness::watermarks(&bootstrap, "crash", 0);
    harness::wait_until(CLIENT_DEADLINE, "the timed-out transaction aborted", || {
        last_stable_offset(broker.addr(), "crash", 0) > high
    });
    let committed = reader(&bootstrap, "crash", &[0], "read_committed");
    let seen = read_until_end(&committed, 1, 3);
    assert_eq!(seen, values("before", 3));
    let after = transactional_producer(&bootstrap, "txn-crash", 3_000);
    after.begin_transaction().expect("begin");
    send_all(&after, "crash", 0, &values("after", 2));
    after
        .commit_transaction(CLIENT_DEADLINE)
        .expect("commit after the restart");
    let committed = reader(&bootstrap, "crash", &[0], "read_committed");
    let seen = read_until_end(&committed, 1, 5);
    assert_eq!(seen, [values("before", 3), values("after", 2)].concat());
}
