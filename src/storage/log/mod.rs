//! One partition's log: an ordered list of segments in its own directory. Assigns offsets,
//! appends, rolls, flushes, truncates and applies retention. Synchronous and not thread-safe:
//! the caller serialises access, and may fsync ([`SyncHandle`]) and read ([`ReadPlan`])
//! outside its lock.

use std::path::{Path, PathBuf};

use super::batch::{self, BatchHeader};
use super::fs::Fs;
use super::recovery;
use super::retention::{self, SegmentSummary};
use super::segment::{Segment, Write};
use super::settings::LogSettings;
use super::{Error, Result, sync_dir};

mod compact;
mod flush;
mod locate;
mod read;
mod transactions;
mod transfer;

pub(crate) use locate::BatchLocation;
pub(crate) use read::{ReadPlan, past_header_only_batches};
pub(crate) use transfer::{OutgoingPrefix, Piece, PrefixManifest};

/// Where an appended batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Appended {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    /// The segment and byte position it was written at.
    pub(crate) location: BatchLocation,
}

/// A stored batch found by timestamp, returned whole for the caller to look inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimestampHit {
    pub(crate) base_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) batch: bytes::Bytes,
}

/// The topic id [`Log::open`] records in tests.
#[cfg(test)]
pub(crate) const TEST_TOPIC_ID: [u8; 16] = [7; 16];

#[derive(Debug)]
pub(crate) struct Log {
    fs: Fs,
    dir: PathBuf,
    settings: LogSettings,
    /// Oldest first, never empty; offsets continue from one segment to the next; the last one
    /// is the active (writable) segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    flushed_offset: i64,
    /// The operation whose failure stopped all writes.
    poisoned: Option<&'static str>,
    /// The latest `now_ms` the caller passed in; ages a segment that becomes active again.
    latest_now_ms: i64,
    /// Producer state and aborted transactions, derived from the batches.
    transactions: transactions::Transactions,
}

impl Log {
    /// Opens (recovering if needed) or creates the log in `dir`, on the default file system.
    #[cfg(test)]
    pub(crate) fn open(dir: &Path, settings: LogSettings, now_ms: i64) -> Result<Log> {
        Log::open_on(Fs::default(), dir, TEST_TOPIC_ID, settings, now_ms)
    }

    /// Opens (recovering if needed) or creates the log in `dir` for the topic `topic_id`,
    /// doing its file I/O on `fs`. A directory recorded for another topic id is refused.
    pub(crate) fn open_on(
        fs: Fs,
        dir: &Path,
        topic_id: [u8; 16],
        settings: LogSettings,
        now_ms: i64,
    ) -> Result<Log> {
        let settings = settings.clamped();
        transfer::finish_interrupted_install(dir)?;
        let recovered = recovery::recover(&fs, dir, topic_id, &settings, now_ms)?;
        let mut log = Log {
            fs,
            dir: dir.to_path_buf(),
            settings,
            segments: recovered.segments,
            log_start_offset: recovered.log_start_offset,
            flushed_offset: 0,
            poisoned: None,
            latest_now_ms: now_ms,
            transactions: transactions::Transactions::default(),
        };
        log.flushed_offset = log.log_end_offset();
        log.delete_oldest_segments(log.deletable_segment_count(None))?;
        log.load_transactions()?;
        Ok(log)
    }

    /// Whether the topic is compacted (`cleanup.policy` has `compact`).
    pub(crate) fn is_compacted(&self) -> bool {
        self.settings.compaction.is_some()
    }

    pub(crate) fn set_settings(&mut self, settings: LogSettings) {
        self.settings = settings.clamped();
    }

    /// The partition directory, for the small state files kept beside the segments.
    pub(in crate::storage) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The base offset of the first segment: no batch below it is stored.
    pub(crate) fn first_segment_base_offset(&self) -> i64 {
        self.segments.first().map_or(0, Segment::base_offset)
    }

