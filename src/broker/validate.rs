//! Produce-side validation of the record batches a client sent, before anything is appended:
//! header, CRC, sizes, record framing (compressed batches are decoded, as Kafka does), keys on
//! compacted topics, and the rewrites Kafka applies (true max timestamp, topic compression).
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use super::error::{Error, Result};
use crate::limits;
use crate::storage::{self, BATCH_HEADER_LEN, BatchHeader, Compression, TimestampType};

/// What a topic's configs require of produced batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) message_bytes_max: u32,
    pub(crate) segment_bytes_max: u64,
    /// A compacted topic refuses records without a key.
    pub(crate) require_keys: bool,
    /// `compression.type` other than `producer`: stored batches use this codec.
    pub(crate) codec: Option<Compression>,
}

/// One checked batch: where it lies in the request, and its replacement bytes when Kafka's
/// rules rewrite it (recompressed, or its max timestamp corrected).
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) range: Range<usize>,
    pub(crate) rewritten: Option<Vec<u8>>,
}

/// Splits `records` into whole v2 batches and checks each one.
pub(crate) fn batches(records: &[u8], rules: &Rules) -> Result<Vec<Checked>> {
    if records.is_empty() {
        return Err(Error::InvalidRecord {
            reason: "produce request carries no record batch".to_owned(),
        });
    }
    let mut checked = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let rest = records.get(position..).unwrap_or_default();
        let (total, rewritten) = check_one(rest, position, rules)?;
        checked.push(Checked {
            range: position..position + total,
            rewritten,
        });
        position += total;
    }
    Ok(checked)
}

/// Checks the batch at the start of `rest`; returns its length and any rewrite.
fn check_one(rest: &[u8], position: usize, rules: &Rules) -> Result<(usize, Option<Vec<u8>>)> {
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
    if total > rules.message_bytes_max as usize {
        return Err(Error::MessageTooLarge {
            batch_bytes: total,
            max_bytes: rules.message_bytes_max,
        });
    }
    if total as u64 > rules.segment_bytes_max {
        return Err(Error::RecordListTooLarge {
            batch_bytes: total,
            segment_bytes_max: rules.segment_bytes_max,
        });
    }
    storage::verify_crc(batch).map_err(|e| corrupt(e.to_string()))?;
    check_header(&header)?;
    let decompressed_bytes_max =
        (rules.message_bytes_max as usize).saturating_mul(limits::BATCH_DECOMPRESSED_RATIO_MAX);
    let record_error = |e: storage::Error| match e {
        storage::Error::Decompression { .. } => corrupt(e.to_string()),
        storage::Error::DecompressedTooLarge { bytes_max, .. } => Error::DecompressedTooLarge {
            bytes_max,
            ratio: limits::BATCH_DECOMPRESSED_RATIO_MAX,
            max_bytes: rules.message_bytes_max,
        },
        other => Error::InvalidRecord {
            reason: other.to_string(),
        },
    };
    let max_timestamp_delta = check_records(batch, decompressed_bytes_max, rules, record_error)?;
    if let Some(codec) = rules.codec.filter(|c| *c != header.compression()) {
        let recompressed =
            storage::recompress(batch, codec, decompressed_bytes_max, max_timestamp_delta)
                .map_err(record_error)?;
        // Kafka re-checks a rewritten batch against max.message.bytes (RecordTooLargeException).
        if recompressed.len() > rules.message_bytes_max as usize {
            return Err(Error::MessageTooLarge {
                batch_bytes: recompressed.len(),
                max_bytes: rules.message_bytes_max,
            });
        }
        return Ok((total, Some(recompressed)));
    }
    let true_max = max_timestamp_delta.map(|delta| header.base_timestamp.saturating_add(delta));
    let is_create_time = header.timestamp_type() == TimestampType::CreateTime;
    match true_max {
        Some(max) if is_create_time && max != header.max_timestamp => {
            let mut fixed = batch.to_vec();
            storage::set_max_timestamp(&mut fixed, max);
            Ok((total, Some(fixed)))
        }
        _ => Ok((total, None)),
    }
}

