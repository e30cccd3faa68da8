//! Issue 7, item 8: memory per connection and per broker is bounded. Idle sockets at the
//! connection cap do not lock out a new client, idle connections are closed, pipelined large
//! requests do not grow the broker's RSS past the request budget, and fetch.max.bytes caps
//! fetch responses.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use tempfile::TempDir;

use crate::acks::{encode_batch, produce_request};
use crate::harness::{self, Broker};
use crate::memory::{self, MIB};
use crate::raw::{self, RawConn};

const IDLE_SOCKETS: usize = 10_000;

/// Raises this process's soft open-files limit to the hard limit (the broker child inherits it)
/// and returns the new soft limit.
fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .expect("raise RLIMIT_NOFILE to its hard limit");
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the broker's fd directory")
        .count()
}

#[test]
fn idle_sockets_at_the_connection_cap_do_not_lock_out_a_new_client() {
    let open_files_max = raise_open_files_limit();
    assert!(
        open_files_max >= (IDLE_SOCKETS + 1_000) as u64,
        "this test needs RLIMIT_NOFILE of at least {} (hard limit {open_files_max})",
        IDLE_SOCKETS + 1_000
    );
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let baseline_fds = open_fds(broker.pid());
    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        idle.push(TcpStream::connect(broker.addr()).expect("open an idle socket"));
    }
    // The default cap is 10,000: wait until the broker accepted all of them.
    harness::wait_until(
        harness::CLIENT_DEADLINE,
        "the broker to accept every idle socket",
        || open_fds(broker.pid()) >= baseline_fds + IDLE_SOCKETS,
    );

    // A new client is served (before, it waited in the accept backlog for ever).
    let response = raw::api_versions(broker.addr());
    assert!(raw::advertises(&response, raw::API_KEY_API_VERSIONS));
    let topics = harness::user_topics(&broker.bootstrap());
    assert!(topics.is_empty(), "{topics:?}");

    // To make room the broker closed only idle sockets, as few as it needed.
    let closed = idle
        .iter_mut()
        .map(|socket| {
            socket.set_nonblocking(true).expect("nonblocking");
            let mut byte = [0u8; 1];
            !matches!(socket.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
        })
        .filter(|is_closed| *is_closed)
        .count();
    eprintln!("{closed} of {IDLE_SOCKETS} idle sockets were closed to serve new clients");
    assert!((1..=100).contains(&closed), "{closed} idle sockets closed");
    assert!(broker.is_running());
}

#[test]
fn closed_connections_free_their_slots() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker =
        Broker::start_with_env(dir.path(), &[("TIDELOG_LIMITS__MAX_CONNECTIONS", "1")]);
    for round in 0..5 {
        let mut conn = RawConn::connect(broker.addr());
        let response = conn.roundtrip(&api_versions_request(), 3);
        assert_eq!(response.error_code, raw::ERROR_NONE, "round {round}");
        conn.shutdown_write();
        conn.expect_closed("the broker ends a connection whose peer closed");
    }
    assert!(broker.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_after_connections_max_idle_ms() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start_with_env(
        dir.path(),
        &[("TIDELOG_LIMITS__CONNECTIONS_MAX_IDLE_MS", "300")],
    );
    // A connection waiting for a long poll is busy, not idle: its answer comes after 1.5 s.
    let topic = "idle-test";
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let mut busy = RawConn::connect(broker.addr());
    let produced = busy.roundtrip(&produce_request(topic, 0, -1, encode_batch(1)), 9);
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code,
        raw::ERROR_NONE
    );
    let long_poll = fetch_request(topic, 1, 1_500, 1 << 20);
    let started = Instant::now();
    let response = busy.roundtrip(&long_poll, 12);
    assert_eq!(response.error_code, raw::ERROR_NONE);
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "the fetch long-polled"
    );

    // A connection that sends nothing is closed (READ_TIMEOUT is 10 s, far above 300 ms).
    let mut quiet = RawConn::connect(broker.addr());
    let _ = quiet.roundtrip(&api_versions_request(), 3);
    quiet.expect_closed("a connection idle for longer than connections_max_idle_ms");
    assert!(broker.is_running());
}

fn api_versions_request() -> kafka_protocol::messages::ApiVersionsRequest {
    kafka_protocol::messages::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tidelog-it"))
        .with_client_software_version(StrBytes::from_static_str("0.0.0"))
}

/// A one-partition fetch from offset `offset` that long-polls up to `max_wait_ms`.
fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(raw::topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max_bytes),
                ]),
        ])
}

