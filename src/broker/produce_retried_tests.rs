//! A retried batch of a replicated partition (found in the log by the producer checks) is
//! acknowledged once the high watermark passed it only if the log still holds that batch
//! there: a copy an earlier leader never committed may have been cut and the offsets reused.

use std::sync::Arc;

use super::{PendingProduce, ProduceOutcome, Retried};
use crate::broker::error::Error;
use crate::broker::partition::Partition;
use crate::broker::single_replica_tests::{commit, replicated_partition};
use crate::storage::{BatchHeader, BatchMeta, test_batches};

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
    let (base, end) = commit(partition.raft().unwrap(), &written).await;
    partition.publish_flushed(end);
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
