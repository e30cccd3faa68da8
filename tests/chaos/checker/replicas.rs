//! Replica logs: parses segment file bytes into v2 record batches (Kafka's on-disk format: base
//! offset, length, leader epoch, magic 2, CRC-32C over the rest, ...), and compares the replicas
//! of a partition byte for byte below the high watermark, and each one against the final read.

use super::history::{Drain, ReplicaLog, StoredBatch, Tp, show};

/// Bytes before a batch's records: base offset (8), length (4), then the 49-byte v2 header.
const BATCH_HEADER_LEN: usize = 61;
/// Base offset and length fields, not counted by the length.
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const RECORD_COUNT_AT: usize = 57;
const COMPRESSION_MASK: i16 = 0x07;
const CONTROL_BIT: i16 = 0x20;
/// A batch claiming more than this is garbage, not data (Kafka's segments are at most 1 GiB).
const BATCH_BYTES_MAX: usize = 1 << 30;

/// Appends the batches of one segment file's bytes to `log`; a torn or garbled tail stops the
/// parse and is noted in `log.problem`.
pub(crate) fn parse_segment(name: &str, bytes: &[u8], log: &mut ReplicaLog) {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(length) = rest.get(8..12).map(|b| i32_at(b, 0)) else {
            log.problem = Some(format!(
                "{name}: {} stray bytes at position {at}",
                rest.len()
            ));
            return;
        };
        let total = usize::try_from(length)
            .ok()
            .map(|length| length + LOG_OVERHEAD)
            .filter(|total| (BATCH_HEADER_LEN..=BATCH_BYTES_MAX).contains(total));
        let Some(total) = total else {
            log.problem = Some(format!(
                "{name}: bad batch length {length} at position {at}"
            ));
            return;
        };
        let Some(batch) = rest.get(..total) else {
            log.problem = Some(format!(
                "{name}: torn batch at position {at} ({} of {total} bytes)",
                rest.len()
            ));
            return;
        };
        if batch[MAGIC_AT] != 2 {
            log.problem = Some(format!(
                "{name}: magic {} at position {at}",
                batch[MAGIC_AT]
            ));
            return;
        }
        log.batches.push(parse_batch(batch));
        at += total;
    }
}

