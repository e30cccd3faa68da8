//! Sweeps every API and version of the ApiVersions table through `dispatch` with a meaningful
//! request, decoding each response frame with kafka-protocol at that version; test-only.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, BrokerId, RequestHeader, ResponseHeader, TopicName, create_partitions_request,
    create_topics_request, delete_records_request, delete_topics_request, describe_configs_request,
    describe_log_dirs_request, fetch_request, incremental_alter_configs_request,
    join_group_request, leave_group_request, list_offsets_request, metadata_request,
    offset_commit_request, offset_delete_request, offset_fetch_request,
    offset_for_leader_epoch_request, produce_request, sync_group_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tempfile::TempDir;
use uuid::Uuid;

use super::versions::{self, SERVED};
use super::{Context, DispatchError, Dispatched, KafkaSettings, dispatch, topic_id_to_uuid};
use crate::broker::{Broker, BrokerSettings, Endpoint};

const NODE_ID: i32 = 1;
const HOST: &str = "broker.test";
const PORT: u16 = 19092;
const CLUSTER_ID: &str = "sweep-cluster";
/// The topic every data-path API reads and writes.
const TOPIC: &str = "sweep";
const PARTITION_COUNT: i32 = 2;
/// A topic that never exists, by name and by id.
const ABSENT: &str = "absent";
const ABSENT_ID: Uuid = Uuid::from_u128(7);
/// The override `TOPIC` is created with.
const RETENTION_MS: &str = "604800000";
const NONE: i16 = 0;
/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// Config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Every topic or cluster operation, as Metadata and DescribeCluster report them without ACLs.
const TOPIC_OPERATIONS_ALL: i32 = 3576;
const CLUSTER_OPERATIONS_ALL: i32 = 8096;

/// A record as produced, and as it must come back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(StrBytes, Option<Bytes>)>,
}

/// One broker in a temporary directory, spoken to only through `dispatch`.
struct Sweep {
    dir: TempDir,
    ctx: Context,
    correlation_id: i32,
    /// Every (api key, version) a request was dispatched at.
    exercised: BTreeSet<(i16, i16)>,
    base_timestamp_ms: i64,
    topic_id: Uuid,
    /// What `TOPIC` holds, per partition, in offset order.
    produced: Vec<Vec<Sent>>,
}

impl Sweep {
    async fn open() -> Sweep {
        let dir = TempDir::new().expect("tempdir");
        let settings = BrokerSettings {
            node_id: NODE_ID,
            cluster_id: CLUSTER_ID.to_owned(),
            data_dir: dir.path().to_path_buf(),
            advertised: Endpoint {
                host: HOST.to_owned(),
                port: PORT,
            },
            default_partitions: 3,
            auto_create_topics: false,
            log: Default::default(),
            message_bytes_max: crate::limits::MESSAGE_BYTES_MAX_DEFAULT,
            acks_one_waits_for_fsync: false,
            retention_check_interval: std::time::Duration::from_secs(300),
            groups: crate::broker::GroupSettings::default(),
        };
        let broker = Broker::open(settings).expect("broker opens in a fresh directory");
        let peer = "127.0.0.1:1".parse().expect("socket address");
        let ctx = Context::new(broker, Arc::new(KafkaSettings::default()), peer);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970");
        let mut sweep = Sweep {
            dir,
            ctx,
            correlation_id: 0,
            exercised: BTreeSet::new(),
            base_timestamp_ms: i64::try_from(now.as_millis()).expect("fits"),
            topic_id: Uuid::nil(),
            produced: (0..PARTITION_COUNT).map(|_| Vec::new()).collect(),
        };
        let configs = [("retention.ms", RETENTION_MS)];
        sweep.topic_id = sweep.create_topic(TOPIC, PARTITION_COUNT, &configs).await;
        sweep
    }

    /// Sends `request` at `version` through dispatch and decodes the response.
    async fn call<Q, R>(&mut self, api: ApiKey, version: i16, request: &Q) -> R
    where
        Q: Encodable + Decodable,
        R: Encodable + Decodable,
    {
        self.correlation_id += 1;
        self.exercised.insert((api as i16, version));
        let frame = request_frame(api, version, self.correlation_id, request);
        let response = respond(&self.ctx, api, version, frame).await;
        decode_response(api, version, self.correlation_id, response)
    }

    /// Creates a topic over the wire (CreateTopics v7) and returns its id.
    async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Uuid {
        let request = messages::CreateTopicsRequest::default()
            .with_topics(vec![creatable(name, partitions, configs)])
            .with_timeout_ms(10_000);
        let response: messages::CreateTopicsResponse =
            self.call(ApiKey::CreateTopics, 7, &request).await;
        let [created] = exactly(&response.topics, &format!("one result for {name}"));
        assert_eq!(
            (created.error_code, created.error_message.as_deref()),
            (NONE, None)
        );
        assert!(!created.topic_id.is_nil());
        created.topic_id
    }

    /// Records for `partition`, offsets continuing what it holds; `version` makes them unique.
    fn next_records(&self, partition: usize, version: i16, count: usize) -> Vec<Sent> {
        let first = self.produced[partition].len();
        (0..count)
            .map(|i| Sent {
                offset: i64::try_from(first + i).expect("small"),
                timestamp: self.base_timestamp_ms
                    + i64::from(version) * 100
                    + i64::try_from(partition * 10 + i).expect("small"),
                // Every other record has a null key.
                key: (i % 2 == 0).then(|| Bytes::from(format!("key-{partition}-{i}"))),
                value: Some(Bytes::from(format!("value-v{version}-p{partition}-{i}"))),
                headers: vec![(
                    text("sweep-version"),
                    Some(Bytes::from(version.to_string())),
                )],
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Framing: what the connection does with a frame, and what a client does with the response.
// ---------------------------------------------------------------------------------------------

/// The items of a response list, which must hold exactly `N`.
#[track_caller]
fn exactly<'a, const N: usize, T>(items: &'a [T], at: &str) -> &'a [T; N] {
    let count = items.len();
    items
        .try_into()
        .unwrap_or_else(|_| panic!("{at}: {count} items, expected {N}"))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

fn group_id(name: &str) -> messages::GroupId {
    messages::GroupId(text(name))
}

/// Encodes `value` at `version`, checking that its computed size is what was written.
#[track_caller]
fn encode_sized<M: Encodable>(value: &M, version: i16, what: &str) -> Bytes {
    let mut buf = BytesMut::new();
    value
        .encode(&mut buf, version)
        .unwrap_or_else(|err| panic!("{what}: encode failed: {err:#}"));
    let size = value
        .compute_size(version)
        .unwrap_or_else(|err| panic!("{what}: compute_size failed: {err:#}"));
    assert_eq!(size, buf.len(), "{what}: compute_size vs bytes written");
    buf.freeze()
}

/// A request frame without its length prefix, as `decode_frame` hands it to dispatch. The body
/// must survive decode and re-encode unchanged.
#[track_caller]
fn request_frame<Q: Encodable + Decodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Q,
) -> Bytes {
    let what = format!("{api:?} v{version} request");
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(text("version-sweep")));
    let body = encode_sized(request, version, &what);
    let mut rest = body.clone();
    let decoded = Q::decode(&mut rest, version)
        .unwrap_or_else(|err| panic!("{what}: decode failed: {err:#}"));
    assert!(rest.is_empty(), "{what}: {} bytes left", rest.len());
    assert_eq!(encode_sized(&decoded, version, &what), body, "{what}");
    let header_version = api.request_header_version(version);
    let mut frame = BytesMut::from(&encode_sized(&header, header_version, &what)[..]);
    frame.extend_from_slice(&body);
    frame.freeze()
}

/// Runs a frame through dispatch, as the connection's reader and writer do.
async fn respond(ctx: &Context, api: ApiKey, version: i16, frame: Bytes) -> Bytes {
    match dispatch(ctx, frame).await {
        Ok(Dispatched::Respond(pending)) => pending
            .await
            .unwrap_or_else(|err| panic!("{api:?} v{version}: response not encoded: {err}")),
        Ok(Dispatched::NoResponse) => panic!("{api:?} v{version}: no response"),
        Err(err) => panic!("{api:?} v{version}: connection closed: {err}"),
    }
}

/// Decodes a whole response frame the way a client does, and checks that the body consumes every
/// byte and re-encodes to the same bytes with a matching computed size.
#[track_caller]
fn decode_response<R: Encodable + Decodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    frame: Bytes,
) -> R {
    let what = format!("{api:?} v{version} response");
    let mut body = response_body(api, version, correlation_id, frame);
    let whole = body.clone();
    let response = R::decode(&mut body, version).unwrap_or_else(|err| panic!("{what}: {err:#}"));
    assert!(body.is_empty(), "{what}: {} bytes left", body.len());
    assert_eq!(encode_sized(&response, version, &what), whole, "{what}");
    response
}

/// Checks the length prefix and response header of a frame and returns the body.
#[track_caller]
fn response_body(api: ApiKey, version: i16, correlation_id: i32, mut frame: Bytes) -> Bytes {
    let what = format!("{api:?} v{version} response");
    assert!(frame.len() >= 4, "{what}: no length prefix");
    let length = frame.get_i32();
    assert_eq!(
        usize::try_from(length),
        Ok(frame.len()),
        "{what}: length prefix"
    );
    // KIP-511: the ApiVersions response header is v0 at every version.
    let header_version = match api {
        ApiKey::ApiVersions => 0,
        _ => api.response_header_version(version),
    };
    let header = ResponseHeader::decode(&mut frame, header_version)
        .unwrap_or_else(|err| panic!("{what}: header: {err:#}"));
    assert_eq!(header.correlation_id, correlation_id, "{what}");
    assert!(header.unknown_tagged_fields.is_empty(), "{what}");
    frame
}

