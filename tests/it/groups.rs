//! Consumer groups with librdkafka: members joining and leaving a subscribed group, every record
//! delivered exactly once with per-record commits, resumption from committed offsets after a
//! broker restart, cooperative-sticky and static membership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

const PARTITIONS: i32 = 6;
/// Deadline for a group to settle and drain what was produced.
const GROUP_DEADLINE: Duration = Duration::from_secs(90);

/// How long re-reading an uncommitted record may take to set up.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// (partition, offset) of each record a member consumed and committed, shared by all members.
pub(crate) type Seen = Arc<Mutex<Vec<(i32, i64)>>>;

/// One group member running its poll loop on a thread until stopped.
pub(crate) struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The partitions the consumer reported as its assignment after its last poll.
    owned: Arc<Mutex<BTreeSet<i32>>>,
}

impl Member {
    /// Subscribes to `topic` in `group`; counts a record only once its commit succeeded, so a
    /// record whose commit lost a rebalance race is redelivered to its next owner, not lost.
    pub(crate) fn start(
        bootstrap: &str,
        group: &str,
        topic: &str,
        extra: &[(&str, &str)],
        seen: &Seen,
    ) -> Member {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("client.id", "tidelog-it-group")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            // A member leaked below (never polled again) leaves the group after this long
            // instead of holding partitions it may have been handed for librdkafka's 5 min.
            .set("max.poll.interval.ms", "10000")
            .set("fetch.wait.max.ms", "100")
            .set("reconnect.backoff.max.ms", "500")
            .set("topic.metadata.refresh.interval.ms", "1000");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let consumer: BaseConsumer = config.create().expect("create group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(seen);
        let stopping = Arc::clone(&stop);
        let owned: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let owning = Arc::clone(&owned);
        let thread = std::thread::spawn(move || {
            let mut has_assignment = false;
            while !stopping.load(Ordering::Relaxed) {
                if let Ok(assignment) = consumer.assignment() {
                    has_assignment = has_assignment || assignment.count() > 0;
                    *owning.lock().expect("owned lock") = assignment
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .collect();
                }
                let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let record = (message.partition(), message.offset());
                if consumer.commit_message(&message, CommitMode::Sync).is_ok() {
                    seen.lock().expect("seen lock").push(record);
                } else {
                    // Not committed (a rebalance raced it): read it again, here if the partition
                    // stays (cooperative rebalances keep it), else its next owner starts at the
                    // committed offset.
                    let topic = message.topic().to_owned();
                    drop(message);
                    let _ = consumer.seek(&topic, record.0, Offset::Offset(record.1), SEEK_TIMEOUT);
                }
            }
            // (an assignment the last poll brought counts too)
            has_assignment = has_assignment || consumer.assignment().is_ok_and(|a| a.count() > 0);
            if has_assignment {
                // Dropping the consumer closes it: a dynamic member sends LeaveGroup.
                drop(consumer);
            } else {
                // librdkafka < 2.3 aborts when a cooperative-sticky consumer that never got an
                // assignment is destroyed (confluentinc/librdkafka#4312); leak it instead and let
                // its session expire.
                std::mem::forget(consumer);
            }
        });
        Member {
            stop,
            thread: Some(thread),
            owned,
        }
    }

    /// The partitions this member owned when it last polled.
    pub(crate) fn owned(&self) -> BTreeSet<i32> {
        self.owned.lock().expect("owned lock").clone()
    }

    /// Stops polling and closes the consumer (leaving the group).
    pub(crate) fn leave(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Produces `count` records spread over every partition; returns (partition, offset) of each.
pub(crate) async fn produce(
    bootstrap: &str,
    topic: &str,
    count: usize,
    tag: &str,
) -> Vec<(i32, i64)> {
    let producer = harness::producer(bootstrap, &[]);
    let mut deliveries = Vec::new();
    for i in 0..count {
        let partition = i32::try_from(i).expect("fits") % PARTITIONS;
        let value = format!("{tag}-{i}");
        let record = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&value);
        deliveries.push(producer.send_result(record).expect("enqueue"));
    }
    let mut written = Vec::new();
    for delivery in deliveries {
        let (partition, offset) = delivery
            .await
            .expect("not cancelled")
            .unwrap_or_else(|(error, _)| panic!("not delivered: {error}"));
        written.push((partition, offset));
    }
    written
}

/// Waits until `seen` holds `expected` records, then checks each was seen exactly once.
fn assert_exactly_once(seen: &Seen, expected: &[(i32, i64)]) {
    harness::wait_until(GROUP_DEADLINE, "the group to consume every record", || {
        seen.lock().expect("seen lock").len() >= expected.len()
    });
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for record in seen.lock().expect("seen lock").iter() {
        *counts.entry(*record).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "records consumed twice: {duplicates:?}"
    );
    for record in expected {
        assert!(
            counts.contains_key(record),
            "record {record:?} never consumed"
        );
    }
    assert_eq!(counts.len(), expected.len(), "unexpected extra records");
}

/// Committed offset of each partition of `topic` for `group`, as OffsetFetch reports it.
pub(crate) fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, Offset> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("create consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(topic, partition);
    }
    consumer
        .committed_offsets(list, CLIENT_DEADLINE)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

async fn join_and_leave_deliver_exactly_once(strategy: &str) {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("orders", "order-processors");
    harness::create_topic(&bootstrap, topic, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let extra = [("partition.assignment.strategy", strategy)];
    let mut members: Vec<Member> = (0..3)
        .map(|_| Member::start(&bootstrap, group, topic, &extra, &seen))
        .collect();
    let mut expected = produce(&bootstrap, topic, 300, "first").await;
    assert_exactly_once(&seen, &expected);

    members.push(Member::start(&bootstrap, group, topic, &extra, &seen));
    expected.extend(produce(&bootstrap, topic, 300, "after-join").await);
    assert_exactly_once(&seen, &expected);

    members.remove(1).leave();
    expected.extend(produce(&bootstrap, topic, 300, "after-leave").await);
    assert_exactly_once(&seen, &expected);
    for member in members {
        member.leave();
    }

    // Every partition's committed offset is its high watermark; a restart keeps them.
    let ends: BTreeMap<i32, Offset> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                Offset::Offset(harness::watermarks(&bootstrap, topic, p).1),
            )
        })
        .collect();
    assert_eq!(committed(&bootstrap, group, topic), ends);
    broker.stop();
    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(committed(&bootstrap, group, topic), ends);

