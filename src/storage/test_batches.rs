//! Test-only builder of valid magic v2 record batches (uncompressed, correct CRC), for storage
//! tests and other layers' tests; a thin wrapper over `batch_builder`. Not compiled outside tests.

use super::batch_builder::{self, Record};

/// A v2 batch with `record_count` uncompressed records (null key, `payload_len`-byte value,
/// no headers), base offset 0, every timestamp `timestamp_ms`, no producer id, correct CRC.
/// A `record_count` of 0 gives a header-only batch with last_offset_delta 0.
pub(crate) fn build(record_count: i32, timestamp_ms: i64, payload_len: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..record_count.max(0))
        .map(|offset_delta| Record {
            key: None,
            value: Some(
                (0..payload_len)
                    .map(|i| (i as u8).wrapping_add(offset_delta as u8))
                    .collect(),
            ),
        })
        .collect();
    batch_builder::build(&records, timestamp_ms)
}
