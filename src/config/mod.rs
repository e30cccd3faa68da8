//! Broker configuration: defaults < YAML file < `TIDELOG_*` env vars < CLI flags, validated into
//! a typed `Config` that converts into each module's settings. The only module that reads the
//! environment or the config file; lower layers never import it.

mod cluster;
mod env;
mod file;
mod listeners;
mod security;
mod service_link;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{KEYS, var_name as env_var_name};
pub use listeners::{ClientAuth, Listener, SecurityProtocol, TlsSettings};
pub(crate) use security::{AuthorizationSettings, SaslSettings};

/// Why a config could not be loaded; every variant names the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown environment variable {var} (the TIDELOG_ prefix is reserved for config keys)")]
    UnknownEnv { var: String },
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUtf8 { var: String },
    #[error("environment variable {var} ({key}): {reason}")]
    Env {
        var: String,
        key: &'static str,
        reason: String,
    },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A key of a named listener (`listeners.<name>.<field>`), or its environment variable.
    #[error("{key}: {reason}")]
    Listener { key: String, reason: String },
}

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--data-dir`: sets `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`: sets `listeners.kafka.bind`. The advertised address follows it unless
    /// `listeners.kafka.advertised` is set in the file or environment.
    pub listen: Option<SocketAddr>,
    /// `--listener NAME=[PROTOCOL://]IP:PORT` (repeatable): sets `listeners.<NAME>.bind` and,
    /// with a protocol, its `security_protocol`.
    pub listeners: Vec<String>,
    /// `--node-id`: sets `node_id`.
    pub node_id: Option<i32>,
    /// `--log-level`: sets `telemetry.level` (a tracing filter directive such as `debug`).
    pub log_level: Option<String>,
    /// `--cluster-listen`: sets `cluster.listen`, which turns cluster mode on.
    pub cluster_listen: Option<SocketAddr>,
    /// `--gossip-listen`: sets `cluster.gossip_listen`.
    pub gossip_listen: Option<SocketAddr>,
    /// `--seeds`: replaces `cluster.seeds` (`HOST:PORT` items; blank items are dropped, so an
    /// empty list clears the seeds of the file and environment).
    pub seeds: Option<Vec<String>>,
    /// `--bootstrap-expect`: sets `cluster.bootstrap_expect`.
    pub bootstrap_expect: Option<u32>,
    /// `--admin-listen`: sets `admin.listen`, which turns the admin HTTP listener on.
    pub admin_listen: Option<SocketAddr>,
}

/// A host name or IP address and a port, as told to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The validated configuration. Built only by `load`, `resolve` or `Default` (the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The resolved file shape this was validated from; printed by `redacted_yaml`.
    file: file::FileConfig,
    node_id: i32,
    cluster_id: String,
    data_dir: PathBuf,
    kafka_bind: SocketAddr,
    kafka_advertised: Option<HostPort>,
    /// Every Kafka listener, the default (`kafka`) first.
    listeners: Vec<Listener>,
    tls: Option<TlsSettings>,
    default_partitions: i32,
    default_replication_factor: Option<i16>,
    auto_create_topics: bool,
    log: LogDefaults,
    retention_check_interval: Duration,
    acks_one_waits_for_fsync: bool,
    message_max_bytes: u32,
    socket_request_max_bytes: u32,
    connections: ConnectionLimits,
    groups: GroupDefaults,
    transactions: TransactionDefaults,
    cluster: Option<ClusterDefaults>,
    /// The admin HTTP listener's bind address; `None` = off.
    admin_listen: Option<SocketAddr>,
    telemetry_filter: String,
    telemetry_format: crate::telemetry::Format,
    sasl: SaslSettings,
    authorization: AuthorizationSettings,
    /// OTLP collector base URL for trace export; `None` = no export.
    otlp_endpoint: Option<String>,
}

/// The listener's validated bounds; `app` turns them into the server's and handlers' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Concurrent connections (`max.connections`).
    pub(crate) connections_max: usize,
    /// A connection moving no byte for this long is closed (`connections.max.idle.ms`).
    pub(crate) idle_timeout: Duration,
    /// Bytes of requests read but not yet answered (`queued.max.request.bytes`); at least
    /// `socket_request_max_bytes`.
    pub(crate) queued_request_bytes_max: u64,
    /// Largest fetch response (`fetch.max.bytes`).
    pub(crate) fetch_bytes_max: u32,
}

