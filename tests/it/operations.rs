//! Partition operations on a cluster of broker processes, driven with raw Kafka frames:
//! ElectLeaders hands a replicated partition back to its preferred replica, and a partition
//! is reassigned to a new broker (dropping its leader) under an idempotent acks=all producer,
//! a stuck reassignment is cancelled, a dead replica replaced, and a drained broker unregistered;
//! a `__consumer_offsets` partition moves with its group's committed offsets.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, UnregisterBrokerRequest, UnregisterBrokerResponse,
};

use crate::cluster::{form_three, leaders};
use crate::harness::{self, Broker, wait_until};
use crate::raw::{RawConn, topic_name};
use crate::replication::{
    acknowledged, create_replicated, enqueue, isr_of, partition_zero, read_values,
};

const LEADER_DEADLINE: Duration = Duration::from_secs(60);
const ERROR_UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ERROR_PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const ERROR_ELECTION_NOT_NEEDED: i16 = 84;
const ERROR_INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const ERROR_INVALID_REQUEST: i16 = 42;
const ERROR_BROKER_ID_NOT_REGISTERED: i16 = 102;
const ERROR_NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// ElectLeaders v2 of `partitions` of `topic` at `addr`: (partition, error code) per partition.
fn elect(addr: SocketAddr, election_type: i8, topic: &str, partitions: &[i32]) -> Vec<(i32, i16)> {
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(5_000)
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions.to_vec()),
        ]));
    let response: ElectLeadersResponse = RawConn::connect(addr).roundtrip(&request, 2);
    assert_eq!(response.error_code, 0, "{response:?}");
    response
        .replica_election_results
        .iter()
        .filter(|r| r.topic.as_str() == topic)
        .flat_map(|r| {
            r.partition_result
                .iter()
                .map(|p| (p.partition_id, p.error_code))
        })
        .collect()
}

/// The replicas of partition 0 of `topic`, as the broker at `bootstrap` reports them.
pub(crate) fn replicas_of(bootstrap: &str, topic: &str) -> Vec<i32> {
    partition_zero(bootstrap, topic).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_hands_a_partition_back_to_its_preferred_replica() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    create_replicated(&bootstraps[0], "elect", 1).await;
    let preferred = replicas_of(&bootstraps[0], "elect")[0];
    wait_until(LEADER_DEADLINE, "the preferred replica leads", || {
        let seen: BTreeSet<Option<i32>> = bootstraps
            .iter()
            .map(|b| leaders(b, "elect").get(&0).copied())
            .collect();
        seen == BTreeSet::from([Some(preferred)])
    });
    let other = brokers
        .iter()
        .position(|b| b.addr() != brokers[preferred as usize - 1].addr())
        .expect("another broker");
    let other_addr = brokers[other].addr();
    assert_eq!(
        elect(other_addr, 0, "elect", &[0, 5]),
        [
            (0, ERROR_ELECTION_NOT_NEEDED),
            (5, ERROR_UNKNOWN_TOPIC_OR_PARTITION)
        ],
        "the preferred replica already leads; partition 5 does not exist"
    );

    // The preferred replica killed: another replica leads, and the preferred one cannot.
    brokers[preferred as usize - 1].kill9();
    wait_until(LEADER_DEADLINE, "another replica leads", || {
        leaders(&bootstraps[other], "elect")
            .get(&0)
            .is_some_and(|&l| l > 0 && l != preferred)
    });
    assert_eq!(
        elect(other_addr, 0, "elect", &[0]),
        [(0, ERROR_PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    // An unclean election is never needed while a replica leads.
    assert_eq!(
        elect(other_addr, 1, "elect", &[0]),
        [(0, ERROR_ELECTION_NOT_NEEDED)]
    );

    // Back and caught up, it is elected at once (or the leader's periodic balancing beat the
    // request to it, and no election is needed): either way it leads when the answer comes.
    brokers[preferred as usize - 1].restart_on_same_port();
    // (in sync by its leader's report, and unfenced by the controller: two separate steps)
    wait_until(
        LEADER_DEADLINE,
        "the preferred replica back in sync",
        || {
            isr_of(&bootstraps[other], "elect").contains(&preferred)
                && crate::cluster::view(other_addr).2.contains(&preferred)
        },
    );
    let elected = elect(other_addr, 0, "elect", &[0]);
    assert!(
        elected == [(0, 0)] || elected == [(0, ERROR_ELECTION_NOT_NEEDED)],
        "{elected:?}"
    );
    assert_eq!(
        leaders(&bootstraps[other], "elect").get(&0),
        Some(&preferred),
        "Metadata names the preferred replica once ElectLeaders answered ({elected:?})"
    );
    let led = brokers[preferred as usize - 1].log();
    assert!(
        led.lines().any(|l| l.contains("leading the partition")),
        "{led}"
    );
}

/// AlterPartitionReassignments v0 of partition 0 of `topic` to `replicas` at `addr`: its code.
fn reassign(addr: SocketAddr, topic: &str, replicas: Option<&[i32]>) -> i16 {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(replicas.map(|r| r.iter().copied().map(BrokerId).collect())),
                ]),
        ]);
    let response: AlterPartitionReassignmentsResponse =
        RawConn::connect(addr).roundtrip(&request, 0);
    assert_eq!(response.error_code, 0, "{response:?}");
    response.responses[0].partitions[0].error_code
}