    // The group resumes from its committed offsets: only new records are delivered.
    let resumed: Seen = Arc::default();
    let member = Member::start(&bootstrap, group, topic, &extra, &resumed);
    let fresh = produce(&bootstrap, topic, 60, "after-restart").await;
    assert_exactly_once(&resumed, &fresh);
    member.leave();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_range_assignor_member_join_and_leave_delivers_every_record_once() {
    join_and_leave_deliver_exactly_once("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_cooperative_sticky_member_join_and_leave_delivers_every_record_once() {
    join_and_leave_deliver_exactly_once("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_rejoin_with_instance_id_and_keep_consuming() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("static-topic", "static-group");
    harness::create_topic(&bootstrap, topic, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let start = |instance: &str| {
        Member::start(
            &bootstrap,
            group,
            topic,
            &[
                ("group.instance.id", instance),
                ("session.timeout.ms", "30000"),
                ("max.poll.interval.ms", "30000"),
            ],
            &seen,
        )
    };
    let first = start("static-a");
    let second = start("static-b");
    let mut expected = produce(&bootstrap, topic, 120, "static").await;
    assert_exactly_once(&seen, &expected);
    // A static member that closes sends no LeaveGroup; restarting it with the same instance id
    // takes over its old member (the old member id is fenced) and it keeps consuming.
    first.leave();
    let restarted = start("static-a");
    expected.extend(produce(&bootstrap, topic, 120, "static-again").await);
    assert_exactly_once(&seen, &expected);
    restarted.leave();
    second.leave();
}
