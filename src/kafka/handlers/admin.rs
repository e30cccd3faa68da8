//! What the admin handlers share: the per-item error they report, duplicate detection, Kafka's
//! config-resource rules and the wire ids of config sources and types. Calls no broker mutation.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::{self, ConfigKind, ConfigSource};
use crate::kafka::{Context, error_code};

/// Config resource type TOPIC (Kafka's `ConfigResource.Type`).
pub(super) const RESOURCE_TOPIC: i8 = 2;
/// Config resource type BROKER.
pub(super) const RESOURCE_BROKER: i8 = 4;
/// Config resource type BROKER_LOGGER (runtime log levels), which this broker does not serve.
pub(super) const RESOURCE_BROKER_LOGGER: i8 = 8;

/// A per-item failure: the code and message of one topic, partition or resource result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) code: i16,
    pub(super) message: Option<StrBytes>,
}

impl ApiError {
    /// A broker error, mapped in the one place that maps them.
    pub(super) fn broker(err: &broker::Error) -> ApiError {
        tracing::debug!(error = %err, "admin operation failed");
        ApiError {
            code: error_code::code(err),
            message: error_code::message(err),
        }
    }

    /// A request-shape error found before the broker is asked anything.
    pub(super) fn new(error: ResponseError, message: String) -> ApiError {
        ApiError {
            code: error.code(),
            message: Some(StrBytes::from_string(message)),
        }
    }

    pub(super) fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ResponseError::InvalidRequest, message.into())
    }

    pub(super) fn invalid_replica_assignment(message: String) -> ApiError {
        ApiError::new(ResponseError::InvalidReplicaAssignment, message)
    }
}

/// The `(error_code, error_message)` pair of a result: `(0, None)` on success.
/// ACLs of a config resource: `operation` (DescribeConfigs or AlterConfigs) on the topic, or
/// on the cluster for a broker or broker-logger resource.
pub(super) fn config_access(
    ctx: &Context,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Result<(), ApiError> {
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => (
            ctx.allowed_on_topic(operation, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => (
            ctx.allowed_on_cluster(operation),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => return Ok(()),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(error, "Authorization failed.".to_owned()))
    }
}

pub(super) fn code_and_message(outcome: &Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (error_code::NONE, None),
        Err(err) => (err.code, err.message.clone()),
    }
}

/// The items that occur more than once, each listed once.
pub(super) fn duplicates<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut seen = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    for item in items {
        if let Some(again) = seen.replace(item) {
            repeated.insert(again);
        }
    }
    repeated
}

/// Checks a manual replica list with Kafka's rules (its controller's
/// `validateManualPartitionAssignment`): a non-empty list of distinct brokers for which
/// `registered` holds (on a single node, exactly this node). Like Kafka it looks at the ids in
/// ascending order, so the smallest offending id is the one reported.
pub(super) fn check_replicas(
    broker_ids: &[BrokerId],
    registered: impl Fn(i32) -> bool,
) -> Result<(), ApiError> {
    if broker_ids.is_empty() {
        return Err(ApiError::invalid_replica_assignment(
            "the manual partition assignment includes an empty replica list".to_owned(),
        ));
    }
    let mut sorted: Vec<i32> = broker_ids.iter().map(|id| id.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if !registered(id) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "the manual partition assignment includes broker {id}, but no such broker is registered"
            )));
        }
        if previous == Some(id) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "the manual partition assignment includes the broker {id} more than once"
            )));
        }
        previous = Some(id);
    }
    Ok(())
}

/// Which broker configs a BROKER resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BrokerScope {
    /// The empty name: the cluster-wide dynamic defaults.
    ClusterDefault,
    /// This node's id.
    ThisNode,
}

/// The node a BROKER resource names, `None` for the cluster-wide default (Kafka's name rule).
pub(super) fn broker_node(name: &str, node_id: i32) -> Result<Option<i32>, ApiError> {
    Ok(match broker_scope(name, node_id)? {
        BrokerScope::ClusterDefault => None,
        BrokerScope::ThisNode => Some(node_id),
    })
}

/// Kafka's rule for BROKER resource names: empty, or this node's id.
pub(super) fn broker_scope(name: &str, node_id: i32) -> Result<BrokerScope, ApiError> {
    if name.is_empty() {
        return Ok(BrokerScope::ClusterDefault);
    }
    let id: i32 = name.parse().map_err(|_| {
        ApiError::invalid_request(format!("broker id must be an integer, but it is: {name}"))
    })?;
    if id != node_id {
        return Err(ApiError::invalid_request(format!(
            "unexpected broker id, expected {node_id} or empty string, but received {name}"
        )));
    }
    Ok(BrokerScope::ThisNode)
}

/// The error for a resource type no config API of this broker serves.
pub(super) fn unsupported_resource(resource_type: i8) -> ApiError {
    let what = match resource_type {
        RESOURCE_BROKER_LOGGER => "broker logger configs (runtime log levels) are not supported",
        16 => "client metrics configs are not supported",
        32 => "group configs are not supported",
        _ => "unknown resource type",
    };
    ApiError::invalid_request(format!("{what} (resource type {resource_type})"))
}

