//! In-process tests of the coordinator's writes to the offsets topic: a real broker in a temp
//! directory whose file system blocks or fails fsyncs, driven through its Kafka-agnostic
//! methods. Covers commits racing the timer, expiry and deletion, and failed group records.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use super::{CommitPartition, JoinRequest, Protocol, now_ms};
use crate::broker::{Broker, BrokerSettings, Endpoint, Error};
use crate::storage;
use crate::storage::fault::{Fault, Gate, Op};

/// How long a test waits for something that should happen promptly before it fails.
const DEADLINE: Duration = Duration::from_secs(60);
const TOPIC: &str = "t";

fn settings(dir: &TempDir) -> BrokerSettings {
    BrokerSettings::for_test(
        1,
        "coordinator-test",
        dir.path(),
        Endpoint {
            host: "broker.test".to_owned(),
            port: 19092,
        },
    )
}

fn open_broker(dir: &TempDir, fs: &storage::Fs) -> Arc<Broker> {
    let broker = Broker::open_on(settings(dir), fs.clone()).expect("broker opens");
    if broker.topic(TOPIC).is_none() {
        broker
            .create_topic_local(TOPIC, Some(1), None, &[], false)
            .expect("create topic");
    }
    broker
}

/// Waits on a blocking thread until `count` operations reached `gate`.
async fn wait_entered(gate: &Gate, count: usize) {
    let gate = gate.clone();
    let entered = tokio::task::spawn_blocking(move || gate.wait_entered(count, DEADLINE))
        .await
        .expect("waiting for the gate");
    assert!(entered, "{count} operations should have reached the gate");
}

fn partition(offset: i64) -> Vec<CommitPartition> {
    vec![CommitPartition {
        topic: TOPIC.to_owned(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
    }]
}

/// A commit outside group management (generation -1, no member id), as the admin client or a
/// consumer with manual assignment sends it.
async fn simple_commit(broker: &Broker, group: &str, offset: i64, retention_ms: Option<i64>) {
    let results = broker
        .commit_offsets(group, -1, "", None, retention_ms, partition(offset))
        .await
        .expect("commit accepted");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn committed(broker: &Broker, group: &str) -> Option<i64> {
    let fetched = broker.fetch_offsets(group, Some(vec![(TOPIC.to_owned(), 0)]));
    fetched
        .first()
        .and_then(|(_, _, o)| o.as_ref().map(|o| o.offset))
}

fn join_request(member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: None,
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        protocol_type: "consumer".to_owned(),
        protocols: vec![Protocol {
            name: "range".to_owned(),
            metadata: Bytes::from_static(b"subscription"),
        }],
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        require_known_member_id: false,
        new_member_id: String::new(),
    }
}

/// Regression (issue 7, 1): a commit for a group the coordinator had only just created waited
/// for its fsync without the lock; the 100 ms timer removed the "unused" group meanwhile, and
/// the acknowledged commit never reached memory (OffsetFetch found nothing until a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commit_is_invisible_when_the_timer_drops_the_new_group_before_its_fsync() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker(&dir, &fs);
    let gate = Gate::default();
    fs.inject_once(dir.path(), Op::Fsync, Fault::Block(gate.clone()));
    let committing = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move { simple_commit(&broker, "fresh", 42, None).await })
    };
    wait_entered(&gate, 1).await;
    broker.tick_groups(now_ms());
    gate.open();
    tokio::time::timeout(DEADLINE, committing)
        .await
        .expect("the commit is answered")
        .expect("commit task");
    assert_eq!(committed(&broker, "fresh"), Some(42));
}

