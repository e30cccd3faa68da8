//! What a broker publishes by gossip, as typed data, and the bounds every value is checked
//! against (ours before publishing, a peer's after decoding). No chitchat types here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use super::Error;
use crate::limits;

/// What one broker tells the others about itself. Its node id and generation travel in the
/// gossip identity (see `GossipSettings`), not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerInfo {
    /// Identifies one broker's data directory (uuid-like, chosen by the caller), so the
    /// controller can tell apart two brokers claiming one node id.
    pub(crate) incarnation: String,
    /// Kafka listeners by name (`PLAINTEXT`, `SASL_SSL`, `INTERNAL`, ...).
    pub(crate) listeners: BTreeMap<String, Listener>,
    /// Where raft and broker-to-broker RPC reach this broker.
    pub(crate) cluster_rpc: Endpoint,
    pub(crate) rack: Option<String>,
    pub(crate) software_version: String,
    /// The cluster id once this broker knows it (it is generated at bootstrap).
    pub(crate) cluster_id: Option<String>,
    /// Small key-values the caller updates at will (`ready` = `true`, ...).
    pub(crate) extras: BTreeMap<String, String>,
}

/// One Kafka listener as clients should reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    pub(crate) endpoint: Endpoint,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`: opaque to gossip.
    pub(crate) security_protocol: String,
}

/// A host (DNS name or IP literal, IPv6 without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    pub(crate) fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` or `[ipv6]:port`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (host, port) = text.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']')?,
            None if host.contains(':') => return None,
            None => host,
        };
        Some(Self::new(host, port))
    }

    fn validate(&self, field: &str) -> Result<(), Error> {
        check_text(
            field,
            &self.host,
            1,
            limits::GOSSIP_VALUE_BYTES_MAX - 8,
            is_host_char,
        )?;
        if self.port == 0 {
            return Err(Error::invalid_info(field, "port 0"));
        }
        Ok(())
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Self::new(addr.ip().to_string(), addr.port())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerInfo {
    /// Checks every value against the gossip bounds of `limits.rs` and its character set, so
    /// what we publish is exactly what peers accept.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_id("incarnation", &self.incarnation)?;
        let version_max = limits::GOSSIP_NAME_BYTES_MAX;
        check_text(
            "software_version",
            &self.software_version,
            1,
            version_max,
            is_version_char,
        )?;
        self.cluster_rpc.validate("cluster_rpc")?;
        if let Some(rack) = &self.rack {
            check_text(
                "rack",
                rack,
                1,
                limits::GOSSIP_VALUE_BYTES_MAX,
                is_printable,
            )?;
        }
        if let Some(cluster_id) = &self.cluster_id {
            check_id("cluster_id", cluster_id)?;
        }
        check_count(
            "listeners",
            self.listeners.len(),
            1,
            limits::GOSSIP_LISTENERS_MAX,
        )?;
        for (name, listener) in &self.listeners {
            check_id("listener name", name)?;
            listener.endpoint.validate(&format!("listener {name}"))?;
            let field = format!("listener {name} security protocol");
            check_id(&field, &listener.security_protocol)?;
        }
        check_count("extras", self.extras.len(), 0, limits::GOSSIP_EXTRAS_MAX)?;
        for (key, value) in &self.extras {
            let key_max = limits::GOSSIP_NAME_BYTES_MAX;
            check_text("extra key", key, 1, key_max, is_extra_key_char)?;
            let value_max = limits::GOSSIP_VALUE_BYTES_MAX;
            check_text(&format!("extra {key}"), value, 0, value_max, is_printable)?;
        }
        Ok(())
    }
}

fn check_count(field: &str, count: usize, count_min: usize, count_max: usize) -> Result<(), Error> {
    if (count_min..=count_max).contains(&count) {
        return Ok(());
    }
    Err(Error::invalid_info(
        field,
        format!("{count} entries, expected {count_min} to {count_max}"),
    ))
}

fn check_id(field: &str, value: &str) -> Result<(), Error> {
    check_text(field, value, 1, limits::GOSSIP_NAME_BYTES_MAX, is_id_char)
}

fn check_text(
    field: &str,
    value: &str,
    len_min: usize,
    len_max: usize,
    is_allowed: fn(char) -> bool,
) -> Result<(), Error> {
    if value.len() < len_min || value.len() > len_max {
        return Err(Error::invalid_info(
            field,
            format!("{} bytes, expected {len_min} to {len_max}", value.len()),
        ));
    }
    match value.chars().find(|c| !is_allowed(*c)) {
        Some(c) => Err(Error::invalid_info(
            field,
            format!("character {c:?} not allowed"),
        )),
        None => Ok(()),
    }
}

