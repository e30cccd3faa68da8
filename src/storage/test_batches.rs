//! Test-only builder of valid magic v2 record batches (uncompressed, correct CRC), for storage
//! tests and other layers' tests; a thin wrapper over `batch_builder`; and the sorted names of
//! the files in a test's log directory. Not compiled outside tests.

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

/// An idempotent producer's batch of `record_count` records (keyed by position, 10-byte
/// values) starting at `base_sequence`, every timestamp `timestamp_ms`.
pub(crate) fn idempotent(
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let records: Vec<Record> = (0..record_count.max(0))
        .map(|i| Record {
            key: Some(i.to_be_bytes().to_vec()),
            value: Some(vec![7; 10]),
        })
        .collect();
    let producer = batch_builder::Producer {
        producer_id,
        producer_epoch,
        base_sequence,
        is_transactional: false,
        is_control: false,
    };
    batch_builder::build_with(&records, timestamp_ms, producer)
}

/// A v2 batch of `record_count` records without key or headers, each with a value of
/// `value_bytes` zero bytes (0: a null value) and timestamp delta 0, whose offset deltas are
/// `offset_delta(position)`, compressed with `codec`; header fields are consistent (last offset
/// delta = count - 1) and the CRC is valid. Shaped like a decompression bomb: the body
/// compresses extremely well.
pub(crate) fn minimal_records(
    codec: super::Compression,
    record_count: i32,
    value_bytes: usize,
    offset_delta: impl Fn(i32) -> i32,
) -> Vec<u8> {
    let mut body = Vec::new();
    for position in 0..record_count {
        let mut record = vec![0u8, 0u8]; // attributes, timestamp delta 0
        put_zigzag(&mut record, i64::from(offset_delta(position)));
        record.push(1); // null key
        if value_bytes == 0 {
            record.push(1); // null value
        } else {
            put_zigzag(&mut record, value_bytes as i64);
            record.resize(record.len() + value_bytes, 0);
        }
        record.push(0); // no headers
        put_zigzag(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let stored = super::records::compress(codec, &body).expect("compressible");
    let codec_bits: i16 = match codec {
        super::Compression::None => 0,
        super::Compression::Gzip => 1,
        super::Compression::Snappy => 2,
        super::Compression::Lz4 => 3,
        super::Compression::Zstd => 4,
        super::Compression::Unknown(raw) => i16::from(raw),
    };
    let mut batch = Vec::with_capacity(61 + stored.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((61 - 12 + stored.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&codec_bits.to_be_bytes());
    batch.extend_from_slice(&(record_count - 1).to_be_bytes());
    batch.extend_from_slice(&1_000i64.to_be_bytes());
    batch.extend_from_slice(&1_000i64.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(&stored);
    let crc = crc32c::crc32c(batch.get(21..).expect("header is 61 bytes"));
    batch
        .get_mut(17..21)
        .expect("header is 61 bytes")
        .copy_from_slice(&crc.to_be_bytes());
    batch
}

fn put_zigzag(out: &mut Vec<u8>, value: i64) {
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

/// One uncompressed batch of one keyed record (compacted topics).
pub(crate) fn keyed(key: &[u8], value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    super::records_tests::keyed_batch(
        &[(Some(key.to_vec()), Some(value.to_vec()))],
        timestamp_ms,
        0,
    )
}

/// The names of the files in `dir` (a log directory), sorted: segments sort by base offset.
pub(crate) fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every segment (`.log`) file in `dir` with its bytes, by name.
pub(crate) fn segment_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    file_names(dir)
        .into_iter()
        .filter(|name| name.ends_with(".log"))
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).expect("read segment");
            (name, bytes)
        })
        .collect()
}
