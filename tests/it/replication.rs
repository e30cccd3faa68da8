//! Replicated partitions (replication factor 3) on a cluster of three broker processes: an
//! idempotent acks=all producer goes on through kill -9 of the partition's leader, and every
//! acknowledged record is read back once, in order, from the survivors; also coordinators that
//! move with leadership, retention through raft, and two of three replicas paused.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};

use crate::cluster::{form_three, leaders};
use crate::harness::{self, CLIENT_DEADLINE, wait_until};
use crate::transactions;

const LEADER_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) async fn create_replicated(bootstrap: &str, name: &str, partitions: i32) {
    let admin = harness::admin(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3));
    let results = admin
        .create_topics([&topic], &harness::admin_options())
        .await
        .expect("CreateTopics request");
    assert!(
        results.iter().all(Result::is_ok),
        "creating {name}: {results:?}"
    );
}

/// Three brokers whose maintenance runs every 200 ms, with `topic` created: the brokers,
/// their data dirs and bootstrap addresses.
async fn form_three_with_topic(
    topic: NewTopic<'_>,
) -> (Vec<harness::Broker>, Vec<tempfile::TempDir>, Vec<String>) {
    let (brokers, dirs) =
        crate::cluster::form_three_with(&[("TIDELOG_LOG__RETENTION_CHECK_INTERVAL_MS", "200")]);
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let results = harness::admin(&bootstraps[0])
        .create_topics([&topic], &harness::admin_options())
        .await
        .expect("CreateTopics request");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (brokers, dirs, bootstraps)
}

/// An idempotent producer whose batches stay under 16 KiB segments.
fn small_batch_producer(bootstrap: &str) -> rdkafka::producer::FutureProducer {
    harness::producer(
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("batch.size", "8000"),
        ],
    )
}

/// Enqueues `values` (in order, all in flight at once); the returned futures resolve with
/// their acknowledgements.
pub(crate) fn enqueue(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    values: &[String],
) -> Vec<rdkafka::producer::DeliveryFuture> {
    enqueue_keyed(producer, topic, values, |_| "k")
}

/// [`enqueue`] with each value's key taken from the value.
fn enqueue_keyed<'a>(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    values: &'a [String],
    key_of: impl Fn(&'a str) -> &'a str,
) -> Vec<rdkafka::producer::DeliveryFuture> {
    values
        .iter()
        .map(|value| {
            let record = FutureRecord::to(topic)
                .partition(0)
                .key(key_of(value))
                .payload(value);
            match producer.send_result(record) {
                Ok(delivery) => delivery,
                Err((error, _)) => panic!("{value} not enqueued: {error}"),
            }
        })
        .collect()
}