/// Reads the records of `batch` one at a time (nothing is allocated per record, and at most
/// `decompressed_bytes_max` bytes are decompressed) and applies Kafka's per-record rules: each
/// record's offset delta is its position in the batch (Kafka 2.x-3.x LogValidator refuses a
/// batch whose inner offsets are not incremental; every v2 client writes them so), and a
/// compacted topic needs keys. Returns the largest timestamp delta.
fn check_records(
    batch: &[u8],
    decompressed_bytes_max: usize,
    rules: &Rules,
    record_error: impl Fn(storage::Error) -> Error,
) -> Result<Option<i64>> {
    let records = storage::Records::open(batch, decompressed_bytes_max).map_err(&record_error)?;
    let mut max_timestamp_delta = None;
    for (position, record) in records.enumerate() {
        let record = record.map_err(&record_error)?;
        if usize::try_from(record.offset_delta).ok() != Some(position) {
            return Err(Error::InvalidRecord {
                reason: format!(
                    "record {position} has offset delta {}: offset deltas must be 0, 1, 2, ... \
                     in record order",
                    record.offset_delta
                ),
            });
        }
        if rules.require_keys && !record.has_key() {
            return Err(Error::InvalidRecord {
                reason: "Compacted topic cannot accept message without key".to_owned(),
            });
        }
        max_timestamp_delta = max_timestamp_delta.max(Some(record.timestamp_delta));
    }
    Ok(max_timestamp_delta)
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
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(Error::InvalidRecord {
            reason: format!(
                "invalid sequence number {} in a batch of producer {}",
                header.base_sequence, header.producer_id
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)] // reason: tests index known-good results
    use super::*;

    fn rules() -> Rules {
        Rules {
            message_bytes_max: 1 << 20,
            segment_bytes_max: 1 << 20,
            require_keys: false,
            codec: None,
        }
    }

    #[test]
    fn valid_batch_passes_unchanged() {
        let batch = storage::test_batches::build(3, 1_000, 10);
        let checked = batches(&batch, &rules()).expect("a valid batch");
        assert_eq!(checked.len(), 1);
        assert_eq!(checked[0].range, 0..batch.len());
    }

    #[test]
    fn keyless_record_on_compacted_topic_is_invalid_record() {
        let batch = storage::test_batches::build(2, 0, 10);
        let compacted = Rules {
            require_keys: true,
            ..rules()
        };
        assert!(matches!(
            batches(&batch, &compacted),
            Err(Error::InvalidRecord { .. })
        ));
    }

    #[test]
    fn topic_codec_recompresses_the_batch() {
        let batch = storage::test_batches::build(5, 1_000, 100);
        let gzip = Rules {
            codec: Some(Compression::Gzip),
            ..rules()
        };
        let checked = batches(&batch, &gzip).expect("recompressed");
        let rewritten = checked[0].rewritten.as_ref().expect("a rewrite");
        let header = BatchHeader::parse(rewritten).expect("header");
        assert_eq!(header.compression(), Compression::Gzip);
        assert_eq!(header.record_count, 5);
        storage::verify_crc(rewritten).expect("a valid crc");
        let decoded = storage::decode_records(rewritten, 1 << 20).expect("decodes");
        assert_eq!(decoded.records.len(), 5);
    }

    #[test]
    fn decompression_bomb_is_refused_as_too_large_before_it_is_expanded() {
        // Issue 7: 10 M records in a 6.5 KB zstd batch took the broker from 84 to 881 MiB.
        // Here 3 MB of records in a few KB, against a 64 KiB max.message.bytes (cap 2 MiB).
        let bomb = storage::test_batches::minimal_records(Compression::Zstd, 3_000, 1_000, |p| p);
        let small = Rules {
            message_bytes_max: 64 * 1024,
            ..rules()
        };
        assert!(bomb.len() < 64 * 1024, "the bomb is a small batch");
        let bytes_max = 64 * 1024 * limits::BATCH_DECOMPRESSED_RATIO_MAX;
        assert!(matches!(
            batches(&bomb, &small),
            Err(Error::DecompressedTooLarge { bytes_max: b, .. }) if b == bytes_max
        ));
    }

    #[test]
    fn offset_deltas_out_of_order_are_invalid_record() {
        for codec in [Compression::None, Compression::Zstd, Compression::Gzip] {
            let same = storage::test_batches::minimal_records(codec, 50, 0, |_| 0);
            assert!(
                matches!(batches(&same, &rules()), Err(Error::InvalidRecord { .. })),
                "{codec:?}: every delta 0"
            );
            let swapped = storage::test_batches::minimal_records(codec, 50, 0, |p| match p {
                3 => 4,
                4 => 3,
                p => p,
            });
            assert!(
                matches!(
                    batches(&swapped, &rules()),
                    Err(Error::InvalidRecord { .. })
                ),
                "{codec:?}: two deltas swapped"
            );
            let ordered = storage::test_batches::minimal_records(codec, 50, 0, |p| p);
            assert!(
                batches(&ordered, &rules()).is_ok(),
                "{codec:?}: 0, 1, 2, ..."
            );
        }
    }

    #[test]
    fn recompressed_batch_over_max_message_bytes_is_message_too_large() {
        let batch = storage::test_batches::minimal_records(Compression::Zstd, 100, 1_000, |p| p);
        let uncompressed = Rules {
            message_bytes_max: 64 * 1024,
            codec: Some(Compression::None),
            ..rules()
        };
        assert!(matches!(
            batches(&batch, &uncompressed),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn missing_max_timestamp_is_recomputed_from_records() {
        let mut batch = storage::test_batches::build(3, 5_000, 10);
        storage::set_max_timestamp(&mut batch, -1);
        let checked = batches(&batch, &rules()).expect("valid");
        let fixed = checked[0].rewritten.as_ref().expect("a rewrite");
        let header = BatchHeader::parse(fixed).expect("header");
        assert!(header.max_timestamp >= 5_000, "{}", header.max_timestamp);
        storage::verify_crc(fixed).expect("a valid crc");
    }

    #[test]
    fn empty_records_are_invalid() {
        assert!(matches!(
            batches(&[], &rules()),
            Err(Error::InvalidRecord { .. })
        ));
    }

    #[test]
    fn short_bytes_are_corrupt() {
        assert!(matches!(
            batches(&[0; 20], &rules()),
            Err(Error::CorruptMessage { .. })
        ));
    }
}