    /// The base offset of the active segment: every batch below it is in a closed segment.
    pub(crate) fn active_base_offset(&self) -> i64 {
        self.active().base_offset()
    }

    /// The next offset to be assigned.
    pub(crate) fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Every offset below this is fsynced.
    pub(crate) fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    fn check_writable(&self) -> Result<()> {
        match self.poisoned {
            Some(operation) => Err(Error::Poisoned {
                dir: self.dir.clone(),
                operation,
            }),
            None => Ok(()),
        }
    }

    /// Turns the log read-only when `result` is a failed write or fsync.
    fn poison_on_error<T>(&mut self, operation: &'static str, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            tracing::error!(dir = %self.dir.display(), operation, %error, "log poisoned");
            self.poisoned = Some(operation);
        }
        result
    }

    /// Appends one already-validated v2 batch, assigning `base_offset = log_end_offset` and
    /// `partition_leader_epoch = leader_epoch` in place. Rolls first if due. No fsync.
    pub(crate) fn append(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Appended> {
        let header = self.check_append(batch, now_ms)?;
        let base_offset = self.log_end_offset();
        batch::set_place(batch, base_offset, leader_epoch);
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..header
        };
        self.write_batch(batch, &header, now_ms, Write::Cached)
    }

    /// Appends one already-validated v2 batch whose base offset is already the log end offset
    /// and whose leader epoch is already set (a raft follower storing its leader's bytes): the
    /// bytes are written as they are, without a copy to change them, and mostly past the page
    /// cache ([`Write::Direct`]): a follower serves no reads of them. Rolls first if due.
    pub(crate) fn append_as_stored(&mut self, batch: &[u8], now_ms: i64) -> Result<Appended> {
        self.append_unchanged(batch, now_ms, Write::Direct)
    }

    /// Appends one already-validated v2 batch that its proposer stamped with the log end offset
    /// and its leader epoch (a raft leader's own proposal): written as it is, without a copy to
    /// change them, and through the page cache, since this broker serves reads of it.
    pub(crate) fn append_stamped(&mut self, batch: &[u8], now_ms: i64) -> Result<Appended> {
        self.append_unchanged(batch, now_ms, Write::Cached)
    }

    /// A batch whose base offset must already be the log end offset, written as it is.
    fn append_unchanged(&mut self, batch: &[u8], now_ms: i64, write: Write) -> Result<Appended> {
        let header = self.check_append(batch, now_ms)?;
        if header.base_offset != self.log_end_offset() {
            return Err(Error::InvalidBatchHeader {
                field: "baseOffset",
                value: header.base_offset,
            });
        }
        self.write_batch(batch, &header, now_ms, write)
    }

    /// The header of a batch about to be appended, once the log takes writes and the batch's
    /// length matches its header and fits a segment.
    fn check_append(&mut self, batch: &[u8], now_ms: i64) -> Result<BatchHeader> {
        self.check_writable()?;
        self.latest_now_ms = self.latest_now_ms.max(now_ms);
        let header = BatchHeader::parse(batch)?;
        if header.total_len() != batch.len() {
            return Err(Error::BatchLengthMismatch {
                len: batch.len(),
                header_len: header.total_len(),
            });
        }
        let batch_len = batch.len() as u64;
        if batch_len > self.settings.segment_bytes_max {
            return Err(Error::BatchTooLarge {
                len: batch.len(),
                segment_bytes_max: self.settings.segment_bytes_max,
            });
        }
        Ok(header)
    }

    /// Writes `batch` (its header final) at the log end, rolling first if due.
    fn write_batch(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
        write: Write,
    ) -> Result<Appended> {
        let base_offset = header.base_offset;
        let last_offset = header.last_offset();
        if self
            .active()
            .should_roll(batch.len() as u64, last_offset, now_ms, &self.settings)
        {
            self.roll()?;
        }
        let location = BatchLocation {
            segment_base_offset: self.active().base_offset(),
            position: self.active().size_bytes(),
        };
        let settings = self.settings.clone();
        let result = self
            .active_mut()
            .append(batch, header, now_ms, &settings, write);
        self.poison_on_error("write", result)?;
        self.apply_to_transactions(batch, header);
        assert_eq!(
            self.log_end_offset(),
            last_offset + 1,
            "offsets must stay contiguous after appending base {base_offset}"
        );
        Ok(Appended {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            location,
        })
    }

    /// Rolls when the active segment is older than `segment_ms_max`, without an append.
    pub(crate) fn roll_if_due(&mut self, now_ms: i64) -> Result<bool> {
        self.check_writable()?;
        self.latest_now_ms = self.latest_now_ms.max(now_ms);
        let end = self.log_end_offset();
        // A zero-length batch can never overflow the size; only age and index limits count.
        if !self.active().should_roll(0, end, now_ms, &self.settings) {
            return Ok(false);
        }
        self.roll()?;
        Ok(true)
    }

    /// Fsyncs (unless already flushed to its end) and seals the active segment, then starts a
    /// new one at the log end offset.
    fn roll(&mut self) -> Result<()> {
        let result = self.roll_unpoisoned();
        self.poison_on_error("roll", result)
    }

    fn roll_unpoisoned(&mut self) -> Result<()> {
        let end = self.log_end_offset();
        let sealed_base = self.active().base_offset();
        let is_synced = self.flushed_offset >= end;
        let active = self.active_mut();
        // Already fsynced through a SyncHandle (the caller's pre-roll sync outside its lock)
        // unless appends came in since.
        if !is_synced {
            active.sync()?;
        }
        active.seal()?;
        self.flushed_offset = self.flushed_offset.max(end);
        let segment = Segment::create(&self.fs, &self.dir, end, &self.settings)?;
        self.segments.push(segment);
        sync_dir(&self.dir)?;
        self.persist_transactions_at_roll(sealed_base, end)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = end, "rolled segment");
        Ok(())
    }

    /// Removes every batch whose base offset is >= `offset` (raft log truncation).
    pub(crate) fn truncate_suffix(&mut self, offset: i64) -> Result<()> {
        self.check_writable()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start_offset {
            return Err(self.out_of_range(offset));
        }
        let result = self.truncate_unpoisoned(offset);
        self.poison_on_error("truncate", result)?;
        self.flushed_offset = self.flushed_offset.min(self.log_end_offset());
        Ok(())
    }

    fn truncate_unpoisoned(&mut self, offset: i64) -> Result<()> {
        let keep_count = self
            .segments
            .partition_point(|segment| segment.base_offset() <= offset)
            .max(1);
        let mut removed_any = false;
        while self.segments.len() > keep_count {
            if let Some(segment) = self.segments.pop() {
                segment.remove()?;
                removed_any = true;
            }
        }
        if removed_any {
            sync_dir(&self.dir)?;
        }
        let settings = self.settings.clone();
        let latest_now_ms = self.latest_now_ms;
        let active = self.active_mut();
        if active.is_sealed() {
            active.unseal(&settings)?;
            active.init_rolling_timestamp(latest_now_ms)?;
        }
        active.truncate_to(offset)?;
        self.load_transactions()
    }

    fn out_of_range(&self, offset: i64) -> Error {
        Error::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Moves the log start offset up to `offset` (persisted first) and deletes whole segments
    /// below it. The active segment always stays.
    pub(crate) fn delete_records_before(&mut self, offset: i64) -> Result<()> {
        self.check_writable()?;
        if offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start_offset {
            return Ok(());
        }
        recovery::write_log_start_offset(&self.dir, offset)?;
        self.log_start_offset = offset;
        self.delete_oldest_segments(self.deletable_segment_count(None))?;
        Ok(())
    }

    /// Empties the log and starts it again, empty, at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): a raft follower installing a snapshot that lies past its
    /// whole log. The new log start is persisted first, so a crash midway recovers the same.
    pub(crate) fn restart_at(&mut self, offset: i64) -> Result<()> {
        self.check_writable()?;
        let result = self.restart_unpoisoned(offset);
        self.poison_on_error("restart", result)
    }

    fn restart_unpoisoned(&mut self, offset: i64) -> Result<()> {
        recovery::write_log_start_offset(&self.dir, offset)?;
        for segment in self.segments.drain(..) {
            segment.remove()?;
        }
        let segment = Segment::create(&self.fs, &self.dir, offset, &self.settings)?;
        self.segments.push(segment);
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.flushed_offset = offset;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        self.load_transactions()
    }

    /// The log start offset retention would move to now (the base offset of the first segment
    /// it keeps), if it would delete any segment.
    pub(crate) fn retention_cut(&self, now_ms: i64) -> Option<i64> {
        let count = self.deletable_segment_count(Some(now_ms));
        (count > 0).then(|| self.segments.get(count).map(Segment::base_offset))?
    }

    /// Deletes the oldest segments past retention; returns how many went.
    pub(crate) fn enforce_retention(&mut self, now_ms: i64) -> Result<u64> {
        self.enforce_retention_below(now_ms, i64::MAX)
    }

    /// [`Log::enforce_retention`] over the segments that end at or below `end_max` only (a
    /// replicated compacted log deletes only what its raft log no longer holds).
    pub(crate) fn enforce_retention_below(&mut self, now_ms: i64, end_max: i64) -> Result<u64> {
        let below = self
            .segments
            .partition_point(|segment| segment.next_offset() <= end_max);
        let count = self.deletable_segment_count(Some(now_ms)).min(below);
        self.delete_oldest_segments(count)?;
        Ok(count as u64)
    }

    /// With `now_ms`, all retention rules; without, only "wholly below the log start offset".
    fn deletable_segment_count(&self, now_ms: Option<i64>) -> usize {
        let summaries: Vec<SegmentSummary> = self
            .segments
            .iter()
            .map(|segment| SegmentSummary {
                size_bytes: segment.size_bytes(),
                next_offset: segment.next_offset(),
                max_timestamp_ms: segment.max_timestamp().map(|max| max.timestamp),
            })
            .collect();
        match now_ms {
            Some(now_ms) => retention::deletable_segment_count(
                &summaries,
                self.log_start_offset,
                &self.settings,
                now_ms,
            ),
            None => {
                let start_only = LogSettings {
                    retention_ms: None,
                    retention_bytes: None,
                    ..self.settings.clone()
                };
                retention::deletable_segment_count(
                    &summaries,
                    self.log_start_offset,
                    &start_only,
                    0,
                )
            }
        }
    }

    fn delete_oldest_segments(&mut self, count: usize) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        assert!(
            count < self.segments.len(),
            "retention may not delete the active segment ({count} of {})",
            self.segments.len()
        );
        for _ in 0..count {
            let segment = self.segments.remove(0);
            tracing::info!(path = %segment.log_path().display(), "deleting segment");
            segment.remove()?;
            let first_base_offset = self.first_segment_base_offset();
            self.log_start_offset = self.log_start_offset.max(first_base_offset);
        }
        sync_dir(&self.dir)?;
        self.forget_deleted_transactions()
    }

    /// Fsyncs, seals the indexes and marks the directory clean so the next open skips recovery.
    pub(crate) fn close(mut self) -> Result<()> {
        self.check_writable()?;
        let active = self.active_mut();
        active.sync()?;
        active.seal()?;
        self.persist_transactions_at_close()?;
        recovery::write_clean_marker(&self.dir)
    }

    /// Removes the partition directory and everything in it (renamed aside first).
    pub(crate) fn delete(self) -> Result<()> {
        let Log { dir, segments, .. } = self;
        drop(segments);
        super::partition_dirs::delete(&dir)
    }

    #[cfg(test)]
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}