pub(crate) async fn acknowledged(
    values: &[String],
    deliveries: Vec<rdkafka::producer::DeliveryFuture>,
) {
    for (value, delivery) in values.iter().zip(deliveries) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => panic!("{value} not acknowledged: {error}"),
            Err(cancelled) => panic!("{value}: delivery report lost: {cancelled}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_partition_keeps_every_acknowledged_record_through_the_leaders_kill() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "replicated", 1).await;
    let mut leader = 0;
    wait_until(LEADER_DEADLINE, "every broker names one leader", || {
        let seen: BTreeSet<i32> = bootstraps
            .iter()
            .filter_map(|b| leaders(b, "replicated").get(&0).copied())
            .collect();
        leader = seen.iter().next().copied().unwrap_or(-1);
        seen.len() == 1 && leader > 0
    });
    let metadata = harness::metadata(&bootstraps[0]);
    let partition = &metadata
        .topics()
        .iter()
        .find(|t| t.name() == "replicated")
        .expect("topic listed")
        .partitions()[0];
    assert_eq!(partition.replicas().len(), 3);
    // The first leader's term (1, unless a first election failed on a busy machine).
    let first_term = crate::raw::RawConn::connect(brokers[leader as usize - 1].addr())
        .roundtrip(
            &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
            12,
        )
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "replicated"))
        .and_then(|t| t.partitions.first())
        .map(|p| p.leader_epoch)
        .expect("the partition's leader epoch");

    let producer = harness::producer(
        &all,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "2"),
        ],
    );
    // Records go out with at most 50 unacknowledged, so they make many batches; the leader
    // is killed with some in flight, after 400 are acknowledged.
    let values: Vec<String> = (0..1000).map(|i| format!("v{i:04}")).collect();
    let mut in_flight = std::collections::VecDeque::new();
    for (i, value) in values.iter().enumerate() {
        in_flight.extend(enqueue(
            &producer,
            "replicated",
            std::slice::from_ref(value),
        ));
        if in_flight.len() > 50 {
            let delivery = in_flight.pop_front().expect("in flight");
            acknowledged(&values[i - 50..=i - 50], vec![delivery]).await;
        }
        if i == 450 {
            brokers[leader as usize - 1].kill9();
        }
    }
    let rest = values.len() - in_flight.len();
    acknowledged(&values[rest..], in_flight.into_iter().collect()).await;

    let survivor = bootstraps
        .iter()
        .enumerate()
        .find(|(i, _)| *i != leader as usize - 1)
        .map(|(_, b)| b.clone())
        .expect("two survivors");
    let read = harness::consume(&survivor, "replicated", &[(0, 0, 1000)], CLIENT_DEADLINE);
    let values_read: Vec<String> = read[&0]
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(
        values_read, values,
        "every acknowledged record once, in order"
    );
    // The new leader serves a higher leader epoch.
    let new_leader = leaders(&survivor, "replicated")[&0];
    assert_ne!(new_leader, leader);
    // KIP-320: a fetcher whose last record is of the first term, asking past that term's
    // end, is told where the term ends (and gets no records); one fetching from there is not.
    let new_leader_addr = brokers[new_leader as usize - 1].addr();
    let (diverging, records) = fetch_after_epoch(new_leader_addr, "replicated", first_term, 2000);
    assert_eq!(diverging.0, first_term, "the first term");
    assert!((1..1100).contains(&diverging.1), "{diverging:?}");
    assert_eq!(records, 0);
    let (agreed, _) = fetch_after_epoch(new_leader_addr, "replicated", first_term, diverging.1);
    assert_eq!(
        agreed,
        (-1, -1),
        "fetching from the term's end does not diverge"
    );
    let led = brokers[new_leader as usize - 1].log();
    assert!(
        led.lines()
            .any(|l| l.contains("leading the partition") && l.contains("epoch=")),
        "the new leader reported itself: {led}"
    );

    // The in-sync replicas (reported by the raft leader) leave the killed broker out...
    wait_until(LEADER_DEADLINE, "the killed broker out of the ISR", || {
        let isr = isr_of(&survivor, "replicated");
        isr.len() == 2 && !isr.contains(&leader)
    });

    // The killed broker was the preferred replica (the first, which started the group): back
    // and caught up, it is handed the leadership again, so leaders stay spread.
    assert_eq!(
        partition.replicas()[0],
        leader,
        "the first leader is the preferred replica"
    );
    brokers[leader as usize - 1].restart_on_same_port();
    wait_until(LEADER_DEADLINE, "the preferred replica leads again", || {
        leaders(&survivor, "replicated").get(&0) == Some(&leader)
    });
    let producer = harness::producer(&all, &[("enable.idempotence", "true")]);
    let more: Vec<String> = (1000..1010).map(|i| format!("v{i:04}")).collect();
    acknowledged(&more, enqueue(&producer, "replicated", &more)).await;
    // ...and take it back once it caught up.
    wait_until(LEADER_DEADLINE, "all three in the ISR", || {
        isr_of(&survivor, "replicated").len() == 3
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_an_open_transaction_move_to_a_new_coordinator_when_its_broker_is_killed()
 {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "moving", 1).await;
    let producer = harness::producer(&all, &[("enable.idempotence", "true")]);
    let values: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    acknowledged(&values, enqueue(&producer, "moving", &values)).await;

    // The group commits after 50 records; its coordinator is the leader of its (replicated)
    // offsets partition.
    let group = "movers";
    let read = crate::cluster::consume_as_group(&all, group, "moving", 50);
    assert_eq!(read, 50);
    let committed = committed_offset(&all, group);
    assert!(committed > 0, "committed {committed}");
    let coordinator = crate::cluster::find_coordinator(brokers[0].addr(), group, 0);
    // A transactional id the same broker coordinates, with a transaction left open.
    // (The transaction state partitions may still be electing their first leaders.)
    let mut transactional_id = String::new();
    wait_until(
        LEADER_DEADLINE,
        "a transactional id that broker coordinates",
        || {
            let found = (0..200).map(|i| format!("mover-{i}")).find(|id| {
                crate::cluster::try_find_coordinator(brokers[0].addr(), id, 1) == Ok(coordinator)
            });
            transactional_id = found.unwrap_or_default();
            !transactional_id.is_empty()
        },
    );
    let txn = transactions::transactional_producer(&all, &transactional_id, 60_000);
    let open: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    txn.begin_transaction().expect("begin");
    transactions::send_all(&txn, "moving", 0, &open);

    brokers[coordinator as usize - 1].kill9();
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i + 1 != coordinator as usize)
        .map(|i| bootstraps[i].clone())
        .collect();
    let survivors = survivors.join(",");

    // Another broker leads the offsets partition now, loaded it, and answers with the commit.
    // Both survivors name it first: librdkafka asks either, and gives `committed_offsets` up
    // after a few NOT_COORDINATOR answers from a broker one of them named a moment before.
    wait_until(LEADER_DEADLINE, "a new group coordinator", || {
        let named: BTreeSet<Result<i32, i16>> = brokers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i + 1 != coordinator as usize)
            .map(|(_, b)| crate::cluster::try_find_coordinator(b.addr(), group, 0))
            .collect();
        named.len() == 1
            && named
                .iter()
                .all(|one| one.is_ok_and(|id| id != coordinator))
    });
    assert_eq!(committed_offset(&survivors, group), committed);
    // The transaction commits through the new transaction coordinator.
    txn.commit_transaction(CLIENT_DEADLINE)
        .expect("commit through the new coordinator");
    let reader = transactions::reader(&survivors, "moving", &[0], "read_committed");
    let seen = transactions::read_until_end(&reader, 1, values.len() + open.len());
    assert_eq!(seen.len(), values.len() + open.len(), "{seen:?}");
    assert!(open.iter().all(|v| seen.contains(v)), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_cuts_a_replicated_partition_and_a_new_leader_serves_from_its_own_cut() {
    let topic =
        NewTopic::new("retained", 1, TopicReplication::Fixed(3)).set("segment.bytes", "16384");
    let (mut brokers, _dirs, bootstraps) = form_three_with_topic(topic).await;
    let all = bootstraps.join(",");
    let producer = small_batch_producer(&all);
    let values: Vec<String> = (0..2000)
        .map(|i| format!("{i:05}-{}", "x".repeat(90)))
        .collect();
    acknowledged(&values, enqueue(&producer, "retained", &values)).await;
    // Retention set after the writes (a config change reaches the replicas' logs)...
    let config =
        rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic("retained"))
            .set("retention.bytes", "49152");
    let altered = harness::admin(&bootstraps[0])
        .alter_configs([&config], &harness::admin_options())
        .await
        .expect("AlterConfigs request");
    assert!(altered.iter().all(Result::is_ok), "{altered:?}");

    // ...cuts the leader's log (a raft snapshot, then a purge)...
    let leader = leaders(&all, "retained")[&0];
    wait_until(LEADER_DEADLINE, "the leader's log start moved", || {
        let addr = brokers[leader as usize - 1].addr();
        crate::raw::list_offset(addr, "retained", 0, -2, 0).1 > 0
    });
    // ...and each follower's: the next leader serves from its own cut, every record above it
    // in order up to the last one written.
    brokers[leader as usize - 1].kill9();
    let mut successor = 0;
    wait_until(LEADER_DEADLINE, "a new leader", || {
        successor = (1..=3)
            .filter(|id| *id != leader)
            .find_map(|id| {
                leaders(&bootstraps[id as usize - 1], "retained")
                    .get(&0)
                    .copied()
            })
            .filter(|l| *l != leader && *l > 0)
            .unwrap_or(0);
        successor > 0
    });
    let mut low = 0;
    wait_until(
        LEADER_DEADLINE,
        "the new leader serves from its cut",
        || {
            let addr = brokers[successor as usize - 1].addr();
            let (error, offset) = crate::raw::list_offset(addr, "retained", 0, -2, 0);
            low = offset;
            error == 0 && offset > 0
        },
    );
    let survivors = bootstraps[successor as usize - 1].clone();
    let read = read_from(&survivors, "retained", low, values.last().expect("values"));
    assert!(
        !read.is_empty() && read.len() < values.len(),
        "{} read",
        read.len()
    );
    assert_eq!(
        read.as_slice(),
        &values[values.len() - read.len()..],
        "a suffix, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_of_three_replicas_paused_acks_all_is_not_acknowledged_and_reads_stay_committed() {
    let (brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "paused", 1).await;
    let producer = harness::producer(&all, &[("enable.idempotence", "true")]);
    let before: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
    acknowledged(&before, enqueue(&producer, "paused", &before)).await;
    let leader = leaders(&all, "paused")[&0];
    let led = &brokers[leader as usize - 1];
    let (_, committed) = crate::raw::latest_offset(led.addr(), "paused", 0, 0);

    // Both followers stop: a write reaches the leader's log but no majority, so it is never
    // acknowledged, and readers still see exactly the committed records.
    let followers: Vec<&crate::harness::Broker> = brokers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i + 1 != leader as usize)
        .map(|(_, b)| b)
        .collect();
    for follower in &followers {
        follower.signal("STOP");
    }
    let stalled_producer = harness::producer(
        &led.bootstrap(),
        &[("acks", "all"), ("message.timeout.ms", "5000")],
    );
    let stalled = vec!["stalled".to_owned()];
    let delivery = enqueue(&stalled_producer, "paused", &stalled)
        .pop()
        .expect("one delivery");
    let delivered = delivery.await;
    assert!(
        matches!(delivered, Ok(Err(_))),
        "a write without a majority is not acknowledged: {delivered:?}"
    );
    assert_eq!(
        crate::raw::latest_offset(led.addr(), "paused", 0, 0),
        (0, committed),
        "the high watermark stays at the last commit"
    );
    assert_eq!(
        read_values(&led.bootstrap(), "paused", before.len()),
        before
    );

    // They come back: writes are acknowledged again and nothing acknowledged is lost.
    for follower in &followers {
        follower.signal("CONT");
    }
    let after: Vec<String> = (0..50).map(|i| format!("q{i:03}")).collect();
    acknowledged(&after, enqueue(&producer, "paused", &after)).await;
    let read = read_from(&all, "paused", 0, after.last().expect("after"));
    let acked: Vec<&String> = before.iter().chain(&after).collect();
    let kept: Vec<&String> = read.iter().filter(|v| v.as_str() != "stalled").collect();
    assert_eq!(kept, acked, "every acknowledged record once, in order");
}

