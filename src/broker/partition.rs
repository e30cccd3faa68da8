//! One partition: its log behind a mutex, its high watermark, and the group-commit flusher that
//! makes appends durable with one fsync shared by every append waiting at that moment.
//! On a single node the high watermark is the flushed (durable) offset.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::{Notify, mpsc, watch};

use super::error::{Error, Result};
use super::internal_writes::QueuedWrite;
use crate::replication::partition::PartitionGroup;
use crate::storage;

/// What appenders wait on: how far the log is durable, that flushing failed for good, or that
/// the partition was deleted or closed (nothing past `flushed_offset` will become durable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Durability {
    pub(crate) flushed_offset: i64,
    pub(crate) failed: bool,
    pub(crate) is_gone: bool,
}

/// A partition of a topic, shared by every request touching it.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    /// `None` once the partition was closed or deleted, or when it is offline.
    log: Mutex<Option<storage::Log>>,
    /// Why the log could not be opened; the partition serves nothing until a restart.
    offline_reason: Option<String>,
    high_watermark: AtomicI64,
    durability: watch::Sender<Durability>,
    flush_wanted: Notify,
    /// Set once the partition is replicated: its raft group owns the log from then on (`log`
    /// is `None`), appends are proposed to it and the high watermark follows its commits.
    raft: OnceLock<Arc<PartitionGroup>>,
    /// A replicated internal partition: the queue of its coordinator's writes, proposed in
    /// order by one task (see `internal_writes.rs`).
    internal_writes: OnceLock<mpsc::Sender<QueuedWrite>>,
    /// A replicated internal partition: whether this broker's coordinator has loaded it since
    /// it last became its leader (it serves the partition's groups or transactions only then).
    coordinating: AtomicBool,
    /// How many fetch reads this partition served (tests count wake-ups with it).
    #[cfg(test)]
    pub(crate) fetch_read_count: std::sync::atomic::AtomicUsize,
}

impl Partition {
    pub(crate) fn new(topic: &str, index: i32, log: storage::Log) -> Arc<Partition> {
        Partition::build(topic, index, Some(log), None)
    }

    /// A partition whose log failed to open: every request gets a storage error naming
    /// `reason`, and Metadata reports it offline, until a restart opens it.
    pub(crate) fn offline(topic: &str, index: i32, reason: String) -> Arc<Partition> {
        Partition::build(topic, index, None, Some(reason))
    }

