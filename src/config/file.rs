//! The YAML file's shape (serde, snake_case keys, unknown keys rejected) and every default.
//! The only file that names the YAML crate; it parses and prints text, it never validates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name of the default Kafka listener (`--listen` sets its bind address).
pub(crate) const DEFAULT_LISTENER: &str = "kafka";

/// The whole config file. Every section and key may be omitted; missing ones take the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub node_id: i32,
    pub cluster_id: String,
    pub data_dir: String,
    /// Kafka listeners by name; `kafka` is always there (added with its defaults if absent).
    pub listeners: BTreeMap<String, KafkaListener>,
    pub tls: Tls,
    pub topics: Topics,
    pub log: Log,
    pub flush: Flush,
    pub limits: Limits,
    pub groups: Groups,
    pub transactions: Transactions,
    pub cluster: Cluster,
    pub admin: Admin,
    pub telemetry: Telemetry,
    pub sasl: super::security::SaslFile,
    pub authorization: super::security::AuthorizationFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KafkaListener {
    /// `IP:PORT` to bind.
    pub bind: String,
    /// `HOST:PORT` given to clients; `None` = the address the listener actually bound.
    pub advertised: Option<String>,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
}

/// TLS of the `SSL` listeners (Kafka's `ssl.*` broker settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Tls {
    /// PEM certificate chain, this broker's certificate first; re-read when it changes.
    pub cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); re-read when it changes.
    pub key_file: Option<String>,
    /// PEM CA certificates client certificates are verified against.
    pub ca_file: Option<String>,
    /// `none`, `requested` or `required` (Kafka `ssl.client.auth`).
    pub client_auth: String,
    /// Kafka `ssl.principal.mapping.rules`.
    pub principal_mapping_rules: String,
    /// A TLS handshake not done within this is closed.
    pub handshake_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Topics {
    pub default_partitions: i32,
    /// Kafka's `default.replication.factor`; -1: min(3, brokers) in cluster mode (a single
    /// node has one replica of everything).
    pub default_replication_factor: i32,
    pub auto_create: bool,
}

/// Broker-wide log defaults; Kafka's `log.*` settings. `-1` means "no limit" where allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Log {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub index_interval_bytes: u32,
    pub retention_check_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Flush {
    pub acks_one_waits_for_fsync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    pub message_max_bytes: u32,
    pub socket_request_max_bytes: u32,
    pub max_connections: u32,
    pub connections_max_idle_ms: u64,
    pub queued_max_request_bytes: u64,
    pub fetch_max_bytes: u32,
}

/// The consumer-group coordinator; Kafka's `offsets.*` and `group.*` broker settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Groups {
    pub offsets_topic_partitions: i32,
    pub offsets_retention_minutes: i64,
    pub session_timeout_ms_min: i32,
    pub session_timeout_ms_max: i32,
    pub initial_rebalance_delay_ms: i32,
}

/// Idempotent and transactional producers; Kafka's `transaction.*` and `producer.id.*` broker
/// settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Transactions {
    pub state_topic_partitions: i32,
    pub max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
    pub abort_timed_out_check_interval_ms: u64,
    pub producer_id_expiration_ms: i64,
}

/// Cluster mode: on exactly when `listen` is set; without it the broker runs alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cluster {
    /// `IP:PORT` (TCP) for raft and broker-to-broker RPC.
    pub listen: Option<String>,
    /// `HOST:PORT` peers connect to; `None` = the address `listen` actually bound.
    pub advertised: Option<String>,
    /// `IP:PORT` (UDP) for gossip; `None` = `listen`'s address and port.
    pub gossip_listen: Option<String>,
    /// Gossip `HOST:PORT`s of some brokers (this one may be among them).
    pub seeds: Vec<String>,
    pub bootstrap_expect: u32,
    pub controller_voters: u32,
    pub rack: Option<String>,
    pub name: String,
    pub controller_heartbeat_ms: u64,
    pub controller_election_timeout_ms: u64,
    pub gossip_interval_ms: u64,
    pub broker_session_timeout_ms: u64,
    /// mTLS of the cluster listener (raft and broker-to-broker calls).
    pub tls: ClusterTls,
}

/// `cluster.tls`: all three files, or none (plain TCP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ClusterTls {
    /// PEM certificate chain of this broker, valid for clients and servers; reloaded on change.
    pub cert_file: Option<String>,
    /// PEM private key.
    pub key_file: Option<String>,
    /// PEM CA certificates every broker's certificate must chain to.
    pub ca_file: Option<String>,
}

/// The admin HTTP listener (`/health`, `/ready`, `/metrics`): off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Admin {
    /// `IP:PORT` (TCP) to serve HTTP on; `None` = no admin listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Telemetry {
    /// A tracing `EnvFilter` directive, e.g. `info` or `info,tidelog::storage=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
    /// OTLP collector base URL (`http://collector:4318`); spans go to `<url>/v1/traces`.
    pub otlp_endpoint: Option<String>,
}

