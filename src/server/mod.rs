//! TCP side of the broker: the accept loop with its connection cap and graceful shutdown, and the
//! per-connection read/dispatch/write pipeline. Knows sockets and frames, not Kafka semantics.

mod connection;
mod listener;

pub(crate) use listener::{ServerSettings, serve};
