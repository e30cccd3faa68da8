//! CreateTopics (v2–7): checks each requested topic's shape, creates it through the broker and
//! reports its id, partitions, replication factor and configs. Config values come from the broker.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
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

/// Topics of one request created at the same time.
const CREATES_CONCURRENT_MAX: usize = 8;

/// The replication factor of every topic on a single node.
const SINGLE_NODE_REPLICATION_FACTOR: i16 = 1;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::CreateTopicsRequest,
) -> messages::CreateTopicsResponse {
    let duplicates = admin::duplicates(request.topics.iter().map(|t| t.name.as_str()));
    let mut reported = BTreeSet::new();
    let deadline = admin::controller_deadline(ctx, request.timeout_ms);
    // Kafka answers a repeated name once, with INVALID_REQUEST, and creates nothing.
    let mut creations = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        if !duplicates.contains(topic.name.as_str()) || reported.insert(topic.name.as_str()) {
            creations.push(one(ctx, version, &request, &duplicates, deadline, topic));
        }
    }
    // The topics of one request are created side by side (in cluster mode each waits for its
    // partitions' leaders), and answered in request order.
    let results: Vec<CreatableTopicResult> = futures_util::stream::iter(creations)
        .buffered(CREATES_CONCURRENT_MAX)
        .collect()
        .await;
    messages::CreateTopicsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(results)
}

/// The result of one topic of the request.
async fn one(
    ctx: &Context,
    version: i16,
    request: &messages::CreateTopicsRequest,
    duplicates: &BTreeSet<&str>,
    deadline: Option<tokio::time::Instant>,
    topic: &CreatableTopic,
) -> CreatableTopicResult {
    let name = topic.name.as_str();
    if duplicates.contains(name) {
        let err = ApiError::invalid_request("duplicate topic name");
        return failed(&topic.name, err);
    }
    // ACLs: Create on the cluster or on the topic.
    if !ctx.allowed_on_cluster(Operation::Create) && !ctx.allowed_on_topic(Operation::Create, name)
    {
        let err = ApiError::new(
            ResponseError::TopicAuthorizationFailed,
            "Authorization failed.".to_owned(),
        );
        return failed(&topic.name, err);
    }
    let creating = create(ctx, topic, request.validate_only);
    let outcome = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, creating)
            .await
            .unwrap_or_else(|_| Err(timed_out(request.timeout_ms))),
        None => creating.await,
    };
    match outcome {
        Ok(info) => created(ctx, version, topic, &info, request.validate_only),
        Err(err) => failed(&topic.name, err),
    }
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
    let name = topic.name.as_str();
    let configs: Vec<(String, Option<String>)> = topic
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    let created = if topic.assignments.is_empty() {
        let partitions = (topic.num_partitions != -1).then_some(topic.num_partitions);
        let factor = (topic.replication_factor != -1).then_some(topic.replication_factor);
        ctx.broker
            .create_topic(name, partitions, factor, &configs, validate_only)
            .await
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
        let brokers = ctx.broker.assignable_brokers(name);
        let assignment = check_assignments(&topic.assignments, &brokers)?;
        ctx.broker
            .create_topic_assigned(name, assignment, &configs, validate_only)
            .await
    };
    created.map_err(|err| ApiError::broker(&err))
}

/// Checks manual assignments with Kafka's rules and messages (its controller's `createTopic`)
/// against `brokers` (each registered broker and whether it is active), and returns the
/// replica lists in partition order.
fn check_assignments(
    assignments: &[CreatableReplicaAssignment],
    brokers: &BTreeMap<i32, bool>,
) -> Result<Vec<Vec<i32>>, ApiError> {
    let mut lists = BTreeMap::new();
    let mut factor = None;
    for assignment in assignments {
        let partition = assignment.partition_index;
        if lists.contains_key(&partition) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "found multiple manual partition assignments for partition {partition}"
            )));
        }
        let replicas = &assignment.broker_ids;
        admin::check_replicas(replicas, |id| brokers.contains_key(&id))?;
        if let Some(factor) = factor.filter(|&f| f != replicas.len()) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "the manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have {factor} replica(s)",
                replicas.len()
            )));
        }
        factor = Some(replicas.len());
        if !replicas.iter().any(|id| brokers.get(&id.0) == Some(&true)) {
            return Err(ApiError::invalid_replica_assignment(format!(
                "all brokers specified in the manual partition assignment for partition \
                 {partition} are fenced or in controlled shutdown"
            )));
        }
        lists.insert(partition, replicas.iter().map(|id| id.0).collect());
    }
    let count = i32::try_from(lists.len()).unwrap_or(i32::MAX);
    if !lists.keys().copied().eq(0..count) {
        return Err(ApiError::invalid_replica_assignment(
            "partitions should be a consecutive 0-based integer sequence".to_owned(),
        ));
    }
    Ok(lists.into_values().collect())
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
        result.replication_factor = replication_factor(topic, info);
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

