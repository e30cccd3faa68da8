//! Test support: a replicated partition whose raft group has this one replica, so broker tests
//! can drive the replicated paths (commits, the high watermark, retries) without a cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::partition::Partition;
use crate::replication::RaftNode;
use crate::replication::partition::{
    Pacemaker, PacemakerSettings, PartitionGroup, PartitionGroupSettings, ProposeError,
};
use crate::replication::rpc::{Peers, Registry};
use crate::storage::{Log, LogSettings};

/// How long a proposal of these groups waits for its commit.
pub(super) const COMMIT_TIMEOUT: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_secs(30);

/// Starts the raft group (node 1, its only voter) of partition log `log`; it elects itself
/// after an election timeout (200 ms).
pub(super) async fn start_group(log: Log) -> Arc<PartitionGroup> {
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
    group
}

/// Partition `t-0` over the log in `dir`, replicated by a group of one replica.
pub(super) async fn replicated_partition(dir: &std::path::Path) -> Arc<Partition> {
    let partition = Partition::new("t", 0, Log::open(dir, LogSettings::default(), 0).unwrap());
    let log = partition.take_log().unwrap();
    partition.attach_raft(start_group(log).await);
    partition
}

/// Commits `batch` on `group` once it leads; the Kafka offsets it got (first, after last).
pub(super) async fn commit(group: &PartitionGroup, batch: &[u8]) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let bytes = Bytes::copy_from_slice(batch);
        match group.propose(move |_| Ok::<_, ()>(bytes)).await {
            Ok(committed) => return (committed.base_offset, committed.end_offset),
            Err(ProposeError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}
