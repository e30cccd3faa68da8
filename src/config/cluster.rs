//! Validates the `cluster` section into `ClusterDefaults`: cluster mode is on exactly when
//! `cluster.listen` is set, and every other cluster key needs it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::file::Cluster;
use super::validate::{host_port, in_range, invalid};
use super::{ClusterDefaults, Error, HostPort};
use crate::limits;

/// Durations are bounded like the other `_ms` keys, which also keeps `2 * heartbeat` in range.
const MS_MAX: u64 = u32::MAX as u64;

/// `None` when `cluster.listen` is unset (a standalone broker); then every other key must keep
/// its default, so a forgotten `listen` cannot silently start a broker alone.
pub(super) fn validate(
    cluster: &Cluster,
    kafka_bind: SocketAddr,
) -> Result<Option<ClusterDefaults>, Error> {
    let Some(listen) = &cluster.listen else {
        return standalone(cluster).map(|()| None);
    };
    let listen = socket_addr("cluster.listen", listen)?;
    if conflicts(listen, kafka_bind) {
        return invalid(
            "cluster.listen",
            format!(
                "{listen} is the Kafka listener's address (listeners.kafka.bind {kafka_bind}): \
                 the cluster listener needs its own port"
            ),
        );
    }
    let gossip_listen = match &cluster.gossip_listen {
        Some(text) => socket_addr("cluster.gossip_listen", text)?,
        None => listen,
    };
    let advertised = match &cluster.advertised {
        Some(text) => Some(host_port("cluster.advertised", text)?),
        None if listen.ip().is_unspecified() || gossip_listen.ip().is_unspecified() => {
            return invalid(
                "cluster.advertised",
                format!(
                    "must be set when cluster.listen ({listen}) or cluster.gossip_listen \
                     ({gossip_listen}) is an unspecified address: peers cannot connect to it \
                     (e.g. TIDELOG_CLUSTER__ADVERTISED=broker-1.example:{})",
                    listen.port()
                ),
            );
        }
        None => None,
    };
    let heartbeat_ms = in_range(
        "cluster.controller_heartbeat_ms",
        cluster.controller_heartbeat_ms,
        1,
        MS_MAX,
    )?;
    let election_timeout_ms = cluster.controller_election_timeout_ms;
    if election_timeout_ms <= 2 * heartbeat_ms || election_timeout_ms > MS_MAX {
        return invalid(
            "cluster.controller_election_timeout_ms",
            format!(
                "must be more than twice cluster.controller_heartbeat_ms ({heartbeat_ms}) and at \
                 most {MS_MAX}, got {election_timeout_ms}"
            ),
        );
    }
    Ok(Some(ClusterDefaults {
        listen,
        advertised,
        gossip_listen,
        seeds: seeds(&cluster.seeds)?,
        bootstrap_expect: in_range(
            "cluster.bootstrap_expect",
            cluster.bootstrap_expect,
            1,
            limits::CLUSTER_BOOTSTRAP_EXPECT_MAX,
        )?,
        controller_voters: in_range(
            "cluster.controller_voters",
            cluster.controller_voters,
            1,
            u32::MAX,
        )?,
        rack: match &cluster.rack {
            Some(rack) => Some(printable(
                "cluster.rack",
                rack,
                limits::GOSSIP_VALUE_BYTES_MAX,
                " (omit the key for no rack)",
            )?),
            None => None,
        },
        name: printable(
            "cluster.name",
            &cluster.name,
            limits::GOSSIP_CLUSTER_NAME_BYTES_MAX,
            "",
        )?,
        controller_heartbeat: Duration::from_millis(heartbeat_ms),
        controller_election_timeout: Duration::from_millis(election_timeout_ms),
        gossip_interval: millis("cluster.gossip_interval_ms", cluster.gossip_interval_ms)?,
        broker_session_timeout: millis(
            "cluster.broker_session_timeout_ms",
            cluster.broker_session_timeout_ms,
        )?,
        tls: tls(&cluster.tls)?,
    }))
}

