//! A blocking raw Kafka connection for tests: frames built with kafka-protocol or by hand, read back
//! with timeouts. Knows the frame and header layout; knows nothing about any test's expectations.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, FetchRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// How long a read may block before the test fails (or, for `expect_closed`, concludes "open").
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const API_KEY_PRODUCE: i16 = 0;
pub(crate) const API_KEY_FETCH: i16 = 1;
pub(crate) const API_KEY_API_VERSIONS: i16 = 18;

pub(crate) const ERROR_NONE: i16 = 0;
pub(crate) const ERROR_CORRUPT_MESSAGE: i16 = 2;
pub(crate) const ERROR_UNSUPPORTED_VERSION: i16 = 35;

/// A plain TCP connection speaking Kafka frames (4-byte big-endian length prefix).
pub(crate) struct RawConn {
    stream: TcpStream,
    next_correlation_id: i32,
    client_id: &'static str,
}

impl RawConn {
    pub(crate) fn connect(addr: SocketAddr) -> RawConn {
        Self::connect_as(addr, "tidelog-it-raw")
    }

    /// [`RawConn::connect`] with `client_id` in every request header.
    pub(crate) fn connect_as(addr: SocketAddr, client_id: &'static str) -> RawConn {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT).expect("connect to broker");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("set write timeout");
        stream.set_nodelay(true).expect("set nodelay");
        RawConn {
            stream,
            next_correlation_id: 1,
            client_id,
        }
    }

    /// Writes arbitrary bytes (no framing added).
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to broker");
    }

    /// Half-closes our side: the broker sees EOF.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown write half");
    }

    fn take_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        id
    }

    /// Frames and sends `header || body` where the header is encoded at `header_version`.
    pub(crate) fn send_with_header(
        &mut self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        body: &[u8],
    ) -> i32 {
        let correlation_id = self.take_correlation_id();
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header
            .encode(&mut frame, header_version)
            .expect("encode request header");
        frame.put_slice(body);
        let len = i32::try_from(frame.len() - 4).expect("frame fits i32");
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.write_bytes(&frame);
        correlation_id
    }

    /// Encodes and sends a kafka-protocol request at `version`; returns its correlation id.
    pub(crate) fn send<R: Request>(&mut self, request: &R, version: i16) -> i32 {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .expect("encode request body");
        self.send_with_header(R::KEY, version, R::header_version(version), &body)
    }

    /// Reads one whole response frame (without the length prefix). Panics on EOF or timeout.
    pub(crate) fn read_frame(&mut self) -> Bytes {
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .expect("read response length (connection closed or timed out)");
        let len = i32::from_be_bytes(len);
        assert!(
            (0..64 * 1024 * 1024).contains(&len),
            "absurd response length {len}"
        );
        let mut body = vec![0u8; usize::try_from(len).expect("non-negative")];
        self.stream
            .read_exact(&mut body)
            .expect("read response body");
        Bytes::from(body)
    }

    /// Reads the response to `correlation_id`, decoded as `R::Response` at `version`.
    pub(crate) fn receive<R: Request>(&mut self, correlation_id: i32, version: i16) -> R::Response {
        let mut frame = self.read_frame();
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .expect("decode response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "response correlation id does not match the request"
        );
        let response = R::Response::decode(&mut frame, version).expect("decode response body");
        assert!(
            !frame.has_remaining(),
            "{} unread bytes after the response body (api key {}, v{version})",
            frame.remaining(),
            R::KEY
        );
        response
    }

    pub(crate) fn roundtrip<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        let correlation_id = self.send(request, version);
        self.receive::<R>(correlation_id, version)
    }

    /// Asserts the broker closes the connection (EOF or reset) within READ_TIMEOUT without
    /// sending anything first.
    pub(crate) fn expect_closed(&mut self, what: &str) {
        let mut buf = [0u8; 256];
        // A signal may interrupt the read (EINTR): read again.
        let read = loop {
            match self.stream.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) => {}
            Ok(n) => panic!(
                "{what}: expected the broker to close the connection, it sent {n} bytes: {:02x?}",
                &buf[..n]
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: connection still open after {READ_TIMEOUT:?}")
            }
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
    }
}

/// The newest ApiVersions version the tests speak.
const API_VERSIONS_VERSION: i16 = 3;