/// The topic's replication factor: the requested one, else (broker default) the one it got.
fn replication_factor(topic: &CreatableTopic, info: &TopicInfo) -> i16 {
    let given = match topic.assignments.first() {
        Some(assignment) => i16::try_from(assignment.broker_ids.len()).ok(),
        None => (topic.replication_factor != -1).then_some(topic.replication_factor),
    };
    let got = || {
        let replicas = info.partitions.first().map(|p| p.replicas.len());
        replicas.and_then(|n| i16::try_from(n).ok())
    };
    given.or_else(got).unwrap_or(SINGLE_NODE_REPLICATION_FACTOR)
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

    /// Brokers 1 and 2 active, 3 fenced.
    fn cluster() -> BTreeMap<i32, bool> {
        BTreeMap::from([(1, true), (2, true), (3, false)])
    }

    fn refusal(assignments: &[CreatableReplicaAssignment]) -> (i16, String) {
        match check_assignments(assignments, &cluster()) {
            Ok(lists) => panic!("{lists:?} accepted"),
            Err(err) => (
                err.code,
                err.message.map(|m| m.to_string()).unwrap_or_default(),
            ),
        }
    }

    #[test]
    fn assignments_give_the_replica_lists_in_partition_order() {
        let assignments = [assignment(1, &[3, 1]), assignment(0, &[2, 3])];
        let lists = check_assignments(&assignments, &cluster());
        assert_eq!(lists, Ok(vec![vec![2, 3], vec![3, 1]]));
        let single = BTreeMap::from([(7, true)]);
        let lists = check_assignments(&[assignment(1, &[7]), assignment(0, &[7])], &single);
        assert_eq!(lists, Ok(vec![vec![7], vec![7]]));
    }

    #[test]
    fn bad_assignments_are_invalid_replica_assignment_with_kafkas_reason() {
        let invalid = ResponseError::InvalidReplicaAssignment.code();
        let cases: [(&[CreatableReplicaAssignment], &str); 7] = [
            (
                &[assignment(0, &[1]), assignment(0, &[2])],
                "multiple manual partition assignments for partition 0",
            ),
            (
                &[assignment(0, &[1]), assignment(2, &[1])],
                "consecutive 0-based",
            ),
            (&[assignment(0, &[1, 4])], "broker 4, but no such broker"),
            // Ids are looked at in ascending order, as Kafka does.
            (&[assignment(0, &[4, 2, 2])], "the broker 2 more than once"),
            (&[assignment(0, &[])], "empty replica list"),
            (
                &[assignment(0, &[1, 2]), assignment(1, &[1])],
                "partition with 1 replica(s), but this is not consistent with previous \
                 partitions, which have 2 replica(s)",
            ),
            (
                &[assignment(0, &[3])],
                "partition 0 are fenced or in controlled shutdown",
            ),
        ];
        for (assignments, reason) in cases {
            let (code, message) = refusal(assignments);
            assert_eq!(code, invalid, "{assignments:?}");
            assert!(message.contains(reason), "{assignments:?}: {message}");
        }
        let single = BTreeMap::from([(7, true)]);
        let refused = check_assignments(&[assignment(0, &[7, 8])], &single).map_err(|e| e.code);
        assert_eq!(refused, Err(invalid));
    }
}