// ---------------------------------------------------------------------------------------------
// The sweep.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_advertised_api_version_answers_a_real_request() {
    let mut sweep = Sweep::open().await;
    // Ordered by key: every Produce version writes before any Fetch or ListOffsets reads.
    for served in SERVED {
        for version in served.min..=served.max {
            match served.api {
                ApiKey::Produce => produce(&mut sweep, version).await,
                ApiKey::Fetch => fetch(&mut sweep, version).await,
                ApiKey::ListOffsets => list_offsets(&mut sweep, version).await,
                ApiKey::Metadata => metadata(&mut sweep, version).await,
                ApiKey::FindCoordinator => find_coordinator(&mut sweep, version).await,
                ApiKey::ApiVersions => api_versions(&mut sweep, version).await,
                ApiKey::CreateTopics => create_topics(&mut sweep, version).await,
                ApiKey::DeleteTopics => delete_topics(&mut sweep, version).await,
                ApiKey::DeleteRecords => delete_records(&mut sweep, version).await,
                ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch(&mut sweep, version).await,
                ApiKey::DescribeConfigs => describe_configs(&mut sweep, version).await,
                ApiKey::AlterConfigs => alter_configs(&mut sweep, version).await,
                ApiKey::DescribeLogDirs => describe_log_dirs(&mut sweep, version).await,
                ApiKey::CreatePartitions => create_partitions(&mut sweep, version).await,
                ApiKey::IncrementalAlterConfigs => {
                    incremental_alter_configs(&mut sweep, version).await
                }
                ApiKey::DescribeCluster => describe_cluster(&mut sweep, version).await,
                ApiKey::JoinGroup => join_group(&mut sweep, version).await,
                ApiKey::SyncGroup => sync_group(&mut sweep, version).await,
                ApiKey::Heartbeat => heartbeat(&mut sweep, version).await,
                ApiKey::LeaveGroup => leave_group(&mut sweep, version).await,
                ApiKey::OffsetCommit => offset_commit(&mut sweep, version).await,
                ApiKey::OffsetFetch => offset_fetch(&mut sweep, version).await,
                ApiKey::OffsetDelete => offset_delete(&mut sweep, version).await,
                ApiKey::ListGroups => list_groups(&mut sweep, version).await,
                ApiKey::DescribeGroups => describe_groups(&mut sweep, version).await,
                ApiKey::DeleteGroups => delete_groups(&mut sweep, version).await,
                ApiKey::ConsumerGroupHeartbeat => {
                    consumer_group_heartbeat(&mut sweep, version).await
                }
                ApiKey::ConsumerGroupDescribe => consumer_group_describe(&mut sweep, version).await,
                other => panic!("{other:?} is advertised but the sweep has no request for it"),
            }
        }
    }
    let advertised: BTreeSet<(i16, i16)> = SERVED
        .iter()
        .flat_map(|s| (s.min..=s.max).map(move |v| (s.api as i16, v)))
        .collect();
    let missed: Vec<_> = advertised.difference(&sweep.exercised).collect();
    assert!(missed.is_empty(), "advertised but never sent: {missed:?}");
}

#[tokio::test]
async fn unadvertised_apis_and_versions_close_the_connection() {
    let sweep = Sweep::open().await;
    for api in ApiKey::iter() {
        let valid = api.valid_versions();
        let refused: Vec<i16> = match versions::served_range(api) {
            None => (valid.min..=valid.max).collect(),
            Some(s) => [s.min - 1, s.max + 1]
                .into_iter()
                .filter(|&v| v >= 0)
                .collect(),
        };
        for version in refused {
            let frame = header_only_frame(api as i16, version, 7);
            let result = dispatch(&sweep.ctx, frame).await;
            if api == ApiKey::ApiVersions {
                check_api_versions_fallback(result, version).await;
                continue;
            }
            let refused_as_expected = matches!(
                &result,
                Err(DispatchError::UnsupportedVersion { api: a, version: v })
                    if *a == api && *v == version
            );
            assert!(refused_as_expected, "{api:?} v{version}: {result:?}");
        }
    }
    for api_key in [-1, 93, 1000, i16::MAX] {
        let result = dispatch(&sweep.ctx, header_only_frame(api_key, 0, 7)).await;
        let refused_as_expected = matches!(
            &result,
            Err(DispatchError::UnknownApiKey { api_key: k, version: 0 }) if *k == api_key
        );
        assert!(refused_as_expected, "key {api_key}: {result:?}");
    }
}

/// A request header (v1 layout) with no body: dispatch must refuse before reading further.
fn header_only_frame(api_key: i16, version: i16, correlation_id: i32) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_i16(api_key);
    frame.put_i16(version);
    frame.put_i32(correlation_id);
    frame.put_i16(-1); // null client id
    frame.freeze()
}

/// KIP-511: an ApiVersions version we do not serve is answered at v0, with our table.
async fn check_api_versions_fallback(result: Result<Dispatched, DispatchError>, version: i16) {
    let Ok(Dispatched::Respond(pending)) = result else {
        panic!("ApiVersions v{version} must be answered: {result:?}")
    };
    let frame = pending.await.expect("encodes");
    let response: messages::ApiVersionsResponse = decode_response(ApiKey::ApiVersions, 0, 7, frame);
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code(),
        "ApiVersions v{version}"
    );
    check_api_table(&response, 0);
}

// ---------------------------------------------------------------------------------------------
// Data path: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch.
// ---------------------------------------------------------------------------------------------

fn compression(version: i16) -> Compression {
    match version % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

/// One v2 record batch, offsets from 0 as a client sends them.
fn record_batch(records: &[Sent], compression: Compression) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, sent)| {
            let delta = i32::try_from(i).expect("small");
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(delta),
                // Offset minus sequence stays constant, so the encoder keeps one batch; the
                // base sequence is -1 (not idempotent).
                sequence: delta - 1,
                timestamp: sent.timestamp,
                key: sent.key.clone(),
                value: sent.value.clone(),
                headers: sent.headers.iter().cloned().collect(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("batch encodes");
    buf.freeze()
}

/// Decodes fetched record bytes into what was sent.
#[track_caller]
fn received(records: Option<Bytes>, what: &str) -> Vec<Sent> {
    let mut records = records.unwrap_or_else(|| panic!("{what}: null records"));
    let sets = RecordBatchDecoder::decode_all(&mut records)
        .unwrap_or_else(|err| panic!("{what}: records: {err:#}"));
    sets.into_iter()
        .flat_map(|set| set.records)
        .map(|r| Sent {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().collect(),
        })
        .collect()
}

async fn produce(sweep: &mut Sweep, version: i16) {
    if version < versions::PRODUCE_DECODED_MIN {
        return produce_legacy(sweep, version).await;
    }
    // Partition p gets p + 2 records.
    let sent: Vec<Vec<Sent>> = (0..sweep.produced.len())
        .map(|p| sweep.next_records(p, version, p + 2))
        .collect();
    let data = |p: usize, records: &[Sent]| {
        produce_request::PartitionProduceData::default()
            .with_index(i32::try_from(p).expect("small"))
            .with_records(Some(record_batch(records, compression(version))))
    };
    let topic = produce_request::TopicProduceData::default()
        .with_partition_data(sent.iter().enumerate().map(|(p, r)| data(p, r)).collect());
    let absent =
        produce_request::TopicProduceData::default().with_partition_data(vec![data(0, &sent[0])]);
    // v13 addresses topics by id only.
    let (topic, absent, unknown) = if version >= 13 {
        let topic = topic.with_topic_id(sweep.topic_id);
        (
            topic,
            absent.with_topic_id(ABSENT_ID),
            ResponseError::UnknownTopicId,
        )
    } else {
        let topic = topic.with_name(topic_name(TOPIC));
        let absent = absent.with_name(topic_name(ABSENT));
        (topic, absent, ResponseError::UnknownTopicOrPartition)
    };
    let request = messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic, absent]);
    let response: messages::ProduceResponse = sweep.call(ApiKey::Produce, version, &request).await;
    let at = format!("Produce v{version}");
    let [topic, absent] = exactly(&response.responses, &at);
    let addressed =
        |t: &messages::produce_response::TopicProduceResponse| (t.name.to_string(), t.topic_id);
    let expected = addresses(version, sweep.topic_id);
    assert_eq!([addressed(topic), addressed(absent)], expected, "{at}");
    let [failed] = exactly(&absent.partition_responses, &at);
    let failed = (failed.index, failed.error_code, failed.base_offset);
    assert_eq!(failed, (0, unknown.code(), -1), "{at}");
    assert_eq!(topic.partition_responses.len(), sent.len(), "{at}");
    for (p, (answer, records)) in topic.partition_responses.iter().zip(sent).enumerate() {
        let at = format!("{at} partition {p}");
        assert_eq!(usize::try_from(answer.index), Ok(p), "{at}");
        assert_eq!(answer.error_code, NONE, "{at}: {:?}", answer.error_message);
        assert_eq!(answer.base_offset, records[0].offset, "{at}: base offset");
        assert_eq!(answer.log_append_time_ms, -1, "{at}: CreateTime topic");
        let log_start = if version >= 5 { 0 } else { -1 };
        assert_eq!(answer.log_start_offset, log_start, "{at}");
        assert!(answer.record_errors.is_empty(), "{at}");
        assert_eq!(answer.error_message, None, "{at}");
        sweep.produced[p].extend(records);
    }
}

