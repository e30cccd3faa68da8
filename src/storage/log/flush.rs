//! Durability bookkeeping of a [`Log`]: fsync now, or hand out a [`SyncHandle`] so the caller
//! can fsync outside its lock and report back. A failed fsync poisons the log; never retried.

use std::path::PathBuf;
use std::sync::Arc;

use super::Log;
use crate::storage::fs::{DataFile, FsFile};
use crate::storage::{Error, Result, io_error};

/// Lets the caller fsync the active segment outside its lock, then report with
/// [`Log::mark_flushed`] (or [`Log::mark_flush_failed`] when `sync` fails).
#[derive(Debug)]
pub(crate) struct SyncHandle {
    file: Arc<FsFile>,
    path: PathBuf,
    end_offset: i64,
    poisoned: Option<(PathBuf, &'static str)>,
}

impl SyncHandle {
    /// Every offset below this is durable once `sync` succeeds.
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub(crate) fn sync(&self) -> Result<()> {
        if let Some((dir, operation)) = &self.poisoned {
            return Err(Error::Poisoned {
                dir: dir.clone(),
                operation,
            });
        }
        self.file
            .fdatasync()
            .map_err(io_error("fsync segment", &self.path))
    }
}

impl Log {
    /// A handle to fsync the active segment outside the caller's lock; None when all is flushed.
    pub(crate) fn sync_handle(&self) -> Option<SyncHandle> {
        let end_offset = self.log_end_offset();
        if self.flushed_offset >= end_offset {
            return None;
        }
        let active = self.active();
        Some(SyncHandle {
            file: active.file(),
            path: active.log_path().to_path_buf(),
            end_offset,
            poisoned: self.poisoned.map(|operation| (self.dir.clone(), operation)),
        })
    }

    /// A handle to fsync the active segment outside the caller's lock when appending a batch
    /// of `batch_bytes` now would roll it (the roll then finds nothing left to fsync); None
    /// when no roll is due, everything is flushed or the log is poisoned.
    pub(crate) fn roll_sync_handle(&self, batch_bytes: u64, now_ms: i64) -> Option<SyncHandle> {
        if self.poisoned.is_some() {
            return None;
        }
        let end = self.log_end_offset();
        if !self
            .active()
            .should_roll(batch_bytes, end, now_ms, &self.settings)
        {
            return None;
        }
        self.sync_handle()
    }

    /// Records a successful [`SyncHandle::sync`] and returns the flushed offset to publish, or
    /// None when the log was poisoned meanwhile: a failed fsync may have dropped pages that a
    /// concurrent fsync of the same descriptor then reports as synced, so nothing the handle
    /// covers may count as durable. A stale (lower) value is ignored; a roll in between is
    /// harmless because rolled segments were fsynced when rolled. A handle taken before a
    /// `truncate_suffix` must not be reported: its end may cover offsets written since.
    #[must_use = "publish only the flushed offset the log accepted"]
    pub(crate) fn mark_flushed(&mut self, handle_end_offset: i64) -> Option<i64> {
        if self.poisoned.is_some() {
            return None;
        }
        let end_offset = handle_end_offset.min(self.log_end_offset());
        self.flushed_offset = self.flushed_offset.max(end_offset);
        Some(self.flushed_offset)
    }

    /// Records a failed [`SyncHandle::sync`]: the log is poisoned, never retried.
    pub(crate) fn mark_flush_failed(&mut self) {
        tracing::error!(dir = %self.dir.display(), "log poisoned by a failed fsync");
        self.poisoned = Some("fsync");
    }

    /// Fsyncs the active segment now.
    #[allow(dead_code)] // reason: only tests call it; the broker flushes through a SyncHandle
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.check_writable()?;
        let end = self.log_end_offset();
        let result = self.active().sync();
        self.poison_on_error("fsync", result)?;
        self.flushed_offset = end;
        Ok(())
    }
}
