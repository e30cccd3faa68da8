//! Group commit of a partition's raft log: appends queue their `IOFlushed` callback here; one
//! task takes every queued callback, fsyncs once on the blocking pool (never on a tokio worker)
//! and completes them all. A failed fsync poisons the log and fails the callbacks.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::IOFlushed;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::error::Error;
use super::raft_log::RaftLog;
use super::types::TypeConfig;
use crate::limits;

/// The shared raft log, locked for each short synchronous step.
#[derive(Debug)]
pub(crate) struct Shared {
    raft_log: Mutex<RaftLog>,
    /// The record batches (normal entries) appended since the log opened, counted once each
    /// is readable; never decreases (a truncation does not uncount).
    appended_batches: watch::Sender<AppendedBatches>,
}

/// How many record batches were appended, and where the last one landed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AppendedBatches {
    pub(crate) count: u64,
    /// The Kafka offsets of the last one: its first, and the one after its last.
    pub(crate) last: Option<(i64, i64)>,
}

impl Shared {
    pub(crate) fn new(raft_log: RaftLog) -> Arc<Shared> {
        Arc::new(Shared {
            raft_log: Mutex::new(raft_log),
            appended_batches: watch::Sender::new(AppendedBatches::default()),
        })
    }

    /// Counts `count` record batches that are now readable, the last at `last`.
    pub(crate) fn count_appended_batches(&self, count: u64, last: Option<(i64, i64)>) {
        if count > 0 {
            self.appended_batches.send_modify(|appended| {
                appended.count += count;
                appended.last = last;
            });
        }
    }

    /// The record batches appended so far, and their changes.
    pub(crate) fn appended_batches(&self) -> watch::Receiver<AppendedBatches> {
        self.appended_batches.subscribe()
    }

    #[cfg(test)]
    pub(crate) fn into_inner(self) -> RaftLog {
        self.raft_log
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The raft log; a panic while it was held poisons nothing we rely on (every step leaves
    /// the log consistent or the `storage::Log` poisoned), so the guard is taken back.
    pub(crate) fn lock(&self) -> MutexGuard<'_, RaftLog> {
        self.raft_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the flusher of `shared`; it ends (the handle completes) once the returned sender
/// is dropped and every queued callback is completed.
pub(crate) fn spawn(shared: Arc<Shared>) -> (mpsc::Sender<IOFlushed<TypeConfig>>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(limits::RAFT_LOG_FLUSH_QUEUE_MAX);
    let handle = tokio::spawn(run(shared, receiver));
    (sender, handle)
}

async fn run(shared: Arc<Shared>, mut receiver: mpsc::Receiver<IOFlushed<TypeConfig>>) {
    let mut waiting = Vec::new();
    while let Some(first) = receiver.recv().await {
        waiting.push(first);
        while let Ok(more) = receiver.try_recv() {
            waiting.push(more);
        }
        let result = flush(&shared).await;
        for callback in waiting.drain(..) {
            let result = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(io::Error::other(error.to_string())),
            };
            callback.io_completed(result);
        }
    }
}

/// Makes everything appended so far durable: one fsync of the active segment (rolled
/// segments were fsynced when they rolled).
async fn flush(shared: &Arc<Shared>) -> Result<(), Error> {
    let (handle, truncation_count) = {
        let raft_log = shared.lock();
        (raft_log.log().sync_handle(), raft_log.truncation_count())
    };
    let Some(handle) = handle else {
        return Ok(());
    };
    let synced = tokio::task::spawn_blocking(move || handle.sync().map(|()| handle.end_offset()))
        .await
        .map_err(Error::BlockingTask)?;
    let mut raft_log = shared.lock();
    match synced {
        Ok(end_offset) => {
            if raft_log.truncation_count() == truncation_count {
                // None means the log was poisoned meanwhile; checked just below.
                let _flushed = raft_log.log_mut().mark_flushed(end_offset);
            }
            if raft_log.log().is_poisoned() {
                return Err(Error::Poisoned);
            }
            Ok(())
        }
        Err(error) => {
            raft_log.log_mut().mark_flush_failed();
            Err(error.into())
        }
    }
}
