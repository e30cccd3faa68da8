//! A retried batch of a replicated partition (found in the log by the producer checks) is
//! acknowledged once the high watermark passed it only if the log still holds that batch
//! there: a copy an earlier leader never committed may have been cut and the offsets reused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{PendingProduce, ProduceOutcome, Retried};
use crate::broker::error::Error;
use crate::broker::partition::Partition;
use crate::replication::RaftNode;
use crate::replication::partition::{
    Pacemaker, PacemakerSettings, PartitionGroup, PartitionGroupSettings, ProposeError,
};
use crate::replication::rpc::{Peers, Registry};
use crate::storage::{BatchHeader, BatchMeta, Log, LogSettings, test_batches};

const COMMIT_TIMEOUT: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_secs(30);

/// A partition replicated by a group of this one replica, leading.
async fn replicated_partition(dir: &std::path::Path) -> Arc<Partition> {
    let partition = Partition::new("t", 0, Log::open(dir, LogSettings::default(), 0).unwrap());
    let log = partition.take_log().unwrap();
    let peers = Peers::new(None);
    let registry = Arc::new(Registry::default());
    let pacemaker = Pacemaker::start(
        PacemakerSettings {
            node_id: 1,
            liveness_interval: Duration::from_millis(50),
            raft_heartbeat_interval: Duration::from_millis(200),
            election_timeout: Duration::from_millis(200),
        },
        Arc::clone(&peers),
        &registry,
    );
    let settings = PartitionGroupSettings {
        node_id: 1,
        group: 7,
        pacemaker,
        commit_timeout: COMMIT_TIMEOUT,
    };
    let group = PartitionGroup::start(settings, log, peers, registry)
        .await
        .unwrap();
    let me = RaftNode {
        rpc_addr: "127.0.0.1:1".to_owned(),
    };
    group.initialize(BTreeMap::from([(1, me)])).await.unwrap();
    partition.attach_raft(group);
    partition
}

/// Commits `batch` on the partition's group (once it leads) and publishes the high watermark.
async fn commit(partition: &Partition, batch: &[u8]) -> (i64, i64) {
    let group = partition.raft().unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let bytes = Bytes::copy_from_slice(batch);
        match group.propose(move |_| Ok::<_, ()>(bytes)).await {
            Ok(committed) => {
                partition.publish_flushed(committed.end_offset);
                return (committed.base_offset, committed.end_offset);
            }
            Err(ProposeError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// What the produce path makes of a retry of `retried` found at `base..end`.
fn retry(partition: &Arc<Partition>, retried: Retried, end: i64) -> PendingProduce {
    PendingProduce {
        partition: Arc::clone(partition),
        outcome: ProduceOutcome {
            base_offset: retried.first.first_offset,
            log_append_time_ms: -1,
            log_start_offset: 0,
        },
        end_offset: end,
        wait_for_durable: true,
        proposal: None,
        retried: Some(retried),
        queued: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_acknowledged_only_while_the_log_holds_its_batch_below_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let partition = replicated_partition(dir.path()).await;
    let written = test_batches::idempotent(42, 3, 0, 2, 1_000);
    let (base, end) = commit(&partition, &written).await;
    let first = BatchMeta {
        first_seq: 0,
        last_seq: 1,
        first_offset: base,
        last_offset: end - 1,
        timestamp: 1_000,
    };

    // The batch the retry repeats is there: acknowledged with where it went.
    let header = BatchHeader::parse(&written).unwrap();
    let answer = retry(&partition, Retried::of(&header, first), end)
        .wait()
        .await;
    assert_eq!(answer.unwrap().base_offset, base);

    // Another producer's batch holds those offsets now (the first copy was cut and the
    // offsets reused): NOT_LEADER_OR_FOLLOWER, never an acknowledgement.
    let other = test_batches::idempotent(43, 3, 0, 2, 1_000);
    let other = BatchHeader::parse(&other).unwrap();
    let answer = retry(&partition, Retried::of(&other, first), end)
        .wait()
        .await;
    assert!(matches!(answer, Err(Error::NotLeader { .. })), "{answer:?}");

    // A copy the high watermark never reaches: given up after the commit timeout.
    let beyond = BatchMeta {
        first_offset: end,
        last_offset: end + 1,
        ..first
    };
    let answer = retry(&partition, Retried::of(&header, beyond), end + 2)
        .wait()
        .await;
    assert!(matches!(answer, Err(Error::Cluster { .. })), "{answer:?}");
    partition.raft().unwrap().shutdown().await;
}
