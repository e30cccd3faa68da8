//! Environment overrides: `TIDELOG_<SECTION>__<KEY>` (e.g. `TIDELOG_LOG__SEGMENT_BYTES`) applied
//! over the file shape. Takes the variables as an iterator; only `config::load` reads the process
//! environment.

use super::Error;
use super::file::FileConfig;
use super::service_link::is_service_link;

/// Prefix of every variable this module owns; unknown `TIDELOG_*` variables are rejected, but
/// Kubernetes service links (`TIDELOG_SERVICE_HOST`, ...) are skipped (see `ignored_vars`).
pub(crate) const ENV_PREFIX: &str = "TIDELOG_";

/// Shorthand for `TIDELOG_TELEMETRY__LEVEL` (like `RUST_LOG`); wins over it when both are set.
pub(crate) const LOG_FILTER_VAR: &str = "TIDELOG_LOG";

/// Declares every leaf key once: the dotted key (also the env name) and the field it sets.
macro_rules! keys {
    (listener: [$($listener_key:literal),*]; $($key:literal => $($field:ident).+;)*) => {
        /// Every leaf key of the config file, dotted (`log.segment_bytes`); a named listener's
        /// keys are those of `listeners.kafka` with its name instead.
        pub const KEYS: &[&str] = &[$($listener_key,)* $($key),*];

        /// Sets `key` from an env value; `None` if there is no such key, else the key and outcome.
        fn set(
            file: &mut FileConfig,
            key: &str,
            value: &str,
        ) -> Option<(&'static str, Result<(), String>)> {
            match key {
                $($key => Some((
                    $key,
                    FromEnv::from_env(value).map(|parsed| file.$($field).+ = parsed),
                )),)*
                _ => None,
            }
        }
    };
}

keys! {
    listener: ["listeners.kafka.bind", "listeners.kafka.advertised", "listeners.kafka.security_protocol"];
    "node_id" => node_id;
    "cluster_id" => cluster_id;
    "data_dir" => data_dir;
    "topics.default_partitions" => topics.default_partitions;
    "topics.default_replication_factor" => topics.default_replication_factor;
    "topics.auto_create" => topics.auto_create;
    "log.segment_bytes" => log.segment_bytes;
    "log.segment_ms" => log.segment_ms;
    "log.retention_ms" => log.retention_ms;
    "log.retention_bytes" => log.retention_bytes;
    "log.index_interval_bytes" => log.index_interval_bytes;
    "log.retention_check_interval_ms" => log.retention_check_interval_ms;
    "flush.acks_one_waits_for_fsync" => flush.acks_one_waits_for_fsync;
    "limits.message_max_bytes" => limits.message_max_bytes;
    "limits.socket_request_max_bytes" => limits.socket_request_max_bytes;
    "limits.max_connections" => limits.max_connections;
    "limits.connections_max_idle_ms" => limits.connections_max_idle_ms;
    "limits.queued_max_request_bytes" => limits.queued_max_request_bytes;
    "limits.fetch_max_bytes" => limits.fetch_max_bytes;
    "groups.offsets_topic_partitions" => groups.offsets_topic_partitions;
    "groups.offsets_retention_minutes" => groups.offsets_retention_minutes;
    "groups.session_timeout_ms_min" => groups.session_timeout_ms_min;
    "groups.session_timeout_ms_max" => groups.session_timeout_ms_max;
    "groups.initial_rebalance_delay_ms" => groups.initial_rebalance_delay_ms;
    "transactions.state_topic_partitions" => transactions.state_topic_partitions;
    "transactions.max_timeout_ms" => transactions.max_timeout_ms;
    "transactions.transactional_id_expiration_ms" => transactions.transactional_id_expiration_ms;
    "transactions.abort_timed_out_check_interval_ms" => transactions.abort_timed_out_check_interval_ms;
    "transactions.producer_id_expiration_ms" => transactions.producer_id_expiration_ms;
    "cluster.listen" => cluster.listen;
    "cluster.advertised" => cluster.advertised;
    "cluster.gossip_listen" => cluster.gossip_listen;
    "cluster.seeds" => cluster.seeds;
    "cluster.bootstrap_expect" => cluster.bootstrap_expect;
    "cluster.controller_voters" => cluster.controller_voters;
    "cluster.rack" => cluster.rack;
    "cluster.name" => cluster.name;
    "cluster.controller_heartbeat_ms" => cluster.controller_heartbeat_ms;
    "cluster.controller_election_timeout_ms" => cluster.controller_election_timeout_ms;
    "cluster.gossip_interval_ms" => cluster.gossip_interval_ms;
    "cluster.broker_session_timeout_ms" => cluster.broker_session_timeout_ms;
    "cluster.tls.cert_file" => cluster.tls.cert_file;
    "cluster.tls.key_file" => cluster.tls.key_file;
    "cluster.tls.ca_file" => cluster.tls.ca_file;
    "tls.cert_file" => tls.cert_file;
    "tls.key_file" => tls.key_file;
    "tls.ca_file" => tls.ca_file;
    "tls.client_auth" => tls.client_auth;
    "tls.principal_mapping_rules" => tls.principal_mapping_rules;
    "tls.handshake_timeout_ms" => tls.handshake_timeout_ms;
    "admin.listen" => admin.listen;
    "telemetry.level" => telemetry.level;
    "telemetry.format" => telemetry.format;
    "telemetry.otlp_endpoint" => telemetry.otlp_endpoint;
    "sasl.enabled_mechanisms" => sasl.enabled_mechanisms;
    "sasl.connections_max_reauth_ms" => sasl.connections_max_reauth_ms;
    "sasl.failed_authentication_delay_ms" => sasl.failed_authentication_delay_ms;
    "sasl.authentication_timeout_ms" => sasl.authentication_timeout_ms;
    "authorization.enabled" => authorization.enabled;
    "authorization.allow_everyone_if_no_acl_found" => authorization.allow_everyone_if_no_acl_found;
    "authorization.super_users" => authorization.super_users;
    "authorization.bootstrap_users" => authorization.bootstrap_users;
}

