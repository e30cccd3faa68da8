//! Record batch (magic v2) header: parse, CRC-32C check and in-place rewrites of stored fields.
//! Pure functions over bytes that never panic on untrusted input; records are not decoded here.
#![deny(clippy::indexing_slicing)]

use super::{Error, Result};
use crate::limits;

/// Length of the fixed v2 batch header that precedes the records.
pub(crate) const BATCH_HEADER_LEN: usize = 61;
/// Bytes before the part counted by `batch_length`: base_offset (8) + batch_length (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Smallest `batch_length`: a header with no records.
const BATCH_LENGTH_MIN: i64 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64;
/// Largest `batch_length`: a batch must fit in one segment.
const BATCH_LENGTH_MAX: i64 = limits::SEGMENT_BYTES_MAX as i64 - LOG_OVERHEAD as i64;
const MAGIC_V2: i8 = 2;

// Field positions inside the header.
const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Compression codec named by the low three attribute bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

/// Which clock the batch's timestamps come from (attribute bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The parsed fixed header of a v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    pub(crate) batch_length: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: i32,
}

impl BatchHeader {
    /// Parses the first 61 bytes; checks the length, magic 2, a sane `batch_length` and a
    /// non-negative `last_offset_delta`. Does not check the CRC (see [`verify_crc`]).
    pub(crate) fn parse(bytes: &[u8]) -> Result<BatchHeader> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(Error::BatchTooShort {
                len: bytes.len(),
                needed: BATCH_HEADER_LEN,
            });
        }
        let magic = i8::from_be_bytes(field(bytes, MAGIC_AT));
        if magic != MAGIC_V2 {
            return Err(Error::UnsupportedMagic { magic });
        }
        let batch_length = i32::from_be_bytes(field(bytes, BATCH_LENGTH_AT));
        if !(BATCH_LENGTH_MIN..=BATCH_LENGTH_MAX).contains(&i64::from(batch_length)) {
            return Err(Error::InvalidBatchHeader {
                field: "batch_length",
                value: i64::from(batch_length),
            });
        }
        let last_offset_delta = i32::from_be_bytes(field(bytes, LAST_OFFSET_DELTA_AT));
        if last_offset_delta < 0 {
            return Err(Error::InvalidBatchHeader {
                field: "last_offset_delta",
                value: i64::from(last_offset_delta),
            });
        }
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(field(bytes, BASE_OFFSET_AT)),
            batch_length,
            partition_leader_epoch: i32::from_be_bytes(field(bytes, PARTITION_LEADER_EPOCH_AT)),
            magic,
            crc: u32::from_be_bytes(field(bytes, CRC_AT)),
            attributes: i16::from_be_bytes(field(bytes, ATTRIBUTES_AT)),
            last_offset_delta,
            base_timestamp: i64::from_be_bytes(field(bytes, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(field(bytes, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(field(bytes, PRODUCER_ID_AT)),
            producer_epoch: i16::from_be_bytes(field(bytes, PRODUCER_EPOCH_AT)),
            base_sequence: i32::from_be_bytes(field(bytes, BASE_SEQUENCE_AT)),
            record_count: i32::from_be_bytes(field(bytes, RECORD_COUNT_AT)),
        })
    }

    /// Whole batch length on disk: 12 + `batch_length` (parse guarantees it is positive).
    pub(crate) fn total_len(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the batch's last record.
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub(crate) fn compression(&self) -> Compression {
        match self.attributes & COMPRESSION_MASK {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(u8::try_from(other).unwrap_or(u8::MAX)),
        }
    }

    pub(crate) fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT == 0 {
            TimestampType::CreateTime
        } else {
            TimestampType::LogAppendTime
        }
    }

    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub(crate) fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Checks the stored CRC-32C against the one computed over bytes `[21..]`.
pub(crate) fn verify_crc(batch: &[u8]) -> Result<()> {
    let Some(covered) = batch.get(ATTRIBUTES_AT..) else {
        return Err(Error::BatchTooShort {
            len: batch.len(),
            needed: BATCH_HEADER_LEN,
        });
    };
    if batch.len() < BATCH_HEADER_LEN {
        return Err(Error::BatchTooShort {
            len: batch.len(),
            needed: BATCH_HEADER_LEN,
        });
    }
    let stored_crc = u32::from_be_bytes(field(batch, CRC_AT));
    let computed_crc = crc32c::crc32c(covered);
    if stored_crc == computed_crc {
        Ok(())
    } else {
        Err(Error::CrcMismatch {
            stored_crc,
            computed_crc,
        })
    }
}

/// Rewrites the base offset (not covered by the CRC). `batch` must hold a whole header.
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    put(batch, BASE_OFFSET_AT, &base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch (not covered by the CRC). `batch` must hold a header.
pub(crate) fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    put(batch, PARTITION_LEADER_EPOCH_AT, &epoch.to_be_bytes());
}

/// Rewrites where a log stores the batch: its base offset and partition leader epoch (neither
/// covered by the CRC). `batch` must hold a whole header.
pub(crate) fn set_place(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    set_base_offset(batch, base_offset);
    set_partition_leader_epoch(batch, leader_epoch);
}

/// Rewrites the max timestamp (a CreateTime batch's largest record timestamp) and the CRC.
pub(crate) fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    put(batch, MAX_TIMESTAMP_AT, &max_timestamp.to_be_bytes());
    seal_crc(batch);
}

/// Marks the batch LogAppendTime with `max_timestamp = now_ms` and recomputes its CRC.
pub(crate) fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes(field(batch, ATTRIBUTES_AT)) | TIMESTAMP_TYPE_BIT;
    put(batch, ATTRIBUTES_AT, &attributes.to_be_bytes());
    put(batch, MAX_TIMESTAMP_AT, &now_ms.to_be_bytes());
    seal_crc(batch);
}

/// Writes the CRC of everything after it (attributes to the end) into a v2 batch's header.
pub(crate) fn seal_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default());
    put(batch, CRC_AT, &crc.to_be_bytes());
}

/// Reads `N` bytes at `at`; callers check the length first, so a short slice yields zeros.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(source) = bytes.get(at..at + N) {
        out.copy_from_slice(source);
    }
    out
}

/// Writes `value` at `at`; a batch shorter than its header is a caller bug.
fn put(batch: &mut [u8], at: usize, value: &[u8]) {
    let len = batch.len();
    let target = batch.get_mut(at..at + value.len());
    assert!(
        target.is_some(),
        "batch of {len} bytes is too short to rewrite the field at {at}"
    );
    if let Some(target) = target {
        target.copy_from_slice(value);
    }
}
