//! CreateTopics (v2–7): checks each requested topic's shape, creates it through the broker and
//! reports its id, partitions, replication factor and configs. Config values come from the broker.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::broker::{ConfigEntry, ConfigSource, TopicInfo};
use crate::kafka::{Context, error_code, topic_id_to_uuid};

/// The replication factor of every topic on a single node.
const REPLICATION_FACTOR: i16 = 1;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::CreateTopicsRequest,
) -> messages::CreateTopicsResponse {
    let duplicates = admin::duplicates(request.topics.iter().map(|t| t.name.as_str()));
    let mut reported = BTreeSet::new();
    let mut results = Vec::with_capacity(request.topics.len());
    let deadline = admin::controller_deadline(ctx, request.timeout_ms);
    for topic in &request.topics {
        let name = topic.name.as_str();
        if duplicates.contains(name) {
            // Kafka answers a repeated name once, with INVALID_REQUEST, and creates nothing.
            if reported.insert(name) {
                let err = ApiError::invalid_request("duplicate topic name");
                results.push(failed(&topic.name, err));
            }
            continue;
        }
        // ACLs: Create on the cluster or on the topic.
        if !ctx.allowed_on_cluster(Operation::Create)
            && !ctx.allowed_on_topic(Operation::Create, name)
        {
            let err = ApiError::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_owned(),
            );
            results.push(failed(&topic.name, err));
            continue;
        }
        let creating = create(ctx, topic, request.validate_only);
        let outcome = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, creating)
                .await
                .unwrap_or_else(|_| Err(timed_out(request.timeout_ms))),
            None => creating.await,
        };
        let result = match outcome {
            Ok(info) => created(ctx, version, topic, &info, request.validate_only),
            Err(err) => failed(&topic.name, err),
        };
        results.push(result);
    }
    messages::CreateTopicsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(results)
}

/// What a topic whose creation did not complete within the request's timeout gets (the
/// controller may still create it, as in Kafka).
fn timed_out(timeout_ms: i32) -> ApiError {
    ApiError::new(
        kafka_protocol::ResponseError::RequestTimedOut,
        format!("the controller did not complete the creation within {timeout_ms} ms"),
    )
}

async fn create(
    ctx: &Context,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<TopicInfo, ApiError> {
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        let partitions = (topic.num_partitions != -1).then_some(topic.num_partitions);
        let factor = (topic.replication_factor != -1).then_some(topic.replication_factor);
        (partitions, factor)
    } else {
        if topic.replication_factor != -1 {
            return Err(ApiError::invalid_request(
                "a manual partition assignment was specified, but replication factor was not set to -1",
            ));
        }
        if topic.num_partitions != -1 {
            return Err(ApiError::invalid_request(
                "a manual partition assignment was specified, but num_partitions was not set to -1",
            ));
        }
        let count = check_assignments(&topic.assignments, ctx.broker.node_id())?;
        (Some(count), Some(REPLICATION_FACTOR))
    };
    let configs: Vec<(String, Option<String>)> = topic
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    ctx.broker
        .create_topic(
            topic.name.as_str(),
            partitions,
            replication_factor,
            &configs,
            validate_only,
        )
        .await
        .map_err(|err| ApiError::broker(&err))
}

/// Checks manual assignments (Kafka's rules and messages) and returns the partition count.
fn check_assignments(
    assignments: &[CreatableReplicaAssignment],
    node_id: i32,
) -> Result<i32, ApiError> {
    let mut indexes = BTreeSet::new();
    for assignment in assignments {
        if !indexes.insert(assignment.partition_index) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "found multiple manual partition assignments for partition {}",
                assignment.partition_index
            )));
        }
        admin::check_replicas(&assignment.broker_ids, node_id)?;
    }
    let count = i32::try_from(indexes.len()).unwrap_or(i32::MAX);
    if !indexes.into_iter().eq(0..count) {
        return Err(ApiError::invalid_replica_assignment(
            "partitions should be a consecutive 0-based integer sequence".to_owned(),
        ));
    }
    Ok(count)
}

fn failed(name: &messages::TopicName, err: ApiError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(name.clone())
        .with_error_code(err.code)
        .with_error_message(err.message)
}

fn created(
    ctx: &Context,
    version: i16,
    topic: &CreatableTopic,
    info: &TopicInfo,
    validate_only: bool,
) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_error_code(error_code::NONE)
        .with_error_message(None);
    if version >= 7 {
        result.topic_id = topic_id_to_uuid(info.topic_id);
    }
    if version >= 5 {
        result.num_partitions = i32::try_from(info.partitions.len()).unwrap_or(i32::MAX);
        result.replication_factor = REPLICATION_FACTOR;
        if validate_only {
            // The topic does not exist, so the broker cannot describe it yet; report the
            // overrides the request sets, which the broker has just validated.
            result.configs = Some(requested_overrides(topic));
        } else {
            match ctx.broker.topic_configs(&info.name) {
                Ok(entries) => result.configs = Some(entries.iter().map(config).collect()),
                Err(err) => result.topic_config_error_code = error_code::code(&err),
            }
        }
    }
    result
}

/// The request's config overrides (the last of a repeated key wins, as in the broker), by name.
fn requested_overrides(topic: &CreatableTopic) -> Vec<CreatableTopicConfigs> {
    let overrides: BTreeMap<&str, Option<&StrBytes>> = topic
        .configs
        .iter()
        .map(|c| (c.name.as_str(), c.value.as_ref()))
        .collect();
    overrides
        .into_iter()
        .map(|(name, value)| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(name.to_owned()))
                .with_value(value.cloned())
                .with_read_only(false)
                .with_config_source(admin::source_id(ConfigSource::TopicOverride))
                .with_is_sensitive(false)
        })
        .collect()
}

fn config(entry: &ConfigEntry) -> CreatableTopicConfigs {
    let value = if entry.sensitive {
        None
    } else {
        entry.value.clone().map(StrBytes::from_string)
    };
    CreatableTopicConfigs::default()
        .with_name(StrBytes::from_string(entry.name.clone()))
        .with_value(value)
        .with_read_only(entry.read_only)
        .with_config_source(admin::source_id(entry.source))
        .with_is_sensitive(entry.sensitive)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::ResponseError;
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn assignment(partition: i32, brokers: &[i32]) -> CreatableReplicaAssignment {
        CreatableReplicaAssignment::default()
            .with_partition_index(partition)
            .with_broker_ids(brokers.iter().map(|&b| BrokerId(b)).collect())
    }

    #[test]
    fn assignments_on_this_node_give_the_partition_count() {
        let assignments = [assignment(1, &[7]), assignment(0, &[7])];
        assert_eq!(check_assignments(&assignments, 7), Ok(2));
    }

    #[test]
    fn bad_assignments_are_invalid_replica_assignment() {
        let invalid = Err(ResponseError::InvalidReplicaAssignment.code());
        let check = |a: &[CreatableReplicaAssignment]| check_assignments(a, 7).map_err(|e| e.code);
        assert_eq!(check(&[assignment(0, &[7]), assignment(0, &[7])]), invalid);
        assert_eq!(check(&[assignment(0, &[7]), assignment(2, &[7])]), invalid);
        assert_eq!(check(&[assignment(0, &[8])]), invalid);
        assert_eq!(check(&[assignment(0, &[7, 7])]), invalid);
        assert_eq!(check(&[assignment(0, &[])]), invalid);
    }
}
