//! Unit tests of `records`: decoding each codec (batches built here by compressing record bytes
//! with the codec crates), re-encoding a subset, header-only batches and malformed input.
//! Also the keyed-batch builder the compaction tests share.

use std::io::Write;

use super::batch::{BatchHeader, Compression, verify_crc};
use super::record_stream::{RecordEntry, Records};
use super::records::{self, DecodedBatch};

/// Codec ids in the attribute bits.
pub(super) const GZIP: i16 = 1;
pub(super) const SNAPPY_RAW: i16 = 2;
pub(super) const LZ4: i16 = 3;
pub(super) const ZSTD: i16 = 4;
/// Snappy in the xerial framing (attribute id 2 as well).
pub(super) const SNAPPY_XERIAL: i16 = 102;

/// A record's key and value; None is null.
pub(super) type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

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

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
        None => put_varint(out, -1),
    }
}

/// The uncompressed record body of `records` (key, value; one header on every odd record).
fn record_body(records: &[KeyValue]) -> Vec<u8> {
    let mut body = Vec::new();
    for (offset_delta, (key, value)) in records.iter().enumerate() {
        let mut one = vec![0u8];
        put_varint(&mut one, offset_delta as i64 * 3); // timestamp delta
        put_varint(&mut one, offset_delta as i64);
        put_nullable(&mut one, key.as_deref());
        put_nullable(&mut one, value.as_deref());
        if offset_delta % 2 == 1 {
            put_varint(&mut one, 1);
            put_nullable(&mut one, Some(b"h"));
            put_nullable(&mut one, None);
        } else {
            put_varint(&mut one, 0);
        }
        put_varint(&mut body, one.len() as i64);
        body.extend_from_slice(&one);
    }
    body
}

fn compress_for_test(codec: i16, body: &[u8]) -> Vec<u8> {
    match codec {
        0 => body.to_vec(),
        GZIP => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        SNAPPY_RAW => snap::raw::Encoder::new().compress_vec(body).unwrap(),
        SNAPPY_XERIAL => records::compress(Compression::Snappy, body).unwrap(),
        LZ4 => {
            let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            encoder.write_all(body).unwrap();
            let (out, result) = encoder.finish();
            result.unwrap();
            out
        }
        ZSTD => zstd::stream::encode_all(body, 3).unwrap(),
        other => panic!("unknown test codec {other}"),
    }
}

