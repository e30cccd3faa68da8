//! Replication: raft groups (openraft, named only here), the raft log store whose log is the
//! partition's segment log (one Kafka v2 batch per entry), and the cluster RPC that carries
//! raft messages between brokers. Knows nothing of Kafka requests; storage does all file I/O.

pub(crate) mod controller;
mod entry_codec;
mod error;
mod flusher;
mod index_map;
mod leader_changes;
mod log_store;
mod network;
#[cfg(fuzzing)]
pub(crate) use network::decode_partition_append;
pub(crate) mod partition;
mod persisted;
mod raft_log;
pub(crate) mod rpc;
mod snapshot_files;
mod tail_cache;
mod types;

#[cfg(test)]
mod log_store_tests;
#[cfg(test)]
mod raft_log_proptests;
#[cfg(test)]
mod raft_log_tests;

pub(crate) use error::Error;
pub(crate) use types::RaftNode;
