//! CreatePartitions (v0–3): grows topics through the broker, checking manual assignments against
//! the brokers they may name (the cluster's registered brokers, or this single node). The broker
//! alone decides whether a count is a valid increase.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;

use super::admin::{self, ApiError};
use crate::auth::acl::Operation;
use crate::kafka::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::CreatePartitionsRequest,
) -> messages::CreatePartitionsResponse {
    let duplicates = admin::duplicates(request.topics.iter().map(|t| t.name.as_str()));
    let mut reported = BTreeSet::new();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.as_str();
        if duplicates.contains(name) {
            // Kafka answers a repeated name once, with INVALID_REQUEST, and changes nothing.
            if reported.insert(name) {
                let err = ApiError::invalid_request("duplicate topic name");
                results.push(result(&topic.name, &Err(err)));
            }
            continue;
        }
        // ACLs: Alter on the topic.
        let outcome = if ctx.allowed_on_topic(Operation::Alter, name) {
            grow(ctx, topic, request.validate_only).await
        } else {
            Err(ApiError::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_owned(),
            ))
        };
        results.push(result(&topic.name, &outcome));
    }
    messages::CreatePartitionsResponse::default()
        .with_throttle_time_ms(0)
        .with_results(results)
}

async fn grow(
    ctx: &Context,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), ApiError> {
    let name = topic.name.as_str();
    let broker_error = |err: crate::broker::Error| ApiError::broker(&err);
    let mut assignment = None;
    if let Some(assignments) = &topic.assignments {
        // Kafka checks the topic and the count before the assignments: ask the broker first.
        ctx.broker
            .create_partitions(name, topic.count, None, true)
            .await
            .map_err(broker_error)?;
        let partitions = ctx.broker.topic(name).map(|t| t.partitions);
        let existing = partitions.as_ref().map_or(0, Vec::len);
        let factor = partitions
            .as_ref()
            .and_then(|p| p.first())
            .map(|p| p.replicas.len());
        let brokers = ctx.broker.assignable_brokers(name);
        check_assignments(assignments, topic.count, existing, |id| {
            brokers.contains_key(&id)
        })?;
        check_factor(assignments, factor)?;
        assignment = Some(
            assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|id| id.0).collect())
                .collect(),
        );
    }
    ctx.broker
        .create_partitions(name, topic.count, assignment, validate_only)
        .await
        .map_err(broker_error)
}

/// Kafka's rule: new partitions get as many replicas as the topic's existing ones.
fn check_factor(
    assignments: &[CreatePartitionsAssignment],
    factor: Option<usize>,
) -> Result<(), ApiError> {
    let Some(factor) = factor else {
        return Ok(());
    };
    match assignments.iter().find(|a| a.broker_ids.len() != factor) {
        Some(other) => Err(ApiError::invalid_replica_assignment(format!(
            "Inconsistent replication factor between partitions, partition 0 has {factor} while \
             a new partition would have {}",
            other.broker_ids.len()
        ))),
        None => Ok(()),
    }
}

/// Kafka's rules: one assignment per new partition, each naming only registered brokers.
fn check_assignments(
    assignments: &[CreatePartitionsAssignment],
    count: i32,
    existing: usize,
    registered: impl Fn(i32) -> bool,
) -> Result<(), ApiError> {
    let added = i64::from(count) - i64::try_from(existing).unwrap_or(i64::MAX);
    if i64::try_from(assignments.len()).ok() != Some(added) {
        return Err(ApiError::invalid_replica_assignment(format!(
            "attempted to add {added} additional partition(s), but only {} assignment(s) were specified",
            assignments.len()
        )));
    }
    for assignment in assignments {
        admin::check_replicas(&assignment.broker_ids, &registered)?;
    }
    Ok(())
}

fn result(
    name: &messages::TopicName,
    outcome: &Result<(), ApiError>,
) -> CreatePartitionsTopicResult {
    let (error_code, error_message) = admin::code_and_message(outcome);
    CreatePartitionsTopicResult::default()
        .with_name(name.clone())
        .with_error_code(error_code)
        .with_error_message(error_message)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::ResponseError;
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn on(brokers: &[i32]) -> CreatePartitionsAssignment {
        CreatePartitionsAssignment::default()
            .with_broker_ids(brokers.iter().map(|&b| BrokerId(b)).collect())
    }

    #[test]
    fn one_assignment_per_new_partition_on_this_node() {
        let this_node = |id| id == 1;
        assert_eq!(
            check_assignments(&[on(&[1]), on(&[1])], 5, 3, this_node),
            Ok(())
        );
        let invalid = Err(ResponseError::InvalidReplicaAssignment.code());
        let check = |a: &[CreatePartitionsAssignment]| {
            check_assignments(a, 5, 3, this_node).map_err(|e| e.code)
        };
        assert_eq!(check(&[on(&[1])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[1]), on(&[1])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[2])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[])]), invalid);
    }

    #[test]
    fn new_partitions_of_a_cluster_topic_name_registered_brokers_as_often_as_the_old_ones() {
        let registered = |id| (1..=3).contains(&id);
        let check = |a: &[CreatePartitionsAssignment]| {
            check_assignments(a, 4, 2, registered)
                .and_then(|()| check_factor(a, Some(2)))
                .map_err(|e| e.code)
        };
        assert_eq!(check(&[on(&[2, 3]), on(&[3, 1])]), Ok(()));
        let invalid = Err(ResponseError::InvalidReplicaAssignment.code());
        assert_eq!(check(&[on(&[2, 3]), on(&[3, 4])]), invalid);
        assert_eq!(check(&[on(&[2, 3]), on(&[3])]), invalid);
        assert_eq!(check(&[on(&[2, 3]), on(&[3, 3])]), invalid);
        assert_eq!(check_factor(&[on(&[1])], None), Ok(()));
    }
}
