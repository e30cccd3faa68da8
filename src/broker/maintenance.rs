//! Background maintenance: rolls segments by age, enforces retention and compacts compacted
//! topics on every partition, at the configured interval, until shutdown. All of its file I/O
//! runs on the blocking pool; compaction's long part also without the partition lock. A
//! replicated partition's retention and compaction first move its raft log start past what
//! they touch (a snapshot, then raft purges), so they never change a raft entry.

use std::sync::{Arc, Weak};

use super::partition::Partition;
use super::{Broker, now_ms};

/// Starts the maintenance task; it holds only a weak reference so it never keeps a broker alive.
pub(super) fn spawn(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let mut shutdown = broker.shutdown.subscribe();
    let interval = broker.settings.retention_check_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticker.tick() => {}
            }
            // Rolls and deletions are blocking file I/O under partition locks: off the workers.
            let pass = {
                let weak = Weak::clone(&weak);
                tokio::task::spawn_blocking(move || run_once(&weak))
            };
            let Ok(Some(due)) = pass.await else {
                return;
            };
            for partition in due.compacted {
                compact(partition, i64::MAX).await;
            }
            for (partition, cut) in due.compacted_replicated {
                compact_replicated(partition, cut).await;
            }
            for (partition, cut) in due.cuts {
                purge_replicated(&partition, cut).await;
            }
        }
    });
}

/// What a pass leaves to do asynchronously.
#[derive(Default)]
struct Due {
    /// Partitions of compacted topics.
    compacted: Vec<Arc<Partition>>,
    /// Replicated partitions of compacted topics, and the offset their raft log may start at
    /// (the active segment's base: everything below is in closed segments).
    compacted_replicated: Vec<(Arc<Partition>, i64)>,
    /// Replicated partitions and the offset their retention cuts at.
    cuts: Vec<(Arc<Partition>, i64)>,
}

/// One roll and retention pass over every partition; returns what is left to do, or None
/// once the broker is gone.
fn run_once(weak: &Weak<Broker>) -> Option<Due> {
    let broker = weak.upgrade()?;
    let mut due = Due::default();
    let compacted = &mut due.compacted;
    let now = now_ms();
    let topics: Vec<_> = broker.topics_read().values().cloned().collect();
    for topic in topics {
        for partition in &topic.partitions {
            if partition.is_replicated() {
                // Each replica rolls its own segments; retention goes through raft (a snapshot
                // where it cuts, then a purge), and so does compaction (a snapshot below the
                // active segment, then raft purges its entries and keeps their batches, which
                // compaction may then rewrite).
                if topic.settings.log.compaction.is_some() {
                    if let Some(cut) = compaction_cut(partition, now) {
                        due.compacted_replicated.push((Arc::clone(partition), cut));
                    }
                } else if let Some(cut) = retention_cut(partition, now) {
                    due.cuts.push((Arc::clone(partition), cut));
                }
                continue;
            }
            // Its raft group is about to take the log over.
            if broker.is_replicated(&topic.name, partition.index) {
                continue;
            }
            if topic.settings.log.compaction.is_some() {
                compacted.push(Arc::clone(partition));
            }
            // A due roll's fsync happens first, outside the lock (see `Partition::sync_before_roll`).
            let synced = partition.sync_before_roll(0, now);
            let result = synced.and_then(|()| {
                partition.with_log(|log| {
                    if log.roll_if_due(now)? {
                        partition.request_flush();
                    }
                    log.enforce_retention(now)
                })
            });
            match result {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(topic = %topic.name, partition = partition.index, deleted, "retention deleted segments")
                }
                Err(err) => {
                    tracing::warn!(topic = %topic.name, partition = partition.index, error = %err, "maintenance failed")
                }
            }
        }
    }
    Some(due)
}

/// A replicated partition's roll by age, and where retention would cut it now.
fn retention_cut(partition: &Partition, now: i64) -> Option<i64> {
    let cut = partition.with_leader_state(|log| {
        log.roll_if_due(now)?;
        Ok(log.retention_cut(now))
    });
    match cut {
        Ok(cut) => cut,
        Err(err) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "maintenance failed");
            None
        }
    }
}

