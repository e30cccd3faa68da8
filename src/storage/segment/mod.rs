//! One segment: a `.log` file of whole batches named by its 20-digit base offset, plus its offset
//! and time indexes. Appends, scans, reads and truncates itself; never looks at other segments.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BATCH_HEADER_LEN, BatchHeader};
use super::fs::{DataFile, FileSystem, Fs, FsFile};
use super::offset_index::{OffsetEntry, OffsetIndex};
use super::settings::LogSettings;
use super::time_index::{TimeEntry, TimeIndex};
use super::{Error, Result, io_error};

mod direct;
mod scan;

const LOG_SUFFIX: &str = ".log";

/// The largest max_timestamp of some batches and the base offset of the first batch holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MaxTimestamp {
    pub(crate) timestamp: i64,
    pub(crate) offset: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<FsFile>,
    size_bytes: u64,
    /// Offset after the segment's last batch (`base_offset` when empty).
    next_offset: i64,
    max_timestamp: Option<MaxTimestamp>,
    /// When the segment's age starts counting for `segment_ms_max`.
    rolling_timestamp_ms: Option<i64>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index_entry: u64,
    is_sealed: bool,
    /// Opens the direct-I/O handle of [`Write::Direct`] appends.
    fs: Fs,
    direct: DirectHandle,
}

/// How an append reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// Through the page cache: the leader's and a single node's appends, read back by fetches.
    Cached,
    /// Whole blocks past the page cache (see `direct`): a raft follower storing its leader's
    /// batches, which nobody reads from this replica while it follows.
    Direct,
}

/// The active segment's `O_DIRECT` handle, opened by its first direct append.
#[derive(Debug)]
enum DirectHandle {
    Unopened,
    Open(FsFile),
    /// The file system has no direct I/O: direct appends go through the page cache.
    Unavailable,
}