/// Regression (issue 7, 1): offset expiry tombstoned a key whose new commit was appended but
/// not yet durable; the tombstone followed the commit in the log, so the acknowledged commit
/// was gone after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commit_is_lost_when_expiry_tombstones_its_key_before_its_fsync() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker(&dir, &fs);
    // An offset that expires at once (OffsetCommit v2-v4 retention time 0).
    simple_commit(&broker, "expiring", 1, Some(0)).await;
    let gate = Gate::default();
    fs.inject_once(dir.path(), Op::Fsync, Fault::Block(gate.clone()));
    let committing = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move { simple_commit(&broker, "expiring", 2, None).await })
    };
    wait_entered(&gate, 1).await;
    broker.expire_offsets(now_ms() + 1);
    gate.open();
    tokio::time::timeout(DEADLINE, committing)
        .await
        .expect("the commit is answered")
        .expect("commit task");
    assert_eq!(committed(&broker, "expiring"), Some(2));
    broker.shutdown().expect("shutdown");
    drop(broker);
    let reopened = open_broker(&dir, &fs);
    assert_eq!(
        committed(&reopened, "expiring"),
        Some(2),
        "the acknowledged commit survives a restart"
    );
}

/// Memory equals a replay of the log: a commit and a DeleteGroups racing it end the same way
/// in memory and after a restart (deleted, since the tombstones follow the commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_group_racing_a_commit_agrees_with_the_replay() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker(&dir, &fs);
    simple_commit(&broker, "doomed", 1, None).await;
    let gate = Gate::default();
    fs.inject_once(dir.path(), Op::Fsync, Fault::Block(gate.clone()));
    let committing = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move { simple_commit(&broker, "doomed", 2, None).await })
    };
    wait_entered(&gate, 1).await;
    let deleting = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move { broker.delete_group("doomed").await })
    };
    gate.open();
    for task in [committing] {
        task.await.expect("commit task");
    }
    deleting
        .await
        .expect("delete task")
        .expect("an empty group can be deleted");
    assert_eq!(committed(&broker, "doomed"), None);
    assert!(broker.list_groups().iter().all(|g| g.group_id != "doomed"));
    broker.shutdown().expect("shutdown");
    drop(broker);
    assert_eq!(committed(&open_broker(&dir, &fs), "doomed"), None);
}

/// Regression (issue 7, 6): when the group record holding the leader's assignment failed to
/// be stored, SyncGroup still answered success. Kafka answers NOT_COORDINATOR for a failed log
/// and rebalances, so the members rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_group_answers_success_when_the_assignment_record_fails() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker(&dir, &fs);
    let first = broker
        .join_group("failing", join_request(""))
        .await
        .expect("first member joins");
    assert_eq!(first.leader, first.member_id);
    fs.inject_always(dir.path(), Op::Fsync, Fault::Fail);
    let synced = broker
        .sync_group(
            "failing",
            &first.member_id,
            None,
            first.generation,
            vec![(first.member_id.clone(), Bytes::from_static(b"p0"))],
        )
        .await;
    assert!(
        matches!(synced, Err(Error::CoordinatorLogFailed { .. })),
        "{synced:?}"
    );
    assert!(
        matches!(
            broker.heartbeat("failing", &first.member_id, None, first.generation),
            Err(Error::RebalanceInProgress { .. })
        ),
        "the group rebalances"
    );
    // The member rejoins; the log is poisoned, so the next assignment fails at once too.
    let rejoined = broker
        .join_group("failing", join_request(&first.member_id))
        .await
        .expect("the member rejoins");
    assert_eq!(rejoined.generation, first.generation + 1);
    let again = broker
        .sync_group(
            "failing",
            &first.member_id,
            None,
            rejoined.generation,
            Vec::new(),
        )
        .await;
    assert!(
        matches!(again, Err(Error::CoordinatorLogFailed { .. })),
        "{again:?}"
    );
}

/// A commit whose record fails is answered NOT_COORDINATOR per partition (Kafka's mapping of a
/// storage error), and nothing becomes visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_whose_record_fails_is_not_coordinator_and_invisible() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker(&dir, &fs);
    fs.inject_always(dir.path(), Op::Fsync, Fault::Fail);
    let results = broker
        .commit_offsets("g", -1, "", None, None, partition(7))
        .await
        .expect("commit handled");
    assert!(
        matches!(
            results.as_slice(),
            [Err(Error::CoordinatorLogFailed { .. })]
        ),
        "{results:?}"
    );
    assert_eq!(committed(&broker, "g"), None);
}