/// Produce v0-v2: the request is built by hand (kafka-protocol has no codec for it) and every
/// partition is answered UNSUPPORTED_VERSION without appending anything.
async fn produce_legacy(sweep: &mut Sweep, version: i16) {
    sweep.correlation_id += 1;
    sweep.exercised.insert((ApiKey::Produce as i16, version));
    let correlation_id = sweep.correlation_id;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(text("version-sweep")));
    let header_version = ApiKey::Produce.request_header_version(version);
    let mut frame = BytesMut::from(&encode_sized(&header, header_version, "header")[..]);
    let message_set = record_batch(&sweep.next_records(0, version, 1), Compression::None);
    frame.put_i16(1); // acks
    frame.put_i32(30_000); // timeout
    frame.put_i32(1); // topics
    put_string(&mut frame, TOPIC);
    frame.put_i32(2); // partitions
    for partition in 0..2 {
        frame.put_i32(partition);
        frame.put_i32(i32::try_from(message_set.len()).expect("small"));
        frame.put_slice(&message_set);
    }
    let response = respond(&sweep.ctx, ApiKey::Produce, version, frame.freeze()).await;
    let mut body = response_body(ApiKey::Produce, version, correlation_id, response);
    let at = format!("Produce v{version} response");
    assert_eq!(body.get_i32(), 1, "{at}: topics");
    assert_eq!(body.get_i16(), i16::try_from(TOPIC.len()).expect("short"));
    assert_eq!(body.copy_to_bytes(TOPIC.len()), TOPIC.as_bytes(), "{at}");
    assert_eq!(body.get_i32(), 2, "{at}: partitions");
    for partition in 0..2 {
        assert_eq!(body.get_i32(), partition, "{at}");
        let code = body.get_i16();
        assert_eq!(code, ResponseError::UnsupportedVersion.code(), "{at}");
        assert_eq!(body.get_i64(), -1, "{at}: base offset");
        if version >= 2 {
            assert_eq!(body.get_i64(), -1, "{at}: log append time");
        }
    }
    if version >= 1 {
        assert_eq!(body.get_i32(), 0, "{at}: throttle time");
    }
    assert!(body.is_empty(), "{at}: {} bytes left", body.len());
    for (p, partition) in sweep.produced.iter().enumerate() {
        assert_eq!(
            high_watermark(sweep, p),
            partition.len(),
            "{at}: nothing appended"
        );
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("short"));
    buf.put_slice(s.as_bytes());
}

fn high_watermark(sweep: &Sweep, partition: usize) -> usize {
    let fetched = sweep
        .ctx
        .broker
        .fetch(TOPIC, i32::try_from(partition).expect("small"), 0, 0, false)
        .expect("partition exists");
    usize::try_from(fetched.high_watermark).expect("non-negative")
}

async fn fetch(sweep: &mut Sweep, version: i16) {
    let read_committed = version % 2 == 1;
    // Each version starts at another offset, often inside a batch.
    let starts: Vec<usize> = sweep
        .produced
        .iter()
        .map(|records| usize::try_from(version).expect("positive") % records.len())
        .collect();
    let start = |p: usize| starts[p];
    let partition = |p: usize| {
        let partition = fetch_request::FetchPartition::default()
            .with_partition(i32::try_from(p).expect("small"))
            .with_fetch_offset(i64::try_from(start(p)).expect("small"))
            .with_partition_max_bytes(1 << 20);
        if version >= 9 {
            partition.with_current_leader_epoch(0)
        } else {
            partition
        }
    };
    let topic = fetch_request::FetchTopic::default()
        .with_partitions((0..sweep.produced.len()).map(partition).collect());
    let absent = fetch_request::FetchTopic::default().with_partitions(vec![partition(0)]);
    // v13+ addresses topics by id only.
    let (topic, absent, unknown) = if version >= 13 {
        let topic = topic.with_topic_id(sweep.topic_id);
        (
            topic,
            absent.with_topic_id(ABSENT_ID),
            ResponseError::UnknownTopicId,
        )
    } else {
        let topic = topic.with_topic(topic_name(TOPIC));
        let absent = absent.with_topic(topic_name(ABSENT));
        (topic, absent, ResponseError::UnknownTopicOrPartition)
    };
    let request = messages::FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(4 << 20)
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![topic, absent]);
    let response: messages::FetchResponse = sweep.call(ApiKey::Fetch, version, &request).await;
    let at = format!("Fetch v{version}");
    let session = (response.error_code, response.session_id);
    assert_eq!(session, (NONE, 0), "{at}");
    let [topic, absent] = exactly(&response.responses, &at);
    let addressed =
        |t: &messages::fetch_response::FetchableTopicResponse| (t.topic.to_string(), t.topic_id);
    let expected = addresses(version, sweep.topic_id);
    assert_eq!([addressed(topic), addressed(absent)], expected, "{at}");
    let [failed] = exactly(&absent.partitions, &at);
    let failed = (
        failed.error_code,
        failed.high_watermark,
        failed.records.clone(),
    );
    assert_eq!(failed, (unknown.code(), -1, Some(Bytes::new())), "{at}");
    assert_eq!(topic.partitions.len(), sweep.produced.len(), "{at}");
    for (p, data) in topic.partitions.iter().enumerate() {
        let at = format!("{at} partition {p}");
        let expected = &sweep.produced[p];
        let end = i64::try_from(expected.len()).expect("small");
        assert_eq!(usize::try_from(data.partition_index), Ok(p), "{at}");
        assert_eq!(data.error_code, NONE, "{at}");
        assert_eq!(data.high_watermark, end, "{at}");
        assert_eq!(data.last_stable_offset, end, "{at}");
        let log_start = if version >= 5 { 0 } else { -1 };
        assert_eq!(data.log_start_offset, log_start, "{at}");
        let aborted = data.aborted_transactions.as_ref().map(Vec::len);
        assert_eq!(aborted, read_committed.then_some(0), "{at}");
        assert_eq!(data.preferred_read_replica, BrokerId(-1), "{at}");
        // Whole batches come back, so the first may begin before the fetch offset.
        let expected = &expected[start(p)..];
        let got = received(data.records.clone(), &at);
        let first = got.first().map(|r| r.offset);
        assert!(
            first <= Some(expected[0].offset),
            "{at}: starts at {first:?}"
        );
        let got: Vec<_> = got
            .into_iter()
            .filter(|r| r.offset >= expected[0].offset)
            .collect();
        assert_eq!(got, expected, "{at}");
    }
}

/// The (name, id) Produce and Fetch responses carry for `TOPIC` and `ABSENT`: from v13 on they
/// address topics by id only, before by name only.
fn addresses(version: i16, topic_id: Uuid) -> [(String, Uuid); 2] {
    if version >= 13 {
        [(String::new(), topic_id), (String::new(), ABSENT_ID)]
    } else {
        let nil = Uuid::nil();
        [(TOPIC.to_owned(), nil), (ABSENT.to_owned(), nil)]
    }
}

/// The (offset, timestamp) ListOffsets must find for `timestamp` in `records`.
fn expected_offset(records: &[Sent], timestamp: i64) -> (i64, i64) {
    let end = i64::try_from(records.len()).expect("small");
    let found = |r: Option<&Sent>| r.map_or((-1, -1), |r| (r.offset, r.timestamp));
    match timestamp {
        EARLIEST | EARLIEST_LOCAL => (0, -1),
        LATEST => (end, -1),
        LATEST_TIERED => (-1, -1),
        // The first record with the largest timestamp.
        MAX_TIMESTAMP => found(records.iter().rev().max_by_key(|r| r.timestamp)),
        t => found(records.iter().find(|r| r.timestamp >= t)),
    }
}

async fn list_offsets(sweep: &mut Sweep, version: i16) {
    let records = &sweep.produced[0];
    let target = records[usize::try_from(version).expect("positive") % records.len()].timestamp;
    let last = records.last().expect("produced").timestamp;
    let mut queries = vec![EARLIEST, LATEST, target - 1, target, last + 1];
    for (since, query) in [(7, MAX_TIMESTAMP), (8, EARLIEST_LOCAL), (9, LATEST_TIERED)] {
        if version >= since {
            queries.push(query);
        }
    }
    for query in queries {
        let at = format!("ListOffsets v{version} timestamp {query}");
        let partitions = (0..PARTITION_COUNT)
            .map(|p| {
                let partition = list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(p)
                    .with_timestamp(query);
                if version >= 4 {
                    partition.with_current_leader_epoch(0)
                } else {
                    partition
                }
            })
            .collect();
        let topic = list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(partitions);
        let request = messages::ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![topic]);
        let request = if version >= 10 {
            request.with_timeout_ms(1_000)
        } else {
            request
        };
        let response: messages::ListOffsetsResponse =
            sweep.call(ApiKey::ListOffsets, version, &request).await;
        let [topic] = exactly(&response.topics, &at);
        assert_eq!(topic.name.as_str(), TOPIC, "{at}");
        assert_eq!(topic.partitions.len(), sweep.produced.len(), "{at}");
        for (p, answer) in topic.partitions.iter().enumerate() {
            let (offset, timestamp) = expected_offset(&sweep.produced[p], query);
            let epoch = if version >= 4 && offset >= 0 { 0 } else { -1 };
            let got = (
                answer.partition_index,
                answer.error_code,
                answer.offset,
                answer.timestamp,
                answer.leader_epoch,
            );
            let p = i32::try_from(p).expect("small");
            assert_eq!(
                got,
                (p, NONE, offset, timestamp, epoch),
                "{at} partition {p}"
            );
        }
    }
}

