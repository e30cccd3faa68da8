//! Configs and log directories: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
//! DescribeLogDirs.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, describe_configs_request, describe_log_dirs_request,
    incremental_alter_configs_request,
};
use kafka_protocol::protocol::StrBytes;

use super::{ABSENT, NODE_ID, NONE, RETENTION_MS, Sweep, TOPIC, exactly, text, topic_name};
use crate::broker::{ConfigEntry, ConfigSource};

/// Config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

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

pub(super) async fn describe_configs(sweep: &mut Sweep, version: i16) {
    let node = NODE_ID.to_string();
    let resources = vec![
        describe_resource(RESOURCE_TOPIC, TOPIC, None),
        describe_resource(RESOURCE_TOPIC, TOPIC, Some(&["retention.ms"])),
        describe_resource(RESOURCE_BROKER, &node, None),
        describe_resource(RESOURCE_TOPIC, ABSENT, None),
        describe_resource(RESOURCE_BROKER_LOGGER, &node, None),
        describe_resource(RESOURCE_BROKER, "", None),
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
        (RESOURCE_BROKER, String::new(), NONE),
    ];
    assert_eq!(summary, expected, "{at}");
    let [all, filtered, broker, absent, logger, defaults] = exactly(&response.results, &at);
    // The cluster-wide defaults hold dynamic configs only.
    assert!(
        defaults.configs.iter().all(|c| c.config_source == 3),
        "{at}"
    );
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

/// A Kafka broker config Kafka lets change at runtime and no Tidelog component reads.
const KERBEROS_RELOGIN: &str = "sasl.kerberos.min.time.before.relogin";
/// A key no one defines, which Kafka stores as given.
const SWEEP_KEY: &str = "tidelog.sweep.custom";

/// The config `key` of a BROKER resource (`None`: the cluster-wide default), if described.
fn broker_config(sweep: &Sweep, node: Option<i32>, key: &str) -> Option<ConfigEntry> {
    let configs = sweep.ctx.broker.broker_configs(node);
    configs.into_iter().find(|c| c.name == key)
}

/// The override `key` of `topic` has, if any.
fn topic_override(sweep: &Sweep, topic: &str, key: &str) -> Option<String> {
    let configs = sweep.ctx.broker.topic_configs(topic).expect("topic exists");
    let entry = configs.iter().find(|c| c.name == key).expect("known key");
    (entry.source == ConfigSource::TopicOverride)
        .then(|| entry.value.clone().expect("not sensitive"))
}

pub(super) async fn alter_configs(sweep: &mut Sweep, version: i16) {
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
    let config = |key: &str, value: &str| {
        AlterableConfig::default()
            .with_name(text(key))
            .with_value(Some(text(value)))
    };
    // A dynamic broker config nothing in Tidelog reads is stored; a static one is refused.
    let relogin_ms = (i64::from(version) + 1) * 1_000;
    let request = messages::AlterConfigsRequest::default().with_resources(vec![
        resource(RESOURCE_TOPIC, &name, vec![set]),
        resource(
            RESOURCE_BROKER,
            &NODE_ID.to_string(),
            vec![config(KERBEROS_RELOGIN, &relogin_ms.to_string())],
        ),
        resource(RESOURCE_BROKER, "", vec![config("log.dirs", "/elsewhere")]),
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
    let invalid = ResponseError::InvalidRequest.code();
    let expected = [
        (RESOURCE_TOPIC, name.clone(), NONE, false),
        (RESOURCE_BROKER, NODE_ID.to_string(), NONE, false),
        (RESOURCE_BROKER, String::new(), invalid, true),
        (RESOURCE_TOPIC, ABSENT.to_owned(), unknown, true),
    ];
    assert_eq!(got, expected, "{at}");
    assert_eq!(
        response.responses[2].error_message.as_deref(),
        Some("Cannot update these configs dynamically: Set(log.dirs)"),
        "{at}"
    );
    let relogin = broker_config(sweep, Some(NODE_ID), KERBEROS_RELOGIN).expect("stored");
    assert_eq!(relogin.value, Some(relogin_ms.to_string()), "{at}");
    assert_eq!(relogin.source, ConfigSource::DynamicBroker, "{at}");
    let retention = Some(retention.to_string());
    assert_eq!(
        topic_override(sweep, &name, "retention.ms"),
        retention,
        "{at}"
    );
    // AlterConfigs replaces the whole override set.
    assert_eq!(topic_override(sweep, &name, "segment.ms"), None, "{at}");
}

pub(super) async fn incremental_alter_configs(sweep: &mut Sweep, version: i16) {
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
            vec![
                op("log.retention.ms", 1, None),
                op(KERBEROS_RELOGIN, 1, None),
            ],
        ),
        resource(
            RESOURCE_BROKER,
            "",
            vec![op(SWEEP_KEY, 0, Some(version.to_string()))],
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
        (RESOURCE_BROKER, String::new(), NONE, false),
    ];
    assert_eq!(got, expected, "{at}");
    assert_eq!(broker_config(sweep, Some(NODE_ID), KERBEROS_RELOGIN), None);
    let default = broker_config(sweep, None, SWEEP_KEY).expect("stored");
    assert_eq!(default.value, Some(version.to_string()), "{at}");
    assert_eq!(default.source, ConfigSource::DynamicDefaultBroker, "{at}");
    // This node inherits the cluster-wide default.
    let inherited = broker_config(sweep, Some(NODE_ID), SWEEP_KEY).expect("inherited");
    assert_eq!(inherited.source, ConfigSource::DynamicDefaultBroker, "{at}");
    let retention_bytes = Some(retention_bytes.to_string());
    assert_eq!(
        topic_override(sweep, &name, "retention.bytes"),
        retention_bytes
    );
    assert_eq!(topic_override(sweep, &name, "segment.ms"), None, "{at}");
}

pub(super) async fn describe_log_dirs(sweep: &mut Sweep, version: i16) {
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
