//! Bad bytes on the Kafka port: broken frames close the connection, unsupported versions and corrupt
//! batches get Kafka error codes, and after every bad input the broker still serves new clients.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use tempfile::TempDir;

use crate::acks::{encode_batch, produce_request};
use crate::harness::{self, Broker};
use crate::raw::{self, RawConn};

/// Asserts that a brand-new connection still gets a good ApiVersions answer.
#[track_caller]
fn assert_broker_serves(broker: &mut Broker, after: &str) {
    assert!(broker.is_running(), "broker process died after {after}");
    let response = raw::api_versions(broker.addr());
    assert!(
        raw::advertises(&response, raw::API_KEY_API_VERSIONS),
        "after {after}: ApiVersions does not list itself"
    );
}

fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tidelog-it"))
        .with_client_software_version(StrBytes::from_static_str("0.0.0"))
}

/// Deterministic pseudo-random bytes (no rand dependency needed).
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

#[test]
fn truncated_frame_then_close_leaves_broker_serving() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    // Half a length prefix.
    let mut conn = RawConn::connect(broker.addr());
    conn.write_bytes(&[0, 0]);
    conn.shutdown_write();
    conn.expect_closed("half a length prefix then EOF");
    assert_broker_serves(&mut broker, "half a length prefix");

    // A length prefix promising 100 bytes, then 10 bytes of an ApiVersions header, then EOF.
    let mut conn = RawConn::connect(broker.addr());
    conn.write_bytes(&100i32.to_be_bytes());
    conn.write_bytes(&[0, 18, 0, 3, 0, 0, 0, 7, 0, 2]);
    conn.shutdown_write();
    conn.expect_closed("truncated frame then EOF");
    assert_broker_serves(&mut broker, "a truncated frame");

    // Same, but the client vanishes without a FIN (drop the socket).
    let mut conn = RawConn::connect(broker.addr());
    conn.write_bytes(&50i32.to_be_bytes());
    conn.write_bytes(&[0, 18]);
    drop(conn);
    assert_broker_serves(&mut broker, "a dropped half-frame connection");
}

#[test]
fn absurd_frame_length_closes_connection_and_broker_keeps_serving() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    // A healthy connection opened before the bad ones must keep working.
    let mut healthy = RawConn::connect(broker.addr());
    let response = healthy.roundtrip(&api_versions_request(), 3);
    assert_eq!(response.error_code, raw::ERROR_NONE);

    for (length, what) in [
        (0x7fff_ffff_i32, "frame length 0x7fffffff"),
        (-1, "negative frame length"),
        (i32::MIN, "frame length i32::MIN"),
        (0, "zero frame length"),
    ] {
        let mut conn = RawConn::connect(broker.addr());
        // (An empty frame cannot hold a request header either.)
        conn.write_bytes(&length.to_be_bytes());
        conn.expect_closed(what);
        assert_broker_serves(&mut broker, what);
    }

    let response = healthy.roundtrip(&api_versions_request(), 3);
    assert_eq!(
        response.error_code,
        raw::ERROR_NONE,
        "the earlier connection still works"
    );
}

#[test]
fn unknown_api_key_closes_connection() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    for api_key in [12_345_i16, -1, 999] {
        let mut conn = RawConn::connect(broker.addr());
        conn.send_with_header(api_key, 0, 1, &[1, 2, 3, 4]);
        conn.expect_closed(&format!("unknown api key {api_key}"));
        assert_broker_serves(&mut broker, &format!("unknown api key {api_key}"));
    }
}

#[test]
fn api_versions_unsupported_version_answers_v0_with_error_35() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let mut conn = RawConn::connect(broker.addr());
    let mut body = BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&api_versions_request(), &mut body, 3)
        .expect("encode body");
    // Header v2 (flexible) as a client that believes v99 exists would send it.
    let correlation_id = conn.send_with_header(raw::API_KEY_API_VERSIONS, 99, 2, &body);
    let mut frame = conn.read_frame();
    assert_eq!(frame.get_i32(), correlation_id, "correlation id");
    let response = <kafka_protocol::messages::ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(
        &mut frame, 0,
    )
    .expect("response decodes as ApiVersions v0");
    assert!(
        !frame.has_remaining(),
        "{} trailing bytes after a v0 body",
        frame.remaining()
    );
    assert_eq!(response.error_code, raw::ERROR_UNSUPPORTED_VERSION);
    assert!(
        !response.api_keys.is_empty(),
        "the error response must still list the supported versions"
    );
    let own = response
        .api_keys
        .iter()
        .find(|k| k.api_key == raw::API_KEY_API_VERSIONS)
        .expect("ApiVersions lists itself");
    assert_eq!(own.min_version, 0, "{own:?}");
    assert!((3..99).contains(&own.max_version), "{own:?}");
    // The client retries with a supported version on the same connection.
    let response = conn.roundtrip(&api_versions_request(), own.max_version.min(4));
    assert_eq!(response.error_code, raw::ERROR_NONE);
    assert_broker_serves(&mut broker, "ApiVersions v99");
}

