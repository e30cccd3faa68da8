//! Sparse time index (`.timeindex`): big-endian (timestamp i64, relative_offset u32) entries,
//! appended only when the segment's max timestamp grows, so both fields strictly increase.

use std::path::Path;

use super::Result;
use super::index_file::IndexFile;

const ENTRY_LEN: usize = 12;

/// One entry: `timestamp` was the largest max_timestamp of the segment so far, held by the batch
/// with base offset `segment base + relative_offset`; every earlier batch has a smaller or equal
/// max_timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl TimeEntry {
    fn encode(self) -> [u8; ENTRY_LEN] {
        let mut bytes = [0u8; ENTRY_LEN];
        let (timestamp_bytes, offset_bytes) = bytes.split_at_mut(8);
        timestamp_bytes.copy_from_slice(&self.timestamp.to_be_bytes());
        offset_bytes.copy_from_slice(&self.relative_offset.to_be_bytes());
        bytes
    }

    fn decode(bytes: [u8; ENTRY_LEN]) -> TimeEntry {
        let [a, b, c, d, e, f, g, h, i, j, k, l] = bytes;
        TimeEntry {
            timestamp: i64::from_be_bytes([a, b, c, d, e, f, g, h]),
            relative_offset: u32::from_be_bytes([i, j, k, l]),
        }
    }
}

#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile<ENTRY_LEN>,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, capacity_bytes: u32) -> Result<TimeIndex> {
        IndexFile::create(path, capacity_bytes).map(|file| TimeIndex { file })
    }

    pub(crate) fn open_writable(path: &Path, capacity_bytes: u32) -> Result<TimeIndex> {
        IndexFile::open_writable(path, capacity_bytes).map(|file| TimeIndex { file })
    }

    pub(crate) fn open_sealed(path: &Path) -> Result<TimeIndex> {
        IndexFile::open_sealed(path).map(|file| TimeIndex { file })
    }

    pub(crate) fn entry(&self, entry_idx: usize) -> Option<TimeEntry> {
        self.file.entry(entry_idx).map(TimeEntry::decode)
    }

    pub(crate) fn last(&self) -> Option<TimeEntry> {
        self.file.last().map(TimeEntry::decode)
    }

    /// The last entry whose timestamp is < `timestamp_ms`: the batch holding the target can only
    /// come after that entry's batch.
    pub(crate) fn lookup_before(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let count = self
            .file
            .partition_point(|bytes| TimeEntry::decode(bytes).timestamp < timestamp_ms);
        count.checked_sub(1).and_then(|idx| self.entry(idx))
    }

    /// Full while one slot is left: that one is kept for the entry written when sealing.
    pub(crate) fn is_full(&self) -> bool {
        self.file.entry_count() + 1 >= self.file.capacity_entries()
    }

    /// Appends when `entry.timestamp` is above the last entry's and a slot is free.
    pub(crate) fn maybe_append(&mut self, entry: TimeEntry) {
        let has_room = self.file.entry_count() < self.file.capacity_entries();
        match self.last() {
            Some(last) if entry.timestamp <= last.timestamp => {}
            Some(last) => {
                assert!(
                    entry.relative_offset >= last.relative_offset,
                    "time index {} offsets must not decrease: last {last:?}, new {entry:?}",
                    self.file.path().display()
                );
                if has_room {
                    self.file.push(entry.encode());
                }
            }
            None if has_room => self.file.push(entry.encode()),
            None => {}
        }
    }

    /// Drops every entry for a batch at or after `relative_offset`.
    pub(crate) fn truncate_from(&mut self, relative_offset: u32) {
        let mut kept = self.file.entry_count();
        while let Some(entry) = kept.checked_sub(1).and_then(|idx| self.entry(idx)) {
            if entry.relative_offset < relative_offset {
                break;
            }
            kept -= 1;
        }
        self.file.truncate(kept);
    }

    pub(crate) fn clear(&mut self) {
        self.file.truncate(0);
    }

    /// Whole entries with strictly increasing timestamps and non-decreasing offsets.
    pub(crate) fn is_sane(&self) -> bool {
        if self.file.is_misaligned() {
            return false;
        }
        let mut previous: Option<TimeEntry> = None;
        for entry_idx in 0..self.file.entry_count() {
            let Some(entry) = self.entry(entry_idx) else {
                return false;
            };
            let is_increasing = previous.is_none_or(|previous| {
                entry.timestamp > previous.timestamp
                    && entry.relative_offset >= previous.relative_offset
            });
            if !is_increasing {
                return false;
            }
            previous = Some(entry);
        }
        true
    }

    pub(crate) fn seal(&mut self) -> Result<()> {
        self.file.seal()
    }

    pub(crate) fn unseal(&mut self, capacity_bytes: u32) -> Result<()> {
        self.file.unseal(capacity_bytes)
    }

    pub(crate) fn remove(self) -> Result<()> {
        self.file.remove()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp: i64, relative_offset: u32) -> TimeEntry {
        TimeEntry {
            timestamp,
            relative_offset,
        }
    }

    #[test]
    fn lookup_before_returns_last_entry_strictly_below_target() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut index = TimeIndex::create(&dir.path().join("0.timeindex"), 120).expect("create");
        index.maybe_append(entry(100, 0));
        index.maybe_append(entry(90, 1)); // not a new max: skipped
        index.maybe_append(entry(200, 4));
        index.maybe_append(entry(300, 9));
        assert_eq!(index.lookup_before(100), None);
        assert_eq!(index.lookup_before(101), Some(entry(100, 0)));
        assert_eq!(index.lookup_before(300), Some(entry(200, 4)));
        assert_eq!(index.lookup_before(i64::MAX), Some(entry(300, 9)));
        index.truncate_from(4);
        assert_eq!(index.last(), Some(entry(100, 0)));
        assert!(index.is_sane());
    }
}