/// The group coordinator's validated settings; `app` turns them into the broker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDefaults {
    pub(crate) offsets_topic_partitions: i32,
    pub(crate) offsets_retention_ms: i64,
    pub(crate) session_timeout_ms_min: i32,
    pub(crate) session_timeout_ms_max: i32,
    pub(crate) initial_rebalance_delay_ms: i32,
}

/// The transaction coordinator's and producers' validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionDefaults {
    pub(crate) state_topic_partitions: i32,
    pub(crate) max_timeout_ms: i32,
    pub(crate) transactional_id_expiration_ms: i64,
    pub(crate) abort_timed_out_check_interval_ms: u64,
    pub(crate) producer_id_expiration_ms: i64,
}

/// Cluster mode's validated settings (the `cluster` section); present only when `cluster.listen`
/// is set. `app` turns them into the controller's, gossip's and the cluster listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterDefaults {
    /// TCP address for raft and broker-to-broker RPC; port 0 picks a free port. Never the
    /// Kafka listener's address.
    pub(crate) listen: SocketAddr,
    /// What peers are told to connect to. `None`: the address `listen` actually bound (so
    /// port 0 works); never `None` when `listen` or `gossip_listen` has an unspecified IP.
    pub(crate) advertised: Option<HostPort>,
    /// UDP address gossip binds; defaults to `listen` (same IP and port).
    pub(crate) gossip_listen: SocketAddr,
    /// Gossip addresses of some brokers (hosts are IP literals or DNS names, resolved by
    /// gossip); may be empty and may include this broker. At most `GOSSIP_SEEDS_MAX`.
    pub(crate) seeds: Vec<HostPort>,
    /// Brokers that form the first controller quorum; 1 to `CLUSTER_BOOTSTRAP_EXPECT_MAX`.
    pub(crate) bootstrap_expect: u32,
    /// The first this many brokers are controller voters (all of them if fewer); >= 1.
    pub(crate) controller_voters: u32,
    /// Kafka `broker.rack`; non-empty, printable, at most `GOSSIP_VALUE_BYTES_MAX` bytes.
    pub(crate) rack: Option<String>,
    /// Gossip cluster name: brokers with another name never see each other.
    pub(crate) name: String,
    pub(crate) controller_heartbeat: Duration,
    /// More than twice `controller_heartbeat`.
    pub(crate) controller_election_timeout: Duration,
    pub(crate) gossip_interval: Duration,
    /// How long a broker that gossip declares dead stays unfenced (Kafka
    /// `broker.session.timeout.ms`).
    pub(crate) broker_session_timeout: Duration,
    /// mTLS of the cluster listener: (cert, key, CA) files.
    pub(crate) tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// Broker-wide log defaults in storage's units; `None` = no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogDefaults {
    segment_bytes_max: u64,
    segment_ms_max: Option<u64>,
    index_interval_bytes: u32,
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
}

/// Loads the config: defaults, then the YAML file at `path` (if any), then the process's
/// `TIDELOG_*` environment variables, then `overrides`; then validates.
pub fn load(path: Option<&Path>, overrides: &CliOverrides) -> Result<Config, Error> {
    load_with_env(path, env::process_vars()?, overrides)
}

/// The process's `TIDELOG_*` variables that `load` skipped because they have the shape of
/// Kubernetes service links (a Service named `tidelog` injects `TIDELOG_PORT`,
/// `TIDELOG_SERVICE_HOST`, ...); sorted, for the broker to log.
pub fn ignored_env_vars() -> Vec<String> {
    let mut vars = env::ignored_vars();
    vars.sort();
    vars
}

/// `load` with the environment given as `(name, value)` pairs instead of read from the process.
pub fn load_with_env<I, K, V>(
    path: Option<&Path>,
    env: I,
    overrides: &CliOverrides,
) -> Result<Config, Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let text = match path {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?),
        None => None,
    };
    let origin = path.map(|path| path.display().to_string());
    resolve_from(text.as_deref().zip(origin.as_deref()), env, overrides)
}

