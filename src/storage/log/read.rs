//! The read side of a [`Log`]: whole stored batches byte for byte (never a partial batch), and
//! lookups by timestamp. Never writes. A fetch plans its read under the partition lock and
//! preads outside it ([`ReadPlan`]).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::{Log, TimestampHit};
use crate::storage::batch::BatchHeader;
use crate::storage::fs::{DataFile, FsFile};
use crate::storage::segment::{MaxTimestamp, Segment};
use crate::storage::{Result, io_error};

/// Where a read's bytes lie, taken under the caller's lock by [`Log::plan_read`] and read by
/// [`ReadPlan::read`] without it: the segment's open file (shared, so a segment deleted or
/// replaced by compaction meanwhile stays readable) and a window of whole batches below the
/// high watermark, bytes no append changes. Empty when there is nothing to read.
#[derive(Debug)]
pub(crate) struct ReadPlan {
    window: Option<Window>,
}

#[derive(Debug)]
struct Window {
    file: Arc<FsFile>,
    path: PathBuf,
    position: u64,
    len: u64,
    end_offset: i64,
}

impl ReadPlan {
    /// Preads the planned bytes and cuts them to whole batches below the end offset. Blocking
    /// I/O: call it outside the lock and off async workers.
    pub(crate) fn read(&self) -> Result<Bytes> {
        let Some(window) = &self.window else {
            return Ok(Bytes::new());
        };
        let len = usize::try_from(window.len).unwrap_or(usize::MAX);
        let mut bytes = vec![0u8; len];
        window
            .file
            .read_exact_at(&mut bytes, window.position)
            .map_err(io_error("read segment", &window.path))?;
        let whole_len = whole_batches_len(&bytes, window.end_offset);
        bytes.truncate(whole_len);
        Ok(Bytes::from(bytes))
    }
}

/// When `bytes` holds batches and all are header-only (compaction left no records in them),
/// the offset after them: a fetch then reads again from there.
pub(crate) fn past_header_only_batches(bytes: &[u8]) -> Option<i64> {
    let mut rest = bytes;
    let mut next = None;
    while let Ok(header) = BatchHeader::parse(rest) {
        if header.record_count != 0 {
            return None;
        }
        next = Some(header.last_offset() + 1);
        rest = rest.get(header.total_len()..).unwrap_or_default();
    }
    next
}

