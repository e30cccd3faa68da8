//! Three replicas of one partition group on loopback: commit on a majority, the high
//! watermark everywhere, proposals refused off the leader, failover without losing a committed
//! batch, a restarted replica catching up to the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::*;
use crate::replication::rpc::serve;
use crate::storage::{BatchHeader, Log, LogSettings, test_batches};

pub(super) const DEADLINE: Duration = Duration::from_secs(30);
const GROUP: GroupId = 7;
const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);
const RAFT_HEARTBEAT: Duration = Duration::from_millis(500);

pub(super) struct Replica {
    pub(super) group: Arc<PartitionGroup>,
    stop: watch::Sender<bool>,
}

impl Replica {
    pub(super) async fn stop(self) {
        self.group.shutdown().await;
        let _ = self.stop.send(true);
    }
}

fn log_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("replica-{id}"))
}

async fn start(id: u64, root: &Path, listener: TcpListener) -> Replica {
    start_replica(id, root, listener, LogSettings::default(), RAFT_HEARTBEAT).await
}

async fn start_with(
    id: u64,
    root: &Path,
    listener: TcpListener,
    log_settings: LogSettings,
) -> Replica {
    start_replica(id, root, listener, log_settings, RAFT_HEARTBEAT).await
}

/// A replica whose leader sends raft heartbeats every `raft_heartbeat_interval` (liveness
/// messages every 100 ms, election timeout 500 ms).
async fn start_paced(
    id: u64,
    root: &Path,
    listener: TcpListener,
    raft_heartbeat_interval: Duration,
) -> Replica {
    start_replica(
        id,
        root,
        listener,
        LogSettings::default(),
        raft_heartbeat_interval,
    )
    .await
}

async fn start_replica(
    id: u64,
    root: &Path,
    listener: TcpListener,
    log_settings: LogSettings,
    raft_heartbeat_interval: Duration,
) -> Replica {
    let dir = log_dir(root, id);
    std::fs::create_dir_all(&dir).unwrap();
    let log = Log::open(&dir, log_settings, 0).unwrap();
    start_on_log(id, listener, log, raft_heartbeat_interval, DEADLINE).await
}

/// Replica `id` of the group over `log`, whose proposals wait up to `commit_timeout`.
async fn start_on_log(
    id: u64,
    listener: TcpListener,
    log: Log,
    raft_heartbeat_interval: Duration,
    commit_timeout: Duration,
) -> Replica {
    let peers = Peers::new(None);
    let registry = Arc::new(Registry::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(listener, Arc::clone(&registry), stopped, None));
    let pacemaker = Pacemaker::start(
        PacemakerSettings {
            node_id: id,
            liveness_interval: Duration::from_millis(100),
            raft_heartbeat_interval,
            election_timeout: ELECTION_TIMEOUT,
        },
        Arc::clone(&peers),
        &registry,
    );
    let settings = PartitionGroupSettings {
        node_id: id,
        group: GROUP,
        pacemaker,
        commit_timeout,
    };
    let group = PartitionGroup::start(settings, log, peers, registry)
        .await
        .unwrap();
    Replica { group, stop }
}

/// A group of one replica (node 1) on loopback, initialized, whose proposals wait up to
/// `commit_timeout`.
pub(super) async fn start_alone(root: &Path, commit_timeout: Duration) -> [Option<Replica>; 1] {
    let (listener, node) = bind_at("127.0.0.1:0").await;
    let dir = log_dir(root, 1);
    std::fs::create_dir_all(&dir).unwrap();
    let log = Log::open(&dir, LogSettings::default(), 0).unwrap();
    let replica = start_on_log(1, listener, log, RAFT_HEARTBEAT, commit_timeout).await;
    replica
        .group
        .initialize(BTreeMap::from([(1, node)]))
        .await
        .unwrap();
    [Some(replica)]
}

/// Three replicas of one group on loopback, initialized; their addresses by node id.
async fn start_three(
    root: &Path,
    log_settings: LogSettings,
) -> (Vec<Option<Replica>>, BTreeMap<u64, RaftNode>) {
    let (listeners, members) = bind_three().await;
    let mut replicas: Vec<Option<Replica>> = Vec::new();
    for (id, listener) in (1..=3u64).zip(listeners) {
        replicas.push(Some(
            start_with(id, root, listener, log_settings.clone()).await,
        ));
    }
    for replica in replicas.iter().flatten() {
        replica.group.initialize(members.clone()).await.unwrap();
    }
    (replicas, members)
}

