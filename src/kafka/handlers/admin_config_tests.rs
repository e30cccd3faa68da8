//! Tests of the config, records, cluster and log-dir admin handlers against a real broker in a
//! temporary directory, checking that every response also encodes at its version.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use tempfile::TempDir;

use super::admin_tests::{NODE_ID, assert_encodes, context, creatable, create, name};
use super::*;
use crate::kafka::Context;

fn resource(
    resource_type: i8,
    resource_name: &str,
    keys: Option<&[&str]>,
) -> describe_configs_request::DescribeConfigsResource {
    describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(name(resource_name))
        .with_configuration_keys(keys.map(|keys| keys.iter().map(|k| name(k)).collect()))
}

async fn describe(
    ctx: &Context,
    version: i16,
    resources: Vec<describe_configs_request::DescribeConfigsResource>,
) -> DescribeConfigsResponse {
    let request = DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let response = describe_configs::handle(ctx, version, request).await;
    assert_encodes(&response, version);
    response
}

/// `(name, value, source)` of every config of the first resource.
fn values(response: &DescribeConfigsResponse) -> Vec<(String, Option<String>, i8)> {
    let configs = &response.results[0].configs;
    configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                c.config_source,
            )
        })
        .collect()
}

#[tokio::test]
async fn describe_configs_filters_topic_keys_and_checks_broker_names() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(
        &ctx,
        7,
        vec![creatable("t", 1, &[("retention.ms", "1000")])],
    )
    .await;
    for version in 1..=4 {
        let keys: &[&str] = &["retention.ms", "segment.bytes", "no.such.key"];
        let response = describe(&ctx, version, vec![resource(2, "t", Some(keys))]).await;
        let got = values(&response);
        assert_eq!(got.len(), 2, "v{version}: {got:?}");
        assert_eq!(
            got[0],
            ("retention.ms".to_owned(), Some("1000".to_owned()), 1)
        );
        assert_eq!(got[1].2, 5, "segment.bytes is a default");
    }
    let all = describe(
        &ctx,
        4,
        vec![
            resource(2, "t", None),
            resource(4, &NODE_ID.to_string(), None),
        ],
    )
    .await;
    assert!(all.results[0].configs.len() > 2);
    let broker = &all.results[1];
    assert_eq!(broker.error_code, 0);
    assert!(
        broker
            .configs
            .iter()
            .any(|c| c.name.as_str() == "broker.id")
    );
    assert!(
        broker
            .configs
            .iter()
            .all(|c| c.read_only && c.config_type != 0)
    );
    let errors = describe(
        &ctx,
        4,
        vec![
            resource(2, "missing", None),
            resource(4, "99", None),
            resource(8, "1", None),
        ],
    )
    .await;
    let codes: Vec<i16> = errors.results.iter().map(|r| r.error_code).collect();
    let expected = [
        ResponseError::UnknownTopicOrPartition,
        ResponseError::InvalidRequest,
        ResponseError::InvalidRequest,
    ];
    assert_eq!(codes, expected.map(|e| e.code()));
    assert!(
        errors
            .results
            .iter()
            .all(|r| r.configs.is_empty() && r.error_message.is_some())
    );
}

#[tokio::test]
async fn alter_configs_replaces_all_topic_overrides() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(
        &ctx,
        7,
        vec![creatable("t", 1, &[("retention.ms", "1000")])],
    )
    .await;
    let alter = |resource_type, resource_name: &str, configs: &[(&str, &str)]| {
        let configs = configs.iter().map(|(k, v)| {
            alter_configs_request::AlterableConfig::default()
                .with_name(name(k))
                .with_value(Some(name(v)))
        });
        let resource = alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(name(resource_name))
            .with_configs(configs.collect());
        AlterConfigsRequest::default().with_resources(vec![resource])
    };
    let response = alter_configs::handle(&ctx, 2, alter(2, "t", &[("segment.ms", "60000")])).await;
    assert_encodes(&response, 2);
    assert_eq!(response.responses[0].error_code, 0);
    let overrides: Vec<_> = values(&describe(&ctx, 4, vec![resource(2, "t", None)]).await)
        .into_iter()
        .filter(|c| c.2 == 1)
        .collect();
    assert_eq!(
        overrides,
        [("segment.ms".to_owned(), Some("60000".to_owned()), 1)]
    );
    let response = alter_configs::handle(&ctx, 0, alter(2, "t", &[("retention.ms", "nope")])).await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    let response =
        alter_configs::handle(&ctx, 0, alter(4, "1", &[("log.retention.ms", "1")])).await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidRequest.code()
    );
}

