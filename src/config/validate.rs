//! Turns the resolved file shape into a typed `Config`: each section alone, then the rules that
//! span sections. Errors name the dotted key; nothing here reads files or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file::FileConfig;
use super::{
    Config, ConnectionLimits, Error, GroupDefaults, HostPort, LogDefaults, TransactionDefaults,
};
use crate::limits;

pub(super) fn validate(mut file: FileConfig) -> Result<Config, Error> {
    // The default listener is always there, so the printed config shows it.
    file.listeners
        .entry(super::file::DEFAULT_LISTENER.to_owned())
        .or_default();
    let node_id = in_range("node_id", file.node_id, 0, i32::MAX)?;

    let cluster_id = file.cluster_id.clone();
    if cluster_id.is_empty()
        || cluster_id.len() > limits::CLUSTER_ID_LEN_MAX
        || !cluster_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
    {
        return invalid(
            "cluster_id",
            format!(
                "expected 1 to {} characters from [A-Za-z0-9._-], got {cluster_id:?}",
                limits::CLUSTER_ID_LEN_MAX
            ),
        );
    }

    if file.data_dir.is_empty() {
        return invalid("data_dir", "must not be empty".to_owned());
    }
    let data_dir = PathBuf::from(&file.data_dir);

    let listeners = super::listeners::validate_listeners(&file)?;
    let default_listener = listeners
        .first()
        .expect("validate_listeners puts the default listener first");
    let kafka_bind = default_listener.bind;
    let kafka_advertised = default_listener.advertised.clone();
    let tls = super::listeners::validate_tls(&file.tls, &listeners)?;

    let default_partitions = in_range(
        "topics.default_partitions",
        file.topics.default_partitions,
        1,
        limits::PARTITIONS_PER_TOPIC_MAX,
    )?;

    let default_replication_factor = match file.topics.default_replication_factor {
        -1 => None,
        factor => Some(in_range(
            "topics.default_replication_factor",
            factor,
            1,
            i32::from(limits::REPLICATION_FACTOR_MAX),
        )? as i16),
    };

    let log = &file.log;
    let log_defaults = LogDefaults {
        segment_bytes_max: in_range(
            "log.segment_bytes",
            log.segment_bytes,
            limits::SEGMENT_BYTES_MIN,
            limits::SEGMENT_BYTES_MAX,
        )?,
        segment_ms_max: unlimited_or_at_least("log.segment_ms", log.segment_ms, 1)?,
        index_interval_bytes: log.index_interval_bytes,
        retention_ms: unlimited_or_at_least("log.retention_ms", log.retention_ms, 0)?,
        retention_bytes: unlimited_or_at_least("log.retention_bytes", log.retention_bytes, 0)?,
    };
    let retention_check_interval = Duration::from_millis(in_range(
        "log.retention_check_interval_ms",
        log.retention_check_interval_ms,
        1,
        u64::MAX,
    )?);

    let socket_request_max_bytes = in_range(
        "limits.socket_request_max_bytes",
        file.limits.socket_request_max_bytes,
        1,
        limits::REQUEST_BYTES_MAX_CEILING,
    )?;
    // A batch must fit in a produce request, so the request limit bounds the batch limit.
    let message_max_bytes = in_range(
        "limits.message_max_bytes",
        file.limits.message_max_bytes,
        1,
        socket_request_max_bytes,
    )?;

    let connections = validate_connections(&file.limits)?;
    let groups = validate_groups(&file.groups)?;
    let transactions = validate_transactions(&file.transactions)?;
    let cluster = super::cluster::validate(&file.cluster, kafka_bind)?;
    if let Some(cluster) = &cluster
        && let Some(listener) = listeners
            .iter()
            .find(|l| l.bind.port() != 0 && l.bind == cluster.listen)
    {
        return invalid(
            "cluster.listen",
            format!(
                "{} is listener {}'s address: the cluster listener needs its own port",
                cluster.listen, listener.name
            ),
        );
    }

    let sasl = super::security::validate_sasl(&file.sasl)?;
    let authorization = super::security::validate_authorization(&file.authorization)?;
    let admin_listen = validate_admin(&file.admin, &listeners, cluster.as_ref())?;

    let telemetry_filter = file.telemetry.level.clone();
    if let Err(error) = crate::telemetry::check_filter(&telemetry_filter) {
        return invalid("telemetry.level", with_sources(&error));
    }
    let telemetry_format = match file.telemetry.format.as_str() {
        "text" => crate::telemetry::Format::Text,
        "json" => crate::telemetry::Format::Json,
        other => {
            return invalid(
                "telemetry.format",
                format!("expected text or json, got {other:?}"),
            );
        }
    };

    let otlp_endpoint = file.telemetry.otlp_endpoint.clone();
    if let Some(endpoint) = &otlp_endpoint
        && let Err(reason) = crate::telemetry::check_endpoint(endpoint)
    {
        return invalid("telemetry.otlp_endpoint", reason);
    }

    Ok(Config {
        node_id,
        cluster_id,
        data_dir,
        kafka_bind,
        kafka_advertised,
        listeners,
        tls,
        default_partitions,
        default_replication_factor,
        auto_create_topics: file.topics.auto_create,
        log: log_defaults,
        retention_check_interval,
        acks_one_waits_for_fsync: file.flush.acks_one_waits_for_fsync,
        message_max_bytes,
        socket_request_max_bytes,
        connections,
        groups,
        transactions,
        cluster,
        admin_listen,
        telemetry_filter,
        telemetry_format,
        sasl,
        authorization,
        otlp_endpoint,
        file,
    })
}