/// A replicated compacted partition's roll by age, and its active segment's base.
fn compaction_cut(partition: &Partition, now: i64) -> Option<i64> {
    let cut = partition.with_leader_state(|log| {
        log.roll_if_due(now)?;
        Ok(log.active_base_offset())
    });
    match cut {
        Ok(cut) => Some(cut),
        Err(err) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "maintenance failed");
            None
        }
    }
}

/// Compaction of a replicated partition: raft purges its entries below `cut` (keeping their
/// batches), then the closed segments below the raft log start are compacted like any log's.
/// Each replica compacts its own log; a replica behind the snapshot gets the leader's
/// compacted segments with it.
async fn compact_replicated(partition: Arc<Partition>, cut: i64) {
    let Some(group) = partition.raft().cloned() else {
        return;
    };
    // Only when compaction or retention has work below the cut: each purge is a raft snapshot,
    // and a replica behind one needs the segments streamed.
    let now = now_ms();
    let due = partition.with_leader_state(|log| {
        Ok(log.plan_compaction_below(now, cut)?.is_some() || log.retention_cut(now).is_some())
    });
    if matches!(due, Ok(true)) {
        group.purge_below(cut).await;
    }
    let raft_start = group.raft_start_offset();
    compact(Arc::clone(&partition), raft_start).await;
    // `compact,delete`: time and size retention over what raft no longer holds.
    let retained = {
        let partition = Arc::clone(&partition);
        tokio::task::spawn_blocking(move || {
            partition.with_leader_state(|log| log.enforce_retention_below(now, raft_start))
        })
        .await
    };
    match retained {
        Ok(Ok(0)) => {}
        Ok(Ok(deleted)) => {
            tracing::info!(topic = %partition.topic, partition = partition.index, deleted, "retention deleted segments")
        }
        Ok(Err(err)) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "retention failed")
        }
        Err(err) => {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %err, "retention task panicked")
        }
    }
}

/// Retention of a replicated partition: a raft snapshot where it cuts, then raft purges.
async fn purge_replicated(partition: &Partition, cut: i64) {
    let Some(group) = partition.raft() else {
        return;
    };
    if group.purge_below(cut).await {
        tracing::info!(topic = %partition.topic, partition = partition.index, log_start_offset = cut, "retention cut the replicated log");
    }
}

/// One compaction pass of one partition over its closed segments that end at or below
/// `end_max`: plan under the lock, build on the blocking pool without it, install under it
/// again.
async fn compact(partition: Arc<Partition>, end_max: i64) {
    let now = now_ms();
    let plan = match partition.with_leader_state(|log| log.plan_compaction_below(now, end_max)) {
        Ok(Some(plan)) => plan,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "compaction planning failed");
            return;
        }
    };
    let built = match tokio::task::spawn_blocking(move || plan.build()).await {
        Ok(Ok(cleaned)) => cleaned,
        Ok(Err(err)) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "compaction failed");
            return;
        }
        Err(err) => {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %err, "compaction task panicked");
            return;
        }
    };
    let installing = {
        let partition = Arc::clone(&partition);
        tokio::task::spawn_blocking(move || {
            partition.with_leader_state(|log| log.install_compaction(built))
        })
    };
    let Ok(installed) = installing.await else {
        tracing::error!(topic = %partition.topic, partition = partition.index, "compaction install panicked");
        return;
    };
    match installed {
        Ok(outcome) if outcome.is_installed => {
            tracing::info!(topic = %partition.topic, partition = partition.index, segments = outcome.segments_replaced, records_removed = outcome.records_removed, "compacted");
        }
        Ok(_) => {
            tracing::debug!(topic = %partition.topic, partition = partition.index, "log changed during compaction; discarded the pass");
        }
        Err(err) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %err, "installing compaction failed");
        }
    }
}
