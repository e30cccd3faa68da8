//! Replication: raft groups (openraft) and the cluster RPC that carries their messages between
//! brokers.

pub(crate) mod rpc;