/// `admin.listen`: an `IP:PORT` of its own (not a Kafka or cluster listener's).
fn validate_admin(
    admin: &super::file::Admin,
    listeners: &[super::Listener],
    cluster: Option<&super::ClusterDefaults>,
) -> Result<Option<SocketAddr>, Error> {
    let Some(text) = &admin.listen else {
        return Ok(None);
    };
    let listen: SocketAddr = text.trim().parse().map_err(|_| Error::Invalid {
        key: "admin.listen",
        reason: format!("expected IP:PORT (e.g. 0.0.0.0:9644), got {text:?}"),
    })?;
    let taken = listeners
        .iter()
        .map(|l| (format!("listener {}", l.name), l.bind))
        .chain(cluster.map(|c| ("cluster.listen".to_owned(), c.listen)));
    for (owner, bind) in taken {
        if listen.port() != 0 && super::cluster::conflicts(listen, bind) {
            return invalid(
                "admin.listen",
                format!(
                    "{listen} collides with {owner} ({bind}): the admin listener needs its own port"
                ),
            );
        }
    }
    Ok(Some(listen))
}

fn validate_connections(limits_file: &super::file::Limits) -> Result<ConnectionLimits, Error> {
    let connections_max = in_range(
        "limits.max_connections",
        limits_file.max_connections,
        1,
        u32::try_from(limits::CONNECTIONS_MAX_CEILING).unwrap_or(u32::MAX),
    )?;
    let idle_ms = in_range(
        "limits.connections_max_idle_ms",
        limits_file.connections_max_idle_ms,
        1,
        u64::from(u32::MAX),
    )?;
    // Every request must fit in the budget, or a large one could never be admitted.
    let queued_request_bytes_max = in_range(
        "limits.queued_max_request_bytes",
        limits_file.queued_max_request_bytes,
        u64::from(limits_file.socket_request_max_bytes),
        limits::QUEUED_REQUEST_BYTES_MAX_CEILING,
    )?;
    let fetch_bytes_max = in_range(
        "limits.fetch_max_bytes",
        limits_file.fetch_max_bytes,
        limits::FETCH_BYTES_MAX_MIN,
        i32::MAX as u32,
    )?;
    Ok(ConnectionLimits {
        connections_max: connections_max as usize,
        idle_timeout: Duration::from_millis(idle_ms),
        queued_request_bytes_max,
        fetch_bytes_max,
    })
}

