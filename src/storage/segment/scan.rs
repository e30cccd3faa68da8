//! Whole-file and tail scans of a [`Segment`]: rebuilding its indexes, recomputing its end and
//! max timestamp, and cutting it. Used by recovery and truncation, never by the read path.

use super::{MaxTimestamp, Segment};
use crate::storage::batch::verify_crc;
use crate::storage::fs::DataFile;
use crate::storage::settings::LogSettings;
use crate::storage::{Error, Result, io_error};

impl Segment {
    /// Whether every index entry names an offset below the scanned end (a sane-looking index
    /// from disk may still point past the data).
    pub(crate) fn are_indexes_within_data(&self) -> bool {
        let span = self.next_offset - self.base_offset;
        let offset_entry_ok = self
            .offset_index
            .last()
            .is_none_or(|entry| i64::from(entry.relative_offset) < span);
        let time_entry_ok = self
            .time_index
            .last()
            .is_none_or(|entry| i64::from(entry.relative_offset) < span);
        offset_entry_ok && time_entry_ok
    }

    /// Scans from the last time-index entry to the end, recomputing `next_offset`, the max
    /// timestamp and the index interval counter. Returns where the last whole sane batch ends.
    pub(crate) fn scan_tail(&mut self) -> Result<u64> {
        let last_time_entry = self.time_index.last();
        self.max_timestamp = last_time_entry.map(|entry| MaxTimestamp {
            timestamp: entry.timestamp,
            offset: self.base_offset + i64::from(entry.relative_offset),
        });
        let start =
            last_time_entry.and_then(|entry| self.offset_index.lookup(entry.relative_offset));
        let mut position = start.map_or(0, |entry| u64::from(entry.position));
        let mut expected_offset =
            self.base_offset + start.map_or(0, |entry| i64::from(entry.relative_offset));
        while let Some(header) = self.probe_header(position)? {
            if header.base_offset != expected_offset {
                break;
            }
            if self
                .max_timestamp
                .is_none_or(|max| header.max_timestamp > max.timestamp)
            {
                self.max_timestamp = Some(MaxTimestamp {
                    timestamp: header.max_timestamp,
                    offset: header.base_offset,
                });
            }
            position += header.total_len() as u64;
            expected_offset = header.last_offset() + 1;
        }
        self.next_offset = expected_offset;
        let last_entry_position = self
            .offset_index
            .last()
            .map_or(0, |e| u64::from(e.position));
        self.bytes_since_index_entry = position.saturating_sub(last_entry_position);
        Ok(position)
    }

    /// Rebuilds both indexes from a scan of the whole file, checking that offsets continue from
    /// the base and, with `verify_crc`, every CRC. Stops at the first bad batch and returns
    /// where the valid prefix ends (the file is not cut here).
    pub(crate) fn rebuild(
        &mut self,
        verify_crc_enabled: bool,
        settings: &LogSettings,
    ) -> Result<u64> {
        let was_sealed = self.is_sealed;
        if was_sealed {
            self.unseal(settings)?;
        }
        self.offset_index.clear();
        self.time_index.clear();
        self.max_timestamp = None;
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base_offset;
        let mut position = 0;
        while let Some(header) = self.probe_header(position)? {
            if header.base_offset != self.next_offset {
                break;
            }
            if verify_crc_enabled {
                let batch = self.read_bytes(position, header.total_len() as u64)?;
                if verify_crc(&batch).is_err() {
                    break;
                }
            }
            self.track_batch(position, &header, settings.index_interval_bytes);
            position += header.total_len() as u64;
        }
        if was_sealed {
            self.seal()?;
        }
        Ok(position)
    }

    /// Cuts the file to `position` (a batch boundary) and drops index entries past it.
    pub(crate) fn truncate_file(&mut self, position: u64) -> Result<()> {
        self.file
            .set_len_bytes(position)
            .map_err(io_error("truncate segment", &self.log_path))?;
        self.size_bytes = position;
        self.offset_index.truncate_to_position(position);
        Ok(())
    }

    /// Removes every batch whose base offset is >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let Some((position, header)) = self.find_batch(offset)? else {
            return Ok(());
        };
        let (cut_position, cut_offset) = if header.base_offset >= offset {
            (position, header.base_offset)
        } else {
            (
                position + header.total_len() as u64,
                header.last_offset() + 1,
            )
        };
        if cut_position >= self.size_bytes {
            return Ok(());
        }
        self.truncate_file(cut_position)?;
        self.time_index
            .truncate_from(self.relative_offset(cut_offset).unwrap_or(u32::MAX));
        let end = self.scan_tail()?;
        if end != self.size_bytes {
            return Err(Error::CorruptSegment {
                path: self.log_path.clone(),
                position: end,
            });
        }
        self.sync()
    }
}
