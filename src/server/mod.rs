//! TCP side of the broker: the accept loop with its connection cap, idle eviction and graceful
//! shutdown, the broker-wide request budget, and the per-connection read/dispatch/write pipeline.
//! Knows sockets and frames, not Kafka semantics.

mod budget;
mod connection;
mod listener;
mod registry;

pub(crate) use listener::{ServerSettings, serve};
