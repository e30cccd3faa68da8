//! A partition handed to its raft group starts its high watermark at what the group knows
//! committed, not at the plain log's flushed end.

use super::Partition;
use crate::broker::single_replica_tests::{commit, start_group};
use crate::storage::{Log, LogSettings, test_batches};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_starts_its_high_watermark_at_what_raft_knows_committed() {
    let dir = tempfile::tempdir().unwrap();
    let group = start_group(Log::open(dir.path(), LogSettings::default(), 0).unwrap()).await;
    let (base, committed) = commit(&group, &test_batches::build(2, 1_000, 10)).await;
    let term = group
        .with_log(|log| log.batch_header_at(base))
        .unwrap()
        .unwrap()
        .partition_leader_epoch;
    group.shutdown().await;
    drop(group);

    // A tail the leader appended but never committed (it was cut off, then killed): an entry
    // of its term after the committed ones, flushed on disk.
    let mut log = Log::open(dir.path(), LogSettings::default(), 0).unwrap();
    let mut tail = test_batches::build(3, 2_000, 10);
    log.append(&mut tail, term, 2_000).unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogSettings::default(), 0).unwrap();
    let end = log.log_end_offset();
    assert!(end > committed);

    let partition = Partition::new("t", 0, log);
    assert_eq!(
        partition.high_watermark(),
        end,
        "a plain log: its flushed end"
    );
    let log = partition.take_log().unwrap();
    let group = start_group(log).await;
    partition.attach_raft(std::sync::Arc::clone(&group));
    assert!(
        partition.high_watermark() <= committed,
        "replicated: at most what was committed ({committed}), not {}",
        partition.high_watermark()
    );
    group.shutdown().await;
}
