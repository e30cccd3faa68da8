//! One broker's membership of the cluster: the cluster RPC listener, the controller, gossip,
//! and the two tasks that act on them (formation until the controller group has this broker,
//! the leader's duties from then on). A condition that must stop the broker (another cluster's
//! data dir, a node id in use) is published on `fatal` for `app` to act on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::duties::KAFKA_LISTENER;
use super::formation::{self, Formation, Me};
use super::settings::ClusterSettings;
use crate::gossip::{self, BrokerInfo, GossipHandle, GossipSettings, Listener, Membership};
use crate::metadata::{BrokerRegistration, Command};
use crate::replication::RaftNode;
use crate::replication::controller::{self, Answer, Controller, ControllerSettings, Published};
use crate::replication::partition::{
    PACEMAKER_GROUP, Pacemaker, PacemakerSettings, PartitionGroup, PartitionGroupSettings,
};
use crate::replication::rpc::{GroupId, Handler, Method, Peers, Registry, serve};
use crate::storage;

mod addresses;
mod leader;

/// The cluster RPC group of the broker-to-broker service (raft groups use the others).
const BROKER_SERVICE: GroupId = u64::MAX;
/// How long a broker-to-broker call may take (Kafka's request timeout).
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a broker tells each peer which partition groups it leads: one message per peer
/// stands in for the heartbeats of all of them (issue 10: a broker holds thousands of groups,
/// and an idle one must cost next to nothing).
const PARTITION_LIVENESS_INTERVAL: Duration = Duration::from_millis(500);
/// How often a partition group's leader still sends raft heartbeats.
const PARTITION_RAFT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a partition group's follower waits for its leader before campaigning (spread over
/// once to twice this): the failover time of a partition whose leader broker died.
const PARTITION_ELECTION_TIMEOUT: Duration = Duration::from_millis(2_000);

/// The cluster RPC group of a partition's raft group: from its topic id and index, the same on
/// every broker, never the controller's or the broker service's.
fn partition_group_id(topic_id: [u8; 16], partition: i32) -> GroupId {
    let mut high = [0u8; 8];
    high.copy_from_slice(&topic_id[..8]);
    let mut low = [0u8; 8];
    low.copy_from_slice(&topic_id[8..]);
    let id = u64::from_be_bytes(high)
        .rotate_left(17)
        .wrapping_add(u64::from_be_bytes(low))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(u64::from(partition as u32));
    match id {
        0 | PACEMAKER_GROUP | BROKER_SERVICE => 1,
        id => id,
    }
}

/// How often formation and the leader's duties look again when nothing woke them.
const DUTY_INTERVAL: Duration = Duration::from_millis(200);

/// Where gossip datagrams travel.
pub(crate) enum GossipNetwork<'a> {
    Udp,
    /// In-process (tests): addresses are names on the memory network.
    #[cfg_attr(not(test), expect(dead_code, reason = "only tests gossip in memory"))]
    Memory(&'a gossip::MemoryNetwork),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("binding the cluster listener to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Controller(#[from] controller::Error),
    #[error(transparent)]
    Gossip(#[from] gossip::Error),
    #[error("cluster settings: {0}")]
    Settings(String),
}

/// What clients are told of the cluster (see `ClusterNode::view`).
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    pub(crate) cluster_id: Option<String>,
    pub(crate) controller: Option<i32>,
    /// Registered, unfenced brokers by node id.
    pub(crate) brokers: Vec<BrokerRegistration>,
}