/// A v2 batch (base offset 0, correct CRC) of keyed records compressed with `codec` (0 = none,
/// or one of the constants above); timestamps are `timestamp_ms + 3 * offset_delta`.
pub(super) fn keyed_batch(records: &[KeyValue], timestamp_ms: i64, codec: i16) -> Vec<u8> {
    let stored = compress_for_test(codec, &record_body(records));
    let attributes: i16 = if codec == SNAPPY_XERIAL { 2 } else { codec };
    let record_count = records.len() as i32;
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((61 - 12 + stored.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(record_count - 1).max(0).to_be_bytes());
    batch.extend_from_slice(&timestamp_ms.to_be_bytes());
    let max_timestamp = timestamp_ms + 3 * i64::from((record_count - 1).max(0));
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(&stored);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn sample() -> Vec<KeyValue> {
    vec![
        (Some(b"a".to_vec()), Some(b"one".to_vec())),
        (Some(b"b".to_vec()), None),
        (None, Some(vec![7; 300])),
        (Some(b"a".to_vec()), Some(b"two".to_vec())),
    ]
}

fn contents(decoded: &DecodedBatch<'_>) -> Vec<super::compaction_tests::Entry> {
    decoded
        .records
        .iter()
        .map(|r| {
            (
                decoded.offset(r),
                decoded.key(r).map(<[u8]>::to_vec),
                decoded.value(r).map(<[u8]>::to_vec),
            )
        })
        .collect()
}

#[track_caller]
fn check_codec(codec: i16) {
    let batch = keyed_batch(&sample(), 1_000, codec);
    let decoded = records::decode(&batch, 1 << 20).expect("decode");
    let expected: Vec<_> = sample()
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| (i as i64, k, v))
        .collect();
    assert_eq!(contents(&decoded), expected);
    assert!(has_keyless(&batch));

    // Keep records 1 and 3: same base offset and last offset delta, new CRC, same codec.
    let retained = records::retain(&batch, &decoded, |r| r.offset_delta % 2 == 1).unwrap();
    verify_crc(&retained).expect("re-encoded batch has a valid crc");
    let header = BatchHeader::parse(&retained).unwrap();
    assert_eq!(header.last_offset_delta, 3);
    assert_eq!(header.record_count, 2);
    assert_eq!(header.max_timestamp, 1_009);
    assert_eq!(header.attributes, decoded.header.attributes);
    let again = records::decode(&retained, 1 << 20).unwrap();
    assert_eq!(
        contents(&again),
        vec![expected[1].clone(), expected[3].clone()]
    );
    assert!(!has_keyless(&retained));
}

#[test]
fn decode_and_retain_round_trip_every_codec() {
    for codec in [0, GZIP, SNAPPY_RAW, SNAPPY_XERIAL, LZ4, ZSTD] {
        check_codec(codec);
    }
}

#[test]
fn decode_over_the_size_cap_is_an_error() {
    for codec in [0, GZIP, SNAPPY_RAW, SNAPPY_XERIAL, LZ4, ZSTD] {
        let batch = keyed_batch(&sample(), 0, codec);
        let cap = if codec == 0 { 0 } else { 100 };
        let result = records::decode(&batch, cap);
        if codec != 0 {
            assert!(
                matches!(result, Err(super::Error::DecompressedTooLarge { .. })),
                "codec {codec}: {result:?}"
            );
        }
    }
}

#[test]
fn decode_malformed_records_is_an_error_not_a_panic() {
    let batch = keyed_batch(&sample(), 0, 0);
    for cut in 61..batch.len() {
        let mut short = batch[..cut].to_vec();
        short[8..12].copy_from_slice(&((cut - 12) as i32).to_be_bytes());
        assert!(records::decode(&short, 1 << 20).is_err(), "cut at {cut}");
    }
    for at in 61..batch.len() {
        let mut flipped = batch.clone();
        flipped[at] ^= 0xff;
        let _ = records::decode(&flipped, 1 << 20);
    }
    let mut garbage = keyed_batch(&sample(), 0, GZIP);
    let len = garbage.len();
    garbage[len - 20..].fill(0xaa);
    assert!(records::decode(&garbage, 1 << 20).is_err());
}

#[test]
fn empty_batch_spans_offsets_without_records() {
    let batch = records::empty(40, 9, 1_234, 3, true);
    verify_crc(&batch).unwrap();
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!(
        (
            header.base_offset,
            header.last_offset(),
            header.record_count
        ),
        (40, 49, 0)
    );
    assert_eq!(header.max_timestamp, 1_234);
    assert!(records::decode(&batch, 0).unwrap().records.is_empty());
}

fn has_keyless(batch: &[u8]) -> bool {
    let decoded = records::decode(batch, 1 << 20).unwrap();
    decoded.records.iter().any(|r| decoded.key(r).is_none())
}

const ALL_CODECS: [i16; 6] = [0, GZIP, SNAPPY_RAW, SNAPPY_XERIAL, LZ4, ZSTD];

fn streamed(batch: &[u8], bytes_max: usize) -> super::Result<Vec<RecordEntry>> {
    Records::open(batch, bytes_max)?.collect()
}

/// Many records, larger than the stream buffer, so reads cross buffer refills.
fn many() -> Vec<KeyValue> {
    (0..3_000)
        .map(|i| {
            let key = (i % 7 != 0).then(|| format!("key-{i}").into_bytes());
            let value = (i % 5 != 0).then(|| vec![(i % 251) as u8; i % 97]);
            (key, value)
        })
        .collect()
}

#[test]
fn records_stream_yields_what_decode_yields_for_every_codec() {
    for codec in ALL_CODECS {
        for records in [sample(), many()] {
            let batch = keyed_batch(&records, 1_000, codec);
            let decoded = records::decode(&batch, 1 << 24).expect("decode");
            let stream = streamed(&batch, 1 << 24).expect("stream");
            assert_eq!(stream, decoded.records, "codec {codec}");
            let keyless = records.iter().filter(|(k, _)| k.is_none()).count();
            assert_eq!(
                stream.iter().filter(|r| !r.has_key()).count(),
                keyless,
                "codec {codec}"
            );
        }
    }
}

#[test]
fn records_stream_over_the_cap_is_decompressed_too_large() {
    let records = many();
    let body_bytes = records::decode(&keyed_batch(&records, 0, 0), 1 << 24)
        .expect("decode")
        .records
        .last()
        .expect("records")
        .raw
        .end;
    for codec in ALL_CODECS.into_iter().filter(|&c| c != 0) {
        let batch = keyed_batch(&records, 0, codec);
        let result = streamed(&batch, body_bytes - 1);
        assert!(
            matches!(result, Err(super::Error::DecompressedTooLarge { .. })),
            "codec {codec}: {result:?}"
        );
        assert!(
            streamed(&batch, body_bytes).is_ok(),
            "codec {codec} at the cap"
        );
    }
}

#[test]
fn records_stream_of_damaged_bodies_is_an_error_not_a_panic() {
    for codec in ALL_CODECS {
        let batch = keyed_batch(&many()[..400], 0, codec);
        let step = batch.len() / 150 + 1;
        for cut in (61..batch.len()).step_by(step) {
            let mut short = batch[..cut].to_vec();
            short[8..12].copy_from_slice(&((cut - 12) as i32).to_be_bytes());
            assert!(
                streamed(&short, 1 << 24).is_err(),
                "codec {codec} cut at {cut}"
            );
        }
        for at in (61..batch.len()).step_by(step + 3) {
            let mut flipped = batch.clone();
            flipped[at] ^= 0x5a;
            let _ = streamed(&flipped, 1 << 24);
        }
    }
    // One record fewer in the header than in the body: bytes follow the last record.
    let mut batch = keyed_batch(&sample(), 0, ZSTD);
    batch[57..61].copy_from_slice(&3i32.to_be_bytes());
    assert!(matches!(
        streamed(&batch, 1 << 20),
        Err(super::Error::MalformedRecords { .. })
    ));
    // One record more: the body ends inside the missing record.
    let mut batch = keyed_batch(&sample(), 0, GZIP);
    batch[57..61].copy_from_slice(&5i32.to_be_bytes());
    batch[23..27].copy_from_slice(&4i32.to_be_bytes());
    assert!(matches!(
        streamed(&batch, 1 << 20),
        Err(super::Error::MalformedRecords { .. })
    ));
}

#[test]
fn recompress_streams_between_every_pair_of_codecs() {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for from in ALL_CODECS {
        let batch = keyed_batch(&many(), 1_000, from);
        let original = records::decode(&batch, 1 << 24).expect("decode");
        let original = contents(&original);
        for to in codecs {
            let rewritten = records::recompress(&batch, to, 1 << 24, Some(77)).expect("recompress");
            verify_crc(&rewritten).expect("valid crc");
            let header = BatchHeader::parse(&rewritten).expect("header");
            assert_eq!(header.compression(), to);
            assert_eq!(header.max_timestamp, 1_077);
            let again = records::decode(&rewritten, 1 << 24).expect("decode again");
            assert_eq!(contents(&again), original, "{from} -> {to:?}");
        }
        assert!(
            matches!(
                records::recompress(&batch, Compression::Gzip, 1_000, None),
                Err(super::Error::DecompressedTooLarge { .. })
            ) || from == 0
        );
    }
}
