//! A blocking Kafka client of our own, for the `tidelog` admin commands: connections with
//! correlation ids and ApiVersions, bootstrap and Metadata, routing to partition leaders and
//! group coordinators, retries of retriable errors until a deadline, TLS. Its functions take and
//! return plain types, so the command layer never names a kafka_protocol type.

mod acls;
mod connection;
mod error;
mod groups;
mod metadata;
mod partitions;
mod records;
mod sasl;
mod session;
mod tls;
mod topics;
mod users;

pub(crate) use crate::auth::sasl::ScramHash;
pub(crate) use acls::{
    AclBinding, AclFilter, NewAcl, OPERATIONS, PATTERN_TYPES, PERMISSIONS, RESOURCE_TYPES, code_of,
    create_acls, delete_acls, describe_acls,
};
pub(crate) use groups::{
    CommittedOffset, GroupDescription, commit_offsets, committed_offsets, delete_group,
    describe_group, list_groups,
};
#[cfg(test)]
pub(crate) use metadata::BrokerInfo;
pub(crate) use metadata::{ClusterMetadata, PartitionInfo, TopicInfo, metadata};
pub(crate) use partitions::{
    ClusterBroker, OngoingReassignment, Reassignment, alter_reassignments, describe_cluster,
    elect_leaders, list_reassignments, unregister_broker,
};
pub(crate) use records::{
    InRecord, OffsetSpec, OutRecord, fetch, list_offset, partition_for_key, produce,
};
pub(crate) use sasl::SaslSettings;
pub(crate) use session::{Client, ClientSettings};
pub(crate) use tls::TlsFiles;
pub(crate) use topics::{
    ConfigEntry, NewTopic, alter_topic_configs, create_topic, delete_topic, topic_configs,
};
pub(crate) use users::{delete_user, list_users, mechanism_name, upsert_user};