#[test]
fn api_versions_every_supported_version_answers() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let max = raw::negotiate(
        &raw::api_versions(broker.addr()),
        raw::API_KEY_API_VERSIONS,
        (0, 4),
    );
    for version in 0..=max {
        let mut conn = RawConn::connect(broker.addr());
        let response = conn.roundtrip(&api_versions_request(), version);
        assert_eq!(
            response.error_code,
            raw::ERROR_NONE,
            "ApiVersions v{version}"
        );
        assert!(
            raw::advertises(&response, raw::API_KEY_PRODUCE),
            "ApiVersions v{version} lacks Produce"
        );
        let produce = response
            .api_keys
            .iter()
            .find(|k| k.api_key == raw::API_KEY_PRODUCE)
            .expect("produce listed");
        // librdkafka only compresses when Produce v0 is advertised (librdkafka#4956).
        assert_eq!(produce.min_version, 0, "Produce min version: {produce:?}");
    }
}

/// Produce v2 body (pre-KIP-98, non-flexible), one partition with an empty message set.
fn produce_v2_body(topic: &str) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(1); // acks
    body.put_i32(5_000); // timeout_ms
    body.put_i32(1); // topics
    body.put_i16(i16::try_from(topic.len()).expect("short name"));
    body.put_slice(topic.as_bytes());
    body.put_i32(1); // partitions
    body.put_i32(0); // partition index
    body.put_i32(0); // message set size
    body.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_v2_is_answered_with_unsupported_version() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "legacy", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let correlation_id =
        conn.send_with_header(raw::API_KEY_PRODUCE, 2, 1, &produce_v2_body("legacy"));
    let mut frame = conn.read_frame();
    let raw_frame = frame.clone();
    assert_eq!(frame.get_i32(), correlation_id, "correlation id");
    // ProduceResponse v2: [topic: name, [partition: index, error_code, base_offset, log_append_time]], throttle.
    let topics = frame.get_i32();
    assert_eq!(topics, 1, "one topic in the response: {raw_frame:02x?}");
    let name_len = usize::try_from(frame.get_i16()).expect("non-null name");
    let name = frame.copy_to_bytes(name_len);
    assert_eq!(&name[..], b"legacy");
    assert_eq!(
        frame.get_i32(),
        1,
        "one partition in the response: {raw_frame:02x?}"
    );
    assert_eq!(frame.get_i32(), 0, "partition index");
    assert_eq!(
        frame.get_i16(),
        raw::ERROR_UNSUPPORTED_VERSION,
        "partition error code"
    );
    let _base_offset = frame.get_i64();
    let _log_append_time = frame.get_i64();
    let _throttle_time_ms = frame.get_i32();
    assert!(
        !frame.has_remaining(),
        "trailing bytes in the v2 response: {raw_frame:02x?}"
    );
    assert_eq!(
        harness::watermarks(&broker.bootstrap(), "legacy", 0),
        (0, 0)
    );
    assert_broker_serves(&mut broker, "Produce v2");
}

/// Sends `records` to topic/partition 0 at `version` on `conn`; returns the partition error code.
fn produce_error_code(conn: &mut RawConn, topic: &str, records: Bytes, version: i16) -> i16 {
    let response =
        conn.roundtrip::<ProduceRequest>(&produce_request(topic, 0, -1, records), version);
    assert_eq!(response.responses.len(), 1, "{response:?}");
    assert_eq!(
        response.responses[0].partition_responses.len(),
        1,
        "{response:?}"
    );
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_corrupt_batches_are_rejected_with_corrupt_message() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let topic = "corrupt";
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let produce_max = raw::negotiate(
        &raw::api_versions(broker.addr()),
        raw::API_KEY_PRODUCE,
        (3, 12),
    );
    let mut versions = vec![3, produce_max];
    if produce_max >= 9 {
        versions.push(8); // the last non-flexible version
    }
    versions.sort_unstable();
    versions.dedup();

    let valid = encode_batch(5);
    let mut bad_batches: Vec<(&str, Bytes)> = Vec::new();
    bad_batches.push(("100 garbage bytes", Bytes::from(garbage(100, 7))));
    bad_batches.push(("5 garbage bytes", Bytes::from(garbage(5, 11))));
    let mut flipped_value = valid.to_vec();
    *flipped_value.last_mut().expect("non-empty") ^= 0x5a;
    bad_batches.push(("a record byte flipped", Bytes::from(flipped_value)));
    let mut flipped_crc = valid.to_vec();
    flipped_crc[18] ^= 0x01; // inside the CRC field (bytes 17..21)
    bad_batches.push(("a CRC byte flipped", Bytes::from(flipped_crc)));
    let mut flipped_count = valid.to_vec();
    flipped_count[60] ^= 0x02; // record count (bytes 57..61), covered by the CRC
    bad_batches.push(("record count changed", Bytes::from(flipped_count)));
    bad_batches.push(("batch cut short", valid.slice(..valid.len() - 7)));
    let mut length_lies = valid.to_vec();
    length_lies[8..12].copy_from_slice(&1_000_000i32.to_be_bytes()); // batch_length beyond the data
    bad_batches.push(("batch length beyond the data", Bytes::from(length_lies)));

    for &version in &versions {
        let mut conn = RawConn::connect(broker.addr());
        for (what, batch) in &bad_batches {
            let code = produce_error_code(&mut conn, topic, batch.clone(), version);
            assert_eq!(
                code,
                raw::ERROR_CORRUPT_MESSAGE,
                "Produce v{version} with {what}"
            );
            assert_broker_serves(&mut broker, what);
        }
        assert_eq!(
            harness::watermarks(&broker.bootstrap(), topic, 0),
            (0, 0),
            "no corrupt batch was appended (v{version})"
        );
    }

    // The same connection then takes a valid batch, at offset 0.
    let mut conn = RawConn::connect(broker.addr());
    let _ = produce_error_code(&mut conn, topic, bad_batches[0].1.clone(), produce_max);
    let response =
        conn.roundtrip::<ProduceRequest>(&produce_request(topic, 0, -1, valid), produce_max);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, raw::ERROR_NONE, "{partition:?}");
    assert_eq!(partition.base_offset, 0);
    assert_eq!(harness::watermarks(&broker.bootstrap(), topic, 0), (0, 5));
}