async fn offset_for_leader_epoch(sweep: &mut Sweep, version: i16) {
    let partition = |index: i32| {
        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(0)
            .with_leader_epoch(0)
    };
    let topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
        .with_topic(topic_name(TOPIC))
        .with_partitions(vec![partition(0), partition(1), partition(9)]);
    let request = messages::OffsetForLeaderEpochRequest::default().with_topics(vec![topic]);
    let request = if version >= 3 {
        request.with_replica_id(BrokerId(-1))
    } else {
        request
    };
    let response: messages::OffsetForLeaderEpochResponse = sweep
        .call(ApiKey::OffsetForLeaderEpoch, version, &request)
        .await;
    let at = format!("OffsetForLeaderEpoch v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.topic.as_str(), TOPIC, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
        .collect();
    let end = |p: usize| i64::try_from(sweep.produced[p].len()).expect("small");
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        got,
        [
            (0, NONE, 0, end(0)),
            (1, NONE, 0, end(1)),
            (9, unknown, -1, -1)
        ],
        "{at}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cluster discovery: Metadata, FindCoordinator, ApiVersions, DescribeCluster.
// ---------------------------------------------------------------------------------------------

async fn metadata(sweep: &mut Sweep, version: i16) {
    let by_name = |name: &str| {
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(name)))
    };
    let mut requests = vec![
        // v0: an empty list means every topic; v1+: null does.
        if version == 0 { Some(Vec::new()) } else { None },
        Some(vec![by_name(TOPIC), by_name(ABSENT)]),
    ];
    if version >= 10 {
        let by_id = |id| {
            metadata_request::MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id)
        };
        requests.push(Some(vec![by_id(sweep.topic_id), by_id(ABSENT_ID)]));
    }
    for (kind, topics) in requests.into_iter().enumerate() {
        let at = format!("Metadata v{version} request {kind}");
        let mut request = messages::MetadataRequest::default().with_topics(topics);
        if version >= 8 {
            request.include_topic_authorized_operations = true;
            request.include_cluster_authorized_operations = version <= 10;
        }
        let response: messages::MetadataResponse =
            sweep.call(ApiKey::Metadata, version, &request).await;
        check_metadata_cluster(&response, version, &at);
        let name = |t: &messages::metadata_response::MetadataResponseTopic| {
            t.name.as_deref().map(|n| n.to_string())
        };
        let listed = response
            .topics
            .iter()
            .find(|t| name(t).as_deref() == Some(TOPIC));
        let listed = listed.unwrap_or_else(|| panic!("{at}: {TOPIC} listed"));
        check_metadata_topic(listed, sweep.topic_id, version, &at);
        if kind == 0 {
            let topic_count = sweep.ctx.broker.topics().len();
            assert_eq!(response.topics.len(), topic_count, "{at}");
            continue;
        }
        // Named topics come back in request order, the unknown one with its error.
        let [ours, absent] = exactly(&response.topics, &at);
        assert_eq!(name(ours).as_deref(), Some(TOPIC), "{at}");
        let (unknown, name_or_id) = if kind == 1 {
            let unknown = ResponseError::UnknownTopicOrPartition;
            (unknown, (Some(ABSENT.to_owned()), Uuid::nil()))
        } else {
            (ResponseError::UnknownTopicId, (None, ABSENT_ID))
        };
        let got = (absent.error_code, (name(absent), absent.topic_id));
        assert_eq!(got, (unknown.code(), name_or_id), "{at}");
    }
}

#[track_caller]
fn check_metadata_cluster(response: &messages::MetadataResponse, version: i16, at: &str) {
    let brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|b| (b.node_id, b.host.as_str(), b.port, b.rack.clone()))
        .collect();
    assert_eq!(
        brokers,
        [(BrokerId(NODE_ID), HOST, i32::from(PORT), None)],
        "{at}"
    );
    let controller = if version >= 1 { NODE_ID } else { -1 };
    assert_eq!(response.controller_id, BrokerId(controller), "{at}");
    let cluster_id = (version >= 2).then_some(CLUSTER_ID);
    assert_eq!(response.cluster_id.as_deref(), cluster_id, "{at}");
    let operations = if (8..=10).contains(&version) {
        CLUSTER_OPERATIONS_ALL
    } else {
        i32::MIN
    };
    assert_eq!(response.cluster_authorized_operations, operations, "{at}");
    assert_eq!(response.error_code, NONE, "{at}");
}

#[track_caller]
fn check_metadata_topic(
    topic: &messages::metadata_response::MetadataResponseTopic,
    topic_id: Uuid,
    version: i16,
    at: &str,
) {
    assert_eq!(topic.error_code, NONE, "{at}");
    let expected_id = if version >= 10 { topic_id } else { Uuid::nil() };
    assert_eq!(topic.topic_id, expected_id, "{at}");
    assert!(!topic.is_internal, "{at}");
    let operations = if version >= 8 {
        TOPIC_OPERATIONS_ALL
    } else {
        i32::MIN
    };
    assert_eq!(topic.topic_authorized_operations, operations, "{at}");
    let node = BrokerId(NODE_ID);
    let epoch = if version >= 7 { 0 } else { -1 };
    let partitions: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| {
            let replicas = (p.replica_nodes.clone(), p.isr_nodes.clone());
            let offline = p.offline_replicas.len();
            (
                p.error_code,
                p.partition_index,
                p.leader_id,
                p.leader_epoch,
                replicas,
                offline,
            )
        })
        .collect();
    let expected: Vec<_> = (0..PARTITION_COUNT)
        .map(|i| (NONE, i, node, epoch, (vec![node], vec![node]), 0))
        .collect();
    assert_eq!(partitions, expected, "{at}");
}

async fn find_coordinator(sweep: &mut Sweep, version: i16) {
    let request = messages::FindCoordinatorRequest::default();
    let request = match version {
        0 => request.with_key(text("group-a")),
        1..=3 => request.with_key(text("group-a")).with_key_type(0),
        _ => request
            .with_key_type(0)
            .with_coordinator_keys(vec![text("group-a"), text("group-b")]),
    };
    let response: messages::FindCoordinatorResponse =
        sweep.call(ApiKey::FindCoordinator, version, &request).await;
    let at = format!("FindCoordinator v{version}");
    let node = (BrokerId(NODE_ID), HOST, i32::from(PORT));
    if version >= 4 {
        let got: Vec<_> = response
            .coordinators
            .iter()
            .map(|c| {
                let node = (c.node_id, c.host.as_str(), c.port);
                (c.key.as_str(), c.error_code, node)
            })
            .collect();
        let expected = [("group-a", NONE, node), ("group-b", NONE, node)];
        assert_eq!(got, expected, "{at}");
    } else {
        let got = (response.node_id, response.host.as_str(), response.port);
        assert_eq!((response.error_code, got), (NONE, node), "{at}");
    }
}

async fn api_versions(sweep: &mut Sweep, version: i16) {
    let request = messages::ApiVersionsRequest::default();
    let request = if version >= 3 {
        request
            .with_client_software_name(text("tidelog-sweep"))
            .with_client_software_version(text("1.0"))
    } else {
        request
    };
    let response: messages::ApiVersionsResponse =
        sweep.call(ApiKey::ApiVersions, version, &request).await;
    assert_eq!(response.error_code, NONE, "ApiVersions v{version}");
    check_api_table(&response, version);
}

/// The advertised table is exactly `versions::SERVED`, in key order.
#[track_caller]
fn check_api_table(response: &messages::ApiVersionsResponse, version: i16) {
    let got: Vec<_> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let expected: Vec<_> = SERVED
        .iter()
        .map(|s| (s.api as i16, s.min, s.max))
        .collect();
    assert_eq!(got, expected, "ApiVersions v{version}");
    assert!(response.supported_features.is_empty());
    assert!(response.finalized_features.is_empty());
}

async fn describe_cluster(sweep: &mut Sweep, version: i16) {
    let mut request = messages::DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(true);
    if version >= 1 {
        request.endpoint_type = 1;
    }
    if version >= 2 {
        request.include_fenced_brokers = true;
    }
    let response: messages::DescribeClusterResponse =
        sweep.call(ApiKey::DescribeCluster, version, &request).await;
    let at = format!("DescribeCluster v{version}");
    assert_eq!(
        (response.error_code, response.error_message.clone()),
        (NONE, None)
    );
    assert_eq!(response.endpoint_type, 1, "{at}");
    assert_eq!(response.cluster_id.as_str(), CLUSTER_ID, "{at}");
    assert_eq!(response.controller_id, BrokerId(NODE_ID), "{at}");
    assert_eq!(
        response.cluster_authorized_operations, CLUSTER_OPERATIONS_ALL,
        "{at}"
    );
    let brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|b| {
            (
                b.broker_id,
                b.host.as_str(),
                b.port,
                b.rack.clone(),
                b.is_fenced,
            )
        })
        .collect();
    let expected = (BrokerId(NODE_ID), HOST, i32::from(PORT), None, false);
    assert_eq!(brokers, [expected], "{at}");
}

