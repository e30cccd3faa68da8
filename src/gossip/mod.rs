//! Gossip: brokers find each other and learn each other's endpoints and liveness (chitchat,
//! scuttlebutt over UDP). The only module that names `chitchat`; it uses only `crate::limits`.
//! Advisory: it never changes membership or leadership, the controller decides (DESIGN.md 3).
//!
//! A broker publishes its `BrokerInfo` (one chitchat key per field, `codec.rs`) under the
//! gossip identity (node id, generation, gossip address) and reads everyone's as a `Membership`
//! view (`tracker.rs`): live members and members seen live that are now dead, newest generation
//! only, lying peers left out with a log line.
//!
//! # Authenticated datagrams
//!
//! With a cluster key every UDP datagram is (big-endian integers):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `TLG1` |
//! | 8 | session id: random per socket |
//! | 8 | counter: 0, 1, 2, ... per datagram of the session |
//! | 8 | timestamp: sender's wall clock, ms since the Unix epoch |
//! | n | chitchat envelope (magic 45139 little-endian, protocol version, message type, body) |
//! | 32 | HMAC-SHA256 over `"tidelog-gossip-v1" ‖ u16 cluster-name length ‖ cluster name ‖` every byte above |
//!
//! A receiver drops (counted, one log line per `GOSSIP_DROP_LOG_INTERVAL_MS`) a datagram whose
//! length, magic or tag is wrong, whose timestamp is more than `GOSSIP_DATAGRAM_AGE_MS_MAX` from
//! its clock, or whose (session, counter) it accepted before (`replay.rs`). Without a key a
//! datagram is the bare chitchat envelope. Nothing gossip carries is secret; the key keeps
//! strangers from injecting members (chitchat trusts every datagram it decodes).

// Datagram stats (metrics, issue 12), cluster keys (security, issue 11) and the memory
// network's cuts (tests) are not used by the broker yet.
#![cfg_attr(
    not(test),
    expect(
        dead_code,
        unused_imports,
        reason = "stats, cluster keys and link cuts are used by issues 11 and 12"
    )
)]

mod auth;
mod codec;
mod error;
mod handle;
mod info;
mod membership;
mod memory;
mod replay;
mod seeds;
mod settings;
mod tracker;
mod transport;

#[cfg(test)]
mod cluster_tests;

pub(crate) use error::Error;
pub(crate) use handle::GossipHandle;
pub(crate) use info::{BrokerInfo, Endpoint, Listener};
pub(crate) use membership::{DeadMember, Member, Membership};
pub(crate) use memory::MemoryNetwork;
pub(crate) use settings::{ClusterKey, FailureDetectorSettings, GossipSettings};
pub(crate) use transport::GossipStats;
