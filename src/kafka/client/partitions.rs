//! Cluster operations: DescribeCluster, AlterPartitionReassignments and
//! ListPartitionReassignments (KIP-455), UnregisterBroker; answered by any broker.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeClusterRequest, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, UnregisterBrokerRequest,
};
use serde::Serialize;

use super::error::ClientError;
use super::metadata::topic_name;
use super::session::{Client, Target};

const DESCRIBE_CLUSTER_VERSION: i16 = 1;
const ALTER_REASSIGNMENTS_VERSION: i16 = 0;
const LIST_REASSIGNMENTS_VERSION: i16 = 0;
const UNREGISTER_BROKER_VERSION: i16 = 0;
const ELECT_LEADERS_VERSION: i16 = 2;
/// ElectLeaders election types.
const ELECTION_PREFERRED: i8 = 0;
const ELECTION_UNCLEAN: i8 = 1;

/// A registered broker as DescribeCluster lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterBroker {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
}

/// What DescribeCluster answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterDescription {
    pub(crate) cluster_id: String,
    pub(crate) controller_id: i32,
    pub(crate) brokers: Vec<ClusterBroker>,
}

/// A reassignment to start (`replicas: Some`) or cancel (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Reassignment {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) replicas: Option<Vec<i32>>,
}

/// A submitted reassignment and what the broker answered for it.
pub(crate) type ReassignmentOutcome = (Reassignment, Result<(), ClientError>);

/// A reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct OngoingReassignment {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) adding: Vec<i32>,
    pub(crate) removing: Vec<i32>,
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

/// The cluster id, controller and registered brokers.
pub(crate) fn describe_cluster(client: &mut Client) -> Result<ClusterDescription, ClientError> {
    let request = DescribeClusterRequest::default();
    let response = client.retry("DescribeCluster", |client| {
        let response = client.call(Target::Any, &request, DESCRIBE_CLUSTER_VERSION)?;
        ClientError::check_with(
            response.error_code,
            "DescribeCluster",
            response.error_message.as_deref(),
        )?;
        Ok(response)
    })?;
    let mut brokers: Vec<ClusterBroker> = response
        .brokers
        .iter()
        .map(|b| ClusterBroker {
            id: b.broker_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(ToString::to_string),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    Ok(ClusterDescription {
        cluster_id: response.cluster_id.to_string(),
        controller_id: response.controller_id.0,
        brokers,
    })
}

/// Submits `reassignments`; returns each partition's outcome (the request as a whole failing is
/// an error).
pub(crate) fn alter_reassignments(
    client: &mut Client,
    reassignments: &[Reassignment],
) -> Result<Vec<ReassignmentOutcome>, ClientError> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for r in reassignments {
        let partition = ReassignablePartition::default()
            .with_partition_index(r.partition)
            .with_replicas(
                r.replicas
                    .as_ref()
                    .map(|ids| ids.iter().copied().map(BrokerId).collect()),
            );
        match topics.iter_mut().find(|t| t.name.as_str() == r.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(topic_name(&r.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let timeout_ms = client.timeout_ms();
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(topics);
    let response = client.retry("AlterPartitionReassignments", |client| {
        let response = client.call(Target::Any, &request, ALTER_REASSIGNMENTS_VERSION)?;
        ClientError::check_with(
            response.error_code,
            "AlterPartitionReassignments",
            response.error_message.as_deref(),
        )?;
        Ok(response)
    })?;
    Ok(reassignments
        .iter()
        .map(|r| {
            let answer = response
                .responses
                .iter()
                .filter(|t| t.name.as_str() == r.topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == r.partition);
            let outcome = match answer {
                Some(p) => ClientError::check_with(
                    p.error_code,
                    format!("reassigning {}-{}", r.topic, r.partition),
                    p.error_message.as_deref(),
                ),
                None => Err(ClientError::protocol(format!(
                    "AlterPartitionReassignments answered without {}-{}",
                    r.topic, r.partition
                ))),
            };
            (r.clone(), outcome)
        })
        .collect())
}

/// Every reassignment in progress, sorted by topic and partition.
pub(crate) fn list_reassignments(
    client: &mut Client,
) -> Result<Vec<OngoingReassignment>, ClientError> {
    let timeout_ms = client.timeout_ms();
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(None);
    let response = client.retry("ListPartitionReassignments", |client| {
        let response = client.call(Target::Any, &request, LIST_REASSIGNMENTS_VERSION)?;
        ClientError::check_with(
            response.error_code,
            "ListPartitionReassignments",
            response.error_message.as_deref(),
        )?;
        Ok(response)
    })?;
    let mut ongoing: Vec<OngoingReassignment> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OngoingReassignment {
                topic: t.name.as_str().to_owned(),
                partition: p.partition_index,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding_replicas),
                removing: ids(&p.removing_replicas),
            })
        })
        .collect();
    ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(ongoing)
}

/// (topic, partition, what its election gave).
pub(crate) type ElectionOutcome = (String, i32, Result<(), ClientError>);

/// Elects leaders of `partitions` (topic, partitions; `None`: every partition): the preferred
/// replica, or with `unclean` any replica when none in sync is left. Returns each partition's
/// outcome; ELECTION_NOT_NEEDED is one of them.
pub(crate) fn elect_leaders(
    client: &mut Client,
    partitions: Option<&[(String, Vec<i32>)]>,
    unclean: bool,
) -> Result<Vec<ElectionOutcome>, ClientError> {
    let request = ElectLeadersRequest::default()
        .with_election_type(if unclean {
            ELECTION_UNCLEAN
        } else {
            ELECTION_PREFERRED
        })
        .with_timeout_ms(client.timeout_ms())
        .with_topic_partitions(partitions.map(|wanted| {
            wanted
                .iter()
                .map(|(topic, ps)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(ps.clone())
                })
                .collect()
        }));
    let response = client.retry("ElectLeaders", |client| {
        let response = client.call(Target::Any, &request, ELECT_LEADERS_VERSION)?;
        ClientError::check(response.error_code, "ElectLeaders")?;
        Ok(response)
    })?;
    let mut outcomes: Vec<ElectionOutcome> = response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(move |p| {
                let outcome = ClientError::check_with(
                    p.error_code,
                    format!(
                        "electing the leader of {}-{}",
                        t.topic.as_str(),
                        p.partition_id
                    ),
                    p.error_message.as_deref(),
                );
                (t.topic.as_str().to_owned(), p.partition_id, outcome)
            })
        })
        .collect();
    outcomes.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(outcomes)
}

/// Removes broker `id`'s registration (it must be stopped and hold no replica).
pub(crate) fn unregister_broker(client: &mut Client, id: i32) -> Result<(), ClientError> {
    let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
    client.retry("UnregisterBroker", |client| {
        let response = client.call(Target::Any, &request, UNREGISTER_BROKER_VERSION)?;
        ClientError::check_with(
            response.error_code,
            format!("unregistering broker {id}"),
            response.error_message.as_deref(),
        )
    })
}