/// This broker as a member of the cluster.
pub(crate) struct ClusterNode {
    node_id: i32,
    pub(super) controller: Arc<Controller>,
    peers: Arc<Peers>,
    registry: Arc<Registry>,
    gossip: tokio::sync::Mutex<Option<GossipHandle>>,
    gossip_addr: SocketAddr,
    membership: watch::Receiver<Membership>,
    rpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
    fatal: watch::Sender<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Heartbeats and election timers of this broker's partition groups.
    pacemaker: Arc<Pacemaker>,
    request_timeout: Duration,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node_id", &self.node_id)
            .field("rpc_addr", &self.rpc_addr)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    /// Binds the cluster listener, starts the controller and gossip, and starts forming or
    /// rejoining the cluster in the background.
    pub(crate) async fn start(
        settings: ClusterSettings,
        network: GossipNetwork<'_>,
    ) -> Result<Arc<ClusterNode>, Error> {
        if settings.node_id < 0 {
            return Err(Error::Settings(
                "a cluster member needs a non-negative node id".into(),
            ));
        }
        let listener = TcpListener::bind(settings.rpc_listen)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.rpc_listen,
                source,
            })?;
        let rpc_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: settings.rpc_listen,
            source,
        })?;
        let (rpc_host, rpc_port) = match &settings.rpc_advertised {
            Some(advertised) => advertised.clone(),
            None if rpc_addr.ip().is_unspecified() => {
                return Err(Error::Settings(format!(
                    "the cluster listener {rpc_addr} is a wildcard: set cluster.advertised"
                )));
            }
            None => (rpc_addr.ip().to_string(), rpc_addr.port()),
        };
        let registry = Arc::new(Registry::default());
        let peers = Peers::new(settings.rpc_tls.clone());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(
            listener,
            Arc::clone(&registry),
            stopped.clone(),
            settings.rpc_tls.clone(),
        ));
        let controller = Controller::start(
            ControllerSettings {
                node_id: settings.node_id as u64,
                dir: settings.controller_dir(),
                heartbeat_interval_ms: millis(settings.controller_heartbeat),
                election_timeout_ms: millis(settings.controller_election_timeout),
                request_timeout: settings.request_timeout,
            },
            Arc::clone(&peers),
            Arc::clone(&registry),
        )
        .await?;
        let pacemaker = Pacemaker::start(
            PacemakerSettings {
                node_id: settings.node_id as u64,
                liveness_interval: PARTITION_LIVENESS_INTERVAL,
                raft_heartbeat_interval: PARTITION_RAFT_HEARTBEAT_INTERVAL,
                election_timeout: PARTITION_ELECTION_TIMEOUT,
            },
            Arc::clone(&peers),
            &registry,
        );
        let info = BrokerInfo {
            incarnation: storage::encode_uuid(settings.directory_id),
            listeners: std::iter::once((
                KAFKA_LISTENER.to_owned(),
                Listener {
                    endpoint: gossip::Endpoint::new(&settings.kafka_host, settings.kafka_port),
                    security_protocol: settings.kafka_security_protocol.clone(),
                },
            ))
            .chain(
                settings
                    .listeners
                    .iter()
                    .map(|(name, host, port, protocol)| {
                        let listener = Listener {
                            endpoint: gossip::Endpoint::new(host, *port),
                            security_protocol: protocol.clone(),
                        };
                        (name.clone(), listener)
                    }),
            )
            .collect(),
            cluster_rpc: gossip::Endpoint::new(rpc_host, rpc_port),
            rack: settings.rack.clone(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_id: settings.stored_cluster_id.clone(),
            extras: BTreeMap::new(),
        };
        let mut gossip_settings =
            GossipSettings::new(settings.node_id, generation(), settings.gossip_listen);
        gossip_settings.advertise_addr = settings.gossip_advertise;
        gossip_settings.seeds = settings.seeds.clone();
        gossip_settings.cluster_name = settings.name.clone();
        gossip_settings.interval = settings.gossip_interval;
        let gossip = match network {
            GossipNetwork::Udp => GossipHandle::start(gossip_settings, info).await,
            GossipNetwork::Memory(network) => {
                GossipHandle::start_in_memory(gossip_settings, info, network).await
            }
        };
        let gossip = match gossip {
            Ok(gossip) => gossip,
            Err(error) => {
                controller.shutdown().await;
                stop.send_replace(true);
                return Err(error.into());
            }
        };
        let node = Arc::new(ClusterNode {
            node_id: settings.node_id,
            controller,
            peers,
            registry,
            gossip_addr: gossip.gossip_addr(),
            membership: gossip.membership(),
            gossip: tokio::sync::Mutex::new(Some(gossip)),
            rpc_addr,
            stop,
            fatal: watch::Sender::new(None),
            tasks: Mutex::new(vec![server]),
            pacemaker,
            request_timeout: settings.request_timeout,
        });
        let addresses = tokio::spawn(addresses::follow(
            Arc::clone(&node.peers),
            node.membership.clone(),
            node.controller.published(),
            settings.stored_cluster_id.clone(),
            stopped.clone(),
        ));
        let formation = tokio::spawn(run(Arc::clone(&node), settings, stopped));
        node.tasks().extend([addresses, formation]);
        tracing::info!(node_id = node.node_id, rpc = %rpc_addr, gossip = %node.gossip_addr, "cluster member started");
        Ok(node)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The metadata state as applied here, and its changes.
    pub(crate) fn published(&self) -> watch::Receiver<Published> {
        self.controller.published()
    }

    /// The controller leader's node id, as this broker knows it.
    pub(crate) fn controller_leader(&self) -> Option<i32> {
        self.controller
            .leader()
            .and_then(|id| i32::try_from(id).ok())
    }

    /// The brokers clients are told about: the registered unfenced ones, and the controller.
    /// Before the cluster has formed (no cluster id yet): none.
    pub(crate) fn view(&self) -> ClusterView {
        let state = Arc::clone(&self.controller.published().borrow().state);
        ClusterView {
            cluster_id: state.cluster_id.clone(),
            controller: self.controller_leader(),
            brokers: state
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .cloned()
                .collect(),
        }
    }

    /// Whether the published state reflects every change committed before this process
    /// started (see `Controller::caught_up`): until then a topic missing from it may only be
    /// not replayed yet.
    pub(crate) fn caught_up(&self) -> bool {
        self.controller.caught_up()
    }

    /// Proposes a metadata command (through the controller leader) and waits for its answer.
    pub(crate) async fn propose(&self, command: &Command) -> Result<Answer, controller::Error> {
        self.controller.propose(command).await
    }

    /// A reason this broker must stop, once there is one.
    pub(crate) fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    /// The bound cluster RPC address.
    #[cfg(test)]
    pub(crate) fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// Serves other brokers' calls to this broker (transaction markers, verification).
    pub(crate) fn serve_broker(&self, handler: Arc<dyn Handler>) {
        self.registry.insert(BROKER_SERVICE, handler);
    }

    /// Calls `method` of broker `broker`'s service; the answer's bytes, or why there is none.
    pub(crate) async fn call_broker(
        &self,
        broker: i32,
        method: Method,
        payload: Bytes,
    ) -> Result<Bytes, String> {
        let address = {
            let published = self.controller.published();
            let state = &published.borrow().state;
            let registered = state
                .brokers
                .get(&broker)
                .ok_or_else(|| format!("broker {broker} is not registered"))?;
            registered.cluster_rpc_addr()
        };
        let node = u64::try_from(broker).map_err(|_| format!("broker id {broker}"))?;
        self.peers
            .call(
                node,
                &address,
                (BROKER_SERVICE, method),
                payload,
                BROKER_CALL_TIMEOUT,
            )
            .await
            .map_err(|error| format!("broker {broker}: {error:?}"))
    }

    /// Starts this broker's replica of a replicated partition's raft group on its opened log
    /// (served on the cluster RPC from then on).
    pub(crate) async fn start_partition_group(
        &self,
        topic_id: [u8; 16],
        partition: i32,
        log: storage::Log,
    ) -> Result<Arc<PartitionGroup>, String> {
        let settings = PartitionGroupSettings {
            node_id: u64::try_from(self.node_id).map_err(|_| "negative node id".to_owned())?,
            group: partition_group_id(topic_id, partition),
            pacemaker: Arc::clone(&self.pacemaker),
            commit_timeout: self.request_timeout,
        };
        PartitionGroup::start(
            settings,
            log,
            Arc::clone(&self.peers),
            Arc::clone(&self.registry),
        )
        .await
        .map_err(|error| error.to_string())
    }

    /// Makes `replicas` (registered brokers) the first voters of a partition group; nothing
    /// when the group already has members.
    pub(crate) async fn initialize_partition_group(
        &self,
        group: &PartitionGroup,
        replicas: &[i32],
    ) -> Result<(), String> {
        let voters = {
            let published = self.controller.published();
            let state = &published.borrow().state;
            replicas
                .iter()
                .map(|id| {
                    let registered = state
                        .brokers
                        .get(id)
                        .ok_or_else(|| format!("replica {id} is not registered"))?;
                    let node = RaftNode {
                        rpc_addr: format!(
                            "{}:{}",
                            registered.cluster.host, registered.cluster.port
                        ),
                    };
                    Ok((
                        u64::try_from(*id).map_err(|_| format!("replica id {id}"))?,
                        node,
                    ))
                })
                .collect::<Result<BTreeMap<u64, RaftNode>, String>>()?
        };
        group.initialize(voters).await.map_err(|e| e.to_string())
    }

    /// The address peers gossip to (a seed for other brokers).
    pub(crate) fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// The controller group: voters and learners.
    #[cfg(test)]
    pub(crate) fn controller_members(&self) -> (Vec<i32>, Vec<i32>) {
        let (voters, learners) = self.controller.members();
        let ids = |set: std::collections::BTreeSet<u64>| {
            set.into_iter()
                .filter_map(|id| i32::try_from(id).ok())
                .collect()
        };
        (ids(voters), ids(learners))
    }

    /// Stops the tasks, gossip (peers see this broker die), raft and the listener.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks());
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a cluster task failed");
            }
        }
        if let Some(gossip) = self.gossip.lock().await.take()
            && let Err(error) = gossip.shutdown().await
        {
            tracing::warn!(%error, "gossip did not stop cleanly");
        }
        self.controller.shutdown().await;
    }

    fn refuse(&self, reason: String) {
        tracing::error!(
            node_id = self.node_id,
            "refusing to join the cluster: {reason}"
        );
        self.fatal.send_replace(Some(reason));
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A gossip generation that grows with every start: the wall clock in milliseconds.
fn generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| millis(d).max(1))
}