fn validate_groups(groups: &super::file::Groups) -> Result<GroupDefaults, Error> {
    let offsets_topic_partitions = in_range(
        "groups.offsets_topic_partitions",
        groups.offsets_topic_partitions,
        1,
        limits::PARTITIONS_PER_TOPIC_MAX,
    )?;
    let retention_minutes = in_range(
        "groups.offsets_retention_minutes",
        groups.offsets_retention_minutes,
        1,
        i64::MAX / 60_000,
    )?;
    let session_timeout_ms_min = in_range(
        "groups.session_timeout_ms_min",
        groups.session_timeout_ms_min,
        1,
        i32::MAX,
    )?;
    let session_timeout_ms_max = in_range(
        "groups.session_timeout_ms_max",
        groups.session_timeout_ms_max,
        session_timeout_ms_min,
        i32::MAX,
    )?;
    let initial_rebalance_delay_ms = in_range(
        "groups.initial_rebalance_delay_ms",
        groups.initial_rebalance_delay_ms,
        0,
        i32::MAX,
    )?;
    Ok(GroupDefaults {
        offsets_topic_partitions,
        offsets_retention_ms: retention_minutes * 60_000,
        session_timeout_ms_min,
        session_timeout_ms_max,
        initial_rebalance_delay_ms,
    })
}

fn validate_transactions(txn: &super::file::Transactions) -> Result<TransactionDefaults, Error> {
    Ok(TransactionDefaults {
        state_topic_partitions: in_range(
            "transactions.state_topic_partitions",
            txn.state_topic_partitions,
            1,
            limits::PARTITIONS_PER_TOPIC_MAX,
        )?,
        max_timeout_ms: in_range(
            "transactions.max_timeout_ms",
            txn.max_timeout_ms,
            1,
            i32::MAX,
        )?,
        transactional_id_expiration_ms: in_range(
            "transactions.transactional_id_expiration_ms",
            txn.transactional_id_expiration_ms,
            1,
            i64::MAX / 2,
        )?,
        abort_timed_out_check_interval_ms: in_range(
            "transactions.abort_timed_out_check_interval_ms",
            txn.abort_timed_out_check_interval_ms,
            1,
            u64::from(u32::MAX),
        )?,
        producer_id_expiration_ms: in_range(
            "transactions.producer_id_expiration_ms",
            txn.producer_id_expiration_ms,
            1,
            i64::MAX / 2,
        )?,
    })
}

pub(super) fn invalid<T>(key: &'static str, reason: String) -> Result<T, Error> {
    Err(Error::Invalid { key, reason })
}

/// `error` and its causes on one line, for an `Invalid` reason (causes that only repeat the
/// text already there are skipped).
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(super) fn in_range<T>(key: &'static str, value: T, min: T, max: T) -> Result<T, Error>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return invalid(key, format!("must be between {min} and {max}, got {value}"));
    }
    Ok(value)
}

/// `-1` means no limit (`None`); anything else must be at least `min`.
fn unlimited_or_at_least(key: &'static str, value: i64, min: u64) -> Result<Option<u64>, Error> {
    if value == -1 {
        return Ok(None);
    }
    match u64::try_from(value) {
        Ok(value) if value >= min => Ok(Some(value)),
        _ => invalid(
            key,
            format!("must be -1 (no limit) or at least {min}, got {value}"),
        ),
    }
}

/// Parses `HOST:PORT` (IPv6 hosts in brackets); the port must not be 0.
pub(super) fn host_port(key: &'static str, text: &str) -> Result<HostPort, Error> {
    let bad = || Error::Invalid {
        key,
        reason: format!("expected HOST:PORT with a port from 1 to 65535, got {text:?}"),
    };
    let (host, port) = text.trim().rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}