/// The 20-digit zero-padded file stem of a segment.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// The base offset named by a segment file name such as `00000000000000000042.log`.
pub(crate) fn parse_log_file_name(file_name: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(LOG_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    let stem = file_stem(base_offset);
    [
        dir.join(format!("{stem}{LOG_SUFFIX}")),
        dir.join(format!("{stem}.index")),
        dir.join(format!("{stem}.timeindex")),
    ]
}

impl Segment {
    /// Creates a new empty, writable segment. The caller fsyncs the directory.
    pub(crate) fn create(
        fs: &Fs,
        dir: &Path,
        base_offset: i64,
        settings: &LogSettings,
    ) -> Result<Segment> {
        let [log_path, index_path, time_index_path] = paths(dir, base_offset);
        let file = fs
            .create_new(&log_path)
            .map_err(io_error("create segment", &log_path))?;
        Ok(Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size_bytes: 0,
            next_offset: base_offset,
            max_timestamp: None,
            rolling_timestamp_ms: None,
            offset_index: OffsetIndex::create(&index_path, settings.index_file_bytes)?,
            time_index: TimeIndex::create(&time_index_path, settings.index_file_bytes)?,
            bytes_since_index_entry: 0,
            is_sealed: false,
            fs: fs.clone(),
            direct: DirectHandle::Unopened,
        })
    }

    /// Opens an existing segment's files without scanning them; sealed segments map their
    /// indexes read-only. Returns whether both index files existed and look sane; the caller
    /// then runs [`Segment::scan_tail`] or [`Segment::rebuild`].
    pub(crate) fn open(
        fs: &Fs,
        dir: &Path,
        base_offset: i64,
        settings: &LogSettings,
        is_sealed: bool,
    ) -> Result<(Segment, bool)> {
        let [log_path, index_path, time_index_path] = paths(dir, base_offset);
        let file = fs
            .open(&log_path)
            .map_err(io_error("open segment", &log_path))?;
        let size_bytes = file
            .len_bytes()
            .map_err(io_error("stat segment", &log_path))?;
        let has_indexes = index_path.exists() && time_index_path.exists();
        let (offset_index, time_index) = if is_sealed && has_indexes {
            (
                OffsetIndex::open_sealed(&index_path)?,
                TimeIndex::open_sealed(&time_index_path)?,
            )
        } else {
            (
                OffsetIndex::open_writable(&index_path, settings.index_file_bytes)?,
                TimeIndex::open_writable(&time_index_path, settings.index_file_bytes)?,
            )
        };
        let are_indexes_sane =
            has_indexes && offset_index.is_sane(size_bytes) && time_index.is_sane();
        let segment = Segment {
            base_offset,
            log_path,
            file: Arc::new(file),
            size_bytes,
            next_offset: base_offset,
            max_timestamp: None,
            rolling_timestamp_ms: None,
            offset_index,
            time_index,
            bytes_since_index_entry: 0,
            is_sealed: is_sealed && has_indexes,
            fs: fs.clone(),
            direct: DirectHandle::Unopened,
        };
        Ok((segment, are_indexes_sane))
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn max_timestamp(&self) -> Option<MaxTimestamp> {
        self.max_timestamp
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub(crate) fn file(&self) -> Arc<FsFile> {
        Arc::clone(&self.file)
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.is_sealed
    }

    /// Whether `batch_len` bytes ending at `last_offset` must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        batch_len: u64,
        last_offset: i64,
        now_ms: i64,
        settings: &LogSettings,
    ) -> bool {
        if self.size_bytes == 0 {
            return false;
        }
        let is_too_old = settings.segment_ms_max.is_some_and(|segment_ms_max| {
            self.rolling_timestamp_ms.is_some_and(|rolling_ms| {
                i128::from(now_ms) - i128::from(rolling_ms) > i128::from(segment_ms_max)
            })
        });
        self.size_bytes + batch_len > settings.segment_bytes_max
            || is_too_old
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > i64::from(u32::MAX)
    }

    /// Writes one batch (whose offsets the log already assigned) at the end. No fsync.
    pub(crate) fn append(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
        settings: &LogSettings,
        write: Write,
    ) -> Result<()> {
        assert!(
            !self.is_sealed,
            "append to sealed segment {}",
            self.log_path.display()
        );
        assert_eq!(
            header.base_offset,
            self.next_offset,
            "batch base offset must continue segment {}",
            self.log_path.display()
        );
        let position = self.size_bytes;
        match write {
            Write::Cached => self.file.write_all_at(batch, position),
            Write::Direct => self.write_direct(batch, position),
        }
        .map_err(io_error("write segment", &self.log_path))?;
        if position == 0 {
            self.rolling_timestamp_ms = Some(now_ms);
        }
        self.size_bytes += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        self.track_batch(position, header, settings.index_interval_bytes);
        Ok(())
    }

    /// Writes `batch` at `position` mostly past the page cache; through it where the file
    /// system has no direct I/O or the handle cannot be opened (out of file descriptors, say):
    /// found out once per segment, by the open or the first write. Only the write's own
    /// failure fails the append.
    fn write_direct(&mut self, batch: &[u8], position: u64) -> io::Result<()> {
        if matches!(self.direct, DirectHandle::Unopened) {
            self.direct = match self.fs.open_direct(&self.log_path) {
                Ok(file) => DirectHandle::Open(file),
                Err(error) => {
                    self.no_direct_io(&error);
                    DirectHandle::Unavailable
                }
            };
        }
        let DirectHandle::Open(direct) = &self.direct else {
            return self.file.write_all_at(batch, position);
        };
        match direct::append(self.file.as_ref(), direct, batch, position) {
            // Refused (alignment): what went out direct is written again, all through the cache.
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => {
                self.no_direct_io(&error);
                self.direct = DirectHandle::Unavailable;
                self.file.write_all_at(batch, position)
            }
            written => written,
        }
    }

    fn no_direct_io(&self, error: &io::Error) {
        let path = self.log_path.display();
        if error.kind() == io::ErrorKind::InvalidInput {
            tracing::debug!(%path, %error, "no direct I/O: appends go through the page cache");
        } else {
            tracing::warn!(%path, %error, "no direct I/O handle: appends use the page cache");
        }
    }

    /// Updates offsets, max timestamp and sparse index entries for a batch at `position`.
    fn track_batch(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u32) {
        let is_new_max = self
            .max_timestamp
            .is_none_or(|max| header.max_timestamp > max.timestamp);
        if is_new_max {
            self.max_timestamp = Some(MaxTimestamp {
                timestamp: header.max_timestamp,
                offset: header.base_offset,
            });
        }
        if self.bytes_since_index_entry > u64::from(index_interval_bytes) {
            let relative_offset = self.relative_offset(header.base_offset);
            if let (Some(relative_offset), Ok(position)) =
                (relative_offset, u32::try_from(position))
                && !self.offset_index.is_full()
            {
                self.offset_index.append(OffsetEntry {
                    relative_offset,
                    position,
                });
            }
            self.append_time_entry();
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.total_len() as u64;
        self.next_offset = header.last_offset() + 1;
    }

    fn append_time_entry(&mut self) {
        if let Some(max) = self.max_timestamp
            && let Some(relative_offset) = self.relative_offset(max.offset)
        {
            self.time_index.maybe_append(TimeEntry {
                timestamp: max.timestamp,
                relative_offset,
            });
        }
    }

    fn relative_offset(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset - self.base_offset).ok()
    }

    /// The header of a whole, sane batch at `position`, or None (end, torn or garbage).
    fn probe_header(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_LEN as u64 > self.size_bytes {
            return Ok(None);
        }
        let mut bytes = [0u8; BATCH_HEADER_LEN];
        self.file
            .read_exact_at(&mut bytes, position)
            .map_err(io_error("read segment", &self.log_path))?;
        Ok(BatchHeader::parse(&bytes)
            .ok()
            .filter(|header| position + header.total_len() as u64 <= self.size_bytes))
    }

    /// The header at `position` of an already validated segment; None only at the end.
    pub(crate) fn header_at(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position >= self.size_bytes {
            return Ok(None);
        }
        match self.probe_header(position)? {
            Some(header) => Ok(Some(header)),
            None => Err(Error::CorruptSegment {
                path: self.log_path.clone(),
                position,
            }),
        }
    }

    /// Reads `len` bytes at `position`; the caller bounds `len` by the segment size.
    pub(crate) fn read_bytes(&self, position: u64, len: u64) -> Result<Vec<u8>> {
        let len = usize::try_from(len.min(self.size_bytes.saturating_sub(position)))
            .unwrap_or(usize::MAX);
        let mut bytes = vec![0u8; len];
        self.file
            .read_exact_at(&mut bytes, position)
            .map_err(io_error("read segment", &self.log_path))?;
        Ok(bytes)
    }

    /// Position and header of the first batch whose last offset is >= `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        let relative_offset = u32::try_from((offset - self.base_offset).max(0)).unwrap_or(u32::MAX);
        let start = self.offset_index.lookup(relative_offset);
        let mut position = start.map_or(0, |entry| u64::from(entry.position));
        while let Some(header) = self.header_at(position)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_len() as u64;
        }
        Ok(None)
    }

    /// Position where data visible below `end_offset` ends.
    pub(crate) fn position_limit(&self, end_offset: i64) -> Result<u64> {
        if end_offset >= self.next_offset {
            return Ok(self.size_bytes);
        }
        Ok(match self.find_batch(end_offset)? {
            Some((position, header)) if header.base_offset >= end_offset => position,
            Some((position, header)) => position + header.total_len() as u64,
            None => self.size_bytes,
        })
    }

    /// Sets when this (reopened, last) segment's age starts: its first batch's max timestamp,
    /// capped at `now_ms`, or `now_ms` when the batch carries none.
    pub(crate) fn init_rolling_timestamp(&mut self, now_ms: i64) -> Result<()> {
        self.rolling_timestamp_ms = match self.header_at(0)? {
            Some(header) if header.max_timestamp >= 0 => Some(header.max_timestamp.min(now_ms)),
            Some(_) => Some(now_ms),
            None => None,
        };
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .fdatasync()
            .map_err(io_error("fsync segment", &self.log_path))
    }

    /// Records the final time-index entry and trims both indexes to their real size (fsynced).
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.append_time_entry();
        self.offset_index.seal()?;
        self.time_index.seal()?;
        self.is_sealed = true;
        self.direct = DirectHandle::Unopened;
        Ok(())
    }

    /// Makes a sealed segment writable again (it became the last one).
    pub(crate) fn unseal(&mut self, settings: &LogSettings) -> Result<()> {
        self.offset_index.unseal(settings.index_file_bytes)?;
        self.time_index.unseal(settings.index_file_bytes)?;
        self.is_sealed = false;
        Ok(())
    }

    /// Deletes the segment's files, the log first so a crash leaves only orphan indexes.
    pub(crate) fn remove(self) -> Result<()> {
        let Segment {
            log_path,
            file,
            offset_index,
            time_index,
            ..
        } = self;
        drop(file);
        std::fs::remove_file(&log_path).map_err(io_error("delete segment", &log_path))?;
        offset_index.remove()?;
        time_index.remove()
    }

    /// First time-index hint for a search of `timestamp_ms`: the position to start scanning.
    pub(crate) fn timestamp_scan_start(&self, timestamp_ms: i64) -> u64 {
        self.time_index
            .lookup_before(timestamp_ms)
            .and_then(|entry| self.offset_index.lookup(entry.relative_offset))
            .map_or(0, |entry| u64::from(entry.position))
    }
}
