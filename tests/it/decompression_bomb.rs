//! Issue 7, item 7: a tiny compressed batch that expands to millions of records must be refused
//! with a Kafka error without the broker's memory following the expansion.

use std::io::Write;

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use tempfile::TempDir;

use crate::acks::produce_request;
use crate::harness::{self, Broker};
use crate::memory::{self, MIB};
use crate::raw::{self, RawConn};

const ERROR_MESSAGE_TOO_LARGE: i16 = 10;
const ERROR_INVALID_RECORD: i16 = 87;
/// Codec id of zstd in the batch attributes.
const ZSTD: i16 = 4;

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

/// One record without key or headers: `value_bytes` zeros (0 = null value).
fn record(offset_delta: i32, value_bytes: usize) -> Vec<u8> {
    let mut record = vec![0u8, 0u8]; // attributes, timestamp delta
    put_zigzag(&mut record, i64::from(offset_delta));
    record.push(1); // null key
    if value_bytes == 0 {
        record.push(1);
    } else {
        put_zigzag(&mut record, value_bytes as i64);
        record.resize(record.len() + value_bytes, 0);
    }
    record.push(0); // no headers
    let mut framed = Vec::with_capacity(record.len() + 2);
    put_zigzag(&mut framed, record.len() as i64);
    framed.extend_from_slice(&record);
    framed
}

/// A zstd v2 batch of `record_count` records, compressed as it is generated (the test never
/// holds the expanded body). Header fields agree with each other and the CRC is valid.
fn zstd_bomb(record_count: i32, value_bytes: usize, offset_delta: impl Fn(i32) -> i32) -> Bytes {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    let mut chunk = Vec::new();
    for position in 0..record_count {
        chunk.extend_from_slice(&record(offset_delta(position), value_bytes));
        if chunk.len() >= 1 << 20 {
            encoder.write_all(&chunk).expect("compress");
            chunk.clear();
        }
    }
    encoder.write_all(&chunk).expect("compress");
    let stored = encoder.finish().expect("finish zstd");
    let now = harness::now_ms();
    let mut batch = Vec::with_capacity(61 + stored.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(
        &i32::try_from(49 + stored.len())
            .expect("fits")
            .to_be_bytes(),
    );
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&ZSTD.to_be_bytes());
    batch.extend_from_slice(&(record_count - 1).to_be_bytes());
    batch.extend_from_slice(&now.to_be_bytes());
    batch.extend_from_slice(&now.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(&stored);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

fn produce_error_code(conn: &mut RawConn, topic: &str, records: Bytes) -> i16 {
    let response = conn.roundtrip::<ProduceRequest>(&produce_request(topic, 0, -1, records), 9);
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_is_refused_and_broker_rss_stays_bounded() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let topic = "bombs";
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    // A small valid produce first, so the broker's steady state is what the baseline measures.
    assert_eq!(
        produce_error_code(&mut conn, topic, zstd_bomb(10, 10, |p| p)),
        raw::ERROR_NONE
    );
    let before = memory::rss(broker.pid());

    // The bomb of the issue: 10 M identical records (every offset delta 0) in a few KB.
    let identical = zstd_bomb(10_000_000, 0, |_| 0);
    // 100 k records of 1 KB zeros with proper offset deltas: 100 MB of body.
    let ordered = zstd_bomb(100_000, 1_000, |p| p);
    eprintln!(
        "bombs: {} B (10 M records) and {} B (100 MB of records)",
        identical.len(),
        ordered.len()
    );
    assert!(identical.len() < 1 << 20 && ordered.len() < 1 << 20);
    assert_eq!(
        produce_error_code(&mut conn, topic, identical),
        ERROR_INVALID_RECORD
    );
    assert_eq!(
        produce_error_code(&mut conn, topic, ordered),
        ERROR_MESSAGE_TOO_LARGE
    );

    let after = memory::rss(broker.pid());
    let growth = after.peak_bytes.saturating_sub(before.current_bytes);
    eprintln!(
        "broker RSS: {} MiB before, peak {} MiB after the bombs (+{} MiB)",
        before.current_bytes / MIB,
        after.peak_bytes / MIB,
        growth / MIB
    );
    // Unbounded decoding needs ~80 B per record plus the whole body (the issue saw +797 MiB);
    // streaming holds a 64 KiB buffer and the decoder's window.
    assert!(
        growth < 100 * MIB,
        "broker peak RSS grew by {} MiB",
        growth / MIB
    );
    assert!(broker.is_running());
    assert_eq!(harness::watermarks(&broker.bootstrap(), topic, 0), (0, 10));
}
