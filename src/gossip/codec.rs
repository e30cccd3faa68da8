//! `BrokerInfo` <-> the string key-values chitchat replicates: one key per field, listener and
//! extra, so an update re-sends only what changed. Decoding a peer's keys never panics: any
//! value out of bounds makes the whole node state invalid.

use std::collections::BTreeMap;

use super::{BrokerInfo, Endpoint, Error, Listener};
use crate::limits;

/// Version of this key layout; a peer publishing another one is ignored.
const FORMAT: &str = "1";
const FORMAT_KEY: &str = "format";
const INCARNATION_KEY: &str = "incarnation";
const SOFTWARE_VERSION_KEY: &str = "software_version";
const CLUSTER_RPC_KEY: &str = "cluster_rpc";
const RACK_KEY: &str = "rack";
const CLUSTER_ID_KEY: &str = "cluster_id";
/// `listener:<NAME>` = `<SECURITY_PROTOCOL>://<host>:<port>`.
const LISTENER_PREFIX: &str = "listener:";
/// `extra:<key>` = value.
const EXTRA_PREFIX: &str = "extra:";

/// The key-values that publish `info`, after checking it against the bounds peers apply.
pub(super) fn encode(info: &BrokerInfo) -> Result<BTreeMap<String, String>, Error> {
    info.validate()?;
    let mut kvs = BTreeMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (INCARNATION_KEY.to_string(), info.incarnation.clone()),
        (
            SOFTWARE_VERSION_KEY.to_string(),
            info.software_version.clone(),
        ),
        (CLUSTER_RPC_KEY.to_string(), info.cluster_rpc.to_string()),
    ]);
    if let Some(rack) = &info.rack {
        kvs.insert(RACK_KEY.to_string(), rack.clone());
    }
    if let Some(cluster_id) = &info.cluster_id {
        kvs.insert(CLUSTER_ID_KEY.to_string(), cluster_id.clone());
    }
    for (name, listener) in &info.listeners {
        kvs.insert(
            format!("{LISTENER_PREFIX}{name}"),
            format!("{}://{}", listener.security_protocol, listener.endpoint),
        );
    }
    for (key, value) in &info.extras {
        kvs.insert(format!("{EXTRA_PREFIX}{key}"), value.clone());
    }
    let published_bytes: usize = kvs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if published_bytes > limits::GOSSIP_PUBLISHED_BYTES_MAX {
        return Err(Error::invalid_info(
            "broker info",
            format!(
                "{published_bytes} bytes of keys and values, at most {}",
                limits::GOSSIP_PUBLISHED_BYTES_MAX
            ),
        ));
    }
    Ok(kvs)
}

/// Decodes a peer's key-values. `IncompleteBrokerInfo` means a required key has not arrived
/// yet (gossip may deliver a node's keys over several rounds); anything else is a lie.
pub(super) fn decode<'a>(
    key_values: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<BrokerInfo, Error> {
    let mut fields = Fields::default();
    let mut listeners = BTreeMap::new();
    let mut extras = BTreeMap::new();
    let mut total_bytes = 0usize;
    for (key, value) in key_values {
        total_bytes = total_bytes.saturating_add(key.len() + value.len());
        if total_bytes > limits::GOSSIP_PUBLISHED_BYTES_MAX {
            return Err(Error::invalid_info(
                "broker info",
                format!("more than {} bytes", limits::GOSSIP_PUBLISHED_BYTES_MAX),
            ));
        }
        if value.len() > limits::GOSSIP_VALUE_BYTES_MAX {
            return Err(Error::invalid_info(key, "value too long"));
        }
        if let Some(name) = key.strip_prefix(LISTENER_PREFIX) {
            if listeners.len() == limits::GOSSIP_LISTENERS_MAX {
                return Err(Error::invalid_info("listeners", "too many"));
            }
            listeners.insert(name.to_string(), decode_listener(name, value)?);
        } else if let Some(extra) = key.strip_prefix(EXTRA_PREFIX) {
            if extras.len() == limits::GOSSIP_EXTRAS_MAX {
                return Err(Error::invalid_info("extras", "too many"));
            }
            extras.insert(extra.to_string(), value.to_string());
        } else {
            fields.set(key, value);
        }
    }
    let info = fields.into_info(listeners, extras)?;
    info.validate()?;
    Ok(info)
}

