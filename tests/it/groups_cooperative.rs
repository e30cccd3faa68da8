//! Cooperative-sticky groups under stress (issue 7): a member joins and another leaves mid-stream
//! while spinning threads load both cores, and offset commits during a rebalance follow Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest,
};
use rdkafka::Offset;
use tempfile::TempDir;

use crate::groups::{self, Member, Seen};
use crate::groups_raw::{
    ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS, commit, heartbeat,
    join_request, text,
};
use crate::harness::{self, Broker};
use crate::raw::RawConn;

const PARTITIONS: i32 = 6;
const RECORDS_PER_CHUNK: usize = 1_000;
const CHUNKS: usize = 6;
/// Everything the load scenario waits for must happen within this, counted from its start.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(180);
/// The spinning threads stop after this even if the test is stuck.
const LOAD_LIMIT: Duration = Duration::from_secs(150);
const LOAD_THREADS: usize = 2;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Threads that keep the CPU busy until dropped or until their time limit passes.
struct CpuLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl CpuLoad {
    fn start(thread_count: usize, limit: Duration) -> CpuLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..thread_count)
            .map(|seed| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut x = seed as u64 + 1;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                        }
                    }
                    x
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Polls `check` until it returns `Ok`; panics with its last `Err` description at `deadline`.
fn poll_until(deadline: Instant, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    loop {
        let outcome = check();
        match outcome {
            Ok(()) => return,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last state: {state}")
            }
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// Records of `expected` not yet consumed, counted per partition.
fn missing_per_partition(seen: &Seen, expected: &[(i32, i64)]) -> BTreeMap<i32, usize> {
    let consumed: BTreeSet<(i32, i64)> = seen.lock().expect("seen lock").iter().copied().collect();
    let mut missing = BTreeMap::new();
    for record in expected.iter().filter(|r| !consumed.contains(r)) {
        *missing.entry(record.0).or_default() += 1;
    }
    missing
}

fn ownership(members: &[Member]) -> Vec<BTreeSet<i32>> {
    members.iter().map(Member::owned).collect()
}

/// Issue 7: under cooperative-sticky, with both cores loaded, a member joining and another
/// closing mid-stream once left the remaining members owning only some partitions for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_cooperative_sticky_under_cpu_load_delivers_every_record_once() {
    let deadline = Instant::now() + SCENARIO_DEADLINE;
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("coop-under-load", "coop-under-load-group");
    harness::create_topic(&bootstrap, topic, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let extra = [("partition.assignment.strategy", "cooperative-sticky")];
    let load = CpuLoad::start(LOAD_THREADS, LOAD_LIMIT);
    let mut members: Vec<Member> = (0..3)
        .map(|_| Member::start(&bootstrap, group, topic, &extra, &seen))
        .collect();
    let mut expected = Vec::new();
    for chunk in 0..CHUNKS {
        let tag = format!("chunk-{chunk}");
        expected.extend(groups::produce(&bootstrap, topic, RECORDS_PER_CHUNK, &tag).await);
        // Mid-stream: a member joins once a sixth is consumed and the first member (the
        // leader) closes at half, each while produced records still wait.
        let (consumed_before, change) = match chunk {
            1 => (RECORDS_PER_CHUNK, "join"),
            3 => (3 * RECORDS_PER_CHUNK, "leave"),
            _ => continue,
        };
        poll_until(
            deadline,
            &format!("{consumed_before} records before the {change}"),
            || {
                let count = seen.lock().expect("seen lock").len();
                (count >= consumed_before)
                    .then_some(())
                    .ok_or_else(|| format!("{count} consumed, owners {:?}", ownership(&members)))
            },
        );
        if change == "join" {
            members.push(Member::start(&bootstrap, group, topic, &extra, &seen));
        } else {
            members.remove(0).leave();
        }
    }

    poll_until(deadline, "every record consumed at least once", || {
        let missing = missing_per_partition(&seen, &expected);
        missing.is_empty().then_some(()).ok_or_else(|| {
            format!(
                "missing per partition {missing:?}, owners {:?}, committed {:?}",
                ownership(&members),
                groups::committed(&bootstrap, group, topic)
            )
        })
    });
    let ends: BTreeMap<i32, Offset> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                Offset::Offset(harness::watermarks(&bootstrap, topic, p).1),
            )
        })
        .collect();
    poll_until(
        deadline,
        "committed offsets at every partition's end",
        || {
            let committed = groups::committed(&bootstrap, group, topic);
            (committed == ends)
                .then_some(())
                .ok_or_else(|| format!("committed {committed:?}, ends {ends:?}"))
        },
    );
    poll_until(deadline, "the final members owning every partition", || {
        let owners = ownership(&members);
        let owned_count: usize = owners.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = owners.iter().flatten().copied().collect();
        (union == (0..PARTITIONS).collect() && owned_count == union.len())
            .then_some(())
            .ok_or_else(|| format!("owners {owners:?}"))
    });
    drop(load);
    for member in members {
        member.leave();
    }
}

