//! Topic administration: CreateTopics, DeleteTopics, DescribeConfigs and
//! IncrementalAlterConfigs for one topic at a time, answered by any broker.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::error::ClientError;
use super::metadata::topic_name;
use super::session::{Client, Target};

const CREATE_TOPICS_VERSION: i16 = 7;
/// DeleteTopics v5: by name (v6 adds deletion by id).
const DELETE_TOPICS_VERSION: i16 = 5;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
/// ConfigResource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewTopic {
    pub(crate) name: String,
    /// `None`: the broker's default (`num.partitions`).
    pub(crate) partitions: Option<i32>,
    /// `None`: the broker's default (`default.replication.factor`).
    pub(crate) replication_factor: Option<i16>,
    pub(crate) configs: Vec<(String, String)>,
}

/// One config entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConfigEntry {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    /// Kafka's config source: `TOPIC`, `DEFAULT`, ...
    pub(crate) source: &'static str,
    pub(crate) read_only: bool,
    pub(crate) sensitive: bool,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Creates `topic`; waits (within the session timeout) for the controller to report it.
pub(crate) fn create_topic(client: &mut Client, topic: &NewTopic) -> Result<(), ClientError> {
    let timeout_ms = client.timeout_ms();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name(&topic.name))
                .with_num_partitions(topic.partitions.unwrap_or(-1))
                .with_replication_factor(topic.replication_factor.unwrap_or(-1))
                .with_configs(
                    topic
                        .configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(str_bytes(k))
                                .with_value(Some(str_bytes(v)))
                        })
                        .collect(),
                ),
        ]);
    let response = client.retry("CreateTopics", |client| {
        client.call(Target::Any, &request, CREATE_TOPICS_VERSION)
    })?;
    let result = response
        .topics
        .iter()
        .find(|t| t.name.as_str() == topic.name)
        .ok_or_else(|| ClientError::protocol("CreateTopics answered without the topic"))?;
    ClientError::check_with(
        result.error_code,
        format!("creating topic {}", topic.name),
        result.error_message.as_deref(),
    )
}

/// Deletes the topic `name`.
pub(crate) fn delete_topic(client: &mut Client, name: &str) -> Result<(), ClientError> {
    let timeout_ms = client.timeout_ms();
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topic_names(vec![topic_name(name)]);
    let response = client.retry("DeleteTopics", |client| {
        client.call(Target::Any, &request, DELETE_TOPICS_VERSION)
    })?;
    let result = response
        .responses
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
        .ok_or_else(|| ClientError::protocol("DeleteTopics answered without the topic"))?;
    ClientError::check_with(
        result.error_code,
        format!("deleting topic {name}"),
        result.error_message.as_deref(),
    )
}

/// Every config of topic `name`, with where its value comes from.
pub(crate) fn topic_configs(
    client: &mut Client,
    name: &str,
) -> Result<Vec<ConfigEntry>, ClientError> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None),
    ]);
    let response = client.retry("DescribeConfigs", |client| {
        client.call(Target::Any, &request, DESCRIBE_CONFIGS_VERSION)
    })?;
    let result = response
        .results
        .first()
        .ok_or_else(|| ClientError::protocol("DescribeConfigs answered no resource"))?;
    ClientError::check_with(
        result.error_code,
        format!("topic {name}"),
        result.error_message.as_deref(),
    )?;
    let mut entries: Vec<ConfigEntry> = result
        .configs
        .iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.as_ref().map(ToString::to_string),
            source: config_source(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Sets the configs `set` and removes `delete` (back to the default) on topic `name`.
pub(crate) fn alter_topic_configs(
    client: &mut Client,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), ClientError> {
    let configs = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(str_bytes(k))
                .with_config_operation(OP_SET)
                .with_value(Some(str_bytes(v)))
        })
        .chain(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(str_bytes(k))
                .with_config_operation(OP_DELETE)
                .with_value(None)
        }))
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(name))
            .with_configs(configs),
    ]);
    let response = client.retry("IncrementalAlterConfigs", |client| {
        client.call(Target::Any, &request, INCREMENTAL_ALTER_CONFIGS_VERSION)
    })?;
    let result = response
        .responses
        .first()
        .ok_or_else(|| ClientError::protocol("IncrementalAlterConfigs answered no resource"))?;
    ClientError::check_with(
        result.error_code,
        format!("altering the configs of topic {name}"),
        result.error_message.as_deref(),
    )
}

/// Kafka's name of a DescribeConfigs config source.
fn config_source(source: i8) -> &'static str {
    match source {
        1 => "TOPIC",
        2 => "DYNAMIC_BROKER",
        3 => "DYNAMIC_DEFAULT_BROKER",
        4 => "STATIC_BROKER",
        5 => "DEFAULT",
        6 => "DYNAMIC_BROKER_LOGGER",
        7 => "CLIENT_METRICS",
        8 => "GROUP",
        _ => "UNKNOWN",
    }
}