/// Every default of the config file, in one place (the sub-sections' `Default`s delegate here).
impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            node_id: 1,
            cluster_id: "tidelog-single-node".to_owned(),
            data_dir: "./data".to_owned(),
            listeners: BTreeMap::from([(DEFAULT_LISTENER.to_owned(), KafkaListener::default())]),
            tls: Tls {
                cert_file: None,
                key_file: None,
                ca_file: None,
                client_auth: "none".to_owned(),
                principal_mapping_rules: "DEFAULT".to_owned(),
                handshake_timeout_ms: 10_000,
            },
            topics: Topics {
                default_partitions: 1,
                default_replication_factor: -1,
                auto_create: true,
            },
            log: Log {
                segment_bytes: crate::limits::SEGMENT_BYTES_DEFAULT,
                segment_ms: 7 * 24 * 60 * 60 * 1000,
                retention_ms: 7 * 24 * 60 * 60 * 1000,
                retention_bytes: -1,
                index_interval_bytes: crate::limits::INDEX_INTERVAL_BYTES_DEFAULT,
                retention_check_interval_ms: 5 * 60 * 1000,
            },
            flush: Flush {
                acks_one_waits_for_fsync: false,
            },
            limits: Limits {
                message_max_bytes: crate::limits::MESSAGE_BYTES_MAX_DEFAULT,
                socket_request_max_bytes: crate::limits::REQUEST_BYTES_MAX_DEFAULT,
                max_connections: crate::limits::CONNECTIONS_MAX_DEFAULT as u32,
                connections_max_idle_ms: crate::limits::CONNECTION_IDLE_MS_DEFAULT,
                queued_max_request_bytes: crate::limits::QUEUED_REQUEST_BYTES_MAX_DEFAULT,
                fetch_max_bytes: crate::limits::FETCH_BYTES_MAX_DEFAULT,
            },
            groups: Groups {
                offsets_topic_partitions: 8,
                offsets_retention_minutes: 7 * 24 * 60,
                session_timeout_ms_min: 6_000,
                session_timeout_ms_max: 1_800_000,
                initial_rebalance_delay_ms: 0,
            },
            transactions: Transactions {
                state_topic_partitions: 8,
                max_timeout_ms: 900_000,
                transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
                abort_timed_out_check_interval_ms: 10_000,
                producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            },
            cluster: Cluster {
                listen: None,
                advertised: None,
                gossip_listen: None,
                seeds: Vec::new(),
                bootstrap_expect: 1,
                controller_voters: 3,
                rack: None,
                name: "tidelog".to_owned(),
                controller_heartbeat_ms: 200,
                controller_election_timeout_ms: 1_500,
                gossip_interval_ms: 500,
                broker_session_timeout_ms: 9_000,
                tls: ClusterTls::default(),
            },
            admin: Admin { listen: None },
            telemetry: Telemetry {
                level: "info".to_owned(),
                format: "text".to_owned(),
                otlp_endpoint: None,
            },
            sasl: super::security::SaslFile::default(),
            authorization: super::security::AuthorizationFile::default(),
        }
    }
}

// serde's `#[serde(default)]` on a section needs the section's own `Default`; these take the
// values from `FileConfig::default()` so the defaults stay written down once.
/// Every listener's defaults (the default listener's bind address included).
impl Default for KafkaListener {
    fn default() -> Self {
        KafkaListener {
            bind: "127.0.0.1:9092".to_owned(),
            advertised: None,
            security_protocol: "PLAINTEXT".to_owned(),
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        FileConfig::default().tls
    }
}

impl Default for Topics {
    fn default() -> Self {
        FileConfig::default().topics
    }
}

impl Default for Log {
    fn default() -> Self {
        FileConfig::default().log
    }
}

impl Default for Flush {
    fn default() -> Self {
        FileConfig::default().flush
    }
}

impl Default for Limits {
    fn default() -> Self {
        FileConfig::default().limits
    }
}

impl Default for Groups {
    fn default() -> Self {
        FileConfig::default().groups
    }
}

impl Default for Transactions {
    fn default() -> Self {
        FileConfig::default().transactions
    }
}

impl Default for Cluster {
    fn default() -> Self {
        FileConfig::default().cluster
    }
}

impl Default for Admin {
    fn default() -> Self {
        FileConfig::default().admin
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        FileConfig::default().telemetry
    }
}

/// Parses the file text; an empty file (or one holding only comments) is all defaults.
pub(crate) fn parse(text: &str) -> Result<FileConfig, String> {
    if text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Ok(FileConfig::default());
    }
    serde_saphyr::from_str(text).map_err(|error| error.to_string())
}

/// Prints the shape back as YAML that `parse` accepts.
pub(crate) fn to_yaml(file: &FileConfig) -> String {
    serde_saphyr::to_string(file)
        .expect("structs of integers, booleans, strings, lists and options always serialize")
}
