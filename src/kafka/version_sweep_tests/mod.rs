//! Sweeps every API and version of the ApiVersions table through `dispatch` with a meaningful
//! request, decoding each response frame with kafka-protocol at that version; test-only.
//! This file is the harness (broker setup, framing, the two tests, the coverage check); each
//! submodule builds and checks the requests of one API family.

mod cluster;
mod configs;
mod data;
mod group_offsets;
mod groups;
mod operations;
mod producers;
mod security;
mod topic_admin;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tempfile::TempDir;
use uuid::Uuid;

use crate::broker::{Broker, BrokerSettings, Endpoint};
use crate::kafka::versions::{self, SERVED};
use crate::kafka::{Context, DispatchError, Dispatched, KafkaSettings, dispatch};

use cluster::{api_versions, check_api_table, describe_cluster, find_coordinator, metadata};
use configs::{alter_configs, describe_configs, describe_log_dirs, incremental_alter_configs};
use data::{fetch, list_offsets, offset_for_leader_epoch, produce};
use group_offsets::{offset_commit, offset_delete, offset_fetch};
use groups::{
    consumer_group_describe, consumer_group_heartbeat, delete_groups, describe_groups, heartbeat,
    join_group, leave_group, list_groups, sync_group,
};
use operations::{
    alter_partition_reassignments, elect_leaders, list_partition_reassignments, unregister_broker,
};
use producers::{
    add_offsets_to_txn, add_partitions_to_txn, describe_producers, describe_transactions,
    end_txn_at, init_producer_id, list_transactions, txn_offset_commit,
};
use security::{
    alter_client_quotas, alter_user_scram_credentials, create_acls, delete_acls, describe_acls,
    describe_client_quotas, describe_user_scram_credentials, sasl_authenticate, sasl_handshake,
};
use topic_admin::{creatable, create_partitions, create_topics, delete_records, delete_topics};

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
    /// Every producer id InitProducerId handed out.
    producer_ids: BTreeSet<i64>,
    /// Whether the transaction requests' topic exists yet.
    created_txn_topic: bool,
}

impl Sweep {
    async fn open() -> Sweep {
        let dir = TempDir::new().expect("tempdir");
        let settings = BrokerSettings::for_test(
            NODE_ID,
            CLUSTER_ID,
            dir.path(),
            Endpoint {
                host: HOST.to_owned(),
                port: PORT,
            },
        );
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
            producer_ids: BTreeSet::new(),
            created_txn_topic: false,
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
        // Boxed: the dispatch future is deep, and inlining it here overflows rustc's layout
        // query depth ("queries overflow the depth limit") in a fresh build.
        let response = Box::pin(respond(&self.ctx, api, version, frame)).await;
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
        // A SASL request on a listener without SASL is answered, then the connection closes.
        Ok(Dispatched::Respond(pending) | Dispatched::RespondThenClose(pending)) => pending
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
                ApiKey::ElectLeaders => elect_leaders(&mut sweep, version).await,
                ApiKey::UnregisterBroker => unregister_broker(&mut sweep, version).await,
                ApiKey::SaslHandshake => sasl_handshake(&mut sweep, version).await,
                ApiKey::DescribeAcls => describe_acls(&mut sweep, version).await,
                ApiKey::DescribeClientQuotas => describe_client_quotas(&mut sweep, version).await,
                ApiKey::AlterClientQuotas => alter_client_quotas(&mut sweep, version).await,
                ApiKey::CreateAcls => create_acls(&mut sweep, version).await,
                ApiKey::DeleteAcls => delete_acls(&mut sweep, version).await,
                ApiKey::SaslAuthenticate => sasl_authenticate(&mut sweep, version).await,
                ApiKey::DescribeUserScramCredentials => {
                    describe_user_scram_credentials(&mut sweep, version).await
                }
                ApiKey::AlterUserScramCredentials => {
                    alter_user_scram_credentials(&mut sweep, version).await
                }
                ApiKey::AlterPartitionReassignments => {
                    alter_partition_reassignments(&mut sweep, version).await
                }
                ApiKey::ListPartitionReassignments => {
                    list_partition_reassignments(&mut sweep, version).await
                }
                ApiKey::DescribeProducers => describe_producers(&mut sweep, version).await,
                ApiKey::DescribeTransactions => describe_transactions(&mut sweep, version).await,
                ApiKey::ListTransactions => list_transactions(&mut sweep, version).await,
                ApiKey::InitProducerId => init_producer_id(&mut sweep, version).await,
                ApiKey::AddPartitionsToTxn => add_partitions_to_txn(&mut sweep, version).await,
                ApiKey::AddOffsetsToTxn => add_offsets_to_txn(&mut sweep, version).await,
                ApiKey::EndTxn => end_txn_at(&mut sweep, version).await,
                ApiKey::TxnOffsetCommit => txn_offset_commit(&mut sweep, version).await,
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