/// The values of partition 0 of `topic` from offset `start` through the record `last`.
fn read_from(bootstrap: &str, topic: &str, start: i64, last: &str) -> Vec<String> {
    read_with(harness::consumer(bootstrap), topic, start, last)
}

/// Like [`read_from`], but a start that retention has cut meanwhile moves to the new log start
/// (librdkafka's `auto.offset.reset=earliest`) instead of failing.
fn read_from_at_least(bootstrap: &str, topic: &str, start: i64, last: &str) -> Vec<String> {
    use rdkafka::config::FromClientConfig;
    let mut config = harness::base_config(bootstrap);
    config
        .set(
            "group.id",
            format!("tidelog-it-{}-{start}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer = rdkafka::consumer::BaseConsumer::from_config(&config).expect("consumer");
    read_with(consumer, topic, start, last)
}

fn read_with(
    consumer: rdkafka::consumer::BaseConsumer,
    topic: &str,
    start: i64,
    last: &str,
) -> Vec<String> {
    use rdkafka::consumer::Consumer;
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(start))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + CLIENT_DEADLINE;
    let mut read = Vec::new();
    while read.last().map(String::as_str) != Some(last) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} read, not yet {last}",
            read.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => read
                .push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => panic!("consuming {topic}: {error}"),
        }
    }
    read
}

