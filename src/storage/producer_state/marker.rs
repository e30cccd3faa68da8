//! Transaction markers: the COMMIT and ABORT control records that end a producer's transaction
//! in a partition (Kafka's EndTransactionMarker), built as control batches and parsed back.
//! Pure functions over bytes; an unreadable control batch is reported, never a panic.

use crate::limits;
use crate::storage::batch::BatchHeader;
use crate::storage::batch_builder::{self, Producer, Record};
use crate::storage::records;

/// Control record key version and value version (Kafka writes 0 for both).
const CONTROL_KEY_VERSION: i16 = 0;
const MARKER_VALUE_VERSION: i16 = 0;
/// Control record types of the key (ControlRecordType).
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// An end-of-transaction marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) is_commit: bool,
    pub(crate) coordinator_epoch: i32,
}

/// What a stored control batch holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Marker(Marker),
    /// No record left (compaction emptied it) or a control type that ends no transaction.
    Other,
}

/// A control batch carrying `marker` for `producer_id` at `producer_epoch`, base offset 0.
pub(crate) fn build(
    marker: Marker,
    producer_id: i64,
    producer_epoch: i16,
    timestamp_ms: i64,
) -> Vec<u8> {
    let control_type = if marker.is_commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = CONTROL_KEY_VERSION.to_be_bytes().to_vec();
    key.extend_from_slice(&control_type.to_be_bytes());
    let mut value = MARKER_VALUE_VERSION.to_be_bytes().to_vec();
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = Record {
        key: Some(key),
        value: Some(value),
    };
    batch_builder::build_with(
        &[record],
        timestamp_ms,
        Producer {
            producer_id,
            producer_epoch,
            base_sequence: -1,
            is_transactional: true,
            is_control: true,
        },
    )
}

/// [`build`] from the marker's fields.
pub(crate) fn build_from_parts(
    is_commit: bool,
    coordinator_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    timestamp_ms: i64,
) -> Vec<u8> {
    let marker = Marker {
        is_commit,
        coordinator_epoch,
    };
    build(marker, producer_id, producer_epoch, timestamp_ms)
}

/// Reads the first record of a control batch (whole, CRC already checked by its writer).
pub(crate) fn parse(batch: &[u8], header: &BatchHeader) -> Control {
    let Ok(decoded) = records::decode(batch, limits::CONTROL_BATCH_DECODED_BYTES_MAX) else {
        tracing::warn!(
            base_offset = header.base_offset,
            "unreadable control batch ignored"
        );
        return Control::Other;
    };
    let Some(record) = decoded.records.first() else {
        return Control::Other;
    };
    let key = decoded.key(record).unwrap_or_default();
    let value = decoded.value(record).unwrap_or_default();
    let (Some(key_version), Some(control_type)) = (be_i16(key, 0), be_i16(key, 2)) else {
        return Control::Other;
    };
    let is_commit = match control_type {
        CONTROL_TYPE_COMMIT => true,
        CONTROL_TYPE_ABORT => false,
        _ => return Control::Other,
    };
    if key_version < 0 {
        return Control::Other;
    }
    let coordinator_epoch = value
        .get(2..6)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map_or(-1, i32::from_be_bytes);
    Control::Marker(Marker {
        is_commit,
        coordinator_epoch,
    })
}

fn be_i16(bytes: &[u8], at: usize) -> Option<i16> {
    bytes
        .get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(i16::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::verify_crc;

    #[test]
    fn markers_round_trip_through_a_control_batch() {
        for is_commit in [true, false] {
            let marker = Marker {
                is_commit,
                coordinator_epoch: 7,
            };
            let batch = build(marker, 42, 3, 1_000);
            verify_crc(&batch).expect("valid crc");
            let header = BatchHeader::parse(&batch).expect("header");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(parse(&batch, &header), Control::Marker(marker));
        }
    }

    #[test]
    fn truncated_or_foreign_control_records_are_other() {
        let batch = build(
            Marker {
                is_commit: true,
                coordinator_epoch: 0,
            },
            1,
            0,
            0,
        );
        let header = BatchHeader::parse(&batch).expect("header");
        for cut in 0..batch.len() {
            let _ = parse(batch.get(..cut).unwrap_or_default(), &header);
        }
        let other = batch_builder::build_with(
            &[Record {
                key: Some(vec![0, 0, 0, 2]),
                value: None,
            }],
            0,
            Producer {
                is_control: true,
                ..Producer::NONE
            },
        );
        let header = BatchHeader::parse(&other).expect("header");
        assert_eq!(parse(&other, &header), Control::Other);
    }
}