/// Kafka's first checks on one resource of an alter-configs request: no key twice, and a value
/// for every key that needs one. Items are `(key, value_is_missing)`.
pub(super) fn check_alterations<'a>(
    configs: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<(), ApiError> {
    let configs: Vec<(&str, bool)> = configs.into_iter().collect();
    if !duplicates(configs.iter().map(|(key, _)| *key)).is_empty() {
        return Err(ApiError::invalid_request(
            "error due to duplicate config keys",
        ));
    }
    let missing: Vec<&str> = configs
        .iter()
        .filter(|(_, is_missing)| *is_missing)
        .map(|(key, _)| *key)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid_request(format!(
            "null value not supported for: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Whether a config passes a DescribeConfigs key filter; null or empty selects every key.
pub(super) fn is_requested(keys: Option<&[StrBytes]>, name: &str) -> bool {
    match keys {
        None | Some([]) => true,
        Some(keys) => keys.iter().any(|k| k.as_str() == name),
    }
}

/// Kafka's `ConfigSource` id.
pub(super) fn source_id(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::TopicOverride => 1,
        ConfigSource::DynamicBroker => 2,
        ConfigSource::DynamicDefaultBroker => 3,
        ConfigSource::StaticBroker => 4,
        ConfigSource::Default => 5,
    }
}

/// Kafka's DescribeConfigs `ConfigType` id.
pub(super) fn type_id(kind: ConfigKind) -> i8 {
    match kind {
        ConfigKind::Boolean => 1,
        ConfigKind::String => 2,
        ConfigKind::Int => 3,
        ConfigKind::Long => 5,
        ConfigKind::Double => 6,
        ConfigKind::List => 7,
        ConfigKind::Unknown => 0,
    }
}

/// In cluster mode, when a request's `timeout_ms` (positive) runs out for changes that go
/// through the controller; `None` out of cluster mode, where changes are local and immediate.
pub(crate) fn controller_deadline(ctx: &Context, timeout_ms: i32) -> Option<tokio::time::Instant> {
    let millis = u64::try_from(timeout_ms).ok().filter(|&ms| ms > 0)?;
    ctx.cluster
        .as_ref()
        .map(|_| tokio::time::Instant::now() + std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_lists_each_repeated_item_once() {
        assert!(duplicates(["a", "b"]).is_empty());
        let repeated = duplicates(["a", "b", "a", "c", "a", "b"]);
        assert_eq!(repeated.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(duplicates([(2, "t"), (4, "t"), (2, "t")]).len(), 1);
    }

    #[track_caller]
    fn check_replicas_code(ids: &[i32], expected: Option<ResponseError>) {
        let ids: Vec<BrokerId> = ids.iter().map(|&id| BrokerId(id)).collect();
        let got = check_replicas(&ids, |id| id == 1).err().map(|e| e.code);
        assert_eq!(got, expected.map(|e| e.code()), "{ids:?}");
    }

    #[test]
    fn replica_lists_must_name_only_this_node_once() {
        check_replicas_code(&[1], None);
        check_replicas_code(&[], Some(ResponseError::InvalidReplicaAssignment));
        check_replicas_code(&[2], Some(ResponseError::InvalidReplicaAssignment));
        check_replicas_code(&[1, 1], Some(ResponseError::InvalidReplicaAssignment));
        check_replicas_code(&[1, 2], Some(ResponseError::InvalidReplicaAssignment));
    }

    #[test]
    fn broker_resource_names_are_empty_or_this_node() {
        assert_eq!(broker_scope("", 3), Ok(BrokerScope::ClusterDefault));
        assert_eq!(broker_scope("3", 3), Ok(BrokerScope::ThisNode));
        let invalid = ResponseError::InvalidRequest.code();
        assert_eq!(broker_scope("4", 3).map_err(|e| e.code), Err(invalid));
        assert_eq!(broker_scope("x", 3).map_err(|e| e.code), Err(invalid));
        assert_eq!(broker_node("", 3), Ok(None));
        assert_eq!(broker_node("3", 3), Ok(Some(3)));
    }

    #[test]
    fn alterations_reject_repeated_keys_and_missing_values() {
        assert_eq!(check_alterations([("a", false), ("b", false)]), Ok(()));
        let invalid = Err(ResponseError::InvalidRequest.code());
        assert_eq!(
            check_alterations([("a", false), ("a", false)]).map_err(|e| e.code),
            invalid
        );
        assert_eq!(
            check_alterations([("a", false), ("b", true)]).map_err(|e| e.code),
            invalid
        );
    }

    #[test]
    fn key_filter_null_or_empty_selects_everything() {
        let keys = [StrBytes::from_static_str("retention.ms")];
        assert!(is_requested(None, "segment.bytes"));
        assert!(is_requested(Some(&[]), "segment.bytes"));
        assert!(is_requested(Some(&keys), "retention.ms"));
        assert!(!is_requested(Some(&keys), "segment.bytes"));
    }

    #[test]
    fn sources_and_types_use_kafka_ids() {
        assert_eq!(source_id(ConfigSource::TopicOverride), 1);
        assert_eq!(source_id(ConfigSource::DynamicBroker), 2);
        assert_eq!(source_id(ConfigSource::DynamicDefaultBroker), 3);
        assert_eq!(source_id(ConfigSource::StaticBroker), 4);
        assert_eq!(source_id(ConfigSource::Default), 5);
        assert_eq!(type_id(ConfigKind::Boolean), 1);
        assert_eq!(type_id(ConfigKind::Long), 5);
        assert_eq!(type_id(ConfigKind::List), 7);
        assert_eq!(type_id(ConfigKind::Unknown), 0);
    }
}