fn decode_listener(name: &str, value: &str) -> Result<Listener, Error> {
    let invalid = || Error::invalid_info(format!("listener {name}"), "not PROTOCOL://host:port");
    let (security_protocol, endpoint) = value.split_once("://").ok_or_else(invalid)?;
    Ok(Listener {
        endpoint: Endpoint::parse(endpoint).ok_or_else(invalid)?,
        security_protocol: security_protocol.to_string(),
    })
}

/// The single-valued keys of a node state, as they arrive.
#[derive(Default)]
struct Fields<'a> {
    format: Option<&'a str>,
    incarnation: Option<&'a str>,
    software_version: Option<&'a str>,
    cluster_rpc: Option<&'a str>,
    rack: Option<&'a str>,
    cluster_id: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Keeps a known key; unknown keys are ignored, so a newer broker may add fields.
    fn set(&mut self, key: &str, value: &'a str) {
        let slot = match key {
            FORMAT_KEY => &mut self.format,
            INCARNATION_KEY => &mut self.incarnation,
            SOFTWARE_VERSION_KEY => &mut self.software_version,
            CLUSTER_RPC_KEY => &mut self.cluster_rpc,
            RACK_KEY => &mut self.rack,
            CLUSTER_ID_KEY => &mut self.cluster_id,
            _ => return,
        };
        *slot = Some(value);
    }

    fn into_info(
        self,
        listeners: BTreeMap<String, Listener>,
        extras: BTreeMap<String, String>,
    ) -> Result<BrokerInfo, Error> {
        let format = required(self.format, FORMAT_KEY)?;
        if format != FORMAT {
            return Err(Error::invalid_info(
                FORMAT_KEY,
                format!("format {format:?}, this broker reads {FORMAT:?}"),
            ));
        }
        let cluster_rpc = required(self.cluster_rpc, CLUSTER_RPC_KEY)?;
        if listeners.is_empty() {
            return Err(Error::IncompleteBrokerInfo { key: "listener" });
        }
        Ok(BrokerInfo {
            incarnation: required(self.incarnation, INCARNATION_KEY)?.to_string(),
            listeners,
            cluster_rpc: Endpoint::parse(cluster_rpc)
                .ok_or_else(|| Error::invalid_info(CLUSTER_RPC_KEY, "not host:port"))?,
            rack: self.rack.map(str::to_string),
            software_version: required(self.software_version, SOFTWARE_VERSION_KEY)?.to_string(),
            cluster_id: self.cluster_id.map(str::to_string),
            extras,
        })
    }
}

