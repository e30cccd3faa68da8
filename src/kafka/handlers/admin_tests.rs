//! Tests of the topic admin handlers against a real broker in a temporary directory, checking
//! that every response also encodes at its version. Shares its fixtures with `admin_config_tests`.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use tempfile::TempDir;

use super::*;
use crate::broker::{Broker, BrokerSettings, Endpoint};
use crate::kafka::{Context, KafkaSettings};

pub(super) const NODE_ID: i32 = 1;

pub(super) fn context(dir: &TempDir) -> Context {
    let settings = BrokerSettings::for_test(
        NODE_ID,
        "test-cluster",
        dir.path(),
        Endpoint {
            host: "broker.test".to_owned(),
            port: 19092,
        },
    );
    let broker = Broker::open(settings).expect("broker opens in a fresh directory");
    let peer = "127.0.0.1:1".parse().expect("socket address");
    Context::new(broker, Arc::new(KafkaSettings::default()), peer)
}

#[track_caller]
pub(super) fn assert_encodes<M: Encodable>(response: &M, version: i16) {
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, version)
        .expect("response encodes at its version");
    assert_eq!(
        buf.len(),
        response.compute_size(version).expect("size"),
        "v{version}"
    );
}

pub(super) fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(super) fn creatable(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    let configs = configs.iter().map(|(k, v)| {
        CreatableTopicConfig::default()
            .with_name(name(k))
            .with_value(Some(name(v)))
    });
    CreatableTopic::default()
        .with_name(TopicName(name(topic)))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(configs.collect())
}

pub(super) async fn create(
    ctx: &Context,
    version: i16,
    topics: Vec<CreatableTopic>,
) -> CreateTopicsResponse {
    let request = CreateTopicsRequest::default().with_topics(topics);
    let response = create_topics::handle(ctx, version, request).await;
    assert_encodes(&response, version);
    response
}

#[tokio::test]
async fn create_topics_reports_partitions_configs_and_id() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    let topics = vec![
        creatable("orders", 2, &[("retention.ms", "1000")]),
        creatable("dflt", -1, &[]),
    ];
    let response = create(&ctx, 7, topics).await;
    let [orders, dflt] = &response.topics[..] else {
        panic!("two results")
    };
    assert_eq!(
        (
            orders.error_code,
            orders.num_partitions,
            orders.replication_factor
        ),
        (0, 2, 1)
    );
    assert!(!orders.topic_id.is_nil());
    let configs = orders.configs.as_ref().expect("configs at v5+");
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("listed");
    assert_eq!(
        (retention.value.as_deref(), retention.config_source),
        (Some("1000"), 1)
    );
    assert_eq!(
        dflt.num_partitions, 3,
        "num_partitions -1 takes the broker default"
    );
    assert_eq!(
        ctx.broker.topic("orders").map(|t| t.partitions.len()),
        Some(2)
    );
    for version in 2..=7 {
        let again = create(&ctx, version, vec![creatable("orders", 1, &[])]).await;
        assert_eq!(
            again.topics[0].error_code,
            ResponseError::TopicAlreadyExists.code()
        );
    }
}

#[tokio::test]
async fn create_topics_rejects_duplicates_factors_and_foreign_assignments() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    let foreign = CreatableReplicaAssignment::default().with_broker_ids(vec![BrokerId(9)]);
    let mut assigned = creatable("assigned", -1, &[]);
    assigned.assignments = vec![foreign];
    let mut replicated = creatable("replicated", 1, &[]);
    replicated.replication_factor = 3;
    let topics = vec![
        creatable("twice", 1, &[]),
        replicated,
        assigned,
        creatable("twice", 1, &[]),
    ];
    let response = create(&ctx, 5, topics).await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    let expected = [
        ResponseError::InvalidRequest,
        ResponseError::InvalidReplicationFactor,
        ResponseError::InvalidReplicaAssignment,
    ];
    assert_eq!(codes, expected.map(|e| e.code()));
    assert!(response.topics.iter().all(|t| t.error_message.is_some()));
    assert!(ctx.broker.topics().iter().all(|t| t.is_internal));
}

#[tokio::test]
async fn validate_only_creates_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![creatable("dry", 4, &[("retention.ms", "5")])])
        .with_validate_only(true);
    let response = create_topics::handle(&ctx, 7, request).await;
    assert_eq!(
        (
            response.topics[0].error_code,
            response.topics[0].num_partitions
        ),
        (0, 4)
    );
    assert!(ctx.broker.topic("dry").is_none());
}

#[tokio::test]
async fn delete_topics_by_name_and_by_id() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(
        &ctx,
        7,
        vec![creatable("a", 1, &[]), creatable("b", 1, &[])],
    )
    .await;
    let b_id = crate::kafka::topic_id_to_uuid(ctx.broker.topic("b").expect("b").topic_id);
    let old = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(name("a")), TopicName(name("x"))]);
    let response = delete_topics::handle(&ctx, 4, old).await;
    assert_encodes(&response, 4);
    let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, ResponseError::UnknownTopicOrPartition.code()]);
    let by_id = |id| delete_topics_request::DeleteTopicState::default().with_topic_id(id);
    let v6 = DeleteTopicsRequest::default().with_topics(vec![by_id(b_id), by_id(b_id)]);
    let response = delete_topics::handle(&ctx, 6, v6).await;
    assert_encodes(&response, 6);
    assert_eq!(
        response.responses.len(),
        1,
        "a repeated id is answered once"
    );
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidRequest.code()
    );
    let v6 = DeleteTopicsRequest::default().with_topics(vec![by_id(b_id)]);
    let response = delete_topics::handle(&ctx, 6, v6).await;
    let deleted = &response.responses[0];
    assert_eq!(
        (
            deleted.error_code,
            deleted.name.as_deref().map(|n| n.as_str())
        ),
        (0, Some("b"))
    );
    let response = delete_topics::handle(
        &ctx,
        6,
        DeleteTopicsRequest::default().with_topics(vec![by_id(b_id)]),
    )
    .await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
    assert!(ctx.broker.topics().iter().all(|t| t.is_internal));
}

#[tokio::test]
async fn create_partitions_only_grows() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(&ctx, 7, vec![creatable("t", 2, &[])]).await;
    let grow = |count, assignments| {
        let topic = create_partitions_request::CreatePartitionsTopic::default()
            .with_name(TopicName(name("t")))
            .with_count(count)
            .with_assignments(assignments);
        CreatePartitionsRequest::default().with_topics(vec![topic])
    };
    let on_us = create_partitions_request::CreatePartitionsAssignment::default()
        .with_broker_ids(vec![BrokerId(NODE_ID)]);
    let response = create_partitions::handle(&ctx, 3, grow(3, Some(vec![on_us]))).await;
    assert_encodes(&response, 3);
    assert_eq!(response.results[0].error_code, 0);
    let response = create_partitions::handle(&ctx, 0, grow(2, None)).await;
    assert_eq!(
        response.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(ctx.broker.topic("t").map(|t| t.partitions.len()), Some(3));
}
