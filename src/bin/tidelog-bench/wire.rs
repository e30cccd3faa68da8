//! Raw Kafka requests for the cluster run (kafka-protocol over a blocking socket): Metadata for
//! the broker list and controller id, which librdkafka does not expose, and a topic's leaders and
//! in-sync replicas as one chosen broker sees them; CreateTopics sent to one chosen broker rather
//! than to the controller librdkafka would pick; DescribeLogDirs for the size of each replica's
//! log on one broker; a connection kept open for the SASL exchanges of the authentication run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeLogDirsRequest, MetadataRequest, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// Largest response frame accepted.
const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
const DESCRIBE_LOG_DIRS_VERSION: i16 = 4;
pub(crate) const SASL_HANDSHAKE_VERSION: i16 = 1;
pub(crate) const SASL_AUTHENTICATE_VERSION: i16 = 2;
/// Kafka's TOPIC_ALREADY_EXISTS: an earlier attempt that timed out on our side created it.
pub(crate) const ERROR_TOPIC_ALREADY_EXISTS: i16 = 36;

/// Sends one request on a fresh connection and decodes its response; `timeout` bounds the
/// connect, the write and each read.
fn roundtrip<R: Request>(
    addr: &str,
    request: &R,
    version: i16,
    timeout: Duration,
) -> Result<R::Response> {
    Conn::connect(addr, timeout)?.call(request, version)
}

/// One blocking connection to a broker, requests answered one at a time.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    correlation_id: i32,
}

impl Conn {
    /// Connects to `addr`; `timeout` bounds the connect, and then every write and read.
    pub(crate) fn connect(addr: &str, timeout: Duration) -> Result<Conn> {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("broker address {addr}"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            correlation_id: 0,
        })
    }

    /// Sends `request` as `version` and decodes its response.
    pub(crate) fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("tidelog-bench")));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header
            .encode(&mut frame, R::header_version(version))
            .context("encoding the request header")?;
        request
            .encode(&mut frame, version)
            .context("encoding the request")?;
        let len = i32::try_from(frame.len() - 4).context("request frame length")?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .write_all(&frame)
            .context("sending the request")?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .context("reading the response length")?;
        let len = usize::try_from(i32::from_be_bytes(len)).context("negative response length")?;
        ensure!(len <= FRAME_BYTES_MAX, "response of {len} bytes");
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .context("reading the response")?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(
            &mut body,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .context("decoding the response header")?;
        ensure!(
            header.correlation_id == self.correlation_id,
            "response to another request"
        );
        R::Response::decode(&mut body, version).context("decoding the response")
    }

    /// SaslHandshake v1 for `mechanism`; fails unless the broker enables it.
    pub(crate) fn sasl_handshake(&mut self, mechanism: &'static str) -> Result<()> {
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let response = self.call(&request, SASL_HANDSHAKE_VERSION)?;
        ensure!(
            response.error_code == 0,
            "SaslHandshake {mechanism}: error code {} (enabled: {:?})",
            response.error_code,
            response.mechanisms
        );
        Ok(())
    }

    /// SaslAuthenticate v2 with `token`: the server's answer, or its error.
    pub(crate) fn sasl_authenticate(&mut self, token: &[u8]) -> Result<Vec<u8>> {
        let request =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
        let response = self.call(&request, SASL_AUTHENTICATE_VERSION)?;
        ensure!(
            response.error_code == 0,
            "SaslAuthenticate: error code {} ({})",
            response.error_code,
            response.error_message.as_deref().unwrap_or_default()
        );
        Ok(response.auth_bytes.to_vec())
    }
}

/// What one broker's Metadata says of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// Node ids, sorted.
    pub(crate) broker_ids: Vec<i32>,
    /// The controller leader's node id (-1 when none).
    pub(crate) controller_id: i32,
}

/// Metadata (no topics) from the broker at `addr`.
pub(crate) fn cluster_view(addr: &str, timeout: Duration) -> Result<ClusterView> {
    let request = MetadataRequest::default().with_topics(Some(Vec::new()));
    let response = roundtrip(addr, &request, METADATA_VERSION, timeout)?;
    let mut broker_ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    broker_ids.sort_unstable();
    Ok(ClusterView {
        broker_ids,
        controller_id: response.controller_id.0,
    })
}

/// CreateTopics of one topic (replication factor 1) at the broker at `addr`: the topic's error
/// code, 0 when created.
pub(crate) fn create_topic_at(
    addr: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<i16> {
    let creatable = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_num_partitions(partitions)
        .with_replication_factor(1);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![creatable])
        // Half the socket timeout, so the broker answers before the read gives up.
        .with_timeout_ms(i32::try_from(timeout.as_millis() / 2).unwrap_or(i32::MAX));
    let response = roundtrip(addr, &request, CREATE_TOPICS_VERSION, timeout)?;
    let result = response
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == topic)
        .with_context(|| format!("CreateTopics answer without {topic}"))?;
    Ok(result.error_code)
}

/// One partition as a broker's Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    /// -1 when it has none.
    pub(crate) leader: i32,
    /// In-sync replicas, sorted.
    pub(crate) isr: Vec<i32>,
}

/// Metadata of `topic` from the broker at `addr`: each partition's leader and in-sync replicas
/// (empty while the broker does not know the topic).
pub(crate) fn topic_view(
    addr: &str,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, PartitionView>> {
    let wanted = MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))));
    let request = MetadataRequest::default().with_topics(Some(vec![wanted]));
    let response = roundtrip(addr, &request, METADATA_VERSION, timeout)?;
    let mut view = BTreeMap::new();
    for found in response
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    {
        for partition in &found.partitions {
            let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|id| id.0).collect();
            isr.sort_unstable();
            view.insert(
                partition.partition_index,
                PartitionView {
                    leader: partition.leader_id.0,
                    isr,
                },
            );
        }
    }
    Ok(view)
}

/// DescribeLogDirs of partitions `0..partitions` of `topic` at the broker at `addr`: the size in
/// bytes of each one's log on that broker (a partition it holds no replica of is absent).
pub(crate) fn log_sizes(
    addr: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let wanted = DescribableLogDirTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partitions((0..partitions).collect());
    let request = DescribeLogDirsRequest::default().with_topics(Some(vec![wanted]));
    let response = roundtrip(addr, &request, DESCRIBE_LOG_DIRS_VERSION, timeout)?;
    ensure!(
        response.error_code == 0,
        "DescribeLogDirs error code {}",
        response.error_code
    );
    let mut sizes = BTreeMap::new();
    for dir in &response.results {
        ensure!(
            dir.error_code == 0,
            "DescribeLogDirs error code {} for {}",
            dir.error_code,
            dir.log_dir.as_str()
        );
        for found in dir.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            for partition in &found.partitions {
                *sizes.entry(partition.partition_index).or_insert(0) += partition.partition_size;
            }
        }
    }
    Ok(sizes)
}