/// `cluster.tls`: all three files or none.
fn tls(tls: &super::file::ClusterTls) -> Result<Option<(PathBuf, PathBuf, PathBuf)>, Error> {
    match (&tls.cert_file, &tls.key_file, &tls.ca_file) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) => Ok(Some((
            PathBuf::from(cert),
            PathBuf::from(key),
            PathBuf::from(ca),
        ))),
        _ => invalid(
            "cluster.tls",
            "needs cert_file, key_file and ca_file together (mTLS between brokers)".to_owned(),
        ),
    }
}

/// Every key but `listen` at its default, else the first one set is named.
fn standalone(cluster: &Cluster) -> Result<(), Error> {
    let defaults = Cluster::default();
    let set = [
        ("cluster.advertised", cluster.advertised.is_some()),
        ("cluster.gossip_listen", cluster.gossip_listen.is_some()),
        ("cluster.seeds", !cluster.seeds.is_empty()),
        (
            "cluster.bootstrap_expect",
            cluster.bootstrap_expect != defaults.bootstrap_expect,
        ),
        (
            "cluster.controller_voters",
            cluster.controller_voters != defaults.controller_voters,
        ),
        ("cluster.rack", cluster.rack.is_some()),
        ("cluster.name", cluster.name != defaults.name),
        (
            "cluster.controller_heartbeat_ms",
            cluster.controller_heartbeat_ms != defaults.controller_heartbeat_ms,
        ),
        (
            "cluster.controller_election_timeout_ms",
            cluster.controller_election_timeout_ms != defaults.controller_election_timeout_ms,
        ),
        (
            "cluster.gossip_interval_ms",
            cluster.gossip_interval_ms != defaults.gossip_interval_ms,
        ),
        (
            "cluster.broker_session_timeout_ms",
            cluster.broker_session_timeout_ms != defaults.broker_session_timeout_ms,
        ),
        ("cluster.tls.cert_file", cluster.tls.cert_file.is_some()),
        ("cluster.tls.key_file", cluster.tls.key_file.is_some()),
        ("cluster.tls.ca_file", cluster.tls.ca_file.is_some()),
    ];
    match set.into_iter().find(|(_, is_set)| *is_set) {
        Some((key, _)) => invalid(
            key,
            "needs cluster.listen (--cluster-listen): without it this broker runs alone, \
                 not in a cluster"
                .to_owned(),
        ),
        None => Ok(()),
    }
}

fn socket_addr(key: &'static str, text: &str) -> Result<SocketAddr, Error> {
    text.trim().parse().map_err(|_| Error::Invalid {
        key,
        reason: format!("expected IP:PORT (e.g. 10.0.0.1:9093 or [::]:9093), got {text:?}"),
    })
}

/// Two TCP listeners collide on the same non-zero port when their IPs are equal or either is
/// unspecified (0.0.0.0 takes the port on every address).
pub(super) fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Each seed is `HOST:PORT` with an IP literal or a DNS name as host (what gossip resolves).
fn seeds(seeds: &[String]) -> Result<Vec<HostPort>, Error> {
    const KEY: &str = "cluster.seeds";
    if seeds.len() > limits::GOSSIP_SEEDS_MAX {
        return invalid(
            KEY,
            format!(
                "{} seeds, at most {} (a few brokers are enough)",
                seeds.len(),
                limits::GOSSIP_SEEDS_MAX
            ),
        );
    }
    seeds
        .iter()
        .map(|seed| {
            let parsed = host_port(KEY, seed)?;
            let is_name = parsed.host.len() <= 253
                && parsed
                    .host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if is_name || parsed.host.parse::<IpAddr>().is_ok() {
                Ok(parsed)
            } else {
                invalid(
                    KEY,
                    format!("{seed:?}: the host must be an IP address or a DNS name"),
                )
            }
        })
        .collect()
}

/// 1 to `max_bytes` bytes without control characters (`hint` ends the reason).
fn printable(key: &'static str, text: &str, max_bytes: usize, hint: &str) -> Result<String, Error> {
    if text.is_empty() || text.len() > max_bytes || text.chars().any(char::is_control) {
        return invalid(
            key,
            format!(
                "expected 1 to {max_bytes} bytes without control characters{hint}, got {text:?}"
            ),
        );
    }
    Ok(text.to_owned())
}

fn millis(key: &'static str, ms: u64) -> Result<Duration, Error> {
    in_range(key, ms, 1, MS_MAX).map(Duration::from_millis)
}
