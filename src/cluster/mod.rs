//! The cluster: how brokers form one and keep it. Composes gossip (who is out there, advisory)
//! with the controller (raft, decides): forms the first controller quorum once
//! `bootstrap_expect` fresh brokers see each other, refuses a broker of another cluster or a
//! second claimant of a live node id, and on the controller leader registers the brokers gossip
//! finds, grows the controller group, fences brokers gossip declares dead and unfences them when
//! they come back. Knows nothing of Kafka requests.
//!
//! Invariant: gossip never changes membership or leadership by itself; every change here is a
//! `metadata::Command` proposed to the controller and applied by every broker in log order.

mod duties;
mod formation;
mod node;
mod settings;

#[cfg(test)]
mod tests;

pub(crate) use node::{ClusterNode, ClusterView, GossipNetwork};
pub(crate) use settings::{ClusterSettings, InternalTopic};