/// Identifiers: uuids, Kafka's base64url ids, listener names, security protocols.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')
}

/// DNS names and IP literals (IPv6 with an optional `%zone`).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')
}

fn is_extra_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
}

/// Free text (racks, extra values): no control characters, so a value cannot forge log lines.
fn is_printable(c: char) -> bool {
    !c.is_control()
}

#[cfg(test)]
impl BrokerInfo {
    /// A valid broker info with one PLAINTEXT listener and a rack.
    pub(crate) fn for_test(incarnation: &str) -> Self {
        Self {
            incarnation: incarnation.to_string(),
            listeners: BTreeMap::from([(
                "PLAINTEXT".to_string(),
                Listener {
                    endpoint: Endpoint::new("broker-1.example", 9092),
                    security_protocol: "PLAINTEXT".to_string(),
                },
            )]),
            cluster_rpc: Endpoint::new("::1", 9093),
            rack: Some("eu-west-1a".to_string()),
            software_version: "0.1.0".to_string(),
            cluster_id: None,
            extras: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BrokerInfo {
        BrokerInfo::for_test("8a6e0804-2bd0-4672-b79d-d97027f9071a")
    }

    #[track_caller]
    fn check_invalid(change: impl FnOnce(&mut BrokerInfo), field: &str) {
        let mut info = sample();
        change(&mut info);
        match info.validate() {
            Err(Error::InvalidBrokerInfo { field: got, .. }) => assert_eq!(got, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }

    #[test]
    fn sample_info_is_valid() {
        sample().validate().unwrap();
    }

    #[test]
    fn out_of_bounds_values_are_invalid() {
        check_invalid(|i| i.incarnation.clear(), "incarnation");
        check_invalid(|i| i.incarnation = "a b".to_string(), "incarnation");
        check_invalid(|i| i.incarnation = "x".repeat(65), "incarnation");
        check_invalid(
            |i| i.software_version = "1.0\n".to_string(),
            "software_version",
        );
        check_invalid(|i| i.cluster_rpc.port = 0, "cluster_rpc");
        check_invalid(|i| i.cluster_rpc.host = "a/b".to_string(), "cluster_rpc");
        check_invalid(|i| i.rack = Some("r".repeat(257)), "rack");
        check_invalid(|i| i.rack = Some("a\u{1b}[31m".to_string()), "rack");
        check_invalid(|i| i.cluster_id = Some(String::new()), "cluster_id");
        check_invalid(|i| i.listeners.clear(), "listeners");
        check_invalid(
            |i| {
                for n in 0..=limits::GOSSIP_LISTENERS_MAX {
                    let listener = i.listeners["PLAINTEXT"].clone();
                    i.listeners.insert(format!("L{n}"), listener);
                }
            },
            "listeners",
        );
        check_invalid(
            |i| {
                let listener = i.listeners["PLAINTEXT"].clone();
                i.listeners.insert("BAD NAME".to_string(), listener);
            },
            "listener name",
        );
        check_invalid(
            |i| i.listeners.get_mut("PLAINTEXT").unwrap().security_protocol = "SSL;".to_string(),
            "listener PLAINTEXT security protocol",
        );
        check_invalid(
            |i| {
                for n in 0..=limits::GOSSIP_EXTRAS_MAX {
                    i.extras.insert(format!("k{n}"), String::new());
                }
            },
            "extras",
        );
        check_invalid(
            |i| {
                i.extras.insert("Ready".to_string(), "true".to_string());
            },
            "extra key",
        );
        check_invalid(
            |i| {
                i.extras.insert("ready".to_string(), "x".repeat(257));
            },
            "extra ready",
        );
    }

    #[test]
    fn endpoint_parse_round_trips_names_and_ip_literals() {
        for text in [
            "broker-1:9092",
            "10.0.0.1:1",
            "[::1]:9093",
            "[fe80::1%eth0]:7000",
        ] {
            let endpoint = Endpoint::parse(text).unwrap();
            assert_eq!(endpoint.to_string(), text);
        }
        assert_eq!(Endpoint::parse("[::1]:9093").unwrap().host, "::1");
        for bad in ["broker", "::1:9093", "[::1:9093", "host:99999", "host:"] {
            assert!(Endpoint::parse(bad).is_none(), "{bad}");
        }
    }
}
