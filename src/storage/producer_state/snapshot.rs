//! The producer-state snapshot file format (Kafka's `.snapshot`, our own layout): written at a
//! segment roll and at close, named by the offset it holds the state at, read back on open and
//! after a truncation. Pure encode/decode; a short, oversized or CRC-failing file is an error.
#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, VecDeque};

use super::ProducerState;
use super::entry::{BATCHES_RETAINED, BatchMeta, ProducerEntry};

/// Suffix of snapshot files: `<20-digit offset>.snapshot`.
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Layout version written in every snapshot.
const VERSION: u16 = 1;
/// version u16, crc u32, end offset i64, producer count u32.
const HEADER_LEN: usize = 2 + 4 + 8 + 4;
/// Everything before the CRC-covered part.
const CRC_COVERS_FROM: usize = 6;
/// producer id i64, epoch i16, coordinator epoch i32, last timestamp i64, txn first offset i64,
/// batch count u8.
const PRODUCER_LEN: usize = 8 + 2 + 4 + 8 + 8 + 1;
/// first seq i32, last seq i32, first offset i64, last offset i64, timestamp i64.
const BATCH_LEN: usize = 4 + 4 + 8 + 8 + 8;

/// Why a snapshot cannot be used (the caller then replays from an older one or the log start).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error("snapshot is truncated")]
    Truncated,
    #[error("snapshot version {0} is not supported")]
    Version(u16),
    #[error("snapshot crc mismatch")]
    Crc,
    #[error("snapshot field {0} is invalid")]
    Invalid(&'static str),
    #[error("snapshot holds the state at {found}, its name says {expected}")]
    OffsetMismatch { found: i64, expected: i64 },
}

/// The file name of the snapshot of the state at `offset`.
pub(crate) fn file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The offset named by a snapshot file name.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Encodes the whole state (open transactions included, completed ones not: a snapshot is
/// taken only where everything before it is durable).
pub(crate) fn encode(state: &ProducerState) -> Vec<u8> {
    let batch_count: usize = state.producers.values().map(|e| e.batches.len()).sum();
    let mut out = Vec::with_capacity(
        HEADER_LEN + state.producers.len() * PRODUCER_LEN + batch_count * BATCH_LEN,
    );
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&state.end_offset.to_be_bytes());
    let count = u32::try_from(state.producers.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (producer_id, entry) in state.producers.iter().take(count as usize) {
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&entry.epoch.to_be_bytes());
        out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
        out.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        let batches = entry.batches.len().min(BATCHES_RETAINED);
        out.push(u8::try_from(batches).unwrap_or(0));
        for batch in entry.batches.iter().take(batches) {
            out.extend_from_slice(&batch.first_seq.to_be_bytes());
            out.extend_from_slice(&batch.last_seq.to_be_bytes());
            out.extend_from_slice(&batch.first_offset.to_be_bytes());
            out.extend_from_slice(&batch.last_offset.to_be_bytes());
            out.extend_from_slice(&batch.timestamp.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(out.get(CRC_COVERS_FROM..).unwrap_or_default());
    if let Some(field) = out.get_mut(2..6) {
        field.copy_from_slice(&crc.to_be_bytes());
    }
    out
}

/// Decodes a snapshot that must hold the state at `expected_offset`.
pub(crate) fn decode(bytes: &[u8], expected_offset: i64) -> Result<ProducerState, SnapshotError> {
    let mut reader = Reader { bytes, at: 0 };
    let version = u16::from_be_bytes(reader.take()?);
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let stored_crc = u32::from_be_bytes(reader.take()?);
    if crc32c::crc32c(bytes.get(CRC_COVERS_FROM..).unwrap_or_default()) != stored_crc {
        return Err(SnapshotError::Crc);
    }
    let end_offset = i64::from_be_bytes(reader.take()?);
    if end_offset != expected_offset {
        return Err(SnapshotError::OffsetMismatch {
            found: end_offset,
            expected: expected_offset,
        });
    }
    let count = u32::from_be_bytes(reader.take()?) as usize;
    // Every producer takes at least PRODUCER_LEN bytes: bounds the count by the file size.
    if count > reader.remaining() / PRODUCER_LEN {
        return Err(SnapshotError::Invalid("producer count"));
    }
    let mut producers = BTreeMap::new();
    for _ in 0..count {
        let producer_id = i64::from_be_bytes(reader.take()?);
        let epoch = i16::from_be_bytes(reader.take()?);
        let coordinator_epoch = i32::from_be_bytes(reader.take()?);
        let last_timestamp = i64::from_be_bytes(reader.take()?);
        let txn_first_offset = i64::from_be_bytes(reader.take()?);
        let [batch_count] = reader.take::<1>()?;
        if usize::from(batch_count) > BATCHES_RETAINED {
            return Err(SnapshotError::Invalid("batch count"));
        }
        let mut batches = VecDeque::with_capacity(usize::from(batch_count));
        for _ in 0..batch_count {
            batches.push_back(BatchMeta {
                first_seq: i32::from_be_bytes(reader.take()?),
                last_seq: i32::from_be_bytes(reader.take()?),
                first_offset: i64::from_be_bytes(reader.take()?),
                last_offset: i64::from_be_bytes(reader.take()?),
                timestamp: i64::from_be_bytes(reader.take()?),
            });
        }
        if producer_id < 0 || (txn_first_offset >= end_offset && txn_first_offset >= 0) {
            return Err(SnapshotError::Invalid("producer"));
        }
        let entry = ProducerEntry {
            epoch,
            batches,
            coordinator_epoch,
            last_timestamp,
            current_txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
        };
        if producers.insert(producer_id, entry).is_some() {
            return Err(SnapshotError::Invalid("duplicate producer id"));
        }
    }
    if reader.remaining() != 0 {
        return Err(SnapshotError::Invalid("trailing bytes"));
    }
    Ok(ProducerState::from_parts(end_offset, producers))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let field = self
            .bytes
            .get(self.at..self.at + N)
            .and_then(|slice| <[u8; N]>::try_from(slice).ok())
            .ok_or(SnapshotError::Truncated)?;
        self.at += N;
        Ok(field)
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }
}