/// Binds `address`; a stopped replica's port is retried until its old listener is gone.
async fn bind_at(address: &str) -> (TcpListener, RaftNode) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let listener = loop {
        match TcpListener::bind(address).await {
            Ok(listener) => break listener,
            Err(error) if tokio::time::Instant::now() < deadline => {
                assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("binding {address}: {error}"),
        }
    };
    let rpc_addr = listener.local_addr().unwrap().to_string();
    (listener, RaftNode { rpc_addr })
}

/// Starts replica `id` again on the address `members` gives it.
async fn restart_at(
    members: &BTreeMap<u64, RaftNode>,
    id: u64,
    root: &Path,
    log_settings: LogSettings,
) -> Replica {
    let (listener, _) = bind_at(&members[&id].rpc_addr).await;
    start_with(id, root, listener, log_settings).await
}

/// Listeners of replicas 1 to 3 on fresh loopback ports, and the membership naming them.
async fn bind_three() -> (Vec<TcpListener>, BTreeMap<u64, RaftNode>) {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let (listener, node) = bind_at("127.0.0.1:0").await;
        members.insert(id, node);
        listeners.push(listener);
    }
    (listeners, members)
}

pub(super) fn batch(n: i64) -> Bytes {
    Bytes::from(test_batches::build(3, 1_000 + n, 16))
}