    fn build(
        topic: &str,
        index: i32,
        log: Option<storage::Log>,
        offline_reason: Option<String>,
    ) -> Arc<Partition> {
        let flushed = log.as_ref().map_or(0, storage::Log::flushed_offset);
        Arc::new(Partition {
            topic: topic.to_owned(),
            index,
            high_watermark: AtomicI64::new(flushed),
            durability: watch::Sender::new(Durability {
                flushed_offset: flushed,
                failed: false,
                is_gone: false,
            }),
            log: Mutex::new(log),
            offline_reason,
            flush_wanted: Notify::new(),
            raft: OnceLock::new(),
            internal_writes: OnceLock::new(),
            coordinating: AtomicBool::new(false),
            #[cfg(test)]
            fetch_read_count: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Locks the log. A poisoned mutex means a thread panicked mid-operation: the log's own
    /// invariants are checked by storage on every call, so the guard is still usable.
    fn lock(&self) -> MutexGuard<'_, Option<storage::Log>> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the open log; a closed or deleted partition is unknown to the caller.
    pub(crate) fn with_log<T>(
        &self,
        f: impl FnOnce(&mut storage::Log) -> std::result::Result<T, storage::Error>,
    ) -> Result<T> {
        let mut guard = self.lock();
        let log = guard.as_mut().ok_or_else(|| self.missing_log())?;
        f(log).map_err(|source| self.storage_error(source))
    }

    /// Runs `f` on the log for reading, wherever it is (here, or in the raft group).
    pub(crate) fn read_log<T>(
        &self,
        f: impl FnOnce(&storage::Log) -> std::result::Result<T, storage::Error>,
    ) -> Result<T> {
        if let Some(group) = self.raft.get() {
            return group
                .with_log(f)
                .map_err(|source| self.storage_error(source));
        }
        let guard = self.lock();
        let log = guard.as_ref().ok_or_else(|| self.missing_log())?;
        f(log).map_err(|source| self.storage_error(source))
    }

    /// Runs `f` on the log's in-memory leader state (the transaction verification guards),
    /// wherever the log is. Nothing `f` does may write to the log.
    pub(crate) fn with_leader_state<T>(
        &self,
        f: impl FnOnce(&mut storage::Log) -> std::result::Result<T, storage::Error>,
    ) -> Result<T> {
        match self.raft.get() {
            Some(group) => group
                .with_log_mut(f)
                .map_err(|source| self.storage_error(source)),
            None => self.with_log(f),
        }
    }

    /// Hands the log over to its raft group (taken out with [`Partition::take_log`]): from
    /// now on reads go to the group and the high watermark follows its commits, starting from
    /// what the group knows committed. (The plain log's flushed end it started at may cover a
    /// tail raft never committed: this replica led, and was cut off or killed before its last
    /// entries committed. Nothing read it meanwhile: a replicated partition is served only
    /// once its group leads.)
    pub(crate) fn attach_raft(&self, group: Arc<PartitionGroup>) {
        let committed = *group.high_watermark().borrow();
        if self.raft.set(group).is_err() {
            tracing::warn!(topic = %self.topic, partition = self.index, "partition already replicated");
            return;
        }
        self.high_watermark.store(committed, Ordering::Release);
        self.durability
            .send_modify(|d| d.flushed_offset = committed);
    }

    /// The raft group of a replicated partition.
    pub(crate) fn raft(&self) -> Option<&Arc<PartitionGroup>> {
        self.raft.get()
    }

    pub(crate) fn is_replicated(&self) -> bool {
        self.raft.get().is_some()
    }

    /// Gives a replicated internal partition the queue its coordinator's writes go through.
    pub(super) fn attach_internal_writes(&self, queue: mpsc::Sender<QueuedWrite>) {
        if self.internal_writes.set(queue).is_err() {
            tracing::warn!(topic = %self.topic, partition = self.index, "internal writes already attached");
        }
    }

    /// The queue of a replicated internal partition's coordinator writes.
    pub(super) fn internal_writes(&self) -> Option<&mpsc::Sender<QueuedWrite>> {
        self.internal_writes.get()
    }

    /// Whether this broker's coordinator serves the partition's keys (it leads it and loaded it).
    pub(crate) fn is_coordinating(&self) -> bool {
        self.coordinating.load(Ordering::Acquire)
    }

    pub(super) fn set_coordinating(&self, coordinating: bool) {
        self.coordinating.store(coordinating, Ordering::Release);
    }

    /// The error for a partition without an open log: offline, or closed or deleted.
    fn missing_log(&self) -> Error {
        match &self.offline_reason {
            Some(reason) => Error::PartitionOffline {
                topic: self.topic.clone(),
                partition: self.index,
                reason: reason.clone(),
            },
            None => Error::UnknownTopicOrPartition {
                topic: self.topic.clone(),
                partition: self.index,
            },
        }
    }

    pub(crate) fn is_offline(&self) -> bool {
        self.offline_reason.is_some()
    }

    /// Takes the log out for closing or deleting; later calls see an unknown partition. The
    /// caller then calls [`Partition::mark_gone`] once what it will make durable is published.
    pub(crate) fn take_log(&self) -> Option<storage::Log> {
        self.lock().take()
    }

    /// Ends the partition after its log was taken: appends still waiting for durability get
    /// an unknown-partition error instead of waiting forever, and the flusher exits.
    pub(crate) fn mark_gone(&self) {
        self.durability.send_modify(|d| d.is_gone = true);
        self.flush_wanted.notify_one();
    }

    fn is_gone(&self) -> bool {
        self.durability.borrow().is_gone
    }

    /// Changes whenever this partition's high watermark moves, its flushing fails or it goes
    /// away: what a long-polling fetch of this partition waits on.
    pub(crate) fn changes(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub(crate) fn storage_error(&self, source: storage::Error) -> Error {
        Error::Storage {
            topic: self.topic.clone(),
            partition: self.index,
            source,
        }
    }

    fn flush_failed(&self) -> Error {
        Error::FlushFailed {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    /// Asks the flusher to make everything appended so far durable.
    pub(crate) fn request_flush(&self) {
        self.flush_wanted.notify_one();
    }

    /// Waits until every offset below `end_offset` is durable.
    pub(crate) async fn wait_for_durable(&self, end_offset: i64) -> Result<()> {
        let mut rx = self.durability.subscribe();
        let state = rx
            .wait_for(|d| d.failed || d.is_gone || d.flushed_offset >= end_offset)
            .await
            .map(|d| *d)
            .map_err(|_| self.flush_failed())?;
        if state.flushed_offset >= end_offset {
            Ok(())
        } else if state.failed {
            Err(self.flush_failed())
        } else {
            Err(Error::UnknownTopicOrPartition {
                topic: self.topic.clone(),
                partition: self.index,
            })
        }
    }

    /// One group commit: fsync outside the lock whatever is unflushed now, then publish it.
    /// Returns whether anything was flushed.
    pub(crate) async fn flush_once(self: &Arc<Self>) -> Result<bool> {
        let (handle, flushed) = match self.lock().as_ref() {
            Some(log) => (log.sync_handle(), log.flushed_offset()),
            None => return Ok(false),
        };
        let Some(handle) = handle else {
            // A segment roll fsyncs without a handle: publish what it made durable.
            let moved = flushed > self.high_watermark();
            self.publish_flushed(flushed);
            return Ok(moved);
        };
        let end_offset = handle.end_offset();
        let synced = tokio::task::spawn_blocking(move || handle.sync())
            .await
            .map_err(|_| self.flush_failed())
            .and_then(|r| r.map_err(|e| self.storage_error(e)));
        self.finish_sync(end_offset, synced)
    }

    /// Whether appending a batch of `batch_bytes` now would roll the active segment while it
    /// has unflushed data (in memory, no I/O; false when the log is closed or poisoned).
    pub(crate) fn is_roll_due(&self, batch_bytes: u64, now_ms: i64) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|log| log.roll_sync_handle(batch_bytes, now_ms).is_some())
    }

    /// Before an append of a first batch of `batch_bytes` that will roll the active segment:
    /// fsyncs the segment here, outside the lock (blocking: call it off the async workers),
    /// and publishes it, so the roll under the lock has nothing left to fsync.
    pub(crate) fn sync_before_roll(&self, batch_bytes: u64, now_ms: i64) -> Result<()> {
        let handle = self.with_log(|log| Ok(log.roll_sync_handle(batch_bytes, now_ms)))?;
        let Some(handle) = handle else {
            return Ok(());
        };
        let synced = handle.sync().map_err(|e| self.storage_error(e));
        self.finish_sync(handle.end_offset(), synced).map(|_| ())
    }

    /// Reports an fsync of a `SyncHandle` ending at `end_offset` to the log and
    /// publishes what the log accepted. Returns whether anything was flushed.
    fn finish_sync(&self, end_offset: i64, synced: Result<()>) -> Result<bool> {
        if let Err(err) = synced {
            if let Some(log) = self.lock().as_mut() {
                log.mark_flush_failed();
            }
            self.durability.send_modify(|d| d.failed = true);
            return Err(err);
        }
        // Publish only what the log accepted: a log poisoned while this fsync ran (by another
        // fsync of the same descriptor failing) may have lost the pages this one reports.
        let accepted = match self.lock().as_mut() {
            Some(log) => log.mark_flushed(end_offset),
            None => return Ok(false),
        };
        let Some(flushed) = accepted else {
            self.durability.send_modify(|d| d.failed = true);
            return Err(self.flush_failed());
        };
        self.publish_flushed(flushed);
        Ok(true)
    }

    /// Records that offsets below `end_offset` are durable and visible to consumers.
    pub(crate) fn publish_flushed(&self, end_offset: i64) {
        let previous = self.high_watermark.fetch_max(end_offset, Ordering::AcqRel);
        if end_offset > previous {
            self.durability
                .send_modify(|d| d.flushed_offset = d.flushed_offset.max(end_offset));
        }
    }

    /// Runs the flusher until `shutdown` fires or the partition is gone (deleted or closed).
    pub(crate) async fn run_flusher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = self.flush_wanted.notified() => {}
            }
            if self.is_gone() {
                return;
            }
            match self.flush_once().await {
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(topic = %self.topic, partition = self.index, error = %err,
                        "fsync failed; partition stops accepting writes");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
