//! The cluster RPC transport: request/response calls between brokers over one TCP connection
//! per peer, addressed to a group (a raft group: the controller or a partition) and a method.
//! Payloads are opaque bytes; the raft network above encodes openraft's messages into them.
//! With `cluster.tls` both ends of every connection run an mTLS handshake first (`tls.rs`).
//!
//! One connection per peer carries the calls of every group, pipelined with correlation ids,
//! so thousands of groups between two brokers cost one socket and one writer task, and the
//! frames queued while a write is in progress go out in one write.

mod peers;
mod service;
mod tls;
mod wire;

#[cfg(test)]
mod tests;

pub(crate) use peers::{CallError, Peers};
pub(crate) use service::serve;
pub(crate) use service::{Handler, HandlerFuture, Registry};
pub(crate) use tls::ClusterTls;
pub(crate) use wire::{GroupId, Method};
