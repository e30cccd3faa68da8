//! Sparse offset index (`.index`): big-endian (relative_offset u32, position u32) entries, both
//! strictly increasing. Maps an offset to a file position at or before the batch holding it.

use std::path::Path;

use super::Result;
use super::index_file::IndexFile;

const ENTRY_LEN: usize = 8;

/// One index entry: the batch with base offset `segment base + relative_offset` starts at
/// `position` in the segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

impl OffsetEntry {
    fn encode(self) -> [u8; ENTRY_LEN] {
        let mut bytes = [0u8; ENTRY_LEN];
        let (offset_bytes, position_bytes) = bytes.split_at_mut(4);
        offset_bytes.copy_from_slice(&self.relative_offset.to_be_bytes());
        position_bytes.copy_from_slice(&self.position.to_be_bytes());
        bytes
    }

    fn decode(bytes: [u8; ENTRY_LEN]) -> OffsetEntry {
        let [a, b, c, d, e, f, g, h] = bytes;
        OffsetEntry {
            relative_offset: u32::from_be_bytes([a, b, c, d]),
            position: u32::from_be_bytes([e, f, g, h]),
        }
    }
}

#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile<ENTRY_LEN>,
}

impl OffsetIndex {
    pub(crate) fn create(path: &Path, capacity_bytes: u32) -> Result<OffsetIndex> {
        IndexFile::create(path, capacity_bytes).map(|file| OffsetIndex { file })
    }

    pub(crate) fn open_writable(path: &Path, capacity_bytes: u32) -> Result<OffsetIndex> {
        IndexFile::open_writable(path, capacity_bytes).map(|file| OffsetIndex { file })
    }

    pub(crate) fn open_sealed(path: &Path) -> Result<OffsetIndex> {
        IndexFile::open_sealed(path).map(|file| OffsetIndex { file })
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.file.entry_count()
    }

    pub(crate) fn entry(&self, entry_idx: usize) -> Option<OffsetEntry> {
        self.file.entry(entry_idx).map(OffsetEntry::decode)
    }

    pub(crate) fn last(&self) -> Option<OffsetEntry> {
        self.file.last().map(OffsetEntry::decode)
    }

    /// The last entry whose relative offset is <= `relative_offset`.
    pub(crate) fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let count = self
            .file
            .partition_point(|bytes| OffsetEntry::decode(bytes).relative_offset <= relative_offset);
        count.checked_sub(1).and_then(|idx| self.entry(idx))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.entry_count() >= self.file.capacity_entries()
    }

    /// Appends an entry after the last one; entries stay strictly increasing on both fields.
    pub(crate) fn append(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "offset index {} entries must increase: last {last:?}, new {entry:?}",
                self.file.path().display()
            );
        }
        self.file.push(entry.encode());
    }

    /// Drops every entry pointing at or after `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) {
        let kept = self
            .file
            .partition_point(|bytes| u64::from(OffsetEntry::decode(bytes).position) < position);
        self.file.truncate(kept);
    }

    pub(crate) fn clear(&mut self) {
        self.file.truncate(0);
    }

    /// Whole entries, strictly increasing, every position inside a log of `log_size` bytes.
    pub(crate) fn is_sane(&self, log_size: u64) -> bool {
        if self.file.is_misaligned() {
            return false;
        }
        let mut previous: Option<OffsetEntry> = None;
        for entry_idx in 0..self.entry_count() {
            let Some(entry) = self.entry(entry_idx) else {
                return false;
            };
            let is_increasing = previous.is_none_or(|previous| {
                entry.relative_offset > previous.relative_offset
                    && entry.position > previous.position
            });
            if !is_increasing || u64::from(entry.position) >= log_size {
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

    fn entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    fn index_with(dir: &Path, entries: &[(u32, u32)]) -> OffsetIndex {
        let mut index = OffsetIndex::create(&dir.join("0.index"), 64).expect("create index");
        for &(relative_offset, position) in entries {
            index.append(entry(relative_offset, position));
        }
        index
    }

    #[track_caller]
    fn check_lookup(index: &OffsetIndex, relative_offset: u32, expected: Option<(u32, u32)>) {
        let found = index.lookup(relative_offset);
        assert_eq!(
            found,
            expected.map(|(o, p)| entry(o, p)),
            "lookup({relative_offset})"
        );
    }

    #[test]
    fn lookup_returns_last_entry_at_or_below_target() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let index = index_with(dir.path(), &[(5, 100), (9, 200), (20, 350)]);
        check_lookup(&index, 0, None);
        check_lookup(&index, 4, None);
        check_lookup(&index, 5, Some((5, 100)));
        check_lookup(&index, 8, Some((5, 100)));
        check_lookup(&index, 9, Some((9, 200)));
        check_lookup(&index, 19, Some((9, 200)));
        check_lookup(&index, 20, Some((20, 350)));
        check_lookup(&index, u32::MAX, Some((20, 350)));
    }

    #[test]
    fn sealed_index_reopens_with_same_entries_and_is_full() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let path = dir.path().join("0.index");
        let mut index = index_with(dir.path(), &[(1, 10), (2, 20)]);
        index.seal().expect("seal");
        drop(index);
        assert_eq!(std::fs::metadata(&path).expect("metadata").len(), 16);
        let index = OffsetIndex::open_sealed(&path).expect("open");
        assert_eq!(index.entry_count(), 2);
        assert!(index.is_full());
        assert!(index.is_sane(21));
        assert!(!index.is_sane(20), "position 20 is past a 20-byte log");
        check_lookup(&index, 3, Some((2, 20)));
    }

    #[test]
    fn truncate_to_position_drops_entries_at_or_after_it() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut index = index_with(dir.path(), &[(1, 10), (2, 20), (3, 30)]);
        index.truncate_to_position(20);
        assert_eq!(index.last(), Some(entry(1, 10)));
    }

    #[test]
    fn unsealed_preallocated_zeros_are_not_sane() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let path = dir.path().join("0.index");
        drop(index_with(dir.path(), &[(1, 10)]));
        let index = OffsetIndex::open_sealed(&path).expect("open");
        assert!(
            !index.is_sane(1000),
            "zero entries after (1, 10) are not increasing"
        );
    }
}