fn parse_batch(batch: &[u8]) -> StoredBatch {
    let base_offset = i64_at(batch, 0);
    let last_offset = base_offset + i64::from(i32_at(batch, LAST_OFFSET_DELTA_AT));
    let expected_crc = u32::from_be_bytes(batch[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
    let crc_ok = crc32c::crc32c(&batch[ATTRIBUTES_AT..]) == expected_crc;
    let attributes = i16::from_be_bytes(
        batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]
            .try_into()
            .expect("2 bytes"),
    );
    let is_control = attributes & CONTROL_BIT != 0;
    let records = (attributes & COMPRESSION_MASK == 0)
        .then(|| decode_records(batch, base_offset))
        .flatten();
    StoredBatch {
        base_offset,
        last_offset,
        bytes: batch.to_vec(),
        crc_ok,
        is_control,
        records,
    }
}

/// (offset, value) of each record of an uncompressed batch; None if the records do not decode.
fn decode_records(batch: &[u8], base_offset: i64) -> Option<Vec<(i64, Option<Vec<u8>>)>> {
    let count = usize::try_from(i32_at(batch, RECORD_COUNT_AT)).ok()?;
    let mut cursor = Cursor {
        bytes: batch,
        at: BATCH_HEADER_LEN,
    };
    let mut records = Vec::with_capacity(count.min(batch.len()));
    for _ in 0..count {
        let length = usize::try_from(cursor.varint()?).ok()?;
        let end = cursor.at.checked_add(length)?;
        let _attributes = cursor.take(1)?;
        let _timestamp_delta = cursor.varint()?;
        let offset_delta = cursor.varint()?;
        let _key = cursor.bytes_field()?;
        let value = cursor.bytes_field()?.map(<[u8]>::to_vec);
        if end > batch.len() {
            return None;
        }
        cursor.at = end; // headers are not needed
        records.push((base_offset + offset_delta, value));
    }
    (cursor.at == batch.len()).then_some(records)
}

struct Cursor<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Cursor<'b> {
    fn take(&mut self, len: usize) -> Option<&'b [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(out)
    }

    /// A zigzag varint (Kafka's varint and varlong share the encoding).
    fn varint(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                let magnitude = i64::try_from(raw >> 1).ok()?;
                return Some(if raw & 1 == 0 {
                    magnitude
                } else {
                    -magnitude - 1
                });
            }
        }
        None
    }

    /// A varint length (-1 = null) and that many bytes.
    fn bytes_field(&mut self) -> Option<Option<&'b [u8]>> {
        let length = self.varint()?;
        if length < 0 {
            return Some(None);
        }
        Some(Some(self.take(usize::try_from(length).ok()?)?))
    }
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Divergences of one partition's replicas: corrupt batches below the high watermark, records
/// that differ from the final read, and replicas whose batches differ from the first replica's
/// over their common prefix below the high watermark.
pub(crate) fn divergences(tp: &Tp, drain: &Drain, replicas: &[ReplicaLog]) -> Vec<String> {
    let high_watermark = drain.high_watermark;
    let mut findings = Vec::new();
    let read: std::collections::BTreeMap<i64, &[u8]> = drain
        .records
        .iter()
        .map(|(offset, value)| (*offset, value.as_slice()))
        .collect();
    for replica in replicas {
        for batch in replica
            .batches
            .iter()
            .filter(|b| b.base_offset < high_watermark)
        {
            if !batch.crc_ok {
                findings.push(format!(
                    "{tp} on {}: batch at offset {} fails its CRC",
                    replica.broker, batch.base_offset
                ));
                continue;
            }
            if batch.is_control || !drain.complete {
                continue;
            }
            let Some(records) = &batch.records else {
                continue;
            };
            for (offset, value) in records.iter().filter(|(o, _)| *o < high_watermark) {
                let stored = value.as_deref();
                if read.get(offset).copied() != stored {
                    findings.push(format!(
                        "{tp} on {}: offset {offset} stores {} but the final read got {}",
                        replica.broker,
                        stored.map_or("nothing".to_owned(), show),
                        read.get(offset).map_or("nothing".to_owned(), |v| show(v)),
                    ));
                    break;
                }
            }
        }
    }
    // Committed data is on a majority of the replicas (on the only one, without replication).
    let holding = replicas
        .iter()
        .filter(|replica| replica.end_offset().unwrap_or(0) >= high_watermark)
        .count();
    if !replicas.is_empty() && holding * 2 <= replicas.len() {
        let ends: Vec<String> = replicas
            .iter()
            .map(|replica| {
                let end = replica.end_offset().unwrap_or(0);
                match &replica.problem {
                    Some(problem) => format!("{} ends at {end} ({problem})", replica.broker),
                    None => format!("{} ends at {end}", replica.broker),
                }
            })
            .collect();
        findings.push(format!(
            "{tp}: only {holding} of {} replicas hold the log up to the high watermark {high_watermark}: {}",
            replicas.len(),
            ends.join(", ")
        ));
    }
    let Some((reference, others)) = replicas.split_first() else {
        return findings;
    };
    for other in others {
        if let Some(difference) = first_difference(reference, other, high_watermark) {
            findings.push(format!(
                "{tp}: {} and {} differ {difference}",
                reference.broker, other.broker
            ));
        }
    }
    findings
}

/// Where two replica logs first differ over their common prefix below `high_watermark`.
fn first_difference(a: &ReplicaLog, b: &ReplicaLog, high_watermark: i64) -> Option<String> {
    let limit = high_watermark
        .min(a.end_offset().unwrap_or(0))
        .min(b.end_offset().unwrap_or(0));
    let (a_batches, b_batches) = (batches_below(a, limit), batches_below(b, limit));
    for (x, y) in a_batches.iter().zip(&b_batches) {
        if x.bytes != y.bytes {
            let byte = x.bytes.iter().zip(&y.bytes).position(|(p, q)| p != q);
            return Some(format!(
                "at the batch of offset {} (other's batch at {}; first differing byte {})",
                x.base_offset,
                y.base_offset,
                byte.map_or("past the shorter one".to_owned(), |at| at.to_string())
            ));
        }
    }
    if a_batches.len() != b_batches.len() {
        return Some(format!(
            "below offset {limit}: {} batches vs {}",
            a_batches.len(),
            b_batches.len()
        ));
    }
    None
}

fn batches_below(log: &ReplicaLog, limit: i64) -> Vec<&StoredBatch> {
    log.batches
        .iter()
        .filter(|batch| batch.base_offset < limit)
        .collect()
}