/// A whole Fetch v12 frame (length prefix included) padded with trailing bytes, which the
/// broker ignores, to `frame_bytes`.
fn padded_fetch_frame(request: &FetchRequest, correlation_id: i32, frame_bytes: usize) -> Bytes {
    let version = 12;
    let header = RequestHeader::default()
        .with_request_api_key(raw::API_KEY_FETCH)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("tidelog-it-pipeline")));
    let mut frame = BytesMut::with_capacity(frame_bytes);
    frame.put_i32(0);
    header
        .encode(&mut frame, FetchRequest::header_version(version))
        .expect("encode header");
    request.encode(&mut frame, version).expect("encode fetch");
    frame.resize(frame_bytes, 0);
    let len = i32::try_from(frame_bytes - 4).expect("fits");
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_large_requests_keep_broker_rss_bounded() {
    const CONNECTIONS: usize = 3;
    const FRAMES_PER_CONNECTION: usize = 32;
    const FRAME_BYTES: usize = 8 * 1024 * 1024;
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start_with_env(
        dir.path(),
        &[
            ("TIDELOG_LIMITS__SOCKET_REQUEST_MAX_BYTES", "8388608"),
            ("TIDELOG_LIMITS__QUEUED_MAX_REQUEST_BYTES", "33554432"),
        ],
    );
    let topic = "pipelined";
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let before = memory::rss(broker.pid());

    // Each connection pipelines long polls (30 s, on an empty topic) padded to 8 MiB and never
    // reads a response: every request stays in flight and keeps its frame.
    let request = fetch_request(topic, 0, 30_000, 1 << 20);
    let frames: Vec<Bytes> = (0..FRAMES_PER_CONNECTION)
        .map(|i| padded_fetch_frame(&request, i32::try_from(i).expect("fits"), FRAME_BYTES))
        .collect();
    let mut writers = Vec::new();
    for _ in 0..CONNECTIONS {
        let addr = broker.addr();
        let frames = frames.clone();
        writers.push(std::thread::spawn(move || {
            let mut socket = TcpStream::connect(addr).expect("connect");
            socket
                .set_write_timeout(Some(Duration::from_secs(3)))
                .expect("write timeout");
            let mut written = 0usize;
            for frame in &frames {
                match socket.write_all(frame) {
                    Ok(()) => written += frame.len(),
                    // The broker stopped reading: what it holds is what it admitted.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => panic!("write a pipelined request: {e}"),
                }
            }
            (socket, written)
        }));
    }
    let mut sockets = Vec::new();
    let mut written_total = 0;
    for writer in writers {
        let (socket, written) = writer.join().expect("writer thread");
        written_total += written;
        sockets.push(socket);
    }
    let after = memory::rss(broker.pid());
    let growth = after.peak_bytes.saturating_sub(before.current_bytes);
    eprintln!(
        "clients wrote {} MiB of pipelined requests; broker RSS {} MiB before, peak {} MiB (+{} MiB)",
        written_total as u64 / MIB,
        before.current_bytes / MIB,
        after.peak_bytes / MIB,
        growth / MIB
    );
    // The budget is 32 MiB and each connection holds one 8 MiB request at a time; without
    // bounds the broker kept every pipelined frame (3 x 32 x 8 MiB).
    assert!(
        growth < 96 * MIB,
        "broker peak RSS grew by {} MiB",
        growth / MIB
    );

    // Another client is still served: small requests bypass the exhausted budget.
    let response = raw::api_versions(broker.addr());
    assert!(raw::advertises(&response, raw::API_KEY_API_VERSIONS));
    drop(sockets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_max_bytes_caps_the_fetch_response() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start_with_env(dir.path(), &[("TIDELOG_LIMITS__FETCH_MAX_BYTES", "4096")]);
    let topic = "capped-fetch";
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let mut batch_bytes = 0;
    for _ in 0..20 {
        let batch = encode_batch(200);
        batch_bytes = batch.len();
        let response = conn.roundtrip::<ProduceRequest>(&produce_request(topic, 0, -1, batch), 9);
        assert_eq!(
            response.responses[0].partition_responses[0].error_code,
            raw::ERROR_NONE
        );
    }
    assert!(
        batch_bytes * 20 > 3 * 4096,
        "the partition holds much more than the cap"
    );
    // The consumer asks for up to 50 MiB; the broker's fetch.max.bytes wins.
    let response = conn.roundtrip(&fetch_request(topic, 0, 0, 50 << 20), 12);
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let batches = raw::batch_summaries(&records);
    assert!(!batches.is_empty(), "the first batch is always returned");
    assert!(
        records.len() <= 4096,
        "fetch returned {} bytes ({} batches) over fetch_max_bytes 4096",
        records.len(),
        batches.len()
    );
}