/// The committed offset of partition 0 of `moving` for `group`, asked through `bootstrap`.
fn committed_offset(bootstrap: &str, group: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = crate::cluster::group_config(bootstrap, group)
        .create()
        .expect("offsets reader");
    let mut wanted = rdkafka::TopicPartitionList::new();
    wanted.add_partition("moving", 0);
    let committed = consumer
        .committed_offsets(wanted, CLIENT_DEADLINE)
        .expect("OffsetFetch");
    match committed.elements()[0].offset() {
        rdkafka::Offset::Offset(offset) => offset,
        other => panic!("committed {other:?}"),
    }
}

/// Fetch v12 of partition 0 of `topic` at `offset` with `last_fetched_epoch`: the diverging
/// epoch and end offset the leader answers ((-1, -1): none) and the record bytes it returned.
fn fetch_after_epoch(
    addr: std::net::SocketAddr,
    topic: &str,
    last_fetched_epoch: i32,
    offset: i64,
) -> ((i32, i64), usize) {
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(crate::raw::topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_last_fetched_epoch(last_fetched_epoch)
                        .with_partition_max_bytes(1024 * 1024),
                ]),
        ]);
    let response = crate::raw::RawConn::connect(addr).roundtrip(&request, 12);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch error");
    (
        (data.diverging_epoch.epoch, data.diverging_epoch.end_offset),
        data.records.as_ref().map_or(0, |r| r.len()),
    )
}

