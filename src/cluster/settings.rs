//! What a cluster member needs to run: its identity, addresses, seeds and timings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How this broker takes part in the cluster (built by `app` from the config).
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    pub(crate) node_id: i32,
    /// The data dir: holds `meta.properties` and the controller's `controller/` directory.
    pub(crate) data_dir: PathBuf,
    /// `directory.id` of this data dir: tells a restart from a second broker claiming the id.
    pub(crate) directory_id: [u8; 16],
    /// The cluster id stored in `meta.properties`, if this data dir ever joined a cluster.
    pub(crate) stored_cluster_id: Option<String>,
    /// TCP address for raft and broker-to-broker calls (port 0 allowed: see the bound one).
    pub(crate) rpc_listen: SocketAddr,
    /// Host and port other brokers use to reach `rpc_listen`; `None`: the bound address.
    pub(crate) rpc_advertised: Option<(String, u16)>,
    /// Kafka clients' endpoint of this broker (its advertised listener).
    pub(crate) kafka_host: String,
    pub(crate) kafka_port: u16,
    /// The default listener's security protocol (`PLAINTEXT`, `SSL`), gossiped with it.
    pub(crate) kafka_security_protocol: String,
    /// Its other Kafka listeners (name, host, port, security protocol), gossiped so every
    /// broker can tell clients of a listener the endpoints of that listener.
    pub(crate) listeners: Vec<(String, String, u16, String)>,
    /// UDP gossip address (port 0 allowed with UDP).
    pub(crate) gossip_listen: SocketAddr,
    /// Where peers gossip to; `None`: the bound gossip address.
    pub(crate) gossip_advertise: Option<SocketAddr>,
    /// Gossip addresses of some brokers, `HOST:PORT`.
    pub(crate) seeds: Vec<String>,
    /// Gossip cluster name: brokers with another name never see each other.
    pub(crate) name: String,
    pub(crate) gossip_interval: Duration,
    /// Fresh brokers that must see each other before the first quorum forms.
    pub(crate) bootstrap_expect: usize,
    /// How many brokers vote in the controller group; the others are learners.
    pub(crate) controller_voters: usize,
    pub(crate) rack: Option<String>,
    pub(crate) controller_heartbeat: Duration,
    pub(crate) controller_election_timeout: Duration,
    /// How long a broker gossip declares dead keeps its leaderships before it is fenced.
    pub(crate) broker_session_timeout: Duration,
    /// How long a proposal may wait for the controller.
    pub(crate) request_timeout: Duration,
    /// Internal topics the controller leader creates once `bootstrap_expect` brokers are
    /// registered (their partitions' leaders coordinate groups and transactions).
    pub(crate) internal_topics: Vec<InternalTopic>,
    /// mTLS of the cluster listener; `None`: plain TCP.
    pub(crate) rpc_tls: Option<crate::replication::rpc::ClusterTls>,
}

/// An internal topic: `__consumer_offsets` or `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternalTopic {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    /// `default.replication.factor`; None: min(3, unfenced brokers when it is created).
    pub(crate) replication_factor: Option<i16>,
    pub(crate) configs: std::collections::BTreeMap<String, String>,
}

impl ClusterSettings {
    /// The controller's directory inside the data dir (no `-N` suffix: never taken for a
    /// partition directory by the orphan sweep).
    pub(crate) fn controller_dir(&self) -> PathBuf {
        self.data_dir.join("controller")
    }
}
