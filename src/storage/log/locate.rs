//! Batches of a [`Log`] by location (segment and byte position) rather than by offset: the
//! header scan and the direct read that `replication`'s raft index map is built on. Never writes.

use bytes::Bytes;

use super::Log;
use crate::storage::batch::BatchHeader;
use crate::storage::segment::Segment;
use crate::storage::{Error, Result};

/// Where a stored batch starts: the base offset of its segment and its byte position in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchLocation {
    pub(crate) segment_base_offset: i64,
    pub(crate) position: u64,
}

impl Log {
    /// Calls `visit` with the location and header of every stored batch whose base offset is
    /// >= `from_offset`, oldest first. Reads headers only (61 bytes per batch).
    pub(crate) fn for_each_batch_header(
        &self,
        from_offset: i64,
        mut visit: impl FnMut(BatchLocation, &BatchHeader) -> Result<()>,
    ) -> Result<()> {
        let first_idx = self
            .segments
            .partition_point(|segment| segment.next_offset() <= from_offset);
        for segment in self.segments.get(first_idx..).unwrap_or_default() {
            let mut position = match segment.find_batch(from_offset)? {
                Some((position, _)) => position,
                None => 0,
            };
            while let Some(header) = segment.header_at(position)? {
                if header.base_offset >= from_offset {
                    let location = BatchLocation {
                        segment_base_offset: segment.base_offset(),
                        position,
                    };
                    visit(location, &header)?;
                }
                position += header.total_len() as u64;
            }
        }
        Ok(())
    }

    /// The whole stored batch at `location`, which must be the batch with `base_offset`.
    pub(crate) fn read_batch_at(&self, location: BatchLocation, base_offset: i64) -> Result<Bytes> {
        let segment = self.segment_at(location.segment_base_offset)?;
        let corrupt = || Error::CorruptSegment {
            path: segment.log_path().to_path_buf(),
            position: location.position,
        };
        let header = segment.header_at(location.position)?.ok_or_else(corrupt)?;
        if header.base_offset != base_offset {
            return Err(corrupt());
        }
        let bytes = segment.read_bytes(location.position, header.total_len() as u64)?;
        Ok(Bytes::from(bytes))
    }

    /// The header of the stored batch that starts at `base_offset`, if one does.
    pub(crate) fn batch_header_at(&self, base_offset: i64) -> Result<Option<BatchHeader>> {
        let idx = self
            .segments
            .partition_point(|segment| segment.next_offset() <= base_offset);
        let Some(segment) = self.segments.get(idx) else {
            return Ok(None);
        };
        Ok(segment
            .find_batch(base_offset)?
            .map(|(_, header)| header)
            .filter(|header| header.base_offset == base_offset))
    }

    fn segment_at(&self, base_offset: i64) -> Result<&Segment> {
        let idx = self
            .segments
            .binary_search_by_key(&base_offset, Segment::base_offset)
            .map_err(|_| self.out_of_range(base_offset))?;
        self.segments
            .get(idx)
            .ok_or_else(|| self.out_of_range(base_offset))
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::LogSettings;
    use crate::storage::log::Log;
    use crate::storage::test_batches::build;

    fn batch(record_count: i32, timestamp_ms: i64) -> Vec<u8> {
        build(record_count, timestamp_ms, 20)
    }

    fn small_segments() -> LogSettings {
        LogSettings {
            segment_bytes_max: 400,
            ..LogSettings::default()
        }
    }

    #[test]
    fn every_appended_batch_is_found_at_its_location_across_segments() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = Log::open(dir.path(), small_segments(), 0).expect("open");
        let mut appended = Vec::new();
        for i in 0..12 {
            let mut bytes = batch(1 + i % 3, 1_000);
            let at = log.append(&mut bytes, 4, 1_000).expect("append");
            appended.push((at, bytes));
        }
        assert!(log.segment_count() > 2, "the test needs several segments");
        let mut scanned = Vec::new();
        log.for_each_batch_header(0, |location, header| {
            scanned.push((location, header.base_offset, header.partition_leader_epoch));
            Ok(())
        })
        .expect("scan");
        assert_eq!(scanned.len(), appended.len());
        for ((location, base_offset, epoch), (at, bytes)) in scanned.iter().zip(&appended) {
            assert_eq!(
                (*location, *base_offset, *epoch),
                (at.location, at.base_offset, 4)
            );
            let read = log.read_batch_at(*location, *base_offset).expect("read");
            assert_eq!(&read[..], &bytes[..]);
        }
        let from = appended[5].0.base_offset;
        let mut later = Vec::new();
        log.for_each_batch_header(from, |_, header| {
            later.push(header.base_offset);
            Ok(())
        })
        .expect("scan");
        let expected: Vec<i64> = appended[5..].iter().map(|(at, _)| at.base_offset).collect();
        assert_eq!(later, expected);
        for (at, _) in &appended {
            let header = log.batch_header_at(at.base_offset).expect("header");
            assert_eq!(header.map(|h| h.base_offset), Some(at.base_offset));
        }
        // Inside a batch of several records, and past the end: no batch starts there.
        let several = appended
            .iter()
            .find(|(at, _)| at.last_offset > at.base_offset);
        let inside = several.expect("a batch of several records").0.base_offset + 1;
        assert_eq!(log.batch_header_at(inside).expect("inside"), None);
        assert_eq!(
            log.batch_header_at(log.log_end_offset()).expect("end"),
            None
        );
    }

    #[test]
    fn a_location_that_is_not_the_named_batch_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = Log::open(dir.path(), LogSettings::default(), 0).expect("open");
        let first = log.append(&mut batch(2, 1), 0, 1).expect("append");
        let second = log.append(&mut batch(2, 1), 0, 1).expect("append");
        assert!(
            log.read_batch_at(first.location, second.base_offset)
                .is_err()
        );
        let mut wrong = second.location;
        wrong.position += 1;
        assert!(log.read_batch_at(wrong, second.base_offset).is_err());
        wrong.segment_base_offset = 99;
        assert!(log.read_batch_at(wrong, second.base_offset).is_err());
    }
}
