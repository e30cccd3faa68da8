//! Cluster metadata: the state every broker agrees on (brokers, topics, partition placement,
//! configs, producer-id blocks, users' SCRAM credentials, ACLs, client quotas, dynamic broker
//! configs) and the commands that change it.
//!
//! The state is changed only by [`State::apply`], a pure and deterministic function of the
//! state and one command: the controller's raft log orders commands and every broker applies
//! them in that order, so every broker holds the same state at the same log index. Nothing here
//! does I/O; the replication layer stores and replicates commands and snapshots of the state.

mod apply;
mod command;
mod model;
mod placement;
mod reassignment;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod reassignment_tests;

pub(crate) use command::{Command, Outcome, Rejection};
pub(crate) use model::{
    AclMeta, PartitionMeta, QuotaEntity, QuotaTable, ScramCredentialMeta, State, quota_pairs,
};
pub(crate) use model::{BrokerRegistration, Endpoint};