/// The position of the live replica every live replica knows as the leader.
pub(super) async fn leader_of(replicas: &[Option<Replica>]) -> usize {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let known: Vec<Option<u64>> = replicas
            .iter()
            .flatten()
            .map(|r| r.group.leadership().leader)
            .collect();
        if let Some(Some(leader)) = known.first()
            && known.iter().all(|k| *k == Some(*leader))
            && let Some(at) = replicas.iter().position(|r| {
                r.as_ref()
                    .is_some_and(|r| r.group.settings.node_id == *leader)
            })
        {
            return at;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no agreed live leader: {known:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Proposes on whichever replica leads, again while leadership moves.
async fn propose_on_leader(
    replicas: &[Option<Replica>],
    prepare: impl Fn() -> Result<Bytes, &'static str>,
) -> Result<Committed, ProposeError<&'static str>> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let leader = leader_of(replicas).await;
        let group = &replicas[leader].as_ref().unwrap().group;
        match group.propose(|_| prepare()).await {
            Err(ProposeError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => {}
            answer => return answer,
        }
    }
}

/// Has the replica at `leader` hand its leadership to the one at `successor`, and waits until
/// every live replica knows.
async fn hand_leadership(replicas: &[Option<Replica>], leader: usize, successor: usize) {
    let target = successor as u64 + 1;
    let group = &replicas[leader].as_ref().unwrap().group;
    assert!(group.transfer_to(target).await);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while leader_of(replicas).await != successor {
        assert!(tokio::time::Instant::now() < deadline, "leadership moved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commits `batch(n)` and waits until every live replica's high watermark covers it.
pub(super) async fn commit_everywhere(replicas: &[Option<Replica>], n: i64) -> Committed {
    let committed = propose_on_leader(replicas, || Ok(batch(n))).await.unwrap();
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, committed.end_offset).await;
    }
    committed
}

async fn wait_for_high_watermark(replica: &Replica, at_least: i64) {
    let mut hw = replica.group.high_watermark();
    tokio::time::timeout(DEADLINE, hw.wait_for(|hw| *hw >= at_least))
        .await
        .expect("high watermark reached in time")
        .unwrap();
}

/// The bytes of `replica`'s log below `end`, batch headers included, across segments
/// (replicas may cut segments at different offsets).
fn log_bytes_below(replica: &Replica, end: i64) -> Vec<u8> {
    replica.group.with_log(|log| {
        let mut bytes = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < end {
            let read = log.read(offset, end, usize::MAX, true).unwrap();
            let mut at = 0;
            while at < read.len() {
                let header = BatchHeader::parse(&read[at..]).unwrap();
                offset = header.last_offset() + 1;
                at += header.total_len();
            }
            if read.is_empty() {
                break;
            }
            bytes.extend_from_slice(&read);
        }
        bytes
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_commit_fail_over_and_catch_up() {
    let root = tempfile::tempdir().unwrap();
    let (mut replicas, members) = start_three(root.path(), LogSettings::default()).await;

    let leader = leader_of(&replicas).await;
    let follower = (leader + 1) % 3;
    let refused = replicas[follower]
        .as_ref()
        .unwrap()
        .group
        .propose(|_| Ok::<_, ()>(batch(0)))
        .await;
    assert!(
        matches!(refused, Err(ProposeError::NotLeader { leader }) if leader != Some(follower as u64 + 1)),
        "{refused:?}"
    );

    // Committed batches take increasing offsets, three each (a re-election under load adds a
    // blank control batch in between).
    let mut committed = Vec::new();
    for n in 0..10 {
        let at = propose_on_leader(&replicas, || Ok(batch(n))).await.unwrap();
        assert_eq!(at.end_offset - at.base_offset, 3);
        committed.push(at);
    }
    for pair in committed.windows(2) {
        assert!(pair[1].base_offset >= pair[0].end_offset, "{pair:?}");
    }
    let hw = committed.last().unwrap().end_offset;
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, hw).await;
    }

    // A refusal from the check proposes nothing.
    let refusal = propose_on_leader(&replicas, || Err("duplicate")).await;
    assert!(matches!(refusal, Err(ProposeError::Refused("duplicate"))));

    // The leader goes away: another replica leads and keeps every committed batch.
    let leader = leader_of(&replicas).await;
    let old_leader_id = leader as u64 + 1;
    let old_address = members[&old_leader_id].rpc_addr.clone();
    let old_term = replicas[leader].as_ref().unwrap().group.leadership().term;
    replicas[leader].take().unwrap().stop().await;
    // A new leader names itself only once its term's blank batch is applied, so its high
    // watermark is already past every batch committed before it.
    // Checked at every change of the survivors' raft metrics.
    let mut survivors: Vec<_> = replicas
        .iter()
        .flatten()
        .map(|r| (r, r.group.raft.metrics()))
        .collect();
    let successor = tokio::time::timeout(DEADLINE, async {
        loop {
            for (replica, _) in &survivors {
                let group = &replica.group;
                if group.leadership().leader == Some(group.settings.node_id) {
                    return *replica;
                }
            }
            let changes = survivors.iter_mut().map(|(_, m)| Box::pin(m.changed()));
            let _ = futures_util::future::select_all(changes).await;
        }
    })
    .await
    .expect("a successor leads in time");
    assert!(*successor.group.high_watermark().borrow() > hw);
    let more = propose_on_leader(&replicas, || Ok(batch(10)))
        .await
        .unwrap();
    assert!(
        more.base_offset > hw,
        "a new term's blank batch comes first"
    );
    let leader = leader_of(&replicas).await;
    assert!(replicas[leader].as_ref().unwrap().group.leadership().term > old_term);

    // The old leader restarts on its log and catches up to the same bytes.
    let (listener, _) = bind_at(&old_address).await;
    let back = (old_leader_id - 1) as usize;
    replicas[back] = Some(start(old_leader_id, root.path(), listener).await);
    let end = more.end_offset;
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, end).await;
    }
    let reference = log_bytes_below(replicas[leader].as_ref().unwrap(), end);
    assert!(!reference.is_empty());
    for replica in replicas.iter().flatten() {
        let bytes = log_bytes_below(replica, end);
        assert!(
            bytes == reference,
            "replica {} differs",
            replica.group.settings.node_id
        );
    }
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

/// Issue 10: with no raft heartbeats at all, the pacemakers' liveness messages keep an idle
/// group's followers from campaigning, a commit still reaches every follower's high watermark,
/// a proposal after a long idle spell renews the leader's lease and commits (and so does a
/// membership change after another), and the followers elect a new leader once the leader's
/// broker is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_group_keeps_its_leader_on_liveness_messages_and_fails_over_without_it() {
    let root = tempfile::tempdir().unwrap();
    let (listeners, members) = bind_three().await;
    let no_raft_heartbeats = Duration::from_secs(3_600);
    let mut replicas: Vec<Option<Replica>> = Vec::new();
    for (id, listener) in (1..=3u64).zip(listeners) {
        replicas.push(Some(
            start_paced(id, root.path(), listener, no_raft_heartbeats).await,
        ));
    }
    replicas[0]
        .as_ref()
        .unwrap()
        .group
        .initialize(members)
        .await
        .unwrap();
    let committed = propose_on_leader(&replicas, || Ok(batch(0))).await.unwrap();
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, committed.end_offset).await;
    }

    // Five election timeouts without a raft heartbeat: nobody sees the leadership change.
    let leader = leader_of(&replicas).await;
    let seen = replicas[leader].as_ref().unwrap().group.leadership();
    let quiet = futures_util::future::join_all(replicas.iter().flatten().map(|replica| {
        tokio::time::timeout(
            5 * ELECTION_TIMEOUT,
            replica.group.leadership_changed(&seen),
        )
    }))
    .await;
    assert!(quiet.iter().all(Result::is_err), "a follower campaigned");
    // No quorum answered the leader within its lease meanwhile, so raft refuses writes until
    // a heartbeat round renews it: a proposal does that and commits.
    let more = replicas[leader]
        .as_ref()
        .unwrap()
        .group
        .propose(|_| Ok::<_, ()>(batch(1)))
        .await
        .unwrap();
    assert!(more.base_offset >= committed.end_offset, "{more:?}");
    // Idle again past the lease: a reassignment's first step renews it too.
    let seen = replicas[leader].as_ref().unwrap().group.leadership();
    let quiet = tokio::time::timeout(
        5 * ELECTION_TIMEOUT,
        replicas[leader]
            .as_ref()
            .unwrap()
            .group
            .leadership_changed(&seen),
    )
    .await;
    assert!(quiet.is_err(), "the leadership changed");
    let group = &replicas[leader].as_ref().unwrap().group;
    group.add_learner(4, "127.0.0.1:1".into()).await.unwrap();
    assert!(group.members().learners.contains(&4));

    replicas[leader].take().unwrap().stop().await;
    let successor = leader_of(&replicas).await;
    let now = replicas[successor].as_ref().unwrap().group.leadership();
    assert!(now.term > seen.term, "{now:?} after {seen:?}");
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_through_a_snapshot_and_a_replica_behind_it_starts_its_log_there() {
    let root = tempfile::tempdir().unwrap();
    let small = LogSettings {
        segment_bytes_max: 4096,
        ..LogSettings::default()
    };
    let (mut replicas, members) = start_three(root.path(), small.clone()).await;
    // One replica is away while the others write many segments and cut all but the last two.
    let leader = leader_of(&replicas).await;
    let behind = (leader + 1) % 3;
    let behind_id = behind as u64 + 1;
    replicas[behind].take().unwrap().stop().await;
    let mut end = 0;
    for n in 0..150 {
        end = propose_on_leader(&replicas, || Ok(batch(n)))
            .await
            .unwrap()
            .end_offset;
    }
    let mut cut = 0;
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, end).await;
        let bases: Vec<i64> = replica
            .group
            .with_log(|log| log.segments().iter().map(|s| s.base_offset()).collect());
        assert!(bases.len() > 3, "several segments: {bases:?}");
        cut = bases[bases.len() - 2];
        assert!(replica.group.purge_below(cut).await, "snapshot taken");
        assert!(!replica.group.purge_below(cut).await, "nothing new to cut");
    }
    // A follower purges at once; a leader waits while a replication might still read the
    // entries. The follower that purged leads now, so the returning replica can only get
    // what it lacks through the snapshot.
    let follower = (0..3).find(|i| *i != leader && *i != behind).unwrap();
    let purged = replicas[follower].as_ref().unwrap();
    assert_eq!(purged.group.with_log(|log| log.log_start_offset()), cut);
    hand_leadership(&replicas, leader, follower).await;

    // Back, the replica lacks what was purged: it installs the snapshot, starts its log at
    // the cut and holds the same bytes from there.
    replicas[behind] = Some(restart_at(&members, behind_id, root.path(), small.clone()).await);
    let more = commit_everywhere(&replicas, 1_000).await;
    let returned = replicas[behind].as_ref().unwrap();
    assert_eq!(returned.group.with_log(|log| log.log_start_offset()), cut);
    let leader = leader_of(&replicas).await;
    assert_eq!(leader, follower);
    let reference = log_bytes_below(replicas[leader].as_ref().unwrap(), more.end_offset);
    assert!(!reference.is_empty());
    assert!(log_bytes_below(returned, more.end_offset) == reference);

    // A restart comes back from the saved snapshot and its log.
    replicas[behind].take().unwrap().stop().await;
    replicas[behind] = Some(restart_at(&members, behind_id, root.path(), small).await);
    commit_everywhere(&replicas, 1_001).await;
    let returned = replicas[behind].as_ref().unwrap();
    assert_eq!(returned.group.with_log(|log| log.log_start_offset()), cut);
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_partition_keeps_its_purged_batches_and_a_replica_behind_gets_the_segments() {
    let root = tempfile::tempdir().unwrap();
    let compacted = LogSettings {
        segment_bytes_max: 4096,
        compaction: Some(crate::storage::CompactionSettings {
            min_cleanable_dirty_ratio_ppm: 0,
            ..crate::storage::CompactionSettings::default()
        }),
        ..LogSettings::default()
    };
    let (mut replicas, members) = start_three(root.path(), compacted.clone()).await;
    let leader = leader_of(&replicas).await;
    let behind = (leader + 1) % 3;
    let behind_id = behind as u64 + 1;
    replicas[behind].take().unwrap().stop().await;
    let mut end = 0;
    for n in 0..200i64 {
        let value = format!("value-{n}-{}", "x".repeat(40));
        let key = format!("key-{}", n % 7);
        end = propose_on_leader(&replicas, || {
            Ok(Bytes::from(test_batches::keyed(
                key.as_bytes(),
                value.as_bytes(),
                1_000 + n,
            )))
        })
        .await
        .unwrap()
        .end_offset;
    }
    // Each live replica purges its raft entries below its active segment and keeps the
    // batches; the follower then compacts them.
    let follower = (0..3).find(|i| *i != leader && *i != behind).unwrap();
    for replica in replicas.iter().flatten() {
        wait_for_high_watermark(replica, end).await;
        let cut = replica.group.with_log(|log| log.active_base_offset());
        assert!(cut > 0, "several segments");
        assert!(replica.group.purge_below(cut).await, "snapshot taken");
    }
    let purged = replicas[follower].as_ref().unwrap();
    assert_eq!(purged.group.with_log(|log| log.log_start_offset()), 0);
    let raft_start = purged.group.raft_start_offset();
    assert!(raft_start > 0);
    let plan = purged
        .group
        .with_log(|log| log.plan_compaction_below(i64::MAX, raft_start))
        .unwrap()
        .expect("compaction is due");
    let cleaned = plan.build().unwrap();
    let outcome = purged
        .group
        .with_log_mut(|log| log.install_compaction(cleaned))
        .unwrap();
    assert!(
        outcome.is_installed && outcome.records_removed > 0,
        "{outcome:?}"
    );
    hand_leadership(&replicas, leader, follower).await;

    // Back, the replica lacks the purged entries: the snapshot brings the new leader's
    // compacted segments, byte for byte, and the log goes on after them.
    replicas[behind] = Some(restart_at(&members, behind_id, root.path(), compacted.clone()).await);
    let more = commit_everywhere(&replicas, 1_000).await;
    let reference = log_bytes_below(replicas[follower].as_ref().unwrap(), more.end_offset);
    let returned = replicas[behind].as_ref().unwrap();
    assert_eq!(returned.group.with_log(|log| log.log_start_offset()), 0);
    assert!(log_bytes_below(returned, more.end_offset) == reference);

    // A restart keeps it.
    replicas[behind].take().unwrap().stop().await;
    replicas[behind] = Some(restart_at(&members, behind_id, root.path(), compacted).await);
    let last = commit_everywhere(&replicas, 1_001).await;
    let reference = log_bytes_below(replicas[follower].as_ref().unwrap(), last.end_offset);
    let returned = replicas[behind].as_ref().unwrap();
    assert!(log_bytes_below(returned, last.end_offset) == reference);
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_every_replicas_log_start_inside_a_batch_and_it_survives_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let small = LogSettings {
        segment_bytes_max: 4096,
        ..LogSettings::default()
    };
    let (mut replicas, members) = start_three(root.path(), small.clone()).await;
    let mut committed = Vec::new();
    for n in 0..60 {
        committed.push(propose_on_leader(&replicas, || Ok(batch(n))).await.unwrap());
    }
    // Inside a batch of three records, several segments in.
    let cut = committed[40].base_offset + 1;
    let leader = leader_of(&replicas).await;
    replicas[leader]
        .as_ref()
        .unwrap()
        .group
        .propose_log_start(cut)
        .await
        .unwrap();
    for replica in replicas.iter().flatten() {
        let mut requested = replica.group.requested_log_start();
        tokio::time::timeout(DEADLINE, requested.wait_for(|wanted| *wanted == cut))
            .await
            .expect("the entry applied in time")
            .unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !replica.group.advance_log_start(cut).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the log start moved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        replica.group.with_log(|log| {
            assert_eq!(log.log_start_offset(), cut);
            assert!(log.first_segment_base_offset() > 0, "segments below went");
        });
    }
    // A restarted replica opens its log (its start inside the raft log's first batch) and
    // keeps the cut.
    let follower = (leader + 1) % 3;
    let id = follower as u64 + 1;
    replicas[follower].take().unwrap().stop().await;
    replicas[follower] = Some(restart_at(&members, id, root.path(), small).await);
    commit_everywhere(&replicas, 1_000).await;
    let returned = replicas[follower].as_ref().unwrap();
    assert_eq!(returned.group.with_log(|log| log.log_start_offset()), cut);
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_never_resumes_its_term_without_an_election() {
    let root = tempfile::tempdir().unwrap();
    let (mut replicas, members) = start_three(root.path(), LogSettings::default()).await;
    commit_everywhere(&replicas, 0).await;
    let leader = leader_of(&replicas).await;
    let term = replicas[leader].as_ref().unwrap().group.leadership().term;
    let id = leader as u64 + 1;
    replicas[leader].take().unwrap().stop().await;
    replicas[leader] = Some(restart_at(&members, id, root.path(), LogSettings::default()).await);
    commit_everywhere(&replicas, 1).await;
    let now = leader_of(&replicas).await;
    let leadership = replicas[now].as_ref().unwrap().group.leadership();
    assert!(
        leadership.term > term,
        "leadership {leadership:?} after a restart of the leader of term {term}"
    );
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

/// A leadership transfer to a replica that does not answer is not started; one whose target
/// is gone all the same: raft refuses the leader's writes for the rest of its term, so a check
/// refusing a batch (here as out of order, as a producer's next batch would be once the
/// previous one was refused unappended) answers NOT_LEADER instead, and the stalled leader
/// stops announcing itself, so the remaining replicas elect another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_replica_that_is_gone_refuses_as_not_leader_and_another_is_elected() {
    let root = tempfile::tempdir().unwrap();
    let (mut replicas, _members) = start_three(root.path(), LogSettings::default()).await;
    commit_everywhere(&replicas, 0).await;
    let leader = leader_of(&replicas).await;
    let target = (leader + 1) % 3;
    let third = (leader + 2) % 3;
    let old_term = replicas[leader].as_ref().unwrap().group.leadership().term;
    replicas[target].take().unwrap().stop().await;

    let group = Arc::clone(&replicas[leader].as_ref().unwrap().group);
    // Its log matched the leader's to the end, but it does not answer now: no transfer.
    assert!(!group.transfer_to(target as u64 + 1).await);
    // One started anyway (as when the target dies right after answering).
    assert!(group.start_transfer(old_term, target as u64 + 1).await);
    let refused = group.propose(|_| Ok::<_, &str>(batch(1))).await;
    assert!(
        matches!(refused, Err(ProposeError::NotLeader { .. })),
        "{refused:?}"
    );
    let gap = group.propose(|_| Err::<Bytes, _>("out of order")).await;
    assert!(
        matches!(gap, Err(ProposeError::NotLeader { .. })),
        "a refusal after an unappended batch: {gap:?}"
    );

    let successor = Arc::clone(&replicas[third].as_ref().unwrap().group);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let committed = loop {
        if successor.leadership().leader == Some(third as u64 + 1) {
            match successor.propose(|_| Ok::<_, ()>(batch(2))).await {
                Ok(committed) => break committed,
                Err(ProposeError::NotLeader { .. }) => {}
                Err(error) => panic!("{error}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no other replica took over from the stalled transfer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(successor.leadership().term > old_term);
    wait_for_high_watermark(replicas[leader].as_ref().unwrap(), committed.end_offset).await;
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}
