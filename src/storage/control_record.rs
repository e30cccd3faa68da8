//! Control batches of any control type: build one holding a single control record (key =
//! version 0 + type, as every client expects) and read its record back. Transaction markers
//! (`producer_state/marker.rs`) are one kind; other layers pick their own types.
#![deny(clippy::indexing_slicing)]

use super::batch::BatchHeader;
use super::batch_builder::{self, Producer, Record};
use super::{Error, Result, records};

/// The control record key version every client reads (librdkafka skips any other version and
/// refuses a key that is not exactly 4 bytes).
const CONTROL_KEY_VERSION: i16 = 0;

/// The one record of a control batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ControlRecord {
    pub(crate) control_type: i16,
    pub(crate) value: Vec<u8>,
}

/// A control batch (not transactional, no producer id, sequence -1) holding one record of
/// `control_type` with `value`, every timestamp `timestamp_ms`, base offset 0, valid CRC.
pub(crate) fn build(control_type: i16, value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut key = CONTROL_KEY_VERSION.to_be_bytes().to_vec();
    key.extend_from_slice(&control_type.to_be_bytes());
    let record = Record {
        key: Some(key),
        value: Some(value.to_vec()),
    };
    batch_builder::build_with(
        &[record],
        timestamp_ms,
        Producer {
            is_control: true,
            ..Producer::NONE
        },
    )
}

/// The first record of the control batch `batch` (whole), decoded within `bytes_max`; None
/// when it is not a control batch, has no record or its key is not version 0 + a type.
pub(crate) fn read(batch: &[u8], bytes_max: usize) -> Result<Option<ControlRecord>> {
    let header = BatchHeader::parse(batch)?;
    if !header.is_control() {
        return Ok(None);
    }
    if header.total_len() != batch.len() {
        return Err(Error::BatchLengthMismatch {
            len: batch.len(),
            header_len: header.total_len(),
        });
    }
    let decoded = records::decode(batch, bytes_max)?;
    let Some(record) = decoded.records.first() else {
        return Ok(None);
    };
    let key = decoded.key(record).unwrap_or_default();
    let (Ok(version), Ok(control_type)) = (
        <[u8; 2]>::try_from(key.get(0..2).unwrap_or_default()),
        <[u8; 2]>::try_from(key.get(2..4).unwrap_or_default()),
    ) else {
        return Ok(None);
    };
    if key.len() != 4 || i16::from_be_bytes(version) != CONTROL_KEY_VERSION {
        return Ok(None);
    }
    Ok(Some(ControlRecord {
        control_type: i16::from_be_bytes(control_type),
        value: decoded.value(record).unwrap_or_default().to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::verify_crc;
    use crate::storage::test_batches;

    #[test]
    fn a_built_control_batch_reads_back_and_carries_no_producer() {
        let batch = build(0x7401, b"{\"x\":1}", -1);
        verify_crc(&batch).expect("crc");
        let header = BatchHeader::parse(&batch).expect("header");
        assert!(header.is_control() && !header.is_transactional());
        assert_eq!((header.producer_id, header.record_count), (-1, 1));
        let record = read(&batch, 1 << 16)
            .expect("read")
            .expect("a control record");
        assert_eq!(record.control_type, 0x7401);
        assert_eq!(record.value, b"{\"x\":1}");
    }

    #[test]
    fn data_batches_and_damaged_control_batches_hold_no_control_record() {
        let data = test_batches::build(1, 0, 3);
        assert_eq!(read(&data, 1 << 16).expect("read"), None);
        let batch = build(5, b"v", 0);
        assert!(read(batch.get(..batch.len() - 1).unwrap_or_default(), 1 << 16).is_err());
    }
}