/// Resolves a config from YAML text (instead of a file), env pairs and CLI overrides.
/// Meant for tests; `load` is the production entry point.
pub fn resolve<I, K, V>(
    yaml: Option<&str>,
    env: I,
    overrides: &CliOverrides,
) -> Result<Config, Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    resolve_from(yaml.map(|text| (text, "<yaml>")), env, overrides)
}

fn resolve_from<I, K, V>(
    yaml: Option<(&str, &str)>,
    env: I,
    overrides: &CliOverrides,
) -> Result<Config, Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut file = match yaml {
        Some((text, origin)) => file::parse(text).map_err(|message| Error::Parse {
            origin: origin.to_owned(),
            message,
        })?,
        None => file::FileConfig::default(),
    };
    env::apply(&mut file, env)?;
    apply_overrides(&mut file, overrides)?;
    validate::validate(file)
}

fn apply_overrides(file: &mut file::FileConfig, overrides: &CliOverrides) -> Result<(), Error> {
    if let Some(data_dir) = &overrides.data_dir {
        let Some(data_dir) = data_dir.to_str() else {
            return Err(Error::Invalid {
                key: "data_dir",
                reason: format!("path is not valid UTF-8: {}", data_dir.display()),
            });
        };
        data_dir.clone_into(&mut file.data_dir);
    }
    if let Some(listen) = overrides.listen {
        // `advertised: null` already means "advertise the bound address", so it follows.
        file.listeners
            .entry(file::DEFAULT_LISTENER.to_owned())
            .or_default()
            .bind = listen.to_string();
    }
    for flag in &overrides.listeners {
        let bad = |reason: String| Error::Listener {
            key: format!("--listener {flag}"),
            reason,
        };
        let (name, address) = flag
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=[PROTOCOL://]IP:PORT".to_owned()))?;
        let name = name.trim().to_ascii_lowercase();
        if !listeners::is_listener_name(&name) {
            return Err(bad(format!(
                "listener name {name:?}: expected lower-case letters, digits and single \
                 underscores, starting with a letter"
            )));
        }
        let (protocol, bind) = match address.split_once("://") {
            Some((protocol, bind)) => (Some(protocol.trim().to_ascii_uppercase()), bind),
            None => (None, address),
        };
        let listener = file.listeners.entry(name).or_default();
        listener.bind = bind.trim().to_owned();
        if let Some(protocol) = protocol {
            listener.security_protocol = protocol;
        }
    }
    if let Some(node_id) = overrides.node_id {
        file.node_id = node_id;
    }
    if let Some(level) = &overrides.log_level {
        level.clone_into(&mut file.telemetry.level);
    }
    if let Some(listen) = overrides.cluster_listen {
        file.cluster.listen = Some(listen.to_string());
    }
    if let Some(gossip_listen) = overrides.gossip_listen {
        file.cluster.gossip_listen = Some(gossip_listen.to_string());
    }
    if let Some(seeds) = &overrides.seeds {
        file.cluster.seeds = env::split_list(seeds.iter().map(String::as_str));
    }
    if let Some(bootstrap_expect) = overrides.bootstrap_expect {
        file.cluster.bootstrap_expect = bootstrap_expect;
    }
    if let Some(listen) = overrides.admin_listen {
        file.admin.listen = Some(listen.to_string());
    }
    Ok(())
}

impl Default for Config {
    /// The built-in defaults (what `cargo run` with no file, env or flags uses).
    fn default() -> Self {
        validate::validate(file::FileConfig::default()).expect("the built-in defaults are valid")
    }
}

impl Config {
    /// The resolved config as YAML in the file's shape (loadable with `--config`). Nothing in
    /// the config is secret yet (TLS keys are named by path, never included); secrets (SASL)
    /// will be printed as `<redacted>`.
    pub fn redacted_yaml(&self) -> String {
        file::to_yaml(&self.file)
    }

    /// This broker's id (`node.id`); non-negative.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The cluster id reported in Metadata and DescribeCluster.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Directory holding every partition log and the topic catalog.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Address the Kafka listener binds; port 0 picks a free port.
    pub fn kafka_bind(&self) -> SocketAddr {
        self.kafka_bind
    }

    /// Address clients are told to connect to. `None`: advertise the address the listener
    /// actually bound (so port 0 works). Never `None` when the bind IP is unspecified (0.0.0.0).
    pub fn kafka_advertised(&self) -> Option<&HostPort> {
        self.kafka_advertised.as_ref()
    }

    /// Every Kafka listener, the default one (`kafka`, what `kafka_bind` describes) first.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// TLS of the `SSL` listeners; `None` when `tls.cert_file` is unset (no TLS listener).
    pub fn tls(&self) -> Option<&TlsSettings> {
        self.tls.as_ref()
    }

    /// Partitions of a topic created without an explicit count (`num.partitions`); >= 1.
    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
    }

    /// Replicas of a topic created without an explicit replication factor in cluster mode
    /// (`default.replication.factor`); `None`: min(3, brokers).
    pub fn default_replication_factor(&self) -> Option<i16> {
        self.default_replication_factor
    }

    /// Create unknown topics on Metadata/Produce (`auto.create.topics.enable`).
    pub fn auto_create_topics(&self) -> bool {
        self.auto_create_topics
    }

    /// Broker-wide log defaults for topics without overrides. `pub(crate)` because
    /// `storage::LogSettings` is.
    pub(crate) fn log_settings(&self) -> crate::storage::LogSettings {
        crate::storage::LogSettings {
            segment_bytes_max: self.log.segment_bytes_max,
            segment_ms_max: self.log.segment_ms_max,
            index_interval_bytes: self.log.index_interval_bytes,
            index_file_bytes: crate::limits::INDEX_FILE_BYTES_DEFAULT,
            retention_ms: self.log.retention_ms,
            retention_bytes: self.log.retention_bytes,
            compaction: None,
        }
    }

    /// How often segment age rolls and retention are checked (`log.retention.check.interval.ms`).
    /// The group coordinator's settings.
    pub(crate) fn group_settings(&self) -> &GroupDefaults {
        &self.groups
    }

    /// The transaction coordinator's and producers' settings.
    pub(crate) fn transaction_settings(&self) -> &TransactionDefaults {
        &self.transactions
    }

    /// Cluster mode's settings; `None` = a standalone single-node broker (no `cluster.listen`).
    pub(crate) fn cluster(&self) -> Option<&ClusterDefaults> {
        self.cluster.as_ref()
    }

    pub fn retention_check_interval(&self) -> Duration {
        self.retention_check_interval
    }

    /// Whether acks=1 produce requests also wait for fsync (acks=all always does).
    pub fn acks_one_waits_for_fsync(&self) -> bool {
        self.acks_one_waits_for_fsync
    }

    /// Largest record batch accepted by default (`message.max.bytes`); <= the request limit.
    pub fn message_max_bytes(&self) -> u32 {
        self.message_max_bytes
    }

    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub fn socket_request_max_bytes(&self) -> u32 {
        self.socket_request_max_bytes
    }

    /// Connection cap, idle timeout, request budget and fetch response cap.
    pub(crate) fn connection_limits(&self) -> &ConnectionLimits {
        &self.connections
    }

    /// Where the admin HTTP listener (`/health`, `/ready`, `/metrics`) binds; `None` = off.
    pub fn admin_listen(&self) -> Option<SocketAddr> {
        self.admin_listen
    }

    /// Tracing filter directive for `telemetry::init` (already checked to parse).
    pub fn telemetry_filter(&self) -> &str {
        &self.telemetry_filter
    }

    /// Log line format for `telemetry::init`.
    pub fn telemetry_format(&self) -> crate::telemetry::Format {
        self.telemetry_format
    }

    /// The SASL listeners' mechanisms and session bounds.
    pub(crate) fn sasl(&self) -> &SaslSettings {
        &self.sasl
    }

    /// Super users and bootstrap users.
    pub(crate) fn authorization(&self) -> &AuthorizationSettings {
        &self.authorization
    }

    /// Where `telemetry::init` exports spans (OTLP over HTTP); `None` = nowhere.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp_endpoint.as_deref()
    }
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod listeners_tests;
#[cfg(test)]
mod tests;
