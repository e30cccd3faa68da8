//! The aborted-transaction index (Kafka's `.txnindex`): one 34-byte entry per aborted
//! transaction, kept in memory for the whole log in marker order and written per segment
//! (`<base offset>.txnindex`, the segment holding the ABORT marker) when the segment is sealed.
//! Derived from the log: a missing or corrupt file is rebuilt by replaying the segment.
#![deny(clippy::indexing_slicing)]

use std::path::Path;

use super::{Result, io_error, sync_dir, write_atomically};

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Entry layout version (Kafka's AbortedTxn.CURRENT_VERSION).
const VERSION: i16 = 0;
/// version i16, producer id i64, first offset i64, last offset i64, last stable offset i64.
pub(crate) const ENTRY_LEN: usize = 2 + 8 + 8 + 8 + 8;

/// One aborted transaction: what read_committed fetches report and skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// Offset of the ABORT marker.
    pub(crate) last_offset: i64,
    /// The last stable offset right after this transaction was aborted.
    pub(crate) last_stable_offset: i64,
}

/// The file name of the index of the segment based at `base_offset`.
pub(crate) fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}{TXN_INDEX_SUFFIX}")
}

/// The segment base offset named by an index file name.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(TXN_INDEX_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for entry in entries {
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&entry.producer_id.to_be_bytes());
        out.extend_from_slice(&entry.first_offset.to_be_bytes());
        out.extend_from_slice(&entry.last_offset.to_be_bytes());
        out.extend_from_slice(&entry.last_stable_offset.to_be_bytes());
    }
    out
}

/// Decodes a whole file; None when its length or any entry is not sane.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return None;
    }
    let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for chunk in bytes.chunks_exact(ENTRY_LEN) {
        let field = |at: usize| -> i64 {
            chunk
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(-1, i64::from_be_bytes)
        };
        let version = chunk
            .get(..2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(i16::from_be_bytes);
        let entry = AbortedTxn {
            producer_id: field(2),
            first_offset: field(10),
            last_offset: field(18),
            last_stable_offset: field(26),
        };
        let is_sane = version == Some(VERSION)
            && entry.producer_id >= 0
            && entry.first_offset >= 0
            && entry.first_offset <= entry.last_offset
            && entries
                .last()
                .is_none_or(|previous: &AbortedTxn| previous.last_offset < entry.last_offset);
        if !is_sane {
            return None;
        }
        entries.push(entry);
    }
    Some(entries)
}

/// Reads the index of one segment; None when it is missing, too large or not sane.
pub(crate) fn read(dir: &Path, base_offset: i64, bytes_max: u64) -> Option<Vec<AbortedTxn>> {
    let path = dir.join(file_name(base_offset));
    let len = std::fs::metadata(&path).ok()?.len();
    if len > bytes_max {
        tracing::warn!(path = %path.display(), "ignoring an oversized transaction index");
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let entries = decode(&bytes);
    if entries.is_none() {
        tracing::warn!(path = %path.display(), "ignoring a corrupt transaction index");
    }
    entries
}

/// Persists the index of one segment (fsynced); an empty index removes the file.
pub(crate) fn write(dir: &Path, base_offset: i64, entries: &[AbortedTxn]) -> Result<()> {
    if entries.is_empty() {
        return remove(dir, base_offset);
    }
    write_atomically(dir, &file_name(base_offset), &encode(entries))
}

/// Removes the index of one segment if present (the directory is fsynced by the caller).
pub(crate) fn remove(dir: &Path, base_offset: i64) -> Result<()> {
    let path = dir.join(file_name(base_offset));
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("delete transaction index", &path)(error)),
    }
}

/// The aborted transactions overlapping `[start_offset, upper_offset)`, from `entries` sorted
/// by marker offset. Kafka's scan: skip entries whose marker is below the start, stop after the
/// first whose last stable offset reaches the upper bound (nothing later can start below it).
pub(crate) fn collect(
    entries: &[AbortedTxn],
    start_offset: i64,
    upper_offset: i64,
) -> Vec<AbortedTxn> {
    let from = entries.partition_point(|entry| entry.last_offset < start_offset);
    let mut out = Vec::new();
    for entry in entries.get(from..).unwrap_or_default() {
        if entry.first_offset < upper_offset {
            out.push(*entry);
        }
        if entry.last_stable_offset >= upper_offset {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aborted(first_offset: i64, last_offset: i64, last_stable_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: first_offset,
            first_offset,
            last_offset,
            last_stable_offset,
        }
    }

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let entries = vec![aborted(0, 5, 6), aborted(3, 9, 10)];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 2 * ENTRY_LEN);
        assert_eq!(decode(&bytes), Some(entries.clone()));
        assert_eq!(decode(bytes.get(..ENTRY_LEN + 3).unwrap_or_default()), None);
        let out_of_order = encode(&[aborted(3, 9, 10), aborted(0, 5, 6)]);
        assert_eq!(decode(&out_of_order), None);
        assert_eq!(decode(&[]), Some(Vec::new()));
    }

    #[test]
    fn collect_returns_the_aborted_ranges_a_fetch_overlaps() {
        // Transactions [0..5] and [3..9] aborted, [20..25] aborted with nothing open after.
        let entries = [aborted(0, 5, 3), aborted(3, 9, 10), aborted(20, 25, 26)];
        let firsts = |start, upper| -> Vec<i64> {
            collect(&entries, start, upper)
                .iter()
                .map(|entry| entry.first_offset)
                .collect()
        };
        assert_eq!(firsts(0, 4), vec![0, 3]);
        assert_eq!(firsts(6, 30), vec![3, 20]);
        assert_eq!(firsts(10, 20), Vec::<i64>::new());
        assert_eq!(firsts(10, 21), vec![20]);
        assert_eq!(firsts(26, 40), Vec::<i64>::new());
    }
}