/// Formation until the controller group has this broker, then the cluster id, then the
/// leader's duties until stopped.
async fn run(
    node: Arc<ClusterNode>,
    settings: ClusterSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let mut membership = node.membership.clone();
    let mut published = node.controller.published();
    let incarnation = storage::encode_uuid(settings.directory_id);
    let me = Me {
        node_id: settings.node_id,
        incarnation: &incarnation,
        cluster_id: settings.stored_cluster_id.as_deref(),
    };
    let mut initialized = false;
    loop {
        let (voters, learners) = node.controller.members();
        if !voters.is_empty() || !learners.is_empty() {
            break;
        }
        let decision = formation::decide(
            &me,
            &membership.borrow_and_update(),
            settings.bootstrap_expect,
        );
        match decision {
            Formation::Initialize(voters) if !initialized => {
                tracing::info!(voters = ?voters.keys().collect::<Vec<_>>(), "forming the cluster: initializing the controller");
                let voters = voters
                    .into_iter()
                    .map(|(id, rpc_addr)| (id as u64, RaftNode { rpc_addr }))
                    .collect();
                match node.controller.initialize(voters).await {
                    Ok(()) => initialized = true,
                    Err(error) => tracing::warn!(%error, "initializing the controller failed"),
                }
            }
            Formation::Refuse(reason) => return node.refuse(reason),
            Formation::Initialize(_) | Formation::Wait | Formation::Join => {}
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = membership.changed() => {}
            _ = tokio::time::sleep(DUTY_INTERVAL) => {}
        }
    }
    let mut cluster_id_adopted = false;
    let mut absent_since: BTreeMap<i32, Instant> = BTreeMap::new();
    let mut last_failure = String::new();
    let mut warned_of_strangers = false;
    loop {
        let state = Arc::clone(&published.borrow_and_update().state);
        let foreign = state.cluster_id.as_deref().and_then(|cluster_id| {
            let view = membership.borrow_and_update();
            let reason = formation::foreign_cluster(&me, cluster_id, &view)?;
            let strangers: Vec<SocketAddr> = view
                .live
                .iter()
                .filter(|m| {
                    m.info
                        .cluster_id
                        .as_deref()
                        .is_some_and(|id| id != cluster_id)
                })
                .map(|m| m.gossip_addr)
                .collect();
            Some((reason, strangers))
        });
        if let Some((reason, strangers)) = foreign {
            // Our seeds lead to another cluster: we are the stranger. Brokers that merely
            // found us (their seeds are wrong) are ignored: the leader never registers them.
            let seeds = resolve(&settings.seeds).await;
            if strangers.iter().any(|addr| seeds.contains(addr)) {
                return node.refuse(reason);
            }
            if !warned_of_strangers {
                tracing::warn!(
                    ?strangers,
                    "gossip shows brokers of another cluster; they are ignored"
                );
                warned_of_strangers = true;
            }
        }
        if !cluster_id_adopted && let Some(cluster_id) = state.cluster_id.as_deref() {
            match adopt_cluster_id(&node, &settings, cluster_id).await {
                Ok(()) => cluster_id_adopted = true,
                Err(reason) => return node.refuse(reason),
            }
        }
        if node.controller.leader() == Some(settings.node_id as u64) {
            if let Err(failure) = leader::lead(&node, &settings, &state, &mut absent_since).await
                && failure != last_failure
            {
                tracing::warn!(%failure, "a controller duty failed; retrying");
                last_failure = failure;
            }
        } else {
            absent_since.clear();
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = membership.changed() => {}
            _ = published.changed() => {}
            _ = tokio::time::sleep(DUTY_INTERVAL) => {}
        }
    }
}