/// A reassignment in progress: (topic, partition, replicas, adding, removing).
type Moving = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The reassignments in progress at `addr`.
fn in_progress(addr: SocketAddr) -> Vec<Moving> {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(None);
    let response: ListPartitionReassignmentsResponse =
        RawConn::connect(addr).roundtrip(&request, 0);
    assert_eq!(response.error_code, 0, "{response:?}");
    let ids = |brokers: &[BrokerId]| brokers.iter().map(|b| b.0).collect::<Vec<i32>>();
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

/// Bytes of every segment file of `topic`'s partition 0 in the data dir `dir`.
fn segment_bytes(dir: &Path, topic: &str) -> u64 {
    std::fs::read_dir(dir.join(format!("{topic}-0")))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until `broker` logged one of `lines` after the first `from` bytes of its log, then
/// checks its data dir `dir` holds no records and no raft state of `topic`'s partition 0.
fn copy_deleted(broker: &Broker, from: usize, dir: &Path, topic: &str, lines: &[&str]) {
    wait_until(LEADER_DEADLINE, &lines.join(" or "), || {
        let log = broker.log();
        let recent = log.get(from..).unwrap_or_default();
        lines.iter().any(|line| recent.contains(line))
    });
    assert_eq!(segment_bytes(dir, topic), 0, "{topic}: records left");
    let vote = dir.join(format!("{topic}-0")).join("raft-vote");
    assert!(!vote.exists(), "{topic}: raft state left");
}

/// Four brokers (node ids 1 to 4): three formed the cluster, the fourth joined it.
pub(crate) fn form_four() -> (Vec<Broker>, Vec<tempfile::TempDir>) {
    let (mut brokers, mut dirs) = form_three();
    let seed = crate::cluster::gossip_addr(&brokers[0]);
    dirs.push(tempfile::tempdir().expect("temp dir"));
    brokers.push(crate::cluster::start(
        dirs[3].path(),
        &crate::cluster::cluster_env(4, 3, &seed),
    ));
    wait_until(LEADER_DEADLINE, "the fourth broker registered", || {
        crate::cluster::view(brokers[0].addr()).2 == [1, 2, 3, 4]
    });
    (brokers, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_to_a_new_broker_under_an_idempotent_acks_all_producer() {
    let (brokers, dirs) = form_four();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let addr = brokers[0].addr();
    create_replicated(&bootstraps[0], "moving", 1).await;
    let original = replicas_of(&bootstraps[0], "moving");
    let newcomer = (1..=4)
        .find(|id| !original.contains(id))
        .expect("a broker without it");
    wait_until(LEADER_DEADLINE, "the partition's leader", || {
        leaders(&bootstraps[0], "moving")
            .get(&0)
            .is_some_and(|&l| l > 0)
    });
    // The leader leaves: its raft leadership must move before it can.
    let leaving = leaders(&bootstraps[0], "moving")[&0];
    let mut target = vec![newcomer];
    target.extend(original.iter().copied().filter(|&r| r != leaving));
    assert_eq!(
        reassign(addr, "moving", None),
        ERROR_NO_REASSIGNMENT_IN_PROGRESS
    );
    assert_eq!(
        reassign(addr, "moving", Some(&[newcomer, 9])),
        ERROR_INVALID_REPLICA_ASSIGNMENT
    );

    let all = bootstraps.join(",");
    let producer = harness::producer(
        &all,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "2"),
        ],
    );
    // At most 50 records unacknowledged; the reassignment starts after 300 are acknowledged
    // and the producer goes on until 300 more after it completed (bounded by RECORDS_MAX).
    const RECORDS_MAX: usize = 20_000;
    let mut values: Vec<String> = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut seen_moving = false;
    let mut done_at = None;
    let started = std::time::Instant::now();
    for i in 0..RECORDS_MAX {
        let value = format!("v{i:05}");
        in_flight.extend(enqueue(&producer, "moving", std::slice::from_ref(&value)));
        values.push(value);
        if in_flight.len() > 50 {
            let delivery = in_flight.pop_front().expect("in flight");
            acknowledged(&values[i - 50..=i - 50], vec![delivery]).await;
        }
        if i == 350 {
            assert_eq!(reassign(addr, "moving", Some(&target)), 0);
            let listed = in_progress(addr);
            let mut full = target.clone();
            full.push(leaving);
            assert_eq!(
                listed,
                [("moving".to_owned(), 0, full, vec![newcomer], vec![leaving])],
                "in progress right after it started"
            );
            seen_moving = true;
        }
        if seen_moving && done_at.is_none() && i % 50 == 0 && in_progress(addr).is_empty() {
            done_at = Some(i);
        }
        if done_at.is_some_and(|at| i >= at + 300) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the reassignment did not complete within 120 s under load ({i} records sent)"
        );
    }
    assert!(
        done_at.is_some(),
        "the reassignment did not complete within {RECORDS_MAX} records"
    );
    let rest = values.len() - in_flight.len();
    acknowledged(&values[rest..], in_flight.into_iter().collect()).await;

    // Every broker's Metadata names the target; the leaving broker emptied its copy.
    for bootstrap in &bootstraps {
        wait_until(LEADER_DEADLINE, "the target in Metadata", || {
            replicas_of(bootstrap, "moving") == target
        });
    }
    copy_deleted(
        &brokers[leaving as usize - 1],
        0,
        dirs[leaving as usize - 1].path(),
        "moving",
        &["replica removed: its raft group stopped and its data deleted"],
    );

    // The newcomer, first of the target, becomes the leader (preferred) and serves every
    // acknowledged record once, in order, from its own log.
    wait_until(LEADER_DEADLINE, "the newcomer leads", || {
        leaders(&bootstraps[0], "moving").get(&0) == Some(&newcomer)
    });
    let values_read = read_values(&bootstraps[newcomer as usize - 1], "moving", values.len());
    assert_eq!(
        values_read, values,
        "every acknowledged record once, in order"
    );
    let led = brokers[newcomer as usize - 1].log();
    assert!(
        led.lines().any(|l| l.contains("leading the partition")),
        "{led}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_reassignment_is_cancelled_and_a_dead_replica_is_replaced_and_cleaned_on_return() {
    let (mut brokers, dirs) = form_four();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    create_replicated(&bootstraps[0], "replaced", 1).await;
    let original = replicas_of(&bootstraps[0], "replaced");
    let newcomer = (1..=4)
        .find(|id| !original.contains(id))
        .expect("a broker without it");
    wait_until(LEADER_DEADLINE, "the partition's leader", || {
        leaders(&bootstraps[0], "replaced")
            .get(&0)
            .is_some_and(|&l| l > 0)
    });
    let leader = leaders(&bootstraps[0], "replaced")[&0];
    let addr = brokers[leader as usize - 1].addr();
    let all = bootstraps.join(",");
    let producer = harness::producer(&all, &[("enable.idempotence", "true"), ("acks", "all")]);
    let first: Vec<String> = (0..100).map(|i| format!("a{i:03}")).collect();
    acknowledged(&first, enqueue(&producer, "replaced", &first)).await;

    // The newcomer is down: added as a learner, it never catches up, so the move stays in
    // progress until it is cancelled; the cancel removes it again.
    brokers[newcomer as usize - 1].kill9();
    let dropped = *original.iter().find(|&&r| r != leader).expect("a follower");
    let target: Vec<i32> = original
        .iter()
        .map(|&r| if r == dropped { newcomer } else { r })
        .collect();
    assert_eq!(reassign(addr, "replaced", Some(&target)), 0);
    wait_until(LEADER_DEADLINE, "the learner added", || {
        brokers[leader as usize - 1]
            .log()
            .contains("new replica added as a learner")
    });
    let mut full = target.clone();
    full.push(dropped);
    assert_eq!(
        in_progress(addr),
        [(
            "replaced".to_owned(),
            0,
            full,
            vec![newcomer],
            vec![dropped]
        )],
        "stuck while the newcomer is down"
    );
    assert_eq!(reassign(addr, "replaced", None), 0, "cancelled");
    wait_until(LEADER_DEADLINE, "the cancel done", || {
        in_progress(addr).is_empty()
    });
    let mut back = replicas_of(&bootstraps[leader as usize - 1], "replaced");
    back.sort_unstable();
    let mut sorted = original.clone();
    sorted.sort_unstable();
    assert_eq!(back, sorted, "the original replicas");
    brokers[newcomer as usize - 1].restart_on_same_port();

    // A follower dies and is replaced by the newcomer while it is down; when it comes back,
    // the data it kept of the partition is deleted.
    brokers[dropped as usize - 1].kill9();
    let order = replicas_of(&bootstraps[leader as usize - 1], "replaced");
    let target: Vec<i32> = order
        .iter()
        .map(|&r| if r == dropped { newcomer } else { r })
        .collect();
    assert_eq!(reassign(addr, "replaced", Some(&target)), 0);
    wait_until(LEADER_DEADLINE, "the dead replica replaced", || {
        in_progress(addr).is_empty()
    });
    assert_eq!(
        replicas_of(&bootstraps[leader as usize - 1], "replaced"),
        target
    );
    let second: Vec<String> = (0..100).map(|i| format!("b{i:03}")).collect();
    acknowledged(&second, enqueue(&producer, "replaced", &second)).await;
    assert!(
        segment_bytes(dirs[dropped as usize - 1].path(), "replaced") > 0,
        "the dead replica still holds its copy"
    );
    let before_restart = brokers[dropped as usize - 1].log().len();
    brokers[dropped as usize - 1].restart_on_same_port();
    // Either way the copy goes: found as a leftover after the restart, or, when the restart
    // reopened the replica's raft group from the metadata it had before it caught up, retired
    // as a replica once it sees the new assignment (seen under load).
    copy_deleted(
        &brokers[dropped as usize - 1],
        before_restart,
        dirs[dropped as usize - 1].path(),
        "replaced",
        &[
            "data of a replica removed while this broker was away deleted",
            "replica removed: its raft group stopped and its data deleted",
        ],
    );
    let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(read_values(&all, "replaced", expected.len()), expected);
}

/// UnregisterBroker v0 of broker `id` at `addr`: its error code.
fn unregister(addr: SocketAddr, id: i32) -> i16 {
    let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
    let response: UnregisterBrokerResponse = RawConn::connect(addr).roundtrip(&request, 0);
    response.error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_and_stopped_broker_is_unregistered_and_leaves_the_controller_group() {
    let (mut brokers, _dirs) = form_four();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let addr = brokers[0].addr();
    create_replicated(&bootstraps[0], "drained", 1).await;
    wait_until(LEADER_DEADLINE, "the partition's leader", || {
        leaders(&bootstraps[0], "drained")
            .get(&0)
            .is_some_and(|&l| l > 0)
    });
    // Broker 4 (which joined after the internal topics were placed) gets a replica.
    let mut replicas = replicas_of(&bootstraps[0], "drained");
    if !replicas.contains(&4) {
        let leader = leaders(&bootstraps[0], "drained")[&0];
        let dropped = *replicas.iter().find(|&&r| r != leader).expect("a follower");
        let target: Vec<i32> = replicas
            .iter()
            .map(|&r| if r == dropped { 4 } else { r })
            .collect();
        assert_eq!(reassign(addr, "drained", Some(&target)), 0);
        wait_until(LEADER_DEADLINE, "broker 4 holds a replica", || {
            in_progress(addr).is_empty() && replicas_of(&bootstraps[0], "drained") == target
        });
        replicas = target;
    }
    assert_eq!(
        unregister(addr, 4),
        ERROR_INVALID_REQUEST,
        "a running broker"
    );
    // Stopped but holding a replica: refused too.
    brokers[3].stop();
    wait_until(LEADER_DEADLINE, "broker 4 fenced", || {
        !crate::cluster::view(addr).2.contains(&4)
    });
    assert_eq!(
        unregister(addr, 4),
        ERROR_INVALID_REQUEST,
        "a broker holding replicas"
    );
    brokers[3].restart_on_same_port();
    wait_until(LEADER_DEADLINE, "broker 4 back", || {
        crate::cluster::view(addr).2.contains(&4)
    });

    // Drained: its replica moves to the broker without one, then it stops and is unregistered.
    let spare = (1..=3)
        .find(|id| !replicas.contains(id))
        .expect("a broker without a replica");
    let target: Vec<i32> = replicas
        .iter()
        .map(|&r| if r == 4 { spare } else { r })
        .collect();
    assert_eq!(reassign(addr, "drained", Some(&target)), 0);
    wait_until(LEADER_DEADLINE, "broker 4 drained", || {
        in_progress(addr).is_empty() && replicas_of(&bootstraps[0], "drained") == target
    });
    brokers[3].stop();
    wait_until(LEADER_DEADLINE, "broker 4 fenced", || {
        !crate::cluster::view(addr).2.contains(&4)
    });
    assert_eq!(unregister(addr, 4), 0);
    assert_eq!(
        unregister(addr, 4),
        ERROR_BROKER_ID_NOT_REGISTERED,
        "gone from the metadata"
    );
    wait_until(
        LEADER_DEADLINE,
        "broker 4 out of the controller group",
        || {
            brokers[..3].iter().any(|b| {
                b.log()
                    .contains("removing an unregistered broker from the controller group")
            })
        },
    );
    // The cluster goes on without it.
    let producer = harness::producer(&bootstraps[..3].join(","), &[("acks", "all")]);
    let values: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    acknowledged(&values, enqueue(&producer, "drained", &values)).await;
}

/// Kafka's partition of `group` in `__consumer_offsets` (Java's `String.hashCode`, made
/// non-negative, modulo the partition count).
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % partitions
}

/// Commits `offset` of `topic`-0 for `group` and reads back what the group has committed.
fn commit_and_read(bootstrap: &str, group: &str, topic: &str, offset: Option<i64>) -> i64 {
    use rdkafka::consumer::{CommitMode, Consumer as _};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    if let Some(offset) = offset {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Offset(offset))
            .expect("offset");
        consumer.commit(&list, CommitMode::Sync).expect("commit");
    }
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(wanted, harness::CLIENT_DEADLINE)
        .expect("committed offsets");
    match committed.elements()[0].offset() {
        Offset::Offset(at) => at,
        other => panic!("no committed offset: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_offsets_partition_moves_with_its_committed_offsets() {
    let (brokers, dirs) = form_four();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let all = bootstraps.join(",");
    let addr = brokers[0].addr();
    create_replicated(&bootstraps[0], "committed", 1).await;
    // A group whose offsets live in __consumer_offsets partition 0 (the one `reassign` moves);
    // the test brokers keep the default of 8 partitions.
    let group = (0..)
        .map(|i| format!("moved-group-{i}"))
        .find(|g| offsets_partition(g, 8) == 0)
        .expect("some group name hashes to partition 0");
    wait_until(LEADER_DEADLINE, "the coordinator takes a commit", || {
        std::panic::catch_unwind(|| commit_and_read(&all, &group, "committed", Some(5)))
            .is_ok_and(|at| at == 5)
    });
    let original = replicas_of(&bootstraps[0], "__consumer_offsets");
    let leaving = leaders(&bootstraps[0], "__consumer_offsets")[&0];
    let newcomer = (1..=4)
        .find(|id| !original.contains(id))
        .expect("a broker without it");
    // The coordinator's broker (the partition's leader) leaves; the newcomer takes its place.
    let target: Vec<i32> = original
        .iter()
        .map(|&r| if r == leaving { newcomer } else { r })
        .collect();
    assert_eq!(reassign(addr, "__consumer_offsets", Some(&target)), 0);
    wait_until(LEADER_DEADLINE, "the offsets partition moved", || {
        in_progress(addr).is_empty() && replicas_of(&bootstraps[0], "__consumer_offsets") == target
    });
    copy_deleted(
        &brokers[leaving as usize - 1],
        0,
        dirs[leaving as usize - 1].path(),
        "__consumer_offsets",
        &["replica removed: its raft group stopped and its data deleted"],
    );
    // The group's coordinator is now elsewhere and has its offsets; it takes new commits.
    assert_eq!(commit_and_read(&all, &group, "committed", None), 5);
    assert_eq!(commit_and_read(&all, &group, "committed", Some(7)), 7);
}
