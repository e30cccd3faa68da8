//! Builds uncompressed magic v2 record batches of keyed records (CRC-32C included) for the
//! broker's internal topics, and reads their records back through `records.rs`. Pure functions
//! over bytes; never panics on stored input.
#![deny(clippy::indexing_slicing)]

use super::batch::{BATCH_HEADER_LEN, BatchHeader};
use super::producer_state::marker::{self, Control};
use super::{Error, Result, records};

/// One record: an optional key and an optional value (`None` value = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
}

/// The producer fields and attribute bits of a built batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) is_transactional: bool,
    pub(crate) is_control: bool,
}

impl Producer {
    /// No producer id: what plain internal writes carry.
    pub(crate) const NONE: Producer = Producer {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        is_transactional: false,
        is_control: false,
    };
}

const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// A v2 batch holding `records` (uncompressed, no headers, no producer id), base offset 0,
/// every timestamp `timestamp_ms`, with a correct CRC. An empty `records` gives a header-only
/// batch with last_offset_delta 0.
pub(crate) fn build(records: &[Record], timestamp_ms: i64) -> Vec<u8> {
    build_with(records, timestamp_ms, Producer::NONE)
}

/// [`build`] with producer fields and the transactional and control attribute bits.
pub(crate) fn build_with(records: &[Record], timestamp_ms: i64, producer: Producer) -> Vec<u8> {
    let mut body = Vec::new();
    for (offset_delta, record) in records.iter().enumerate() {
        let mut one = vec![0u8]; // record attributes
        put_varint(&mut one, 0); // timestamp delta
        put_varint(&mut one, offset_delta as i64);
        put_bytes(&mut one, record.key.as_deref());
        put_bytes(&mut one, record.value.as_deref());
        put_varint(&mut one, 0); // header count
        put_varint(&mut body, one.len() as i64);
        body.extend_from_slice(&one);
    }
    let record_count = i32::try_from(records.len()).expect("internal batches hold few records");
    let mut batch = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_length = i32::try_from(BATCH_HEADER_LEN - 12 + body.len())
        .expect("internal batches are far below 2 GiB");
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    let mut attributes = 0i16;
    if producer.is_transactional {
        attributes |= TRANSACTIONAL_BIT;
    }
    if producer.is_control {
        attributes |= CONTROL_BIT;
    }
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(record_count - 1).max(0).to_be_bytes()); // last offset delta
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&producer.producer_id.to_be_bytes());
    batch.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    batch.extend_from_slice(&producer.base_sequence.to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(&body);
    super::batch::seal_crc(&mut batch);
    batch
}

/// One entry of an internal topic read with its transactions (the offsets topic holds
/// transactional offset commits that count only once their COMMIT marker follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogEntry {
    /// A record; `transactional_producer` is its producer id if its batch is transactional.
    Record {
        offset: i64,
        record: Record,
        transactional_producer: Option<i64>,
    },
    /// A COMMIT or ABORT marker of `producer_id`'s transaction.
    Marker {
        offset: i64,
        producer_id: i64,
        is_commit: bool,
    },
}

/// [`read_records`] keeping the transactions: records say whether their batch is
/// transactional, and transaction markers are entries of their own (other control batches
/// are skipped).
pub(crate) fn read_entries(bytes: &[u8], uncompressed_bytes_max: usize) -> Result<Vec<LogEntry>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest)?;
        let total = header.total_len();
        let batch = rest.get(..total).ok_or(Error::BatchTooShort {
            len: rest.len(),
            needed: total,
        })?;
        rest = rest.get(total..).unwrap_or_default();
        if header.is_control() {
            if let Control::Marker(marker) = marker::parse(batch, &header) {
                out.push(LogEntry::Marker {
                    offset: header.base_offset,
                    producer_id: header.producer_id,
                    is_commit: marker.is_commit,
                });
            }
            continue;
        }
        let transactional_producer = header.is_transactional().then_some(header.producer_id);
        let decoded = records::decode(batch, uncompressed_bytes_max)?;
        for record in &decoded.records {
            out.push(LogEntry::Record {
                offset: decoded.offset(record),
                record: Record {
                    key: decoded.key(record).map(<[u8]>::to_vec),
                    value: decoded.value(record).map(<[u8]>::to_vec),
                },
                transactional_producer,
            });
        }
    }
    Ok(out)
}

/// The records of every batch in `bytes` (whole stored batches, as `Log::read` returns them),
/// with their offsets, decoded by `records.rs`. Control batches are skipped; decompressed
/// bodies are capped at `uncompressed_bytes_max`.
pub(crate) fn read_records(
    bytes: &[u8],
    uncompressed_bytes_max: usize,
) -> Result<Vec<(i64, Record)>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest)?;
        let total = header.total_len();
        let batch = rest.get(..total).ok_or(Error::BatchTooShort {
            len: rest.len(),
            needed: total,
        })?;
        rest = rest.get(total..).unwrap_or_default();
        if header.is_control() {
            continue;
        }
        let decoded = records::decode(batch, uncompressed_bytes_max)?;
        for record in &decoded.records {
            out.push((
                decoded.offset(record),
                Record {
                    key: decoded.key(record).map(<[u8]>::to_vec),
                    value: decoded.value(record).map(<[u8]>::to_vec),
                },
            ));
        }
    }
    Ok(out)
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

/// Zigzag varint as used inside v2 records.
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BatchHeader, verify_crc};

    #[test]
    fn built_batch_round_trips_through_the_reader() {
        let records = vec![
            Record {
                key: Some(b"k1".to_vec()),
                value: Some(vec![7; 300]),
            },
            Record {
                key: Some(b"k2".to_vec()),
                value: None,
            },
        ];
        let batch = build(&records, 1234);
        verify_crc(&batch).expect("crc is valid");
        let header = BatchHeader::parse(&batch).expect("header parses");
        assert_eq!((header.record_count, header.last_offset_delta), (2, 1));
        let read = read_records(&batch, 1 << 20).expect("records parse");
        let expected: Vec<(i64, Record)> = (0..).zip(records).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn truncated_batch_is_an_error_not_a_panic() {
        let batch = build(
            &[Record {
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
            }],
            0,
        );
        assert_eq!(
            read_records(&[], 1 << 20).expect("no bytes, no records"),
            []
        );
        for cut in 1..batch.len() {
            let result = read_records(batch.get(..cut).unwrap_or_default(), 1 << 20);
            assert!(
                matches!(
                    result,
                    Err(Error::BatchTooShort { .. } | Error::InvalidBatchHeader { .. })
                ),
                "a batch cut to {cut} of {} bytes must be refused, got {result:?}",
                batch.len()
            );
        }
        let whole = read_records(&batch, 1 << 20).expect("the whole batch reads");
        assert_eq!(whole.len(), 1);
    }
}