impl Log {
    /// Whole stored batches starting with the one that contains `offset`, none whose base offset
    /// reaches `end_offset` (the high watermark), at most `max_bytes` unless `min_one` lets the
    /// first batch through whole. Stays within one segment, like Kafka. A read that would hold
    /// only compaction's header-only batches moves on past them (clients take an answer without
    /// records for a too-small fetch size), unless nothing with records follows.
    /// [`Log::plan_read`] and [`ReadPlan::read`] do the same with the pread outside a lock
    /// (what the broker does); this one-step form serves tests.
    #[cfg(test)]
    pub(crate) fn read(
        &self,
        offset: i64,
        end_offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Bytes> {
        let mut offset = offset;
        loop {
            let bytes = self
                .plan_read(offset, end_offset, max_bytes, min_one)?
                .read()?;
            match past_header_only_batches(&bytes) {
                Some(next) if next < end_offset && next < self.log_end_offset() => offset = next,
                _ => return Ok(bytes),
            }
        }
    }

    /// Plans one read of [`Log::read`] (without its skip past header-only batches): finds the
    /// segment and the positions through the offset index and a few header reads.
    pub(crate) fn plan_read(
        &self,
        offset: i64,
        end_offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadPlan> {
        if offset < self.log_start_offset() || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset >= end_offset || offset == self.log_end_offset() {
            return Ok(ReadPlan { window: None });
        }
        let segments = &self.segments;
        let first_idx = segments
            .partition_point(|segment| segment.base_offset() <= offset)
            .saturating_sub(1);
        for segment in segments.get(first_idx..).unwrap_or_default() {
            if segment.base_offset() >= end_offset {
                break;
            }
            if let Some(window) = plan_segment(segment, offset, end_offset, max_bytes, min_one)? {
                return Ok(ReadPlan { window });
            }
        }
        Ok(ReadPlan { window: None })
    }

    /// The first batch below `end_offset` (and not wholly below the log start) whose
    /// max_timestamp is >= `timestamp_ms`.
    pub(crate) fn find_timestamp(
        &self,
        timestamp_ms: i64,
        end_offset: i64,
    ) -> Result<Option<TimestampHit>> {
        for segment in &self.segments {
            if segment.base_offset() >= end_offset {
                break;
            }
            if segment
                .max_timestamp()
                .is_none_or(|max| max.timestamp < timestamp_ms)
            {
                continue;
            }
            let mut position = segment.timestamp_scan_start(timestamp_ms);
            while let Some(header) = segment.header_at(position)? {
                if header.base_offset >= end_offset {
                    return Ok(None);
                }
                if header.last_offset() >= self.log_start_offset()
                    && header.max_timestamp >= timestamp_ms
                {
                    return hit(segment, position, &header).map(Some);
                }
                position += header.total_len() as u64;
            }
        }
        Ok(None)
    }

    /// The batch holding the largest max_timestamp among batches below `end_offset` (the first
    /// such batch on ties).
    pub(crate) fn max_timestamp(&self, end_offset: i64) -> Result<Option<TimestampHit>> {
        let mut best: Option<(usize, MaxTimestamp)> = None;
        for (segment_idx, segment) in self.segments.iter().enumerate() {
            if segment.base_offset() >= end_offset {
                break;
            }
            let candidate = if end_offset >= segment.next_offset() {
                segment.max_timestamp()
            } else {
                max_timestamp_below(segment, end_offset)?
            };
            if let Some(candidate) = candidate
                && best.is_none_or(|(_, best)| candidate.timestamp > best.timestamp)
            {
                best = Some((segment_idx, candidate));
            }
        }
        let Some((segment_idx, best)) = best else {
            return Ok(None);
        };
        let Some(segment) = self.segments.get(segment_idx) else {
            return Ok(None);
        };
        match segment.find_batch(best.offset)? {
            Some((position, header)) => hit(segment, position, &header).map(Some),
            None => Ok(None),
        }
    }
}

/// Plans the read from one segment; None when no batch in it reaches `offset`, Some(None)
/// when nothing may be returned from it.
fn plan_segment(
    segment: &Segment,
    offset: i64,
    end_offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<Option<Option<Window>>> {
    let Some((start, first)) = segment.find_batch(offset)? else {
        return Ok(None);
    };
    if first.base_offset >= end_offset {
        return Ok(Some(None));
    }
    let first_len = first.total_len() as u64;
    let budget_bytes = max_bytes as u64;
    let window = if first_len <= budget_bytes {
        let limit = segment.position_limit(end_offset)?;
        budget_bytes.min(limit.saturating_sub(start)).max(first_len)
    } else if min_one {
        first_len
    } else {
        return Ok(Some(None));
    };
    Ok(Some(Some(Window {
        file: segment.file(),
        path: segment.log_path().to_path_buf(),
        position: start,
        len: window.min(segment.size_bytes().saturating_sub(start)),
        end_offset,
    })))
}

/// Length of the prefix of `bytes` made of whole batches with base offset < `end_offset`.
fn whole_batches_len(bytes: &[u8], end_offset: i64) -> usize {
    let mut len = 0;
    while let Some(rest) = bytes.get(len..) {
        let Ok(header) = BatchHeader::parse(rest) else {
            break;
        };
        if header.base_offset >= end_offset || header.total_len() > rest.len() {
            break;
        }
        len += header.total_len();
    }
    len
}

fn max_timestamp_below(segment: &Segment, end_offset: i64) -> Result<Option<MaxTimestamp>> {
    let mut max: Option<MaxTimestamp> = None;
    let mut position = 0;
    while let Some(header) = segment.header_at(position)? {
        if header.base_offset >= end_offset {
            break;
        }
        if max.is_none_or(|max| header.max_timestamp > max.timestamp) {
            max = Some(MaxTimestamp {
                timestamp: header.max_timestamp,
                offset: header.base_offset,
            });
        }
        position += header.total_len() as u64;
    }
    Ok(max)
}

fn hit(segment: &Segment, position: u64, header: &BatchHeader) -> Result<TimestampHit> {
    let batch = segment.read_bytes(position, header.total_len() as u64)?;
    Ok(TimestampHit {
        base_offset: header.base_offset,
        max_timestamp: header.max_timestamp,
        batch: Bytes::from(batch),
    })
}
