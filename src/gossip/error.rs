//! The gossip layer's error type: bad settings, published data out of bounds, a socket that
//! would not bind, a gossip task that failed.

use std::net::SocketAddr;

/// A failed gossip operation, with enough context to diagnose it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("invalid gossip setting {field}: {reason}")]
    InvalidSettings { field: &'static str, reason: String },
    #[error("invalid broker info {field}: {reason}")]
    InvalidBrokerInfo { field: String, reason: String },
    #[error("broker info has no {key}")]
    IncompleteBrokerInfo { key: &'static str },
    #[error("cannot bind the gossip socket on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no system randomness for the gossip session id")]
    Random {
        #[source]
        source: getrandom::Error,
    },
    #[error("cannot start gossip on {addr}")]
    Start {
        addr: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("gossip stopped with an error")]
    Stopped {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(super) fn invalid_info(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidBrokerInfo {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(super) fn invalid_settings(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidSettings {
            field,
            reason: reason.into(),
        }
    }
}