/// The values of the first `count` records of partition 0 of `topic`, read with librdkafka.
pub(crate) fn read_values(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let read = harness::consume(bootstrap, topic, &[(0, 0, count)], CLIENT_DEADLINE);
    read[&0]
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect()
}

/// The in-sync replicas of partition 0 of `topic`, as the broker at `bootstrap` reports them.
pub(crate) fn isr_of(bootstrap: &str, topic: &str) -> Vec<i32> {
    partition_zero(bootstrap, topic).1
}

/// (replicas, in-sync replicas) of partition 0 of `topic`, as the broker at `bootstrap`
/// reports them.
pub(crate) fn partition_zero(bootstrap: &str, topic: &str) -> (Vec<i32>, Vec<i32>) {
    harness::metadata(bootstrap)
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| t.partitions().iter().find(|p| p.id() == 0))
        .map(|p| (p.replicas().to_vec(), p.isr().to_vec()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_on_replicated_partitions_and_a_restarted_replica_catches_up()
{
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "replicated-txn", 2).await;
    wait_until(LEADER_DEADLINE, "both partitions have a leader", || {
        leaders(&bootstraps[1], "replicated-txn").len() == 2
    });

    let producer = transactions::transactional_producer(&all, "replicated-txn-producer", 30_000);
    let committed: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let aborted: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    producer.begin_transaction().expect("begin");
    transactions::send_all(&producer, "replicated-txn", 0, &committed[..10]);
    transactions::send_all(&producer, "replicated-txn", 1, &committed[10..]);
    producer
        .commit_transaction(CLIENT_DEADLINE)
        .expect("commit");

    // A follower of partition 0 goes away and comes back while a transaction is aborted (not
    // the transaction coordinator: the coordinator's own failover is tested on its own below).
    let leader = leaders(&bootstraps[0], "replicated-txn")[&0];
    let coordinator =
        crate::cluster::find_coordinator(brokers[0].addr(), "replicated-txn-producer", 1);
    let follower = (0..3)
        .find(|i| *i + 1 != leader as usize && *i + 1 != coordinator as usize)
        .expect("a follower that does not coordinate");
    brokers[follower].kill9();
    producer.begin_transaction().expect("begin");
    transactions::send_all(&producer, "replicated-txn", 0, &aborted);
    producer.abort_transaction(CLIENT_DEADLINE).expect("abort");
    brokers[follower].restart_on_same_port();

    let reader = transactions::reader(&all, "replicated-txn", &[0, 1], "read_committed");
    let mut seen = transactions::read_until_end(&reader, 2, committed.len());
    seen.sort();
    let mut expected = committed.clone();
    expected.sort();
    assert_eq!(seen, expected, "committed records only");
    let uncommitted = transactions::reader(&all, "replicated-txn", &[0], "read_uncommitted");
    let seen = transactions::read_until_end(&uncommitted, 1, 20);
    assert_eq!(
        seen.len(),
        20,
        "the aborted records are in the log: {seen:?}"
    );

    // The restarted follower is back in the group: with the leader gone, a new leader needs its
    // vote, and serves every committed record.
    wait_until(
        LEADER_DEADLINE,
        "the follower is back in the cluster",
        || crate::cluster::view(brokers[follower].addr()).2 == [1, 2, 3],
    );
    let old_leader = leader as usize - 1;
    brokers[old_leader].kill9();
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i != old_leader)
        .map(|i| bootstraps[i].clone())
        .collect();
    let reader = transactions::reader(
        &survivors.join(","),
        "replicated-txn",
        &[0],
        "read_committed",
    );
    let mut seen = transactions::read_until_end(&reader, 1, 10);
    seen.sort();
    let mut expected: Vec<String> = committed[..10].to_vec();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_partitions_keep_every_record_through_a_full_cluster_restart() {
    let (brokers, dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    create_replicated(&bootstraps[0], "replicated-restart", 3).await;
    wait_until(LEADER_DEADLINE, "every partition has a leader", || {
        leaders(&bootstraps[1], "replicated-restart").len() == 3
    });
    let producer = harness::producer(&bootstraps.join(","), &[("enable.idempotence", "true")]);
    let values: Vec<String> = (0..300).map(|i| format!("r{i:03}")).collect();
    let deliveries: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let record = FutureRecord::to("replicated-restart")
                .partition(i as i32 % 3)
                .key("k")
                .payload(value);
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue")
        })
        .collect();
    acknowledged(&values, deliveries).await;
    drop(producer);
    for mut broker in brokers {
        assert!(broker.stop().success(), "clean SIGTERM exit");
    }

    // Every broker comes back (on new ports) and the raft groups elect leaders again.
    let first = crate::cluster::start(dirs[0].path(), &crate::cluster::cluster_env(1, 3, ""));
    let seed = crate::cluster::gossip_addr(&first);
    let mut brokers = vec![first];
    for id in 2..=3 {
        brokers.push(crate::cluster::start(
            dirs[id as usize - 1].path(),
            &crate::cluster::cluster_env(id, 3, &seed),
        ));
    }
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    wait_until(LEADER_DEADLINE, "the partitions led again", || {
        bootstraps
            .iter()
            .all(|b| leaders(b, "replicated-restart").values().all(|l| *l > 0))
            && leaders(&bootstraps[0], "replicated-restart").len() == 3
    });
    let wanted: Vec<(i32, i64, usize)> = (0..3).map(|p| (p, 0, 100)).collect();
    let read = harness::consume(
        &bootstraps[2],
        "replicated-restart",
        &wanted,
        CLIENT_DEADLINE,
    );
    for (partition, records) in &read {
        let got: Vec<String> = records
            .iter()
            .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            .collect();
        let sent: Vec<String> = values
            .iter()
            .skip(*partition as usize)
            .step_by(3)
            .cloned()
            .collect();
        assert_eq!(got, sent, "partition {partition}");
    }
    // And takes new writes.
    let producer = harness::producer(&bootstraps.join(","), &[]);
    let more: Vec<String> = (0..30).map(|i| format!("s{i:03}")).collect();
    let deliveries = enqueue(&producer, "replicated-restart", &more);
    acknowledged(&more, deliveries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_replicated_topic_is_compacted_and_a_replica_that_was_away_gets_its_segments() {
    let topic = NewTopic::new("compacted", 1, TopicReplication::Fixed(3))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "16384")
        .set("min.cleanable.dirty.ratio", "0.01");
    let (mut brokers, _dirs, bootstraps) = form_three_with_topic(topic).await;
    let mut leader = 0;
    wait_until(LEADER_DEADLINE, "a leader", || {
        leader = leaders(&bootstraps[0], "compacted")
            .get(&0)
            .copied()
            .unwrap_or(0);
        leader > 0
    });
    // The preferred replica (the first leader) is away while the others take every write.
    let away = leader as usize - 1;
    brokers[away].kill9();
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i != away)
        .map(|i| bootstraps[i].clone())
        .collect();
    let producer = small_batch_producer(&survivors.join(","));
    // The first keys are written once (their only value stays in the compacted prefix), the
    // rest over and over.
    let key_of = |i: usize| match i {
        0..100 => format!("u{i:03}"),
        _ => format!("k{:03}", i % 10),
    };
    let values: Vec<String> = (0..3000)
        .map(|i| format!("{i:05}-{}-{}", key_of(i), "x".repeat(60)))
        .collect();
    let deliveries = enqueue_keyed(&producer, "compacted", &values, |value| &value[6..10]);
    acknowledged(&values, deliveries).await;
    let last = values.last().expect("values").clone();
    let latest = |read: &[String]| {
        let mut latest = std::collections::BTreeMap::new();
        for value in read {
            latest.insert(value[6..10].to_owned(), value.clone());
        }
        latest
    };
    let expected = latest(&values);
    // Whatever a read returns: records that were written, in the order written, the latest
    // value of every key among them.
    let check = |read: &[String]| {
        let mut written = values.iter();
        assert!(
            read.iter().all(|value| written.any(|w| w == value)),
            "a subsequence of what was written"
        );
        assert_eq!(latest(read), expected, "the latest value of every key");
    };

    // The new leader purges its raft entries below its active segment and compacts them.
    let mut compacted = Vec::new();
    wait_until(LEADER_DEADLINE, "the new leader compacted the log", || {
        compacted = read_from(&survivors.join(","), "compacted", 0, &last);
        compacted.len() < values.len() / 2
    });
    check(&compacted);

    // Back, the preferred replica lacks the purged entries: it gets the leader's compacted
    // segments with the snapshot, catches up, takes the leadership back and serves them.
    brokers[away].restart_on_same_port();
    // (asked of the others: the returning broker's own metadata may still be the old one)
    wait_until(LEADER_DEADLINE, "the preferred replica leads again", || {
        leaders(&survivors.join(","), "compacted").get(&0) == Some(&leader)
    });
    let read = read_from(&bootstraps[away], "compacted", 0, &last);
    assert!(read.len() < values.len() / 2, "{} records", read.len());
    check(&read);
    assert!(
        brokers[away]
            .log()
            .contains("installed a snapshot's segments"),
        "the returning replica got the segments through a snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_of_every_replica_and_a_new_leader_keeps_it() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "trimmed", 1).await;
    wait_until(LEADER_DEADLINE, "a leader", || {
        leaders(&all, "trimmed").contains_key(&0)
    });
    let producer = harness::producer(&all, &[("enable.idempotence", "true")]);
    let values: Vec<String> = (0..300).map(|i| format!("trimmed-{i:04}")).collect();
    acknowledged(&values, enqueue(&producer, "trimmed", &values)).await;
    let leader = leaders(&all, "trimmed")[&0];
    let leader_addr = brokers[leader as usize - 1].addr();
    // Offsets of one producer's records without raft entries between them: value i at i + k.
    let first = crate::raw::list_offset(leader_addr, "trimmed", 0, -2, 0).1;
    let end = crate::raw::list_offset(leader_addr, "trimmed", 0, -1, 0).1;
    let cut = first + (end - first) / 2;
    assert_eq!(
        crate::raw::delete_records(leader_addr, "trimmed", 0, cut),
        (0, cut)
    );
    assert_eq!(
        crate::raw::list_offset(leader_addr, "trimmed", 0, -2, 0),
        (0, cut)
    );
    assert_eq!(
        crate::raw::delete_records(leader_addr, "trimmed", 0, end + 1_000).0,
        1,
        "OFFSET_OUT_OF_RANGE past the high watermark"
    );

    // Every replica moved its log start: whichever follower leads next starts there.
    brokers[leader as usize - 1].kill9();
    let survivors: Vec<usize> = (0..3).filter(|i| *i + 1 != leader as usize).collect();
    let mut low = (-1, -1);
    wait_until(LEADER_DEADLINE, "a new leader starts at the cut", || {
        low = survivors
            .iter()
            .map(|i| crate::raw::list_offset(brokers[*i].addr(), "trimmed", 0, -2, 0))
            .find(|(error, _)| *error == 0)
            .unwrap_or((-1, -1));
        low.0 == 0
    });
    assert_eq!(low.1, cut);
    let from_survivors = survivors
        .iter()
        .map(|i| bootstraps[*i].clone())
        .collect::<Vec<_>>()
        .join(",");
    let read = read_from(
        &from_survivors,
        "trimmed",
        cut,
        values.last().expect("values"),
    );
    assert!(!read.is_empty() && read.len() < values.len());
    assert_eq!(read.as_slice(), &values[values.len() - read.len()..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_delete_replicated_topic_is_also_cut_by_retention() {
    let topic = NewTopic::new("compact-delete", 1, TopicReplication::Fixed(3))
        .set("cleanup.policy", "compact,delete")
        .set("segment.bytes", "16384")
        .set("retention.bytes", "49152");
    let (brokers, _dirs, bootstraps) = form_three_with_topic(topic).await;
    let all = bootstraps.join(",");
    let producer = small_batch_producer(&all);
    // Every key once: compaction removes nothing, only retention can cut.
    let values: Vec<String> = (0..2000)
        .map(|i| format!("{i:05}-{}", "x".repeat(90)))
        .collect();
    let deliveries = enqueue_keyed(&producer, "compact-delete", &values, |value| &value[..5]);
    acknowledged(&values, deliveries).await;
    let leader = leaders(&all, "compact-delete")[&0];
    let mut low = 0;
    wait_until(LEADER_DEADLINE, "retention cut the leader's log", || {
        low = crate::raw::list_offset(
            brokers[leader as usize - 1].addr(),
            "compact-delete",
            0,
            -2,
            0,
        )
        .1;
        low > 0
    });
    // Retention may cut again before the read starts or while it runs (a busy machine): the
    // consumer then goes on from the new log start (`auto.offset.reset=earliest`), so what it
    // read is in order, each value once, and whole from its last jump on to the last value.
    let read = read_from_at_least(&all, "compact-delete", low, values.last().expect("values"));
    assert!(!read.is_empty() && read.len() < values.len());
    let written: Vec<usize> = read
        .iter()
        .map(|value| value[..5].parse().expect("a written value"))
        .collect();
    assert!(
        written.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, once each: {written:?}"
    );
    let resumed = written
        .windows(2)
        .rposition(|pair| pair[1] != pair[0] + 1)
        .map_or(0, |jump| jump + 1);
    assert_eq!(
        read[resumed..],
        values[written[resumed]..],
        "whole from the consumer's last jump to the last value"
    );
}

/// Kills (kill -9) a follower of `topic`'s partition 0 and waits until its leader's metadata
/// leaves it out of the in-sync replicas: the leader's address and the follower's id.
fn kill_a_follower(
    brokers: &mut [harness::Broker],
    bootstraps: &[String],
    topic: &str,
) -> (String, i32) {
    let leader = leaders(&bootstraps.join(","), topic)[&0];
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let asked = bootstraps[leader as usize - 1].clone();
    brokers[follower as usize - 1].kill9();
    wait_until(LEADER_DEADLINE, "the follower out of the ISR", || {
        !isr_of(&asked, topic).contains(&follower)
    });
    (asked, follower)
}

/// An idle partition (no write after the follower's kill): the controller takes the killed
/// follower out of the in-sync replicas when it fences the broker, and the leader, woken by
/// nothing else, still puts it back once it returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_of_an_idle_partition_rejoins_the_in_sync_replicas() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "idle", 1).await;
    wait_until(
        LEADER_DEADLINE,
        "a leader and every replica in sync",
        || leaders(&all, "idle").contains_key(&0) && isr_of(&all, "idle").len() == 3,
    );
    let (asked, follower) = kill_a_follower(&mut brokers, &bootstraps, "idle");
    brokers[follower as usize - 1].restart_on_same_port();
    wait_until(LEADER_DEADLINE, "the follower back in the ISR", || {
        isr_of(&asked, "idle").contains(&follower)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_rejoins_the_in_sync_replicas_while_writes_go_on() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    create_replicated(&bootstraps[0], "steady", 1).await;
    wait_until(LEADER_DEADLINE, "a leader", || {
        leaders(&all, "steady").contains_key(&0)
    });
    let (asked, follower) = kill_a_follower(&mut brokers, &bootstraps, "steady");

    // A steady stream (one record every 2 ms, at most 60 s) while the follower comes back:
    // it is rarely at the leader's very end when the leader looks, yet it is in sync.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, all) = (std::sync::Arc::clone(&stop), all.clone());
        tokio::spawn(async move {
            let producer = harness::producer(&all, &[("enable.idempotence", "true")]);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut deliveries = Vec::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && tokio::time::Instant::now() < deadline
            {
                let value = format!("steady-{n:06}");
                let record = FutureRecord::to("steady")
                    .partition(0)
                    .key("k")
                    .payload(&value);
                if let Ok(delivery) = producer.send_result(record) {
                    deliveries.push(delivery);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let stopped_early = stop.load(std::sync::atomic::Ordering::Relaxed);
            let mut acked = 0;
            for delivery in deliveries {
                if matches!(delivery.await, Ok(Ok(_))) {
                    acked += 1;
                }
            }
            (stopped_early, acked)
        })
    };
    brokers[follower as usize - 1].restart_on_same_port();
    wait_until(LEADER_DEADLINE, "the follower back in the ISR", || {
        isr_of(&asked, "steady").contains(&follower)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (stopped_early, acked) = writer.await.expect("the writer");
    assert!(
        stopped_early,
        "the follower rejoined while the stream still ran"
    );
    assert!(acked > 0);
}
