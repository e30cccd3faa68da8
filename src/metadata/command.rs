//! The commands that change the metadata state, what applying one answers, and why one is
//! refused. Commands are what the controller's raft log stores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{AclMeta, BrokerRegistration, QuotaEntity, ScramCredentialMeta, TopicId};

/// One change to the metadata state, proposed by any broker and applied by all in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Names a new cluster; refused once it has a (different) id.
    Bootstrap {
        cluster_id: String,
    },
    /// A broker (re)joins: new registrations and restarts of the same data dir are accepted,
    /// a live broker with the same id and another data dir is refused.
    RegisterBroker(BrokerRegistration),
    /// Removes a broker that holds no replica.
    UnregisterBroker {
        id: i32,
    },
    /// Takes leadership away from a broker declared dead.
    FenceBroker {
        id: i32,
    },
    /// Gives a returning broker its leaderships back.
    UnfenceBroker {
        id: i32,
    },
    /// Creates a topic. Without `assignment`, replicas are placed over the unfenced brokers.
    CreateTopic {
        name: String,
        id: TopicId,
        partitions: i32,
        replication_factor: i16,
        assignment: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        internal: bool,
    },
    DeleteTopic {
        name: String,
    },
    /// Grows a topic to `total` partitions.
    CreatePartitions {
        name: String,
        total: i32,
        assignment: Option<Vec<Vec<i32>>>,
    },
    /// Replaces a topic's configs (validated by the proposer).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// The raft leader of a replicated partition reports itself, with its term as the leader
    /// epoch; refused unless the epoch is newer than the state's and the leader a replica.
    SetPartitionLeader {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
    },
    /// The raft leader of a replicated partition reports its in-sync replicas; refused unless
    /// the epoch is the current one and the set holds the leader and replicas only.
    SetPartitionIsr {
        topic: String,
        partition: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
    },
    /// Starts moving a replicated partition to `replicas` (KIP-455: the target, preferred
    /// leader first), replacing a reassignment in progress; `None` cancels the one in progress
    /// (the partition moves back to its original replicas). The partition's raft leader makes
    /// the membership change and then reports `CompleteReassignment`.
    ReassignPartition {
        topic: String,
        partition: i32,
        replicas: Option<Vec<i32>>,
    },
    /// The raft leader of a reassigned partition reports that its voters are now exactly the
    /// target `replicas`; refused unless they are the target in progress.
    CompleteReassignment {
        topic: String,
        partition: i32,
        replicas: Vec<i32>,
    },
    /// Hands `count` producer ids to `broker`, starting no lower than `at_least` (a broker
    /// upgraded from a single node passes the ids it already used).
    AllocateProducerIds {
        broker: i32,
        count: i64,
        at_least: i64,
    },
    /// Creates or replaces `user`'s SCRAM credential for `mechanism` (1 = SHA-256,
    /// 2 = SHA-512); validated by the proposer.
    SetScramCredential {
        user: String,
        mechanism: i8,
        credential: ScramCredentialMeta,
    },
    /// Removes `user`'s SCRAM credential for `mechanism`; refused if there is none.
    DeleteScramCredential {
        user: String,
        mechanism: i8,
    },
    /// Adds ACLs (those already there are kept once).
    CreateAcls {
        acls: Vec<AclMeta>,
    },
    /// Removes these ACLs (the proposer resolved its filters; absent ones are skipped).
    DeleteAcls {
        acls: Vec<AclMeta>,
    },
    /// Replaces the dynamic broker configs of `scope` (`""`: the cluster-wide default, else a
    /// node id in decimal) with `configs` (validated by the proposer); empty removes the scope.
    SetBrokerConfigs {
        scope: String,
        configs: BTreeMap<String, String>,
    },
    /// Sets and removes quota values (`f64` bits) of one entity (validated by the proposer).
    AlterClientQuota {
        entity: QuotaEntity,
        set: Vec<(String, u64)>,
        remove: Vec<String>,
    },
}

/// What an applied command answers its proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Done,
    ProducerIds { first: i64, count: i64 },
}

/// Why a command was not applied (the state is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("this cluster already has id {existing}")]
    ClusterIdMismatch { existing: String },
    #[error("broker {id} is already registered from another data directory and is not fenced")]
    DuplicateBrokerId { id: i32 },
    #[error("broker {id} is not registered")]
    UnknownBroker { id: i32 },
    #[error("broker {id} still holds replicas")]
    BrokerHoldsReplicas { id: i32 },
    #[error("topic {name} already exists")]
    TopicExists { name: String },
    #[error("a topic with this id already exists")]
    TopicIdExists,
    #[error("topic {name} does not exist")]
    UnknownTopic { name: String },
    #[error("invalid partition count: {reason}")]
    InvalidPartitions { reason: String },
    #[error("invalid replication factor: {reason}")]
    InvalidReplicationFactor { reason: String },
    #[error("invalid replica assignment: {reason}")]
    InvalidAssignment { reason: String },
    #[error("partition {partition} of topic {topic} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("broker {leader} is not a replica of the partition")]
    NotAReplica { leader: i32 },
    #[error("in-sync replicas {isr:?} of leader epoch {leader_epoch} do not fit the partition")]
    InvalidIsr { leader_epoch: i32, isr: Vec<i32> },
    #[error("leader epoch {proposed} is not newer than {current}")]
    StaleLeaderEpoch { proposed: i32, current: i32 },
    #[error("undecodable metadata command: {reason}")]
    Undecodable { reason: String },
    #[error("no reassignment of partition {partition} of topic {topic} is in progress")]
    NoReassignmentInProgress { topic: String, partition: i32 },
    #[error(
        "the reassignment in progress of partition {partition} of topic {topic} does not end with {replicas:?}"
    )]
    ReassignmentMismatch {
        topic: String,
        partition: i32,
        replicas: Vec<i32>,
    },
    #[error("invalid producer id block request: {reason}")]
    InvalidProducerIdRequest { reason: String },
    #[error("broker config scope {scope:?} is neither empty nor a node id")]
    InvalidBrokerConfigScope { scope: String },
    #[error("user {user} has no SCRAM credential of mechanism {mechanism}")]
    UnknownScramCredential { user: String, mechanism: i8 },
}