const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Long enough that the rebalance waits for the silent member instead of timing out.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;

fn join_group(group: &str, member_id: &str) -> JoinGroupRequest {
    join_request(group, member_id, 16).with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
}

/// The v4+ member-id handshake: returns the member id handed out.
fn member_id(conn: &mut RawConn, group: &str) -> String {
    let first = conn.roundtrip(&join_group(group, ""), 5);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    first.member_id.as_str().to_owned()
}

fn sync_group(group: &str, member: &str, generation: i32) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member))
        .with_generation_id(generation)
}

fn group_state(conn: &mut RawConn, group: &str) -> String {
    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
    conn.roundtrip(&describe, 5).groups[0]
        .group_state
        .as_str()
        .to_owned()
}

/// Kafka's GroupCoordinator accepts an offset commit of the current generation while the group
/// prepares a rebalance and counts it as the member's heartbeat (librdkafka sends no heartbeat
/// while it revokes partitions under cooperative-sticky, yet commits); a commit of an older
/// generation is ILLEGAL_GENERATION, one before the new assignment REBALANCE_IN_PROGRESS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_during_rebalance_is_accepted_and_keeps_a_member_without_heartbeats() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "present", 1, &[]).await;
    let group = "commits-during-rebalance";
    let mut first = RawConn::connect(broker.addr());
    let a = member_id(&mut first, group);
    let joined = first.roundtrip(&join_group(group, &a), 5);
    assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
    assert_eq!(
        first.roundtrip(&sync_group(group, &a, 1), 3).error_code,
        NONE
    );

    // A second member joins: the group prepares a rebalance and waits for the first to rejoin.
    let mut second = RawConn::connect(broker.addr());
    let b = member_id(&mut second, group);
    let pending_join = second.send(&join_group(group, &b), 5);
    let mut observer = RawConn::connect(broker.addr());
    harness::wait_until(Duration::from_secs(10), "PreparingRebalance", || {
        group_state(&mut observer, group) == "PreparingRebalance"
    });
    assert_eq!(heartbeat(&mut first, group, &a, 1), REBALANCE_IN_PROGRESS);
    let silent_since = Instant::now();
    // No heartbeat for longer than the session, only commits (at a client's commit pace).
    while silent_since.elapsed() < SESSION_TIMEOUT + Duration::from_millis(1500) {
        assert_eq!(commit(&mut first, group, &a, 1, "present"), NONE);
        std::thread::sleep(Duration::from_millis(500));
    }
    let rejoined = first.roundtrip(&join_group(group, &a), 5);
    assert_eq!(
        (rejoined.error_code, rejoined.generation_id),
        (NONE, 2),
        "the committing member is still in the group"
    );
    assert_eq!(rejoined.leader.as_str(), a, "the leader keeps leading");
    assert_eq!(rejoined.members.len(), 2);
    let second_joined: JoinGroupResponse = second.receive::<JoinGroupRequest>(pending_join, 5);
    assert_eq!(
        (second_joined.error_code, second_joined.generation_id),
        (NONE, 2)
    );

    assert_eq!(
        commit(&mut first, group, &a, 1, "present"),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut first, group, &a, 2, "present"),
        REBALANCE_IN_PROGRESS
    );
    let pending_sync = second.send(&sync_group(group, &b, 2), 3);
    let assignments = [&a, &b].map(|member| {
        SyncGroupRequestAssignment::default()
            .with_member_id(text(member))
            .with_assignment(bytes::Bytes::from_static(b"assigned"))
    });
    let synced = first.roundtrip(
        &sync_group(group, &a, 2).with_assignments(assignments.to_vec()),
        3,
    );
    assert_eq!(synced.error_code, NONE);
    let second_synced = second.receive::<SyncGroupRequest>(pending_sync, 3);
    assert_eq!(second_synced.error_code, NONE);
    assert_eq!(commit(&mut first, group, &a, 2, "present"), NONE);
    assert_eq!(commit(&mut second, group, &b, 2, "present"), NONE);
}
