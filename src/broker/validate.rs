//! Produce-side validation of the record batches a client sent, before anything is appended.
//! Pure: bytes in, a list of batch ranges or a broker error out.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use super::error::{Error, Result};
use crate::storage::{self, BATCH_HEADER_LEN, BatchHeader, Compression};

/// Splits `records` into whole v2 batches and checks each: header, CRC, size (against
/// `max.message.bytes` and the segment size), record count and, for uncompressed batches, the
/// framing of every record.
pub(crate) fn batches(
    records: &[u8],
    message_bytes_max: u32,
    segment_bytes_max: u64,
) -> Result<Vec<Range<usize>>> {
    let mut ranges = Vec::new();
    let mut position = 0;
    if records.is_empty() {
        return Err(Error::InvalidRecord {
            reason: "produce request carries no record batch".to_owned(),
        });
    }
    while position < records.len() {
        let rest = records.get(position..).unwrap_or_default();
        let corrupt = |reason: String| Error::CorruptMessage { position, reason };
        if rest.len() < BATCH_HEADER_LEN {
            return Err(corrupt(format!(
                "{} trailing bytes are shorter than a batch header",
                rest.len()
            )));
        }
        let header = BatchHeader::parse(rest).map_err(|e| corrupt(e.to_string()))?;
        let total = header.total_len();
        let batch = rest
            .get(..total)
            .ok_or_else(|| corrupt(format!("batch of {total} bytes is truncated")))?;
        if total > message_bytes_max as usize {
            return Err(Error::MessageTooLarge {
                batch_bytes: total,
                max_bytes: message_bytes_max,
            });
        }
        if total as u64 > segment_bytes_max {
            return Err(Error::RecordListTooLarge {
                batch_bytes: total,
                segment_bytes_max,
            });
        }
        storage::verify_crc(batch).map_err(|e| corrupt(e.to_string()))?;
        check_header(&header)?;
        if header.compression() == Compression::None {
            check_records(batch, header.record_count)?;
        }
        ranges.push(position..position + total);
        position += total;
    }
    Ok(ranges)
}

/// On a compacted topic every record needs a key, compressed batches included (Kafka's
/// "Compacted topic cannot accept message without key"). Runs after [`batches`].
pub(crate) fn keys_present(
    records: &[u8],
    ranges: &[Range<usize>],
    segment_bytes_max: u64,
) -> Result<()> {
    let uncompressed_bytes_max = usize::try_from(segment_bytes_max).unwrap_or(usize::MAX);
    for range in ranges {
        let batch = records.get(range.clone()).unwrap_or_default();
        let has_keyless =
            storage::has_keyless_record(batch, uncompressed_bytes_max).map_err(|error| {
                Error::CorruptMessage {
                    position: range.start,
                    reason: error.to_string(),
                }
            })?;
        if has_keyless {
            return Err(Error::InvalidRecord {
                reason: "Compacted topic cannot accept message without key".to_owned(),
            });
        }
    }
    Ok(())
}

fn check_header(header: &BatchHeader) -> Result<()> {
    if let Compression::Unknown(codec) = header.compression() {
        return Err(Error::UnsupportedCompression { codec });
    }
    if header.record_count <= 0 {
        return Err(Error::InvalidRecord {
            reason: format!("record count {} is not positive", header.record_count),
        });
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(Error::InvalidRecord {
            reason: format!(
                "last offset delta {} does not match record count {}",
                header.last_offset_delta, header.record_count
            ),
        });
    }
    if header.is_control() {
        return Err(Error::InvalidRecord {
            reason: "clients may not produce control batches".to_owned(),
        });
    }
    if header.producer_id >= 0 {
        return Err(Error::UnknownProducerId {
            producer_id: header.producer_id,
        });
    }
    Ok(())
}

/// Walks the length-prefixed records of an uncompressed batch: they must exactly fill it.
fn check_records(batch: &[u8], record_count: i32) -> Result<()> {
    let mut body = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
    for index in 0..record_count {
        let (len, used) = read_varint(body).ok_or_else(|| Error::InvalidRecord {
            reason: format!("record {index} has a malformed length"),
        })?;
        let len = usize::try_from(len).map_err(|_| Error::InvalidRecord {
            reason: format!("record {index} has negative length {len}"),
        })?;
        body = body.get(used + len..).ok_or_else(|| Error::InvalidRecord {
            reason: format!("record {index} of {len} bytes overruns its batch"),
        })?;
    }
    if !body.is_empty() {
        return Err(Error::InvalidRecord {
            reason: format!(
                "{} bytes follow the last of {record_count} records",
                body.len()
            ),
        });
    }
    Ok(())
}

/// Reads a zigzag varint (at most 5 bytes for an i32); returns the value and the bytes used.
fn read_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_decodes_zigzag_values() {
        assert_eq!(read_varint(&[0x00]), Some((0, 1)));
        assert_eq!(read_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(read_varint(&[0x02]), Some((1, 1)));
        assert_eq!(read_varint(&[0xac, 0x02]), Some((150, 2)));
        assert_eq!(read_varint(&[0x80, 0x80]), None);
    }

    #[test]
    fn keyless_record_on_compacted_topic_is_invalid_record() {
        let batch = crate::storage::test_batches::build(2, 0, 10);
        let ranges = batches(&batch, 1 << 20, 1 << 20).expect("a valid batch");
        assert!(matches!(
            keys_present(&batch, &ranges, 1 << 20),
            Err(Error::InvalidRecord { .. })
        ));
    }

    #[test]
    fn empty_records_are_invalid() {
        assert!(matches!(
            batches(&[], 1000, 1000),
            Err(Error::InvalidRecord { .. })
        ));
    }

    #[test]
    fn short_bytes_are_corrupt() {
        assert!(matches!(
            batches(&[0; 20], 1000, 1000),
            Err(Error::CorruptMessage { .. })
        ));
    }
}
