//! Tidelog: a Kafka-wire-compatible broker over a durable segmented partition log.
//!
//! Layers, lowest first (see ARCHITECTURE.md):
//! - `storage`: segmented partition logs, memory-mapped indexes, recovery, the topic catalog.
//! - `metadata`: the cluster metadata state and the commands that change it (pure, replicated).
//! - `replication`: raft groups (openraft), their log store over the segment log, the cluster RPC.
//! - `broker`: Kafka-agnostic produce, fetch and topic administration over the logs.
//! - `gossip`: chitchat discovery of peer brokers, their endpoints and liveness (advisory).
//! - `cluster`: forming and keeping the cluster: gossip finds, the controller decides.
//! - `kafka`: the wire codec, the ApiVersions table and one handler per Kafka API.
//! - `auth`: principals (TLS client certificates, Kafka's principal mapping rules).
//! - `server`: TCP and TLS listeners and the per-connection request pipeline.
//! - `config`, `cli`, `telemetry`, `app`: YAML and CLI settings, logging, and the composition root.
//! - `tool`: the admin commands (`tidelog topic|group|cluster|user|acl`), clients of `kafka::client`.

pub mod app;
pub(crate) mod auth;
pub(crate) mod broker;
pub mod cli;
pub(crate) mod cluster;
pub mod config;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod gossip;
pub(crate) mod kafka;
pub mod limits;
pub(crate) mod metadata;
pub(crate) mod replication;
pub(crate) mod server;
pub(crate) mod storage;
pub mod telemetry;
pub mod tool;