/// Checks the cluster id against the data dir's, stores it there and gossips it.
async fn adopt_cluster_id(
    node: &ClusterNode,
    settings: &ClusterSettings,
    cluster_id: &str,
) -> Result<(), String> {
    match settings.stored_cluster_id.as_deref() {
        Some(stored) if stored != cluster_id => {
            return Err(format!(
                "this data dir belongs to cluster {stored}, the controller's cluster is {cluster_id}"
            ));
        }
        Some(_) => {}
        None => {
            let identity = storage::Identity {
                node_id: settings.node_id,
                directory_id: settings.directory_id,
                cluster_id: Some(cluster_id.to_owned()),
            };
            let dir = settings.data_dir.clone();
            let stored = tokio::task::spawn_blocking(move || identity.store(&dir)).await;
            match stored {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(format!("storing the cluster id: {error}")),
                Err(error) => return Err(format!("storing the cluster id: {error}")),
            }
            tracing::info!(cluster_id, "joined the cluster");
        }
    }
    if let Some(gossip) = node.gossip.lock().await.as_ref()
        && let Err(error) = gossip.set_cluster_id(cluster_id.to_owned()).await
    {
        tracing::warn!(%error, "could not gossip the cluster id");
    }
    Ok(())
}

/// The addresses `seeds` (`HOST:PORT`) resolve to now; unresolvable ones are left out.
async fn resolve(seeds: &[String]) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    for seed in seeds {
        if let Ok(resolved) = tokio::net::lookup_host(seed.as_str()).await {
            addrs.extend(resolved);
        }
    }
    addrs
}