// ---------------------------------------------------------------------------------------------
// Topic administration.
// ---------------------------------------------------------------------------------------------

fn creatable(
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> create_topics_request::CreatableTopic {
    let configs = configs.iter().map(|(key, value)| {
        create_topics_request::CreatableTopicConfig::default()
            .with_name(text(key))
            .with_value(Some(text(value)))
    });
    create_topics_request::CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(configs.collect())
}

async fn create_topics(sweep: &mut Sweep, version: i16) {
    let name = format!("created-v{version}");
    let request = messages::CreateTopicsRequest::default()
        .with_topics(vec![
            creatable(&name, 3, &[("retention.ms", "3600000")]),
            creatable(TOPIC, 1, &[]),
        ])
        .with_timeout_ms(10_000);
    let response: messages::CreateTopicsResponse =
        sweep.call(ApiKey::CreateTopics, version, &request).await;
    let at = format!("CreateTopics v{version}");
    let [created, existing] = exactly(&response.topics, &at);
    assert_eq!(created.name.as_str(), name, "{at}");
    assert_eq!(
        created.error_code, NONE,
        "{at}: {:?}",
        created.error_message
    );
    let info = sweep.ctx.broker.topic(&name).expect("created");
    assert_eq!(info.partitions.len(), 3, "{at}");
    let topic_id = if version >= 7 {
        topic_id_to_uuid(info.topic_id)
    } else {
        Uuid::nil()
    };
    assert_eq!(created.topic_id, topic_id, "{at}");
    if version >= 5 {
        assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
        let configs = created.configs.as_ref().expect("configs at v5+");
        let retention = configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap_or_else(|| panic!("{at}: retention.ms listed"));
        let got = (retention.value.as_deref(), retention.config_source);
        assert_eq!(got, (Some("3600000"), 1), "{at}");
    }
    assert_eq!(existing.name.as_str(), TOPIC, "{at}");
    let exists = ResponseError::TopicAlreadyExists.code();
    assert_eq!(existing.error_code, exists, "{at}");
    assert!(existing.error_message.is_some(), "{at}");
}

async fn delete_topics(sweep: &mut Sweep, version: i16) {
    let name = format!("doomed-v{version}");
    let topic_id = sweep.create_topic(&name, 1, &[]).await;
    let request = messages::DeleteTopicsRequest::default().with_timeout_ms(10_000);
    let request = if version >= 6 {
        request.with_topics(vec![
            delete_topics_request::DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(topic_id),
            delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name(ABSENT))),
        ])
    } else {
        request.with_topic_names(vec![topic_name(&name), topic_name(ABSENT)])
    };
    let response: messages::DeleteTopicsResponse =
        sweep.call(ApiKey::DeleteTopics, version, &request).await;
    let at = format!("DeleteTopics v{version}");
    let got: Vec<_> = response
        .responses
        .iter()
        .map(|r| {
            let name = r.name.as_deref().map(|n| n.to_string());
            (name, r.error_code, r.topic_id, r.error_message.is_some())
        })
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    // Ids are reported from v6 on; error messages from v5 on.
    let id = if version >= 6 { topic_id } else { Uuid::nil() };
    let expected = [
        (Some(name.clone()), NONE, id, false),
        (Some(ABSENT.to_owned()), unknown, Uuid::nil(), version >= 5),
    ];
    assert_eq!(got, expected, "{at}");
    assert!(sweep.ctx.broker.topic(&name).is_none(), "{at}: deleted");
}

async fn create_partitions(sweep: &mut Sweep, version: i16) {
    let name = format!("grown-v{version}");
    sweep.create_topic(&name, 1, &[]).await;
    let on_us = || {
        create_partitions_request::CreatePartitionsAssignment::default()
            .with_broker_ids(vec![BrokerId(NODE_ID)])
    };
    // Odd versions place the new partitions explicitly.
    let assignments = (version % 2 == 1).then(|| vec![on_us(), on_us()]);
    let grow = |name: &str| {
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(3)
            .with_assignments(assignments.clone())
    };
    let request = messages::CreatePartitionsRequest::default()
        .with_topics(vec![grow(&name), grow(ABSENT)])
        .with_timeout_ms(10_000);
    let response: messages::CreatePartitionsResponse = sweep
        .call(ApiKey::CreatePartitions, version, &request)
        .await;
    let got: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.name.to_string(), r.error_code, r.error_message.is_some()))
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let expected = [
        (name.clone(), NONE, false),
        (ABSENT.to_owned(), unknown, true),
    ];
    assert_eq!(got, expected, "CreatePartitions v{version}");
    let partitions = sweep.ctx.broker.topic(&name).map(|t| t.partitions.len());
    assert_eq!(partitions, Some(3), "CreatePartitions v{version}");
}

async fn delete_records(sweep: &mut Sweep, version: i16) {
    let name = format!("trimmed-v{version}");
    sweep.create_topic(&name, 1, &[]).await;
    for batch in 0..2 {
        let records = sweep.next_records(0, batch, 2);
        let partition = produce_request::PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(record_batch(&records, Compression::None)));
        let topic = produce_request::TopicProduceData::default()
            .with_name(topic_name(&name))
            .with_partition_data(vec![partition]);
        let request = messages::ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![topic]);
        let response: messages::ProduceResponse = sweep.call(ApiKey::Produce, 9, &request).await;
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (NONE, i64::from(batch) * 2)
        );
    }
    // v0 cuts at a batch boundary, v1 inside a batch, later versions at the high watermark (-1).
    let (before, low_watermark) = match version {
        0 => (2, 2),
        1 => (3, 3),
        _ => (-1, 4),
    };
    let partition = |index, offset| {
        delete_records_request::DeleteRecordsPartition::default()
            .with_partition_index(index)
            .with_offset(offset)
    };
    let topic = delete_records_request::DeleteRecordsTopic::default()
        .with_name(topic_name(&name))
        .with_partitions(vec![partition(0, before), partition(5, 0)]);
    let request = messages::DeleteRecordsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let response: messages::DeleteRecordsResponse =
        sweep.call(ApiKey::DeleteRecords, version, &request).await;
    let at = format!("DeleteRecords v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.name.as_str(), name, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.low_watermark))
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(got, [(0, NONE, low_watermark), (5, unknown, -1)], "{at}");
    let earliest = sweep
        .ctx
        .broker
        .list_offset(&name, 0, crate::broker::OffsetSpec::Earliest);
    let expected = crate::broker::ListedOffset::Exact {
        offset: low_watermark,
        timestamp: -1,
    };
    assert_eq!(earliest.expect("listed"), expected, "{at}");
}

// ---------------------------------------------------------------------------------------------
// Configs and log directories.
// ---------------------------------------------------------------------------------------------

fn describe_resource(
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> describe_configs_request::DescribeConfigsResource {
    let keys = keys.map(|keys| keys.iter().map(|k| text(k)).collect());
    describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configuration_keys(keys)
}

async fn describe_configs(sweep: &mut Sweep, version: i16) {
    let node = NODE_ID.to_string();
    let resources = vec![
        describe_resource(RESOURCE_TOPIC, TOPIC, None),
        describe_resource(RESOURCE_TOPIC, TOPIC, Some(&["retention.ms"])),
        describe_resource(RESOURCE_BROKER, &node, None),
        describe_resource(RESOURCE_TOPIC, ABSENT, None),
        describe_resource(RESOURCE_BROKER_LOGGER, &node, None),
    ];
    let request = messages::DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3);
    let response: messages::DescribeConfigsResponse =
        sweep.call(ApiKey::DescribeConfigs, version, &request).await;
    let at = format!("DescribeConfigs v{version}");
    let summary: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let invalid = ResponseError::InvalidRequest.code();
    let expected = [
        (RESOURCE_TOPIC, TOPIC.to_owned(), NONE),
        (RESOURCE_TOPIC, TOPIC.to_owned(), NONE),
        (RESOURCE_BROKER, node.clone(), NONE),
        (RESOURCE_TOPIC, ABSENT.to_owned(), unknown),
        (RESOURCE_BROKER_LOGGER, node, invalid),
    ];
    assert_eq!(summary, expected, "{at}");
    let [all, filtered, broker, absent, logger] = exactly(&response.results, &at);
    assert!(all.configs.len() > 1, "{at}: every topic config");
    assert!(!broker.configs.is_empty(), "{at}: broker configs");
    let [retention] = exactly(&filtered.configs, &at);
    assert!(all.configs.contains(retention), "{at}");
    assert_eq!(retention.name.as_str(), "retention.ms", "{at}");
    assert_eq!(retention.value.as_deref(), Some(RETENTION_MS), "{at}");
    assert_eq!(
        (retention.config_source, retention.is_sensitive),
        (1, false)
    );
    let synonyms: Vec<_> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
        .collect();
    assert_eq!(synonyms, [("retention.ms", Some(RETENTION_MS), 1)], "{at}");
    let (config_type, documented) = if version >= 3 { (5, true) } else { (0, false) };
    assert_eq!(retention.config_type, config_type, "{at}: LONG from v3");
    let has_documentation = retention
        .documentation
        .as_deref()
        .is_some_and(|d| !d.is_empty());
    assert_eq!(has_documentation, documented, "{at}");
    for failed in [absent, logger] {
        assert!(failed.configs.is_empty(), "{at}");
        assert!(failed.error_message.is_some(), "{at}");
    }
    assert_eq!(all.error_message, None, "{at}");
}