fn required<'a>(value: Option<&'a str>, key: &'static str) -> Result<&'a str, Error> {
    value.ok_or(Error::IncompleteBrokerInfo { key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BrokerInfo {
        let mut info = BrokerInfo::for_test("0f8fad5b-d9cb-469f-a165-70867728950e");
        info.cluster_id = Some("MkU3OEVBNTcwNTJENDM2Qk".to_string());
        info.extras.insert("ready".to_string(), "true".to_string());
        info.listeners.insert(
            "SASL_SSL".to_string(),
            Listener {
                endpoint: Endpoint::new("fe80::1", 9094),
                security_protocol: "SASL_SSL".to_string(),
            },
        );
        info
    }

    fn decode_map(kvs: &BTreeMap<String, String>) -> Result<BrokerInfo, Error> {
        decode(kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let info = sample();
        let kvs = encode(&info).unwrap();
        assert_eq!(kvs["listener:SASL_SSL"], "SASL_SSL://[fe80::1]:9094");
        assert_eq!(decode_map(&kvs).unwrap(), info);
        let mut bare = info;
        bare.rack = None;
        bare.cluster_id = None;
        bare.extras.clear();
        assert_eq!(decode_map(&encode(&bare).unwrap()).unwrap(), bare);
    }

    #[test]
    fn decode_missing_required_key_is_incomplete() {
        for key in [
            FORMAT_KEY,
            INCARNATION_KEY,
            SOFTWARE_VERSION_KEY,
            CLUSTER_RPC_KEY,
        ] {
            let mut kvs = encode(&sample()).unwrap();
            kvs.remove(key);
            assert!(
                matches!(decode_map(&kvs), Err(Error::IncompleteBrokerInfo { key: k }) if k == key)
            );
        }
        let mut kvs = encode(&sample()).unwrap();
        kvs.retain(|k, _| !k.starts_with(LISTENER_PREFIX));
        assert!(matches!(
            decode_map(&kvs),
            Err(Error::IncompleteBrokerInfo { .. })
        ));
    }

    #[test]
    fn decode_lying_values_is_invalid() {
        let lies: &[(&str, String)] = &[
            (FORMAT_KEY, "2".to_string()),
            (CLUSTER_RPC_KEY, "no-port".to_string()),
            (CLUSTER_RPC_KEY, "host:0".to_string()),
            (INCARNATION_KEY, "has space".to_string()),
            ("listener:PLAINTEXT", "PLAINTEXT//host:1".to_string()),
            ("listener:PLAINTEXT", "://host:1".to_string()),
            ("listener:BAD NAME", "PLAINTEXT://host:1".to_string()),
            (
                "extra:ready",
                "x".repeat(limits::GOSSIP_VALUE_BYTES_MAX + 1),
            ),
            ("extra:Upper", "1".to_string()),
            (RACK_KEY, "\u{0}".to_string()),
        ];
        for (key, value) in lies {
            let mut kvs = encode(&sample()).unwrap();
            kvs.insert(key.to_string(), value.clone());
            assert!(
                matches!(decode_map(&kvs), Err(Error::InvalidBrokerInfo { .. })),
                "{key}={value:?} accepted"
            );
        }
    }

    #[test]
    fn decode_too_many_or_too_large_is_invalid() {
        let mut kvs = encode(&sample()).unwrap();
        for n in 0..=limits::GOSSIP_EXTRAS_MAX {
            kvs.insert(format!("extra:k{n}"), String::new());
        }
        assert!(matches!(
            decode_map(&kvs),
            Err(Error::InvalidBrokerInfo { .. })
        ));

        let mut kvs = encode(&sample()).unwrap();
        for n in 0..limits::GOSSIP_PUBLISHED_BYTES_MAX / 200 + 1 {
            kvs.insert(format!("unknown{n}"), "v".repeat(200));
        }
        assert!(matches!(
            decode_map(&kvs),
            Err(Error::InvalidBrokerInfo { .. })
        ));
    }

    #[test]
    fn encode_more_than_the_published_bytes_max_is_invalid() {
        let mut info = sample();
        info.extras.clear();
        for n in 0..limits::GOSSIP_EXTRAS_MAX {
            info.extras
                .insert(format!("k{n}"), "v".repeat(limits::GOSSIP_VALUE_BYTES_MAX));
        }
        info.validate().unwrap();
        assert!(matches!(
            encode(&info),
            Err(Error::InvalidBrokerInfo { .. })
        ));
    }

    #[test]
    fn decode_ignores_unknown_keys() {
        let mut kvs = encode(&sample()).unwrap();
        kvs.insert("added_by_a_newer_broker".to_string(), "x".to_string());
        assert_eq!(decode_map(&kvs).unwrap(), sample());
    }
}
