//! Cluster discovery: Metadata, FindCoordinator, ApiVersions (and the advertised table) and
//! DescribeCluster.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey, BrokerId, metadata_request};
use uuid::Uuid;

use super::{
    ABSENT, ABSENT_ID, CLUSTER_ID, HOST, NODE_ID, NONE, PARTITION_COUNT, PORT, Sweep, TOPIC,
    exactly, text, topic_name,
};
use crate::kafka::versions::SERVED;

/// Every topic or cluster operation, as Metadata and DescribeCluster report them without ACLs.
const TOPIC_OPERATIONS_ALL: i32 = 3576;
const CLUSTER_OPERATIONS_ALL: i32 = 8096;

pub(super) async fn metadata(sweep: &mut Sweep, version: i16) {
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

pub(super) async fn find_coordinator(sweep: &mut Sweep, version: i16) {
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

pub(super) async fn api_versions(sweep: &mut Sweep, version: i16) {
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
pub(super) fn check_api_table(response: &messages::ApiVersionsResponse, version: i16) {
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
    // KIP-890: transaction.version 2 is supported (listed from v4, as Kafka lists features
    // with minimum 0) and finalized (v3+).
    let supported: Vec<_> = response
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    let finalized: Vec<_> = response
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
        .collect();
    let feature = || "transaction.version".to_owned();
    let expected_supported = if version >= 4 {
        vec![(feature(), 0, 2)]
    } else {
        Vec::new()
    };
    let expected_finalized = if version >= 3 {
        vec![(feature(), 2, 2)]
    } else {
        Vec::new()
    };
    assert_eq!(supported, expected_supported, "ApiVersions v{version}");
    assert_eq!(finalized, expected_finalized, "ApiVersions v{version}");
    if version >= 3 {
        assert_eq!(
            response.finalized_features_epoch, 1,
            "ApiVersions v{version}"
        );
    }
}

pub(super) async fn describe_cluster(sweep: &mut Sweep, version: i16) {
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