/// The override `key` of `topic` has, if any.
fn topic_override(sweep: &Sweep, topic: &str, key: &str) -> Option<String> {
    let configs = sweep.ctx.broker.topic_configs(topic).expect("topic exists");
    let entry = configs.iter().find(|c| c.name == key).expect("known key");
    (entry.source == crate::broker::ConfigSource::TopicOverride)
        .then(|| entry.value.clone().expect("not sensitive"))
}

async fn alter_configs(sweep: &mut Sweep, version: i16) {
    use messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let name = format!("altered-v{version}");
    sweep
        .create_topic(&name, 1, &[("segment.ms", "3600000")])
        .await;
    let retention = (i64::from(version) + 1) * 60_000;
    let set = AlterableConfig::default()
        .with_name(text("retention.ms"))
        .with_value(Some(text(&retention.to_string())));
    let resource = |resource_type, name: &str, configs| {
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configs(configs)
    };
    let request = messages::AlterConfigsRequest::default().with_resources(vec![
        resource(RESOURCE_TOPIC, &name, vec![set]),
        resource(RESOURCE_BROKER, &NODE_ID.to_string(), Vec::new()),
        resource(RESOURCE_TOPIC, ABSENT, Vec::new()),
    ]);
    let response: messages::AlterConfigsResponse =
        sweep.call(ApiKey::AlterConfigs, version, &request).await;
    let at = format!("AlterConfigs v{version}");
    let got: Vec<_> = response
        .responses
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            (
                r.resource_type,
                name,
                r.error_code,
                r.error_message.is_some(),
            )
        })
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let expected = [
        (RESOURCE_TOPIC, name.clone(), NONE, false),
        (RESOURCE_BROKER, NODE_ID.to_string(), NONE, false),
        (RESOURCE_TOPIC, ABSENT.to_owned(), unknown, true),
    ];
    assert_eq!(got, expected, "{at}");
    let retention = Some(retention.to_string());
    assert_eq!(
        topic_override(sweep, &name, "retention.ms"),
        retention,
        "{at}"
    );
    // AlterConfigs replaces the whole override set.
    assert_eq!(topic_override(sweep, &name, "segment.ms"), None, "{at}");
}

async fn incremental_alter_configs(sweep: &mut Sweep, version: i16) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let name = format!("incremented-v{version}");
    sweep
        .create_topic(&name, 1, &[("segment.ms", "3600000")])
        .await;
    let retention_bytes = (i64::from(version) + 1) << 20;
    let op = |key: &'static str, operation: i8, value: Option<String>| {
        AlterableConfig::default()
            .with_name(text(key))
            .with_config_operation(operation)
            .with_value(value.map(StrBytes::from_string))
    };
    let resource = |resource_type, name: &str, configs| {
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configs(configs)
    };
    let request = messages::IncrementalAlterConfigsRequest::default().with_resources(vec![
        resource(
            RESOURCE_TOPIC,
            &name,
            vec![
                op("retention.bytes", 0, Some(retention_bytes.to_string())),
                op("segment.ms", 1, None),
            ],
        ),
        resource(
            RESOURCE_BROKER,
            &NODE_ID.to_string(),
            vec![op("log.retention.ms", 1, None)],
        ),
    ]);
    let response: messages::IncrementalAlterConfigsResponse = sweep
        .call(ApiKey::IncrementalAlterConfigs, version, &request)
        .await;
    let at = format!("IncrementalAlterConfigs v{version}");
    let got: Vec<_> = response
        .responses
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            (
                r.resource_type,
                name,
                r.error_code,
                r.error_message.is_some(),
            )
        })
        .collect();
    let expected = [
        (RESOURCE_TOPIC, name.clone(), NONE, false),
        (RESOURCE_BROKER, NODE_ID.to_string(), NONE, false),
    ];
    assert_eq!(got, expected, "{at}");
    let retention_bytes = Some(retention_bytes.to_string());
    assert_eq!(
        topic_override(sweep, &name, "retention.bytes"),
        retention_bytes
    );
    assert_eq!(topic_override(sweep, &name, "segment.ms"), None, "{at}");
}

async fn describe_log_dirs(sweep: &mut Sweep, version: i16) {
    let dir = std::path::absolute(sweep.dir.path()).expect("absolute path");
    let dir = dir.display().to_string();
    let requested = describe_log_dirs_request::DescribableLogDirTopic::default()
        .with_topic(topic_name(TOPIC))
        .with_partitions(vec![1, 7]);
    for topics in [None, Some(vec![requested])] {
        let is_all = topics.is_none();
        let at = format!("DescribeLogDirs v{version} all={is_all}");
        let request = messages::DescribeLogDirsRequest::default().with_topics(topics);
        let response: messages::DescribeLogDirsResponse =
            sweep.call(ApiKey::DescribeLogDirs, version, &request).await;
        assert_eq!(response.error_code, NONE, "{at}");
        let [result] = exactly(&response.results, &at);
        assert_eq!(
            (result.error_code, result.log_dir.as_str()),
            (NONE, dir.as_str())
        );
        assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1), "{at}");
        let listed: Vec<_> = result
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p)))
            .collect();
        if is_all {
            // Every partition of every topic, and nothing of deleted topics.
            for topic in sweep.ctx.broker.topics() {
                for p in &topic.partitions {
                    let found = listed
                        .iter()
                        .any(|(name, l)| *name == topic.name && l.partition_index == p.partition);
                    assert!(found, "{at}: {} {} listed", topic.name, p.partition);
                }
            }
            let deleted = listed.iter().find(|(name, _)| name.starts_with("doomed-"));
            assert_eq!(deleted, None, "{at}");
        } else {
            assert_eq!(listed.len(), 1, "{at}: unknown partitions are left out");
        }
        let ours: Vec<_> = listed
            .iter()
            .filter(|(name, _)| name == TOPIC)
            .map(|(_, p)| (p.partition_index, p.partition_size > 0, p.offset_lag))
            .collect();
        let expected: &[_] = if is_all {
            &[(0, true, 0), (1, true, 0)]
        } else {
            &[(1, true, 0)]
        };
        assert_eq!(ours, expected, "{at}");
    }
}

// ---------------------------------------------------------------------------------------------
// Group coordination: the classic protocol and committed offsets.
// ---------------------------------------------------------------------------------------------

const PROTOCOL_TYPE: &str = "consumer";
const PROTOCOL_NAME: &str = "range";
const ASSIGNMENT: &[u8] = b"sweep-assignment";
/// A group that never exists.
const GHOST_GROUP: &str = "ghost-group";

/// A consumer's JoinGroup metadata: ConsumerProtocolSubscription v0 for `TOPIC`, version first.
fn subscription() -> Bytes {
    let body = messages::ConsumerProtocolSubscription::default().with_topics(vec![text(TOPIC)]);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.extend_from_slice(&encode_sized(&body, 0, "subscription"));
    buf.freeze()
}

fn join_request(version: i16, group: &str, member_id: &str) -> messages::JoinGroupRequest {
    let protocol = join_group_request::JoinGroupRequestProtocol::default()
        .with_name(text(PROTOCOL_NAME))
        .with_metadata(subscription());
    let mut request = messages::JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text(PROTOCOL_TYPE))
        .with_protocols(vec![protocol]);
    if version >= 1 {
        request.rebalance_timeout_ms = 30_000;
    }
    if version >= 8 {
        request.reason = Some(text("version sweep"));
    }
    request
}

/// Joins `group` as its only member at `version`: v4+ first learn their member id
/// (MEMBER_ID_REQUIRED), then rejoin with it. Checks the leader's view of the group.
async fn join(sweep: &mut Sweep, version: i16, group: &str) -> (String, i32) {
    let at = format!("JoinGroup v{version} {group}");
    let mut response: messages::JoinGroupResponse = sweep
        .call(
            ApiKey::JoinGroup,
            version,
            &join_request(version, group, ""),
        )
        .await;
    if version >= 4 {
        let required = ResponseError::MemberIdRequired.code();
        let got = (response.error_code, response.generation_id);
        assert_eq!(got, (required, -1), "{at}: first join");
        assert!(
            !response.member_id.is_empty(),
            "{at}: a member id is handed out"
        );
        let member_id = response.member_id.to_string();
        let request = join_request(version, group, &member_id);
        response = sweep.call(ApiKey::JoinGroup, version, &request).await;
        assert_eq!(response.member_id.as_str(), member_id, "{at}");
    }
    let member_id = response.member_id.to_string();
    assert!(!member_id.is_empty(), "{at}");
    let got = (
        response.error_code,
        response.generation_id,
        response.protocol_name.as_deref(),
        response.leader.as_str(),
    );
    let expected = (NONE, 1, Some(PROTOCOL_NAME), member_id.as_str());
    assert_eq!(got, expected, "{at}");
    let members: Vec<_> = response
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                m.metadata.clone(),
            )
        })
        .collect();
    assert_eq!(members, [(member_id.clone(), None, subscription())], "{at}");
    let protocol_type = (version >= 7).then_some(PROTOCOL_TYPE);
    assert_eq!(response.protocol_type.as_deref(), protocol_type, "{at}");
    assert!(!response.skip_assignment, "{at}");
    (member_id, response.generation_id)
}

