//! Unit tests of the batch header codec: parse, sanity checks, CRC and in-place rewrites.

use super::batch::{self, BATCH_HEADER_LEN, BatchHeader, Compression, TimestampType};
use super::{Error, test_batches};

#[test]
fn parse_built_batch_reads_every_field() {
    let bytes = test_batches::build(3, 1_700_000_000_000, 10);
    let header = BatchHeader::parse(&bytes).expect("parse");
    assert_eq!(header.base_offset, 0);
    assert_eq!(header.total_len(), bytes.len());
    assert_eq!(header.magic, 2);
    assert_eq!(header.last_offset_delta, 2);
    assert_eq!(header.last_offset(), 2);
    assert_eq!(header.record_count, 3);
    assert_eq!(header.base_timestamp, 1_700_000_000_000);
    assert_eq!(header.max_timestamp, 1_700_000_000_000);
    assert_eq!(header.producer_id, -1);
    assert_eq!(header.compression(), Compression::None);
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    assert!(!header.is_transactional() && !header.is_control());
    batch::verify_crc(&bytes).expect("crc");
}

#[test]
fn parse_short_input_is_batch_too_short() {
    let bytes = test_batches::build(1, 0, 0);
    let result = BatchHeader::parse(&bytes[..BATCH_HEADER_LEN - 1]);
    assert!(matches!(result, Err(Error::BatchTooShort { len: 60, .. })));
}

#[test]
fn parse_wrong_magic_is_unsupported() {
    let mut bytes = test_batches::build(1, 0, 0);
    bytes[16] = 1;
    assert!(matches!(
        BatchHeader::parse(&bytes),
        Err(Error::UnsupportedMagic { magic: 1 })
    ));
}

#[track_caller]
fn check_batch_length(batch_length: i32, is_valid: bool) {
    let mut bytes = test_batches::build(1, 0, 0);
    bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let result = BatchHeader::parse(&bytes);
    assert_eq!(
        result.is_ok(),
        is_valid,
        "batch_length {batch_length}: {result:?}"
    );
}

#[test]
fn parse_checks_batch_length_bounds() {
    check_batch_length(-1, false);
    check_batch_length(0, false);
    check_batch_length(48, false);
    check_batch_length(49, true);
    check_batch_length(i32::MAX - 12, true);
    check_batch_length(i32::MAX, false);
}

#[test]
fn parse_negative_last_offset_delta_is_invalid() {
    let mut bytes = test_batches::build(1, 0, 0);
    bytes[23..27].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(
        BatchHeader::parse(&bytes),
        Err(Error::InvalidBatchHeader {
            field: "last_offset_delta",
            ..
        })
    ));
}

#[test]
fn verify_crc_with_flipped_record_byte_is_mismatch() {
    let mut bytes = test_batches::build(2, 5, 20);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    assert!(matches!(
        batch::verify_crc(&bytes),
        Err(Error::CrcMismatch { .. })
    ));
}

#[test]
fn base_offset_and_epoch_rewrites_keep_crc_valid() {
    let mut bytes = test_batches::build(2, 5, 20);
    batch::set_base_offset(&mut bytes, 1234);
    batch::set_partition_leader_epoch(&mut bytes, 7);
    let header = BatchHeader::parse(&bytes).expect("parse");
    assert_eq!(
        (header.base_offset, header.partition_leader_epoch),
        (1234, 7)
    );
    batch::verify_crc(&bytes).expect("fields outside the crc");
}

#[test]
fn stamp_log_append_time_sets_type_and_max_timestamp_with_new_crc() {
    let mut bytes = test_batches::build(2, 5, 20);
    batch::stamp_log_append_time(&mut bytes, 99_999);
    let header = BatchHeader::parse(&bytes).expect("parse");
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 99_999);
    assert_eq!(header.base_timestamp, 5);
    batch::verify_crc(&bytes).expect("crc recomputed");
}

#[test]
fn compression_reads_low_attribute_bits() {
    let mut bytes = test_batches::build(1, 0, 0);
    for (bits, expected) in [
        (1, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
        (4, Compression::Zstd),
        (6, Compression::Unknown(6)),
    ] {
        bytes[22] = bits;
        let header = BatchHeader::parse(&bytes).expect("parse");
        assert_eq!(header.compression(), expected);
    }
}
