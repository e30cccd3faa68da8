//! Log compaction's short halves, run under the partition lock: plan a pass (which closed
//! segments, from the cleaner checkpoint), and install its cleaned segments crash-safely.
//! The long middle half, reading and writing segment copies, is `storage/cleaner`.

use super::Log;
use crate::storage::cleaner::{
    self, CLEANING_DIR, Cleaned, CompactionPlan, PlannedSegment, SegmentSummary,
};
use crate::storage::segment::{self, Segment};
use crate::storage::{Result, io_error, recovery, sync_dir};

/// What installing a pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompactionOutcome {
    pub(crate) segments_replaced: usize,
    pub(crate) records_removed: u64,
    /// False when the log changed while the pass was built (its result was discarded).
    pub(crate) is_installed: bool,
}

impl Log {
    /// Plans a compaction pass, or None when the log is not compacted or no pass is due
    /// (see `cleaner::cleanable_count`). Cheap: reads one header per closed segment.
    #[cfg(test)]
    pub(crate) fn plan_compaction(&self, now_ms: i64) -> Result<Option<CompactionPlan>> {
        self.plan_compaction_below(now_ms, i64::MAX)
    }

    /// [`Log::plan_compaction`] over the closed segments that end at or below `end_max` only
    /// (a replicated log compacts only what its raft log no longer holds).
    pub(crate) fn plan_compaction_below(
        &self,
        now_ms: i64,
        end_max: i64,
    ) -> Result<Option<CompactionPlan>> {
        let Some(compaction) = self.settings.compaction.clone() else {
            return Ok(None);
        };
        if self.poisoned.is_some() {
            return Ok(None);
        }
        let Some((_active, closed)) = self.segments.split_last() else {
            return Ok(None);
        };
        let closed = &closed[..closed.partition_point(|segment| segment.next_offset() <= end_max)];
        let mut summaries = Vec::with_capacity(closed.len());
        for segment in closed {
            summaries.push(SegmentSummary {
                size_bytes: segment.size_bytes(),
                next_offset: segment.next_offset(),
                max_timestamp_ms: segment.max_timestamp().map(|max| max.timestamp),
                first_timestamp_ms: segment.header_at(0)?.map(|header| header.max_timestamp),
            });
        }
        let first_dirty_offset = recovery::read_cleaner_checkpoint(&self.dir)
            .unwrap_or(0)
            .max(self.log_start_offset);
        let Some(count) =
            cleaner::cleanable_count(&summaries, first_dirty_offset, &compaction, now_ms)
        else {
            return Ok(None);
        };
        let segments = closed
            .iter()
            .take(count)
            .filter(|segment| segment.size_bytes() > 0 && segment.is_sealed())
            .map(|segment| PlannedSegment {
                base_offset: segment.base_offset(),
                next_offset: segment.next_offset(),
                size_bytes: segment.size_bytes(),
                file: segment.file(),
            })
            .collect();
        Ok(Some(CompactionPlan {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            settings: self.settings.clone(),
            compaction,
            now_ms,
            first_dirty_offset,
            segments,
        }))
    }

    /// Swaps in the cleaned segments of a pass, if every one still matches the live closed
    /// segment it was built from (same file, size, sealed); otherwise discards the pass.
    /// Per segment: delete the old indexes, rename the cleaned `.log` over the old one
    /// (atomic), move the new indexes in, fsync the directory. A crash at any step leaves
    /// either file whole; recovery rebuilds missing indexes and removes the cleaning directory.
    pub(crate) fn install_compaction(&mut self, cleaned: Cleaned) -> Result<CompactionOutcome> {
        self.check_writable()?;
        let cleaning_dir = self.dir.join(CLEANING_DIR);
        let mut targets = Vec::with_capacity(cleaned.replaced.len());
        let closed = self.segments.len().saturating_sub(1);
        for planned in &cleaned.replaced {
            let live = self
                .segments
                .get(..closed)
                .unwrap_or_default()
                .iter()
                .position(|live| {
                    live.base_offset() == planned.base_offset
                        && std::sync::Arc::ptr_eq(&live.file(), &planned.file)
                        && live.size_bytes() == planned.size_bytes
                        && live.next_offset() == planned.next_offset
                        && live.is_sealed()
                });
            targets.push(live);
        }
        let is_current = cleaned.dir == self.dir
            && targets.iter().all(Option::is_some)
            && cleaned.cleaned_end_offset <= self.active().base_offset();
        if !is_current {
            super::transfer::remove_dir_if_present(&cleaning_dir)?;
            return Ok(CompactionOutcome {
                segments_replaced: 0,
                records_removed: 0,
                is_installed: false,
            });
        }
        let result = self.swap_all(&targets, &cleaned);
        self.poison_on_error("install compaction", result)?;
        super::transfer::remove_dir_if_present(&cleaning_dir)?;
        Ok(CompactionOutcome {
            segments_replaced: targets.len(),
            records_removed: cleaned.records_removed,
            is_installed: true,
        })
    }

    /// Replaces the `targets` with their cleaned copies: every old index deleted and made
    /// durable first, then every cleaned file renamed into place and made durable, so one
    /// install costs two directory fsyncs (held under the log's lock) whatever its segment
    /// count. A crash in between leaves each segment its old or its cleaned log, the same
    /// offsets either way, and an index is rebuilt wherever one is missing.
    fn swap_all(&mut self, targets: &[Option<usize>], cleaned: &Cleaned) -> Result<()> {
        let cleaning_dir = self.dir.join(CLEANING_DIR);
        let replaced: Vec<(usize, i64)> = targets
            .iter()
            .flatten()
            .filter_map(|&index| Some((index, self.segments.get(index)?.base_offset())))
            .collect();
        for &(_, base_offset) in &replaced {
            let stem = segment::file_stem(base_offset);
            for suffix in [".index", ".timeindex"] {
                let path = self.dir.join(format!("{stem}{suffix}"));
                std::fs::remove_file(&path).map_err(io_error("delete old index", &path))?;
            }
        }
        sync_dir(&self.dir)?;
        for &(_, base_offset) in &replaced {
            let stem = segment::file_stem(base_offset);
            for suffix in [".log", ".index", ".timeindex"] {
                let from = cleaning_dir.join(format!("{stem}{suffix}"));
                let to = self.dir.join(format!("{stem}{suffix}"));
                std::fs::rename(&from, &to).map_err(io_error("install cleaned segment", &to))?;
            }
        }
        sync_dir(&self.dir)?;
        for &(index, base_offset) in &replaced {
            let reopened =
                recovery::open_closed_segment(&self.fs, &self.dir, base_offset, &self.settings)?;
            if let Some(slot) = self.segments.get_mut(index) {
                let old: Segment = std::mem::replace(slot, reopened);
                drop(old);
            }
        }
        recovery::write_cleaner_checkpoint(&self.dir, cleaned.cleaned_end_offset)
    }
}
