//! The producer checks' view of the log through the proposal lock: each check sees every
//! batch proposed before it, also one raft takes after its proposal's answer timed out.

use std::sync::Arc;
use std::time::Duration;

use super::ProposeError;
use super::tests::{DEADLINE, batch, commit_everywhere, leader_of, start_alone};
use crate::storage::{BatchHeader, Log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_sees_every_batch_proposed_before_it() {
    let root = tempfile::tempdir().unwrap();
    let replicas = start_alone(root.path(), DEADLINE).await;
    leader_of(&replicas).await;
    let group = Arc::clone(&replicas[0].as_ref().unwrap().group);
    // Concurrent proposals, each noting the log end its check saw.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..40 {
        let group = Arc::clone(&group);
        let seen = Arc::clone(&seen);
        tasks.push(tokio::spawn(async move {
            group
                .propose(|log| {
                    seen.lock().unwrap().push(log.log_end_offset());
                    Ok::<_, ()>(batch(n))
                })
                .await
                .unwrap()
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.push(task.await.unwrap());
    }
    let seen = seen.lock().unwrap().clone();
    // Every check saw the batch of the check before it already in the log.
    for pair in seen.windows(2) {
        assert_eq!(pair[1], pair[0] + 3, "{seen:?}");
    }
    committed.sort_by_key(|c| c.base_offset);
    let bases: Vec<i64> = committed.iter().map(|c| c.base_offset).collect();
    assert_eq!(bases, seen);
    drop(group);
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}

/// A batch whose proposal timed out before raft appended it (raft's core busy elsewhere) may
/// still be appended: until raft appends or refuses it, no later check runs, so a retry of it
/// (refused by its check once the first copy is in the log) is never written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_batch_raft_takes_after_its_proposal_timed_out_is_seen_by_the_next_check() {
    let root = tempfile::tempdir().unwrap();
    let replicas = start_alone(root.path(), Duration::from_millis(300)).await;
    let first = commit_everywhere(&replicas, 0).await;
    let group = Arc::clone(&replicas[0].as_ref().unwrap().group);
    // The batch of a producer whose check refuses it once anything follows `first`, as a
    // producer's sequence check refuses a batch already in the log.
    let once_after_first = |log: &Log| {
        if log.log_end_offset() == first.end_offset {
            Ok(batch(1))
        } else {
            Err("already written")
        }
    };
    // Raft's core loop stalls until `release` is dropped (also when an assertion fails).
    let (release, stalled) = std::sync::mpsc::channel::<()>();
    let (entered, is_stalled) = tokio::sync::oneshot::channel();
    group
        .raft
        .external_request(move |_| {
            let _ = entered.send(());
            let _ = stalled.recv();
        })
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, is_stalled)
        .await
        .unwrap()
        .unwrap();
    let timed_out = group.submit(once_after_first).await;
    assert!(
        matches!(timed_out, Err(ProposeError::Timeout(_))),
        "{timed_out:?}"
    );
    // The retry while raft still holds the first copy: not proposed.
    let retried = group.submit(once_after_first).await;
    assert!(
        matches!(retried, Err(ProposeError::NotLeader { .. })),
        "a check ran before raft took or refused the batch before it: {retried:?}"
    );
    drop(release);
    // Raft then appends the first copy (and the retry is refused by its check) or refuses it
    // (and the retry is written): batch 1 is in the log once either way.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match group.submit(once_after_first).await {
            Err(ProposeError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(ProposeError::Refused("already written")) => break,
            Ok(proposal) => {
                proposal.committed().await.unwrap();
                break;
            }
            Err(error) => panic!("{error}"),
        }
    }
    let last = commit_everywhere(&replicas, 2).await;
    let batches_after_first = group.with_log(|log| {
        let read = log
            .read(first.end_offset, last.end_offset, usize::MAX, true)
            .unwrap();
        let mut count = 0;
        let mut at = 0;
        while at < read.len() {
            at += BatchHeader::parse(&read[at..]).unwrap().total_len();
            count += 1;
        }
        count
    });
    assert_eq!(batches_after_first, 2, "batch 1 once, then batch 2");
    drop(group);
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
}
