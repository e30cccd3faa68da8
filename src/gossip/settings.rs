//! Gossip settings: who this broker is to gossip, where it listens, whom it asks first, how
//! quickly a silent peer is declared dead, and the optional cluster key. `config` builds them;
//! `validate` checks them against `limits.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::Error;
use crate::limits;

/// Default time between two gossip rounds.
pub(crate) const GOSSIP_INTERVAL_DEFAULT: Duration = Duration::from_millis(500);
/// Default time a dead node stays in the gossip state (and in `Membership::dead`).
pub(crate) const DEAD_NODE_GRACE_PERIOD_DEFAULT: Duration = Duration::from_secs(10 * 60);
/// How long a deleted key (a removed listener, rack or extra) is remembered as a tombstone.
pub(super) const KEY_TOMBSTONE_GRACE_PERIOD: Duration = Duration::from_secs(60 * 60);

/// Everything gossip needs to start.
#[derive(Debug, Clone)]
pub(crate) struct GossipSettings {
    /// The Kafka broker id (`node.id`).
    pub(crate) node_id: i32,
    /// Grows on every start of this broker (the caller persists it): peers tell a restarted
    /// broker from the previous run by it and report only the newest.
    pub(crate) generation: u64,
    /// The UDP address to bind (port 0 picks one).
    pub(crate) listen_addr: SocketAddr,
    /// The address peers gossip to; `None` means the bound address, which then must not be a
    /// wildcard such as 0.0.0.0.
    pub(crate) advertise_addr: Option<SocketAddr>,
    /// `HOST:PORT` of some brokers (this one may be among them). IP literals are handed to
    /// chitchat; names are resolved again every round, so peers whose DNS name appears later
    /// (Kubernetes, compose) are still found.
    pub(crate) seeds: Vec<String>,
    /// Gossip ignores nodes of another cluster name (an unauthenticated label, not a secret).
    pub(crate) cluster_name: String,
    /// Time between two gossip rounds.
    pub(crate) interval: Duration,
    pub(crate) failure_detector: FailureDetectorSettings,
    /// How long a dead node stays in the gossip state before it is forgotten.
    pub(crate) dead_node_grace_period: Duration,
    /// When set, every datagram is authenticated with it and others are dropped.
    pub(crate) cluster_key: Option<ClusterKey>,
}

/// Chitchat's phi-accrual failure detector: a peer is dead once the time since its last
/// heartbeat exceeds `phi_threshold` times the mean interval between its heartbeats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailureDetectorSettings {
    pub(crate) phi_threshold: f64,
    /// Heartbeat intervals remembered per peer for the mean.
    pub(crate) sampling_window_size: usize,
    /// Longer intervals between two heartbeats are not sampled.
    pub(crate) max_interval: Duration,
    /// The prior mean interval, weighing like five samples, until real samples dominate.
    pub(crate) initial_interval: Duration,
}

impl Default for FailureDetectorSettings {
    fn default() -> Self {
        Self {
            phi_threshold: 8.0,
            sampling_window_size: 1_000,
            max_interval: Duration::from_secs(10),
            initial_interval: Duration::from_secs(1),
        }
    }
}

impl GossipSettings {
    /// Settings with every default: no seeds, cluster name `tidelog`, no key.
    pub(crate) fn new(node_id: i32, generation: u64, listen_addr: SocketAddr) -> Self {
        Self {
            node_id,
            generation,
            listen_addr,
            advertise_addr: None,
            seeds: Vec::new(),
            cluster_name: "tidelog".to_string(),
            interval: GOSSIP_INTERVAL_DEFAULT,
            failure_detector: FailureDetectorSettings::default(),
            dead_node_grace_period: DEAD_NODE_GRACE_PERIOD_DEFAULT,
            cluster_key: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.node_id < 0 {
            return Err(Error::invalid_settings("node_id", "negative"));
        }
        if self.cluster_name.is_empty()
            || self.cluster_name.len() > limits::GOSSIP_CLUSTER_NAME_BYTES_MAX
            || self.cluster_name.chars().any(char::is_control)
        {
            return Err(Error::invalid_settings(
                "cluster_name",
                format!(
                    "expected 1 to {} printable bytes",
                    limits::GOSSIP_CLUSTER_NAME_BYTES_MAX
                ),
            ));
        }
        if self.seeds.len() > limits::GOSSIP_SEEDS_MAX {
            return Err(Error::invalid_settings(
                "seeds",
                format!(
                    "{} seeds, at most {}",
                    self.seeds.len(),
                    limits::GOSSIP_SEEDS_MAX
                ),
            ));
        }
        for seed in &self.seeds {
            if Seed::parse(seed).is_none() {
                return Err(Error::invalid_settings(
                    "seeds",
                    format!("{seed:?} is not HOST:PORT"),
                ));
            }
        }
        if self.interval.is_zero() {
            return Err(Error::invalid_settings("interval", "zero"));
        }
        if self.dead_node_grace_period < self.interval {
            return Err(Error::invalid_settings(
                "dead_node_grace_period",
                "shorter than the gossip interval",
            ));
        }
        let detector = &self.failure_detector;
        if !(detector.phi_threshold.is_finite() && detector.phi_threshold > 0.0) {
            return Err(Error::invalid_settings(
                "failure_detector.phi_threshold",
                "not a positive number",
            ));
        }
        if detector.sampling_window_size == 0 {
            return Err(Error::invalid_settings(
                "failure_detector.sampling_window_size",
                "zero",
            ));
        }
        if detector.initial_interval.is_zero() || detector.max_interval < self.interval {
            return Err(Error::invalid_settings(
                "failure_detector",
                "initial_interval is zero or max_interval is below the gossip interval",
            ));
        }
        Ok(())
    }
}

/// One entry of `GossipSettings::seeds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seed {
    /// An IP literal: chitchat gossips with it directly.
    Addr(SocketAddr),
    /// A `name:port` resolved every round.
    Name(String),
}

