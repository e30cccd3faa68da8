//! TCP side of the broker: the accept loop over every Kafka listener with its connection cap,
//! idle eviction and graceful shutdown, TLS (handshake, certificate reload, client principal),
//! the broker-wide request budget, and the per-connection read/dispatch/write pipeline.
//! Knows sockets and frames, not Kafka semantics. `admin` is the separate HTTP listener for
//! probes and metrics.

mod admin;
mod budget;
mod cluster_tls;
mod connection;
mod listener;
mod registry;
mod tls;

pub(crate) use admin::{AdminHandlers, serve_admin};
pub(crate) use cluster_tls::cluster_mtls;
pub(crate) use listener::{KafkaListener, ServerSettings, serve};
pub(crate) use tls::{ClientAuth, Tls, TlsSettings};
