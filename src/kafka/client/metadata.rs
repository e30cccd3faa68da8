//! The cluster as Metadata describes it: brokers, controller, topics and their partitions'
//! leaders, replicas and in-sync replicas, in plain types for the command layer.

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::error::ClientError;
use super::session::Client;

/// One broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PartitionInfo {
    pub(crate) partition: i32,
    /// -1 when no replica leads.
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) offline: Vec<i32>,
}

impl PartitionInfo {
    /// Fewer replicas in sync than assigned.
    pub(crate) fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) internal: bool,
    /// Sorted by partition.
    pub(crate) partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The replication factor (of partition 0; every partition of a topic has the same).
    pub(crate) fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// What Metadata says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterMetadata {
    pub(crate) cluster_id: Option<String>,
    pub(crate) controller_id: i32,
    pub(crate) brokers: Vec<BrokerInfo>,
    /// Sorted by name.
    pub(crate) topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    /// The topic named `name`, if it exists.
    pub(crate) fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Metadata for every topic (`None`) or the ones named; a named topic that does not exist is an
/// UNKNOWN_TOPIC_OR_PARTITION error.
pub(crate) fn metadata(
    client: &mut Client,
    topics: Option<&[String]>,
) -> Result<ClusterMetadata, ClientError> {
    let request = topics.map(|names| {
        names
            .iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
            .collect()
    });
    let response = client.retry("Metadata", |client| {
        let response = client.metadata(request.clone())?;
        for topic in &response.topics {
            let name = topic.name.as_ref().map_or("?", |n| n.as_str());
            ClientError::check(topic.error_code, format!("topic {name}"))?;
        }
        Ok(response)
    })?;
    Ok(convert(response))
}

fn convert(response: MetadataResponse) -> ClusterMetadata {
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| nodes.iter().map(|b| b.0).collect();
    let mut brokers: Vec<BrokerInfo> = response
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(ToString::to_string),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let mut topics: Vec<TopicInfo> = response
        .topics
        .iter()
        .map(|t| {
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                    offline: ids(&p.offline_replicas),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            TopicInfo {
                name: t
                    .name
                    .as_ref()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                id: t.topic_id.to_string(),
                internal: t.is_internal,
                partitions,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    ClusterMetadata {
        cluster_id: response.cluster_id.as_ref().map(ToString::to_string),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    }
}