impl Seed {
    pub(super) fn parse(text: &str) -> Option<Self> {
        if let Ok(addr) = text.parse() {
            return Some(Self::Addr(addr));
        }
        let (host, port) = text.rsplit_once(':')?;
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        (is_name && port.parse::<u16>().is_ok_and(|p| p != 0)).then(|| Self::Name(text.to_string()))
    }
}

/// The shared secret that authenticates gossip datagrams. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub(crate) struct ClusterKey(Box<[u8]>);

impl ClusterKey {
    pub(crate) fn new(bytes: Vec<u8>) -> Result<Self, Error> {
        let len = bytes.len();
        if !(limits::GOSSIP_CLUSTER_KEY_BYTES_MIN..=limits::GOSSIP_CLUSTER_KEY_BYTES_MAX)
            .contains(&len)
        {
            return Err(Error::invalid_settings(
                "cluster_key",
                format!(
                    "{len} bytes, expected {} to {}",
                    limits::GOSSIP_CLUSTER_KEY_BYTES_MIN,
                    limits::GOSSIP_CLUSTER_KEY_BYTES_MAX
                ),
            ));
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    pub(super) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GossipSettings {
        GossipSettings::new(1, 1, "127.0.0.1:0".parse().unwrap())
    }

    #[test]
    fn default_settings_are_valid() {
        settings().validate().unwrap();
    }

    #[test]
    fn seed_parse_accepts_ip_literals_and_names() {
        assert_eq!(
            Seed::parse("10.0.0.1:7946"),
            Some(Seed::Addr("10.0.0.1:7946".parse().unwrap()))
        );
        assert_eq!(
            Seed::parse("[::1]:7946"),
            Some(Seed::Addr("[::1]:7946".parse().unwrap()))
        );
        assert_eq!(
            Seed::parse("tidelog-0.tidelog.ns.svc:7946"),
            Some(Seed::Name("tidelog-0.tidelog.ns.svc:7946".to_string()))
        );
        for bad in [
            "broker",
            "broker:",
            ":7946",
            "broker:0",
            "bro ker:1",
            "broker:70000",
        ] {
            assert_eq!(Seed::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_settings_are_refused() {
        type Change = Box<dyn Fn(&mut GossipSettings)>;
        let checks: Vec<(&str, Change)> = vec![
            ("node_id", Box::new(|s| s.node_id = -1)),
            ("cluster_name", Box::new(|s| s.cluster_name.clear())),
            (
                "cluster_name",
                Box::new(|s| s.cluster_name = "x".repeat(129)),
            ),
            ("seeds", Box::new(|s| s.seeds = vec!["no-port".to_string()])),
            ("seeds", Box::new(|s| s.seeds = vec!["h:1".to_string(); 65])),
            ("interval", Box::new(|s| s.interval = Duration::ZERO)),
            (
                "dead_node_grace_period",
                Box::new(|s| s.dead_node_grace_period = Duration::from_millis(1)),
            ),
            (
                "failure_detector.phi_threshold",
                Box::new(|s| s.failure_detector.phi_threshold = f64::NAN),
            ),
            (
                "failure_detector.sampling_window_size",
                Box::new(|s| s.failure_detector.sampling_window_size = 0),
            ),
            (
                "failure_detector",
                Box::new(|s| s.failure_detector.max_interval = Duration::from_millis(1)),
            ),
        ];
        for (field, change) in checks {
            let mut s = settings();
            change(&mut s);
            assert!(
                matches!(s.validate(), Err(Error::InvalidSettings { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }

    #[test]
    fn cluster_key_debug_is_redacted_and_length_checked() {
        let key = ClusterKey::new(b"0123456789abcdef-secret".to_vec()).unwrap();
        let shown = format!("{key:?} {:?}", Some(key.clone()));
        assert!(
            !shown.contains("secret") && !shown.contains("48"),
            "{shown}"
        );
        assert!(ClusterKey::new(vec![7; 15]).is_err());
        assert!(ClusterKey::new(vec![7; limits::GOSSIP_CLUSTER_KEY_BYTES_MAX + 1]).is_err());
    }
}