/// Hands in the leader's assignment at `version`; the group is then stable.
async fn sync(sweep: &mut Sweep, version: i16, group: &str, member_id: &str, generation: i32) {
    let assignment = sync_group_request::SyncGroupRequestAssignment::default()
        .with_member_id(text(member_id))
        .with_assignment(Bytes::from_static(ASSIGNMENT));
    let mut request = messages::SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(vec![assignment]);
    if version >= 5 {
        request.protocol_type = Some(text(PROTOCOL_TYPE));
        request.protocol_name = Some(text(PROTOCOL_NAME));
    }
    let response: messages::SyncGroupResponse =
        sweep.call(ApiKey::SyncGroup, version, &request).await;
    let at = format!("SyncGroup v{version} {group}");
    assert_eq!(response.error_code, NONE, "{at}");
    assert_eq!(&response.assignment[..], ASSIGNMENT, "{at}");
    let protocol = if version >= 5 {
        (Some(PROTOCOL_TYPE), Some(PROTOCOL_NAME))
    } else {
        (None, None)
    };
    let got = (
        response.protocol_type.as_deref(),
        response.protocol_name.as_deref(),
    );
    assert_eq!(got, protocol, "{at}");
}

/// A stable group with one member, set up at the newest versions; returns the member and
/// generation.
async fn stable_group(sweep: &mut Sweep, group: &str) -> (String, i32) {
    let (member_id, generation) = join(sweep, 9, group).await;
    sync(sweep, 5, group, &member_id, generation).await;
    (member_id, generation)
}

async fn join_group(sweep: &mut Sweep, version: i16) {
    join(sweep, version, &format!("joined-v{version}")).await;
}

async fn sync_group(sweep: &mut Sweep, version: i16) {
    let group = format!("synced-v{version}");
    let (member_id, generation) = join(sweep, 9, &group).await;
    sync(sweep, version, &group, &member_id, generation).await;
}

async fn heartbeat(sweep: &mut Sweep, version: i16) {
    let group = format!("heartbeat-v{version}");
    let (member_id, generation) = stable_group(sweep, &group).await;
    let unknown_member = ResponseError::UnknownMemberId.code();
    let illegal_generation = ResponseError::IllegalGeneration.code();
    for (member, generation, code) in [
        (member_id.as_str(), generation, NONE),
        ("ghost-member", generation, unknown_member),
        (member_id.as_str(), generation + 1, illegal_generation),
    ] {
        let request = messages::HeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id(generation)
            .with_member_id(text(member));
        let response: messages::HeartbeatResponse =
            sweep.call(ApiKey::Heartbeat, version, &request).await;
        let at = format!("Heartbeat v{version} member {member} generation {generation}");
        assert_eq!(response.error_code, code, "{at}");
    }
}

async fn leave_group(sweep: &mut Sweep, version: i16) {
    let group = format!("left-v{version}");
    let (member_id, _) = stable_group(sweep, &group).await;
    let request = messages::LeaveGroupRequest::default().with_group_id(group_id(&group));
    let request = if version >= 3 {
        let member = leave_group_request::MemberIdentity::default()
            .with_member_id(text(&member_id))
            .with_reason((version >= 5).then(|| text("version sweep")));
        request.with_members(vec![member])
    } else {
        request.with_member_id(text(&member_id))
    };
    let response: messages::LeaveGroupResponse =
        sweep.call(ApiKey::LeaveGroup, version, &request).await;
    let at = format!("LeaveGroup v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    let members: Vec<_> = response
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                m.error_code,
            )
        })
        .collect();
    let expected = if version >= 3 {
        vec![(member_id, None, NONE)]
    } else {
        Vec::new()
    };
    assert_eq!(members, expected, "{at}");
    let described = describe_groups_once(sweep, &group).await;
    let state = (described.group_state.as_str(), described.members.len());
    assert_eq!(state, ("Empty", 0), "{at}: the group is empty");
}

/// The committed offsets of the group OffsetCommit writes at `version`: (partition, offset,
/// leader epoch, metadata).
fn committed(version: i16) -> [(i32, i64, i32, String); 2] {
    let epoch = if version >= 6 { 0 } else { -1 };
    let metadata = format!("committed at v{version}");
    [(0, 3, epoch, metadata.clone()), (1, 1, epoch, metadata)]
}

async fn offset_commit(sweep: &mut Sweep, version: i16) {
    let group = format!("committed-v{version}");
    let partitions = committed(version)
        .into_iter()
        .map(|(partition, offset, epoch, metadata)| {
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_committed_metadata(Some(text(&metadata)))
        })
        .collect();
    let topic = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partitions(partitions);
    // A standalone commit (no generation, no member), as admin tools and manual-assignment
    // consumers send it.
    let request = messages::OffsetCommitRequest::default()
        .with_group_id(group_id(&group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(text(""))
        .with_topics(vec![topic]);
    let request = if version <= 4 {
        request.with_retention_time_ms(-1)
    } else {
        request
    };
    let response: messages::OffsetCommitResponse =
        sweep.call(ApiKey::OffsetCommit, version, &request).await;
    let at = format!("OffsetCommit v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.name.as_str(), TOPIC, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(got, [(0, NONE), (1, NONE)], "{at}");
}

async fn offset_fetch(sweep: &mut Sweep, version: i16) {
    // Reads what OffsetCommit wrote at the same version (v2 for v1).
    let commit_version = version.max(2);
    let group = format!("committed-v{commit_version}");
    let epoch_from = if version >= 8 { 0 } else { 5 };
    let expected: Vec<_> = committed(commit_version)
        .into_iter()
        .map(|(partition, offset, epoch, metadata)| {
            let epoch = if version >= epoch_from { epoch } else { -1 };
            (partition, offset, epoch, Some(metadata), NONE)
        })
        .collect();
    // v1 must name partitions; v2+ also ask for every committed partition (null topics).
    let all_forms: &[bool] = if version >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    for &is_all in all_forms {
        let at = format!("OffsetFetch v{version} all={is_all}");
        let topics = if version >= 8 {
            offset_fetch_v8(sweep, version, &group, is_all, &at).await
        } else {
            offset_fetch_v1(sweep, version, &group, is_all, &at).await
        };
        let [(name, partitions)] = exactly(&topics, &at);
        assert_eq!(name, TOPIC, "{at}");
        assert_eq!(partitions, &expected, "{at}");
    }
}

/// One topic's committed offsets, as OffsetFetch reports them.
type Fetched = (String, Vec<(i32, i64, i32, Option<String>, i16)>);

async fn offset_fetch_v1(
    sweep: &mut Sweep,
    version: i16,
    group: &str,
    is_all: bool,
    at: &str,
) -> Vec<Fetched> {
    let topics = (!is_all).then(|| {
        vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1]),
        ]
    });
    let request = messages::OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(topics);
    let request = if version >= 7 {
        request.with_require_stable(true)
    } else {
        request
    };
    let response: messages::OffsetFetchResponse =
        sweep.call(ApiKey::OffsetFetch, version, &request).await;
    assert_eq!(response.error_code, NONE, "{at}");
    response
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                let metadata = p.metadata.as_deref().map(str::to_owned);
                let offset = (p.partition_index, p.committed_offset);
                (
                    offset.0,
                    offset.1,
                    p.committed_leader_epoch,
                    metadata,
                    p.error_code,
                )
            });
            (t.name.to_string(), partitions.collect())
        })
        .collect()
}

async fn offset_fetch_v8(
    sweep: &mut Sweep,
    version: i16,
    group: &str,
    is_all: bool,
    at: &str,
) -> Vec<Fetched> {
    let topics = (!is_all).then(|| {
        vec![
            offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1]),
        ]
    });
    let groups = [group, GHOST_GROUP].map(|g| {
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(group_id(g))
            .with_topics(topics.clone())
    });
    let request = messages::OffsetFetchRequest::default()
        .with_groups(groups.into())
        .with_require_stable(true);
    let response: messages::OffsetFetchResponse =
        sweep.call(ApiKey::OffsetFetch, version, &request).await;
    let [found, ghost] = exactly(&response.groups, at);
    let got = (
        found.group_id.as_str(),
        found.error_code,
        ghost.group_id.as_str(),
    );
    assert_eq!(got, (group, NONE, GHOST_GROUP), "{at}");
    // A group without commits answers -1 for every partition asked, and nothing for all.
    let ghost: Vec<_> = ghost
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.committed_offset, p.error_code))
        })
        .collect();
    let expected = if is_all { vec![] } else { vec![(-1, NONE); 2] };
    assert_eq!((ghost, ghost_error(&response)), (expected, NONE), "{at}");
    found
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                let metadata = p.metadata.as_deref().map(str::to_owned);
                let offset = (p.partition_index, p.committed_offset);
                (
                    offset.0,
                    offset.1,
                    p.committed_leader_epoch,
                    metadata,
                    p.error_code,
                )
            });
            (t.name.to_string(), partitions.collect())
        })
        .collect()
}

fn ghost_error(response: &messages::OffsetFetchResponse) -> i16 {
    response.groups.get(1).map_or(-1, |g| g.error_code)
}