#[test]
fn produce_undecodable_request_body_closes_connection() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let mut conn = RawConn::connect(broker.addr());
    // Produce v3 whose body ends after two bytes of the transactional_id length.
    conn.send_with_header(raw::API_KEY_PRODUCE, 3, 1, &[0x00]);
    conn.expect_closed("Produce v3 with a truncated body");
    assert_broker_serves(&mut broker, "an undecodable Produce body");

    // An array length claiming 2^31-1 topics must not make the broker allocate or hang.
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional_id: null
    body.put_i16(1); // acks
    body.put_i32(1_000); // timeout_ms
    body.put_i32(i32::MAX); // topic count
    let mut conn = RawConn::connect(broker.addr());
    conn.send_with_header(raw::API_KEY_PRODUCE, 3, 1, &body);
    conn.expect_closed("Produce v3 with a huge topic count");
    assert_broker_serves(&mut broker, "a huge array length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_oversized_batch_is_rejected_and_partition_keeps_working() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(
        &bootstrap,
        "small-segments",
        1,
        &[("segment.bytes", "1024")],
    )
    .await;
    harness::create_topic(
        &bootstrap,
        "small-messages",
        1,
        &[("max.message.bytes", "1000")],
    )
    .await;
    let version = raw::negotiate(
        &raw::api_versions(broker.addr()),
        raw::API_KEY_PRODUCE,
        (3, 12),
    );
    let big = encode_batch(200);
    assert!(big.len() > 2_000, "test batch is {} bytes", big.len());
    let mut conn = RawConn::connect(broker.addr());
    // Kafka: larger than segment.bytes => RECORD_BATCH_TOO_LARGE (18, not retriable).
    let code = produce_error_code(&mut conn, "small-segments", big.clone(), version);
    assert_eq!(
        code,
        ERROR_RECORD_BATCH_TOO_LARGE,
        "batch of {} bytes, segment.bytes 1024",
        big.len()
    );
    // Kafka: larger than max.message.bytes => MESSAGE_TOO_LARGE (10).
    let code = produce_error_code(&mut conn, "small-messages", big.clone(), version);
    assert_eq!(
        code,
        ERROR_MESSAGE_TOO_LARGE,
        "batch of {} bytes, max.message.bytes 1000",
        big.len()
    );
    assert_broker_serves(&mut broker, "oversized batches");
    // Both partitions still take a small batch, at offset 0.
    for topic in ["small-segments", "small-messages"] {
        let response = conn
            .roundtrip::<ProduceRequest>(&produce_request(topic, 0, -1, encode_batch(3)), version);
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            partition.error_code,
            raw::ERROR_NONE,
            "{topic}: {partition:?}"
        );
        assert_eq!(partition.base_offset, 0, "{topic}");
    }
}

const ERROR_MESSAGE_TOO_LARGE: i16 = 10;
const ERROR_RECORD_BATCH_TOO_LARGE: i16 = 18;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_two_batches_in_one_partition_is_invalid_record() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "one-batch", 1, &[]).await;
    let version = raw::negotiate(
        &raw::api_versions(broker.addr()),
        raw::API_KEY_PRODUCE,
        (3, 12),
    );
    // Kafka (ProduceRequest.validateRecords): v3+ carries exactly one batch per partition.
    let mut two = BytesMut::new();
    two.put_slice(&encode_batch(2));
    two.put_slice(&encode_batch(3));
    let mut conn = RawConn::connect(broker.addr());
    let code = produce_error_code(&mut conn, "one-batch", two.freeze(), version);
    assert_eq!(
        code, ERROR_INVALID_RECORD,
        "two batches in one partition's records"
    );
    assert_eq!(
        harness::watermarks(&broker.bootstrap(), "one-batch", 0),
        (0, 0)
    );
    assert_broker_serves(&mut broker, "a two-batch produce");
}

const ERROR_INVALID_RECORD: i16 = 87;
