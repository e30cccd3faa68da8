//! CreatePartitions (v0–3): grows topics through the broker, checking manual assignments against
//! this single node. The broker alone decides whether a count is a valid increase.

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
    if let Some(assignments) = &topic.assignments {
        // Kafka checks the topic and the count before the assignments: ask the broker first.
        ctx.broker
            .create_partitions(name, topic.count, true)
            .await
            .map_err(broker_error)?;
        let existing = ctx.broker.topic(name).map_or(0, |t| t.partitions.len());
        check_assignments(assignments, topic.count, existing, ctx.broker.node_id())?;
    }
    ctx.broker
        .create_partitions(name, topic.count, validate_only)
        .await
        .map_err(broker_error)
}

/// Kafka's rules: one assignment per new partition, each naming only registered brokers.
fn check_assignments(
    assignments: &[CreatePartitionsAssignment],
    count: i32,
    existing: usize,
    node_id: i32,
) -> Result<(), ApiError> {
    let added = i64::from(count) - i64::try_from(existing).unwrap_or(i64::MAX);
    if i64::try_from(assignments.len()).ok() != Some(added) {
        return Err(ApiError::invalid_replica_assignment(format!(
            "attempted to add {added} additional partition(s), but only {} assignment(s) were specified",
            assignments.len()
        )));
    }
    for assignment in assignments {
        admin::check_replicas(&assignment.broker_ids, |id| id == node_id)?;
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
        assert_eq!(check_assignments(&[on(&[1]), on(&[1])], 5, 3, 1), Ok(()));
        let invalid = Err(ResponseError::InvalidReplicaAssignment.code());
        let check =
            |a: &[CreatePartitionsAssignment]| check_assignments(a, 5, 3, 1).map_err(|e| e.code);
        assert_eq!(check(&[on(&[1])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[1]), on(&[1])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[2])]), invalid);
        assert_eq!(check(&[on(&[1]), on(&[])]), invalid);
    }
}
