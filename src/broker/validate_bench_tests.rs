//! A focused benchmark of produce validation (`validate::batches`) on 1 MiB batches in every
//! codec, printing throughput; ignored by default, never asserts timings. Run with
//! `cargo test --release --lib -- --ignored --nocapture validate_bench`.

use std::io::Write;
use std::time::Duration;

use super::validate::{Rules, batches};

/// Uncompressed record bytes per batch (librdkafka's batch.size in scripts/bench).
const BATCH_BODY_BYTES: usize = 1 << 20;

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

/// Records of about `value_bytes` each, JSON-like text that compresses the way logs do.
fn body(value_bytes: usize) -> (Vec<u8>, i32) {
    let mut body = Vec::with_capacity(BATCH_BODY_BYTES + 4096);
    let mut count = 0i32;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while body.len() < BATCH_BODY_BYTES {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut value = format!(
            "{{\"id\":{count},\"user\":\"user-{}\",\"ts\":{},\"msg\":\"",
            state % 1000,
            1_700_000_000_000u64 + (state >> 40)
        )
        .into_bytes();
        while value.len() + 2 < value_bytes {
            value.extend_from_slice(b"lorem ipsum dolor sit amet ");
            value.push(b'a' + (state >> (value.len() % 60)) as u8 % 26);
        }
        value.truncate(value_bytes.saturating_sub(2));
        value.extend_from_slice(b"\"}");
        let key = format!("key-{}", state % 10_000).into_bytes();
        let mut record = vec![0u8];
        put_zigzag(&mut record, i64::from(count)); // timestamp delta
        put_zigzag(&mut record, i64::from(count)); // offset delta
        put_zigzag(&mut record, key.len() as i64);
        record.extend_from_slice(&key);
        put_zigzag(&mut record, value.len() as i64);
        record.extend_from_slice(&value);
        record.push(0);
        put_zigzag(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
        count += 1;
    }
    (body, count)
}

fn compress(codec: i16, body: &[u8]) -> Vec<u8> {
    match codec {
        0 => body.to_vec(),
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).expect("gzip");
            encoder.finish().expect("gzip")
        }
        2 => {
            // xerial framing, as the Java client writes it
            let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
            for chunk in body.chunks(32 * 1024) {
                let block = snap::raw::Encoder::new()
                    .compress_vec(chunk)
                    .expect("snappy");
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        3 => {
            let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
            encoder.write_all(body).expect("lz4");
            let (out, result) = encoder.finish();
            result.expect("lz4");
            out
        }
        4 => zstd::stream::encode_all(body, 3).expect("zstd"),
        other => panic!("codec {other}"),
    }
}

fn batch(codec: i16, value_bytes: usize) -> (Vec<u8>, i32) {
    let (body, count) = body(value_bytes);
    let stored = compress(codec, &body);
    let mut batch = Vec::with_capacity(61 + stored.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((49 + stored.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&codec.to_be_bytes());
    batch.extend_from_slice(&(count - 1).to_be_bytes());
    batch.extend_from_slice(&1_000i64.to_be_bytes());
    batch.extend_from_slice(&(1_000 + i64::from(count) - 1).to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(&stored);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    (batch, count)
}

/// CPU time this thread has used (unaffected by other processes sharing the cores).
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).expect("non-negative"),
        u32::try_from(now.tv_nsec).expect("below a second"),
    )
}

/// Best of `SAMPLES` samples of thread CPU time per batch: the least disturbed by other load.
fn fastest_batch_time(batch: &[u8], rules: &Rules) -> Duration {
    let mut fastest = Duration::MAX;
    for _ in 0..SAMPLES {
        let started = thread_cpu_time();
        for _ in 0..ROUNDS_PER_SAMPLE {
            let checked = batches(batch, rules).expect("a valid batch");
            std::hint::black_box(checked);
        }
        fastest = fastest.min((thread_cpu_time() - started) / ROUNDS_PER_SAMPLE);
    }
    fastest
}

const SAMPLES: u32 = 40;
const ROUNDS_PER_SAMPLE: u32 = 8;

#[test]
#[ignore = "benchmark: prints figures, run with --release --ignored --nocapture"]
fn validate_bench_compressed_batches() {
    let rules = Rules {
        message_bytes_max: 8 << 20,
        segment_bytes_max: 1 << 30,
        require_keys: false,
        codec: None,
    };
    for value_bytes in [100, 1024] {
        for (codec, name) in [
            (0, "none"),
            (1, "gzip"),
            (2, "snappy"),
            (3, "lz4"),
            (4, "zstd"),
        ] {
            let (batch, count) = batch(codec, value_bytes);
            let checked = batches(&batch, &rules).expect("a valid batch");
            assert!(
                checked[0].rewritten.is_none(),
                "the benchmark batch needs no rewrite"
            );
            let per_batch = fastest_batch_time(&batch, &rules).as_secs_f64();
            eprintln!(
                "validate {name:>6} {value_bytes:>4} B records: {:>7} B batch, {:>8.1} us/batch, \
                 {:>7.0} MB/s uncompressed, {:>6.2} M records/s (best of {SAMPLES}, thread CPU)",
                batch.len(),
                per_batch * 1e6,
                BATCH_BODY_BYTES as f64 / per_batch / 1e6,
                f64::from(count) / per_batch / 1e6,
            );
        }
    }
}