/// The variable name for a dotted key: `log.segment_bytes` -> `TIDELOG_LOG__SEGMENT_BYTES`.
pub fn var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

/// Applies every `TIDELOG_*` variable in `vars` to `file`; other variables are ignored.
pub(crate) fn apply<I, K, V>(file: &mut FileConfig, vars: I) -> Result<(), Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut log_filter = None;
    for (var, value) in vars {
        let (var, value) = (var.as_ref(), value.as_ref());
        let Some(suffix) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == LOG_FILTER_VAR {
            log_filter = Some(value.to_owned());
            continue;
        }
        if is_service_link(suffix) {
            continue;
        }
        let key = suffix.to_ascii_lowercase().replace("__", ".");
        if let Some(outcome) = set_listener(file, &key, value) {
            outcome.map_err(|reason| Error::Listener {
                key: format!("{var} ({key})"),
                reason,
            })?;
            continue;
        }
        match set(file, &key, value) {
            Some((_, Ok(()))) => {}
            Some((key, Err(reason))) => {
                return Err(Error::Env {
                    var: var.to_owned(),
                    key,
                    reason,
                });
            }
            None => {
                return Err(Error::UnknownEnv {
                    var: var.to_owned(),
                });
            }
        }
    }
    if let Some(filter) = log_filter {
        file.telemetry.level = filter;
    }
    Ok(())
}

/// Sets `listeners.<name>.<field>` (creating the listener); `None` if `key` is not one.
fn set_listener(file: &mut FileConfig, key: &str, value: &str) -> Option<Result<(), String>> {
    let rest = key.strip_prefix("listeners.")?;
    let (name, field) = rest.split_once('.')?;
    if !super::listeners::is_listener_name(name) {
        return Some(Err(format!("invalid listener name {name:?}")));
    }
    if !matches!(field, "bind" | "advertised" | "security_protocol") {
        return Some(Err(format!(
            "unknown listener key {field:?} (bind, advertised, security_protocol)"
        )));
    }
    let entry = file.listeners.entry(name.to_owned()).or_default();
    Some(match field {
        "bind" => String::from_env(value).map(|bind| entry.bind = bind),
        "advertised" => {
            Option::<String>::from_env(value).map(|advertised| entry.advertised = advertised)
        }
        _ => String::from_env(value).map(|protocol| entry.security_protocol = protocol),
    })
}

/// Parses one env value into a file-shape field.
trait FromEnv: Sized {
    fn from_env(value: &str) -> Result<Self, String>;
}

macro_rules! from_env_int {
    ($($int:ty),*) => {$(
        impl FromEnv for $int {
            fn from_env(value: &str) -> Result<Self, String> {
                value.trim().parse().map_err(|_| {
                    format!("expected an integer between {} and {}, got {value:?}", <$int>::MIN, <$int>::MAX)
                })
            }
        }
    )*};
}

from_env_int!(i32, i64, u32, u64);

impl FromEnv for bool {
    fn from_env(value: &str) -> Result<Self, String> {
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        }
    }
}

impl FromEnv for String {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}

/// An empty value (or `null`) unsets an optional key.
impl FromEnv for Option<String> {
    fn from_env(value: &str) -> Result<Self, String> {
        match value.trim() {
            "" | "null" | "~" => Ok(None),
            _ => Ok(Some(value.to_owned())),
        }
    }
}

/// A comma-separated list (`a:1,b:2`); blanks around items and empty items are dropped, so an
/// empty value is an empty list.
impl FromEnv for Vec<String> {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(split_list(value.split(',')))
    }
}

/// Bootstrap users as `NAME:PASSWORD_FILE,...` (the file path may hold colons, the name not).
impl FromEnv for Vec<super::security::BootstrapUserFile> {
    fn from_env(value: &str) -> Result<Self, String> {
        split_list(value.split(','))
            .into_iter()
            .map(|item| match item.split_once(':') {
                Some((name, file)) if !name.is_empty() && !file.is_empty() => {
                    Ok(super::security::BootstrapUserFile {
                        name: name.to_owned(),
                        password_file: file.to_owned(),
                    })
                }
                _ => Err(format!("expected NAME:PASSWORD_FILE, got {item:?}")),
            })
            .collect()
    }
}

/// The non-empty items of a list, trimmed (`--seeds` and `TIDELOG_CLUSTER__SEEDS` share it).
pub(crate) fn split_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Collects the process's `TIDELOG_*` variables; a non-UTF-8 value is an error, not a skip.
pub(crate) fn process_vars() -> Result<Vec<(String, String)>, Error> {
    let mut vars = Vec::new();
    for (var, value) in std::env::vars_os() {
        let Some(var) = var.to_str().filter(|var| var.starts_with(ENV_PREFIX)) else {
            continue;
        };
        let value = value.into_string().map_err(|_| Error::EnvNotUtf8 {
            var: var.to_owned(),
        })?;
        vars.push((var.to_owned(), value));
    }
    Ok(vars)
}

/// The process's `TIDELOG_*` variables that `apply` skips as Kubernetes service links, for the
/// broker to log once telemetry is installed.
pub(crate) fn ignored_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(var, _)| var.into_string().ok())
        .filter(|var| var.strip_prefix(ENV_PREFIX).is_some_and(is_service_link))
        .collect()
}