async fn offset_delete(sweep: &mut Sweep, version: i16) {
    let at = format!("OffsetDelete v{version}");
    // An empty group's offsets go; a group whose members subscribe to the topic keeps them.
    let empty = "committed-v2";
    let busy = format!("subscribed-v{version}");
    stable_group(sweep, &busy).await;
    let subscribed = ResponseError::GroupSubscribedToTopic.code();
    let not_found = ResponseError::GroupIdNotFound.code();
    for (group, group_code, topic_code) in [
        (empty, NONE, Some(NONE)),
        (busy.as_str(), NONE, Some(subscribed)),
        (GHOST_GROUP, not_found, None),
    ] {
        let partition =
            offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(1);
        let topic = offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(vec![partition]);
        let request = messages::OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(vec![topic]);
        let response: messages::OffsetDeleteResponse =
            sweep.call(ApiKey::OffsetDelete, version, &request).await;
        let codes: Vec<_> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
            })
            .collect();
        let expected: Vec<_> = topic_code.map(|code| (1, code)).into_iter().collect();
        assert_eq!(
            (response.error_code, codes),
            (group_code, expected),
            "{at} {group}"
        );
    }
    let remaining = sweep.ctx.broker.fetch_offsets(empty, None);
    let partitions: Vec<_> = remaining.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
    assert_eq!(partitions, [(TOPIC, 0)], "{at}: partition 1 deleted");
}

async fn list_groups(sweep: &mut Sweep, version: i16) {
    let group = format!("listed-v{version}");
    stable_group(sweep, &group).await;
    let mut request = messages::ListGroupsRequest::default();
    if version >= 4 {
        request.states_filter = vec![text("Stable")];
    }
    if version >= 5 {
        request.types_filter = vec![text("classic")];
    }
    let response: messages::ListGroupsResponse =
        sweep.call(ApiKey::ListGroups, version, &request).await;
    let at = format!("ListGroups v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    let listed: Vec<_> = response
        .groups
        .iter()
        .map(|g| {
            let id = g.group_id.to_string();
            (
                id,
                g.protocol_type.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect();
    let state = if version >= 4 { "Stable" } else { "" };
    let group_type = if version >= 5 { "classic" } else { "" };
    let ours = (
        group,
        PROTOCOL_TYPE.to_owned(),
        state.to_owned(),
        group_type.to_owned(),
    );
    assert!(listed.contains(&ours), "{at}: {ours:?} in {listed:?}");
    if version >= 4 {
        assert!(
            listed.iter().all(|g| g.2 == "Stable"),
            "{at}: filtered by state"
        );
    } else {
        // A group that only ever committed offsets is listed too, without a protocol type.
        let standalone = (
            "committed-v2".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        );
        assert!(listed.contains(&standalone), "{at}: {listed:?}");
    }
}

async fn describe_groups_once(
    sweep: &mut Sweep,
    group: &str,
) -> messages::describe_groups_response::DescribedGroup {
    let request = messages::DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response: messages::DescribeGroupsResponse =
        sweep.call(ApiKey::DescribeGroups, 5, &request).await;
    let [described] = exactly(&response.groups, "DescribeGroups v5");
    assert_eq!(described.error_code, NONE);
    described.clone()
}

async fn describe_groups(sweep: &mut Sweep, version: i16) {
    let group = format!("described-v{version}");
    let (member_id, _) = stable_group(sweep, &group).await;
    let request = messages::DescribeGroupsRequest::default()
        .with_groups(vec![group_id(&group), group_id(GHOST_GROUP)]);
    let response: messages::DescribeGroupsResponse =
        sweep.call(ApiKey::DescribeGroups, version, &request).await;
    let at = format!("DescribeGroups v{version}");
    let [described, ghost] = exactly(&response.groups, &at);
    let got = (
        described.error_code,
        described.group_id.as_str(),
        described.group_state.as_str(),
        described.protocol_type.as_str(),
        described.protocol_data.as_str(),
    );
    let expected = (NONE, group.as_str(), "Stable", PROTOCOL_TYPE, PROTOCOL_NAME);
    assert_eq!(got, expected, "{at}");
    let operations = described.authorized_operations;
    assert_eq!(operations, i32::MIN, "{at}: not requested");
    let members: Vec<_> = described
        .members
        .iter()
        .map(|m| {
            let client = (m.client_id.to_string(), m.client_host.to_string());
            let data = (m.member_metadata.clone(), m.member_assignment.clone());
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                client,
                data,
            )
        })
        .collect();
    let client = ("version-sweep".to_owned(), "/127.0.0.1".to_owned());
    let data = (subscription(), Bytes::from_static(ASSIGNMENT));
    assert_eq!(members, [(member_id, None, client, data)], "{at}");
    // An unknown group is Dead without an error before v6, GROUP_ID_NOT_FOUND from v6.
    let (code, has_message) = if version >= 6 {
        (ResponseError::GroupIdNotFound.code(), true)
    } else {
        (NONE, false)
    };
    let got = (
        ghost.error_code,
        ghost.group_state.as_str(),
        ghost.members.len(),
    );
    assert_eq!(got, (code, "Dead", 0), "{at}");
    assert_eq!(ghost.error_message.is_some(), has_message, "{at}");
}

async fn delete_groups(sweep: &mut Sweep, version: i16) {
    let empty = format!("deleted-v{version}");
    let busy = format!("busy-v{version}");
    stable_group(sweep, &busy).await;
    // A standalone commit creates the empty group.
    let partition = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(1);
    let topic = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partitions(vec![partition]);
    let commit = messages::OffsetCommitRequest::default()
        .with_group_id(group_id(&empty))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![topic]);
    let committed: messages::OffsetCommitResponse =
        sweep.call(ApiKey::OffsetCommit, 9, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, NONE);
    let request = messages::DeleteGroupsRequest::default().with_groups_names(vec![
        group_id(&empty),
        group_id(&busy),
        group_id(GHOST_GROUP),
    ]);
    let response: messages::DeleteGroupsResponse =
        sweep.call(ApiKey::DeleteGroups, version, &request).await;
    let got: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.group_id.to_string(), r.error_code))
        .collect();
    let expected = [
        (empty.clone(), NONE),
        (busy, ResponseError::NonEmptyGroup.code()),
        (
            GHOST_GROUP.to_owned(),
            ResponseError::GroupIdNotFound.code(),
        ),
    ];
    assert_eq!(got, expected, "DeleteGroups v{version}");
    let remaining = sweep.ctx.broker.fetch_offsets(&empty, None);
    assert!(
        remaining.is_empty(),
        "DeleteGroups v{version}: offsets deleted"
    );
}

/// Joins a KIP-848 group subscribed to `TOPIC` as `member`; returns the member epoch.
async fn consumer_group_join(sweep: &mut Sweep, version: i16, group: &str, member: &str) -> i32 {
    let request = messages::ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(text(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(TOPIC)]))
        .with_topic_partitions(Some(Vec::new()));
    let response: messages::ConsumerGroupHeartbeatResponse = sweep
        .call(ApiKey::ConsumerGroupHeartbeat, version, &request)
        .await;
    let at = format!("ConsumerGroupHeartbeat v{version} join");
    assert_eq!(response.error_code, NONE, "{at}");
    assert_eq!(response.member_id.as_deref(), Some(member), "{at}");
    let assigned: Vec<i32> = response
        .assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .filter(|t| t.topic_id == sweep.topic_id)
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    assert_eq!(assigned, (0..PARTITION_COUNT).collect::<Vec<_>>(), "{at}");
    response.member_epoch
}

async fn consumer_group_heartbeat(sweep: &mut Sweep, version: i16) {
    let group = format!("kip848-v{version}");
    let epoch = consumer_group_join(sweep, version, &group, "sweep-member").await;
    let fenced = ResponseError::FencedMemberEpoch.code();
    for (member_epoch, code) in [(epoch, NONE), (epoch + 3, fenced), (-1, NONE)] {
        let request = messages::ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_member_id(text("sweep-member"))
            .with_member_epoch(member_epoch);
        let response: messages::ConsumerGroupHeartbeatResponse = sweep
            .call(ApiKey::ConsumerGroupHeartbeat, version, &request)
            .await;
        let at = format!("ConsumerGroupHeartbeat v{version} epoch {member_epoch}");
        assert_eq!(response.error_code, code, "{at}");
    }
}

async fn consumer_group_describe(sweep: &mut Sweep, version: i16) {
    let group = format!("kip848-described-v{version}");
    consumer_group_join(sweep, version.min(1), &group, "described-member").await;
    let request = messages::ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group_id(&group), group_id("no-such-group")]);
    let response: messages::ConsumerGroupDescribeResponse = sweep
        .call(ApiKey::ConsumerGroupDescribe, version, &request)
        .await;
    let at = format!("ConsumerGroupDescribe v{version}");
    assert_eq!(response.groups.len(), 2, "{at}");
    let described = &response.groups[0];
    assert_eq!(described.error_code, NONE, "{at}");
    assert_eq!(described.group_state.as_str(), "Stable", "{at}");
    assert_eq!(described.members.len(), 1, "{at}");
    assert_eq!(
        described.members[0].member_id.as_str(),
        "described-member",
        "{at}"
    );
    assert_eq!(
        response.groups[1].error_code,
        ResponseError::GroupIdNotFound.code(),
        "{at}"
    );
}
