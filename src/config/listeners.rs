//! Validates the named Kafka listeners (`listeners.<name>`) and the `tls` section into
//! `Listener`s and `TlsSettings`; the default listener `kafka` is always present.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file::{DEFAULT_LISTENER, FileConfig, KafkaListener, Tls};
use super::validate::{host_port, in_range, invalid};
use super::{Error, HostPort};
use crate::limits::LISTENERS_MAX;

/// How a listener's clients talk to it (Kafka `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    /// Accepted in the config; the broker refuses to start with it until SASL exists.
    SaslPlaintext,
    /// Accepted in the config; the broker refuses to start with it until SASL exists.
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name of the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// One validated Kafka listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `kafka` (the default listener) or the name under `listeners`.
    pub name: String,
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// What clients of this listener are told to connect to; `None`: the bound address.
    pub advertised: Option<HostPort>,
    pub security_protocol: SecurityProtocol,
}

/// Whether and how client certificates are asked for (Kafka `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// Asked for; a client without one is served as `User:ANONYMOUS`.
    Requested,
    /// A client without a certificate the CA signed is refused.
    Required,
}

/// The validated `tls` section (present when `tls.cert_file` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// Kafka `ssl.principal.mapping.rules`, checked to parse.
    pub principal_mapping_rules: String,
    pub handshake_timeout: Duration,
}

/// `Error::Invalid` with the key of a listener's field; the default listener's keys stay
/// `&'static str` so they read as before.
fn listener_invalid(name: &str, field: &'static str, reason: String) -> Error {
    let key = match (name, field) {
        (DEFAULT_LISTENER, "bind") => "listeners.kafka.bind",
        (DEFAULT_LISTENER, "advertised") => "listeners.kafka.advertised",
        (DEFAULT_LISTENER, _) => "listeners.kafka.security_protocol",
        _ => {
            return Error::Listener {
                key: format!("listeners.{name}.{field}"),
                reason,
            };
        }
    };
    Error::Invalid { key, reason }
}

/// A listener name: lower-case ASCII letters, digits and single `_` (it becomes part of
/// `TIDELOG_LISTENERS__<NAME>__BIND`), starting with a letter.
pub(super) fn is_listener_name(name: &str) -> bool {
    name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
}

/// Every listener, the default one first, then by name.
pub(super) fn validate_listeners(file: &FileConfig) -> Result<Vec<Listener>, Error> {
    if file.listeners.len() > LISTENERS_MAX {
        return invalid(
            "listeners",
            format!(
                "{} listeners, at most {LISTENERS_MAX}",
                file.listeners.len()
            ),
        );
    }
    let default = file
        .listeners
        .get(DEFAULT_LISTENER)
        .cloned()
        .unwrap_or_default();
    let mut listeners = vec![validate_listener(DEFAULT_LISTENER, &default)?];
    for (name, listener) in &file.listeners {
        if name == DEFAULT_LISTENER {
            continue;
        }
        if !is_listener_name(name) {
            return invalid(
                "listeners",
                format!(
                    "listener name {name:?}: expected lower-case letters, digits and single \
                     underscores, starting with a letter (at most 32)"
                ),
            );
        }
        let validated = validate_listener(name, listener)?;
        if let Some(other) = listeners
            .iter()
            .find(|other| super::cluster::conflicts(other.bind, validated.bind))
        {
            return Err(listener_invalid(
                name,
                "bind",
                format!(
                    "{} is also listener {}'s address: each listener needs its own port",
                    validated.bind, other.name
                ),
            ));
        }
        listeners.push(validated);
    }
    Ok(listeners)
}

fn validate_listener(name: &str, listener: &KafkaListener) -> Result<Listener, Error> {
    let bind: SocketAddr = listener.bind.trim().parse().map_err(|_| {
        listener_invalid(
            name,
            "bind",
            format!(
                "expected IP:PORT (e.g. 127.0.0.1:9092 or [::]:9092), got {:?}",
                listener.bind
            ),
        )
    })?;
    let advertised = match &listener.advertised {
        Some(advertised) => Some(host_port("listeners.kafka.advertised", advertised).map_err(
            |error| match error {
                Error::Invalid { reason, .. } => listener_invalid(name, "advertised", reason),
                other => other,
            },
        )?),
        None if bind.ip().is_unspecified() => {
            return Err(listener_invalid(
                name,
                "advertised",
                format!(
                    "must be set when listeners.{name}.bind is {bind}: clients cannot \
                     connect to an unspecified address (e.g. TIDELOG_LISTENERS__{}__ADVERTISED\
                     =localhost:{})",
                    name.to_ascii_uppercase(),
                    bind.port()
                ),
            ));
        }
        None => None,
    };
    let security_protocol =
        SecurityProtocol::parse(&listener.security_protocol).ok_or_else(|| {
            listener_invalid(
                name,
                "security_protocol",
                format!(
                    "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {:?}",
                    listener.security_protocol
                ),
            )
        })?;
    Ok(Listener {
        name: name.to_owned(),
        bind,
        advertised,
        security_protocol,
    })
}

/// The `tls` section: required (cert and key) when a listener uses TLS; a CA when client
/// certificates are asked for.
pub(super) fn validate_tls(
    tls: &Tls,
    listeners: &[Listener],
) -> Result<Option<TlsSettings>, Error> {
    let client_auth = match tls.client_auth.trim().to_ascii_lowercase().as_str() {
        "none" => ClientAuth::None,
        "requested" => ClientAuth::Requested,
        "required" => ClientAuth::Required,
        other => {
            return invalid(
                "tls.client_auth",
                format!("expected none, requested or required, got {other:?}"),
            );
        }
    };
    if let Err(error) = crate::auth::MappingRules::parse(&tls.principal_mapping_rules) {
        return invalid("tls.principal_mapping_rules", error.to_string());
    }
    let handshake_ms = in_range(
        "tls.handshake_timeout_ms",
        tls.handshake_timeout_ms,
        1,
        u64::from(u32::MAX),
    )?;
    let path = |key: &'static str, value: &Option<String>| match value.as_deref().map(str::trim) {
        Some("") => invalid(key, "must not be empty".to_owned()),
        other => Ok(other.map(PathBuf::from)),
    };
    let cert_file = path("tls.cert_file", &tls.cert_file)?;
    let key_file = path("tls.key_file", &tls.key_file)?;
    let ca_file = path("tls.ca_file", &tls.ca_file)?;
    let tls_listener = listeners.iter().find(|l| l.security_protocol.is_tls());
    let (cert_file, key_file) = match (cert_file, key_file) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            if let Some(listener) = tls_listener {
                return invalid(
                    "tls.cert_file",
                    format!(
                        "listener {} is {}: tls.cert_file and tls.key_file must be set",
                        listener.name,
                        listener.security_protocol.as_str()
                    ),
                );
            }
            return Ok(None);
        }
        (Some(_), None) => return invalid("tls.key_file", "must be set with tls.cert_file".into()),
        (None, Some(_)) => return invalid("tls.cert_file", "must be set with tls.key_file".into()),
    };
    if client_auth != ClientAuth::None && ca_file.is_none() {
        return invalid(
            "tls.ca_file",
            format!(
                "must be set when tls.client_auth is {}: client certificates are verified \
                 against it",
                tls.client_auth.trim()
            ),
        );
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        ca_file,
        client_auth,
        principal_mapping_rules: tls.principal_mapping_rules.clone(),
        handshake_timeout: Duration::from_millis(handshake_ms),
    }))
}