/// ApiVersions v3 on a fresh connection; asserts error_code 0.
pub(crate) fn api_versions(addr: SocketAddr) -> ApiVersionsResponse {
    let mut conn = RawConn::connect(addr);
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tidelog-it"))
        .with_client_software_version(StrBytes::from_static_str("0.0.0"));
    let response = conn.roundtrip(&request, API_VERSIONS_VERSION);
    assert_eq!(response.error_code, ERROR_NONE, "ApiVersions v3 error");
    assert!(
        !response.api_keys.is_empty(),
        "ApiVersions v3 advertised no APIs"
    );
    response
}

/// The highest version of `api_key` in both the broker's range and `ours` (min, max).
pub(crate) fn negotiate(response: &ApiVersionsResponse, api_key: i16, ours: (i16, i16)) -> i16 {
    let advertised = response
        .api_keys
        .iter()
        .find(|k| k.api_key == api_key)
        .unwrap_or_else(|| panic!("broker does not advertise api key {api_key}"));
    let min = advertised.min_version.max(ours.0);
    let max = advertised.max_version.min(ours.1);
    assert!(
        min <= max,
        "no common version for api key {api_key}: broker {}..={}, tests {}..={}",
        advertised.min_version,
        advertised.max_version,
        ours.0,
        ours.1
    );
    max
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Raw Fetch (name-based versions 4..=12) of one partition; returns the stored batch bytes.
pub(crate) fn fetch_records(addr: SocketAddr, topic: &str, partition: i32, offset: i64) -> Bytes {
    let version = negotiate(&api_versions(addr), API_KEY_FETCH, (4, 12));
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(4 * 1024 * 1024)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(4 * 1024 * 1024),
                ]),
        ]);
    let mut conn = RawConn::connect(addr);
    let response = conn.roundtrip(&request, version);
    assert_eq!(response.error_code, ERROR_NONE, "fetch top-level error");
    let data = &response.responses[0].partitions[0];
    assert_eq!(
        data.error_code, ERROR_NONE,
        "fetch error for {topic}-{partition}"
    );
    data.records.clone().unwrap_or_default()
}

/// The fixed header fields of one stored record batch (magic v2 layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSummary {
    pub(crate) base_offset: i64,
    pub(crate) magic: i8,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) record_count: i32,
}

impl BatchSummary {
    pub(crate) fn compression(&self) -> i16 {
        self.attributes & 0x7
    }
}

/// Splits fetched bytes into whole batches (a trailing partial batch is ignored, as clients do).
pub(crate) fn batch_summaries(mut records: &[u8]) -> Vec<BatchSummary> {
    let mut out = Vec::new();
    while records.len() >= 61 {
        let batch_length = i32::from_be_bytes(records[8..12].try_into().expect("4 bytes"));
        let total = 12 + usize::try_from(batch_length).expect("non-negative batch length");
        if records.len() < total {
            break;
        }
        let mut header = &records[..61];
        let base_offset = header.get_i64();
        let _batch_length = header.get_i32();
        let _partition_leader_epoch = header.get_i32();
        let magic = header.get_i8();
        let _crc = header.get_u32();
        let attributes = header.get_i16();
        let last_offset_delta = header.get_i32();
        header.advance(8 + 8 + 8 + 2 + 4);
        let record_count = header.get_i32();
        out.push(BatchSummary {
            base_offset,
            magic,
            attributes,
            last_offset_delta,
            record_count,
        });
        records = &records[total..];
    }
    out
}

/// Shorthand for an ApiVersionsResponse that must list `api_key`.
pub(crate) fn advertises(response: &ApiVersionsResponse, api_key: i16) -> bool {
    response.api_keys.iter().any(|k| k.api_key == api_key)
}

/// ListOffsets v5 (latest) of one partition at `addr` with `isolation_level` (0 uncommitted,
/// 1 committed): (error code, offset).
pub(crate) fn latest_offset(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> (i16, i64) {
    list_offset(addr, topic, partition, -1, isolation_level)
}

/// ListOffsets v5 of one partition at `addr` for `timestamp` (-1 latest, -2 earliest) with
/// `isolation_level`: (error code, offset).
pub(crate) fn list_offset(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    timestamp: i64,
    isolation_level: i8,
) -> (i16, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response = RawConn::connect(addr).roundtrip(&request, 5);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}

/// DeleteRecords v2 of `partition` of `topic` below `offset` at `addr`: (error code, low
/// watermark).
pub(crate) fn delete_records(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    use kafka_protocol::messages::DeleteRecordsRequest;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(partition)
                        .with_offset(offset),
                ]),
        ]);
    let response = RawConn::connect(addr).roundtrip(&request, 2);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.low_watermark)
}