#[tokio::test]
async fn incremental_alter_configs_sets_and_deletes_one_key() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(
        &ctx,
        7,
        vec![creatable("t", 1, &[("retention.ms", "1000")])],
    )
    .await;
    let alter = |configs: &[(&str, i8, Option<&str>)]| {
        let configs = configs.iter().map(|(k, op, v)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(name(k))
                .with_config_operation(*op)
                .with_value(v.map(name))
        });
        let resource = incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(name("t"))
            .with_configs(configs.collect());
        IncrementalAlterConfigsRequest::default().with_resources(vec![resource])
    };
    let response = incremental_alter_configs::handle(
        &ctx,
        1,
        alter(&[("segment.ms", 0, Some("60000")), ("retention.ms", 1, None)]),
    )
    .await;
    assert_encodes(&response, 1);
    assert_eq!(response.responses[0].error_code, 0);
    let overrides: Vec<_> = values(&describe(&ctx, 4, vec![resource(2, "t", None)]).await)
        .into_iter()
        .filter(|c| c.2 == 1)
        .collect();
    assert_eq!(
        overrides,
        [("segment.ms".to_owned(), Some("60000".to_owned()), 1)]
    );
    let response =
        incremental_alter_configs::handle(&ctx, 0, alter(&[("retention.ms", 2, Some("5"))])).await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidConfig.code(),
        "APPEND needs a list key"
    );
    let response =
        incremental_alter_configs::handle(&ctx, 0, alter(&[("retention.ms", 0, None)])).await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidRequest.code(),
        "SET needs a value"
    );
}

#[tokio::test]
async fn delete_records_up_to_the_high_watermark() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(&ctx, 7, vec![creatable("t", 1, &[])]).await;
    let partition = |index, offset| {
        delete_records_request::DeleteRecordsPartition::default()
            .with_partition_index(index)
            .with_offset(offset)
    };
    let topic = delete_records_request::DeleteRecordsTopic::default()
        .with_name(TopicName(name("t")))
        .with_partitions(vec![partition(0, -1), partition(0, 5), partition(7, 0)]);
    let request = DeleteRecordsRequest::default().with_topics(vec![topic]);
    let response = delete_records::handle(&ctx, 2, request).await;
    assert_encodes(&response, 2);
    let got: Vec<(i64, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.low_watermark, p.error_code))
        .collect();
    let out_of_range = ResponseError::OffsetOutOfRange.code();
    assert_eq!(
        got,
        [
            (0, 0),
            (-1, out_of_range),
            (-1, ResponseError::UnknownTopicOrPartition.code())
        ]
    );
}

#[tokio::test]
async fn describe_cluster_lists_this_node_as_broker_and_controller() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    for version in 0..=2 {
        let request = DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(version == 2);
        let response = describe_cluster::handle(&ctx, version, request).await;
        assert_encodes(&response, version);
        assert_eq!(
            (response.error_code, response.cluster_id.as_str()),
            (0, "test-cluster")
        );
        assert_eq!(response.controller_id, BrokerId(NODE_ID));
        let broker = &response.brokers[..];
        assert_eq!(broker.len(), 1);
        assert_eq!(
            (broker[0].host.as_str(), broker[0].port, broker[0].broker_id),
            ("broker.test", 19092, BrokerId(NODE_ID))
        );
    }
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let response = describe_cluster::handle(&ctx, 1, controllers).await;
    assert_encodes(&response, 1);
    assert_eq!(
        response.error_code,
        ResponseError::MismatchedEndpointType.code()
    );
}

#[tokio::test]
async fn describe_log_dirs_lists_every_partition_of_the_data_dir() {
    let dir = TempDir::new().expect("tempdir");
    let ctx = context(&dir);
    create(
        &ctx,
        7,
        vec![creatable("a", 2, &[]), creatable("b", 1, &[])],
    )
    .await;
    for version in 1..=4 {
        let response = describe_log_dirs::handle(
            &ctx,
            version,
            DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
        assert_encodes(&response, version);
        let result = &response.results[0];
        assert!(!result.log_dir.is_empty());
        let partitions: Vec<(String, usize)> = result
            .topics
            .iter()
            .map(|t| (t.name.to_string(), t.partitions.len()))
            .collect();
        // The internal topics are in the data dir too (Kafka lists them as well).
        let expected = [
            ("__consumer_offsets".to_owned(), 8),
            ("__transaction_state".to_owned(), 8),
            ("a".to_owned(), 2),
            ("b".to_owned(), 1),
        ];
        assert_eq!(partitions, expected);
    }
}
