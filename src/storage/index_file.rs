//! A memory-mapped file of fixed-size entries: append, truncate, binary search, seal (trim to the
//! real size) and unseal. Gives entries no meaning; offset_index and time_index do.

use std::path::{Path, PathBuf};

use super::mmap::MappedFile;
use super::{Result, io_error};

#[derive(Debug)]
pub(crate) struct IndexFile<const N: usize> {
    path: PathBuf,
    file: MappedFile,
    entry_count: usize,
    /// The file length was not a whole number of entries when opened.
    is_misaligned: bool,
}

impl<const N: usize> IndexFile<N> {
    /// Opens or creates a writable index of at least `capacity_bytes`, with no entries.
    pub(crate) fn create(path: &Path, capacity_bytes: u32) -> Result<Self> {
        let mut index = Self::open_writable(path, capacity_bytes)?;
        index.truncate(0);
        index.is_misaligned = false;
        Ok(index)
    }

    /// Opens (or creates) a writable index whose entries are the file's whole-entry prefix.
    pub(crate) fn open_writable(path: &Path, capacity_bytes: u32) -> Result<Self> {
        let (file, len_before) = MappedFile::open_writable(path, u64::from(capacity_bytes))
            .map_err(io_error("map index", path))?;
        Ok(Self::with_len(path, file, len_before))
    }

    /// Opens an existing sealed index read-only; every whole entry of the file counts.
    pub(crate) fn open_sealed(path: &Path) -> Result<Self> {
        let file = MappedFile::open_read_only(path).map_err(io_error("map index", path))?;
        let len = u64::try_from(file.bytes().len()).unwrap_or(u64::MAX);
        Ok(Self::with_len(path, file, len))
    }

    fn with_len(path: &Path, file: MappedFile, len: u64) -> Self {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let entry_count = (len / N).min(file.bytes().len() / N);
        IndexFile {
            path: path.to_path_buf(),
            file,
            entry_count,
            is_misaligned: len % N != 0,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn is_misaligned(&self) -> bool {
        self.is_misaligned
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.entry_count
    }

    /// Entries that fit in the mapped file (the entry count once sealed).
    pub(crate) fn capacity_entries(&self) -> usize {
        if self.file.is_writable() {
            self.file.bytes().len() / N
        } else {
            self.entry_count
        }
    }

    pub(crate) fn entry(&self, entry_idx: usize) -> Option<[u8; N]> {
        if entry_idx >= self.entry_count {
            return None;
        }
        let start = entry_idx * N;
        let bytes = self.file.bytes().get(start..start + N)?;
        <[u8; N]>::try_from(bytes).ok()
    }

    pub(crate) fn last(&self) -> Option<[u8; N]> {
        self.entry_count
            .checked_sub(1)
            .and_then(|idx| self.entry(idx))
    }

    /// Number of leading entries for which `is_before` holds (entries must be sorted by it).
    pub(crate) fn partition_point(&self, is_before: impl Fn([u8; N]) -> bool) -> usize {
        let (mut low, mut high) = (0, self.entry_count);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.entry(mid) {
                Some(entry) if is_before(entry) => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }

    /// Appends an entry; the caller checked there is room and the index is writable.
    pub(crate) fn push(&mut self, entry: [u8; N]) {
        let start = self.entry_count * N;
        let path = &self.path;
        let slot = self
            .file
            .bytes_mut()
            .and_then(|bytes| bytes.get_mut(start..start + N));
        assert!(
            slot.is_some(),
            "index {} has no room for entry {} (writable and not full is the caller's job)",
            path.display(),
            self.entry_count
        );
        if let Some(slot) = slot {
            slot.copy_from_slice(&entry);
            self.entry_count += 1;
        }
    }

    pub(crate) fn truncate(&mut self, entry_count: usize) {
        self.entry_count = self.entry_count.min(entry_count);
    }

    /// Trims the file to its entries, fsyncs it and maps it read-only.
    pub(crate) fn seal(&mut self) -> Result<()> {
        let len = u64::try_from(self.entry_count * N).unwrap_or(u64::MAX);
        self.file
            .seal(len)
            .map_err(io_error("trim index", &self.path))?;
        self.is_misaligned = false;
        Ok(())
    }

    /// Grows the file to at least `capacity_bytes` and maps it writable, keeping the entries.
    pub(crate) fn unseal(&mut self, capacity_bytes: u32) -> Result<()> {
        self.file
            .unseal(u64::from(capacity_bytes))
            .map_err(io_error("grow index", &self.path))
    }

    /// Unmaps and deletes the file.
    pub(crate) fn remove(self) -> Result<()> {
        let IndexFile { path, file, .. } = self;
        drop(file);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error("delete index", &path)(error))
            }
            _ => Ok(()),
        }
    }
}
