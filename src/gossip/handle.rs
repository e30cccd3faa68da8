//! `GossipHandle`: starts chitchat on the current tokio runtime (over UDP, or over an in-memory
//! network in tests), publishes and updates this broker's info, keeps the membership view
//! current, and shuts everything down.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::transport::Transport;
use chitchat::{
    Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion,
};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::{self, Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use super::auth::Authenticator;
use super::membership::Membership;
use super::settings::{KEY_TOMBSTONE_GRACE_PERIOD, Seed};
use super::tracker::{NodeKey, Tracker};
use super::transport::{Counters, GossipStats, UdpTransport};
use super::{BrokerInfo, Error, GossipSettings, MemoryNetwork, codec, seeds};

/// A running gossip member. Dropping it stops gossip too; `shutdown` also waits for it.
pub(crate) struct GossipHandle {
    chitchat: Arc<ChitchatHandle>,
    node_id: i32,
    generation: u64,
    gossip_addr: SocketAddr,
    published: Mutex<Published>,
    membership: watch::Receiver<Membership>,
    /// Dropped to stop the view and seed tasks.
    stop: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// What this broker publishes, typed and as the key-values chitchat holds.
struct Published {
    info: BrokerInfo,
    key_values: BTreeMap<String, String>,
}

impl fmt::Debug for GossipHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipHandle")
            .field("node_id", &self.node_id)
            .field("generation", &self.generation)
            .field("gossip_addr", &self.gossip_addr)
            .finish_non_exhaustive()
    }
}

impl GossipHandle {
    /// Binds the UDP socket and starts gossip; datagrams are authenticated when the settings
    /// carry a cluster key.
    pub(crate) async fn start(settings: GossipSettings, info: BrokerInfo) -> Result<Self, Error> {
        settings.validate()?;
        let addr = settings.listen_addr;
        let bind_error = |source| Error::Bind { addr, source };
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(bind_error)?;
        let listen_addr = socket.local_addr().map_err(bind_error)?;
        let advertise_addr = settings.advertise_addr.unwrap_or(listen_addr);
        if advertise_addr.ip().is_unspecified() || advertise_addr.port() == 0 {
            return Err(Error::invalid_settings(
                "advertise_addr",
                format!("peers cannot reach {advertise_addr}: set an advertised address"),
            ));
        }
        let authenticator = match &settings.cluster_key {
            Some(key) => {
                let session = getrandom::u64().map_err(|source| Error::Random { source })?;
                Some(Authenticator::new(key, &settings.cluster_name, session))
            }
            None => None,
        };
        let counters = Arc::new(Counters::default());
        let transport = UdpTransport::new(socket, authenticator, Arc::clone(&counters));
        Self::spawn(
            settings,
            listen_addr,
            advertise_addr,
            info,
            &transport,
            counters,
        )
        .await
    }

    /// Starts gossip over `network` at `settings.listen_addr` (explicit, not port 0), which is
    /// also the advertised address. The cluster key is ignored: nothing leaves the process.
    pub(crate) async fn start_in_memory(
        settings: GossipSettings,
        info: BrokerInfo,
        network: &MemoryNetwork,
    ) -> Result<Self, Error> {
        settings.validate()?;
        let addr = settings.listen_addr;
        if addr.port() == 0 {
            return Err(Error::invalid_settings(
                "listen_addr",
                "port 0 on a memory network",
            ));
        }
        let counters = Arc::new(Counters::default());
        Self::spawn(settings, addr, addr, info, network.transport(), counters).await
    }

    async fn spawn(
        settings: GossipSettings,
        listen_addr: SocketAddr,
        advertise_addr: SocketAddr,
        info: BrokerInfo,
        transport: &dyn Transport,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let key_values = codec::encode(&info)?;
        let (mut seed_addrs, mut seed_names) = (Vec::new(), Vec::new());
        for seed in &settings.seeds {
            match Seed::parse(seed) {
                Some(Seed::Addr(addr)) => seed_addrs.push(addr.to_string()),
                Some(Seed::Name(name)) => seed_names.push(name),
                None => unreachable!("validate() checked every seed"),
            }
        }
        let detector = &settings.failure_detector;
        let config = ChitchatConfig {
            chitchat_id: ChitchatId::new(
                settings.node_id.to_string(),
                settings.generation,
                advertise_addr,
            ),
            cluster_id: settings.cluster_name.clone(),
            gossip_interval: settings.interval,
            listen_addr,
            seed_nodes: seed_addrs,
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: detector.phi_threshold,
                sampling_window_size: detector.sampling_window_size,
                max_interval: detector.max_interval,
                initial_interval: detector.initial_interval,
                dead_node_grace_period: settings.dead_node_grace_period,
            },
            marked_for_deletion_grace_period: KEY_TOMBSTONE_GRACE_PERIOD,
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V0,
        };
        let initial: Vec<(String, String)> = key_values.clone().into_iter().collect();
        let chitchat = chitchat::spawn_chitchat(config, initial, transport)
            .await
            .map_err(|source| Error::Start {
                addr: listen_addr,
                source: source.into(),
            })?;
        let chitchat = Arc::new(chitchat);
        info!(
            node_id = settings.node_id,
            generation = settings.generation,
            addr = %listen_addr,
            advertised = %advertise_addr,
            authenticated = settings.cluster_key.is_some(),
            "gossip started"
        );

        let (stop, stop_rx) = watch::channel(());
        let (membership_tx, membership) = watch::channel(Membership::default());
        let mut tasks = vec![tokio::spawn(run_view(
            Arc::clone(&chitchat),
            settings.interval,
            membership_tx,
            stop_rx.clone(),
        ))];
        if !seed_names.is_empty() {
            tasks.push(tokio::spawn(seeds::run(
                seed_names,
                [listen_addr, advertise_addr],
                settings.interval,
                Arc::clone(&chitchat),
                stop_rx,
            )));
        }
        Ok(Self {
            chitchat,
            node_id: settings.node_id,
            generation: settings.generation,
            gossip_addr: advertise_addr,
            published: Mutex::new(Published { info, key_values }),
            membership,
            stop,
            tasks,
            counters,
        })
    }

    pub(crate) fn node_id(&self) -> i32 {
        self.node_id
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The address peers gossip to.
    pub(crate) fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// The current membership view; it changes when a member joins, dies, comes back or
    /// publishes new info. Emptied, then closed, when gossip stops.
    pub(crate) fn membership(&self) -> watch::Receiver<Membership> {
        self.membership.clone()
    }

    /// What this broker publishes now.
    pub(crate) async fn published(&self) -> BrokerInfo {
        self.published.lock().await.info.clone()
    }

    /// Changes what this broker publishes. Only changed keys are re-gossiped; on an invalid
    /// result (out of the bounds of `limits.rs`) nothing changes.
    pub(crate) async fn update(&self, change: impl FnOnce(&mut BrokerInfo)) -> Result<(), Error> {
        let mut published = self.published.lock().await;
        let mut info = published.info.clone();
        change(&mut info);
        let key_values = codec::encode(&info)?;
        {
            let sets: Vec<(&String, &String)> = key_values
                .iter()
                .filter(|(key, value)| published.key_values.get(*key) != Some(*value))
                .collect();
            let deletes: Vec<&String> = published
                .key_values
                .keys()
                .filter(|key| !key_values.contains_key(*key))
                .collect();
            if !sets.is_empty() || !deletes.is_empty() {
                self.chitchat
                    .with_chitchat(|chitchat| {
                        let state = chitchat.self_node_state();
                        for (key, value) in &sets {
                            state.set(key.as_str(), value.as_str());
                        }
                        for key in &deletes {
                            state.delete(key);
                        }
                    })
                    .await;
            }
        }
        *published = Published { info, key_values };
        Ok(())
    }

    /// Publishes the cluster id once this broker knows it.
    pub(crate) async fn set_cluster_id(&self, cluster_id: String) -> Result<(), Error> {
        self.update(|info| info.cluster_id = Some(cluster_id)).await
    }

    /// Sets (`Some`) or removes (`None`) one extra key-value.
    pub(crate) async fn set_extra(&self, key: String, value: Option<String>) -> Result<(), Error> {
        self.update(|info| match value {
            Some(value) => {
                info.extras.insert(key, value);
            }
            None => {
                info.extras.remove(&key);
            }
        })
        .await
    }

    /// Datagram counts of the UDP socket (all zero on a memory network).
    pub(crate) fn stats(&self) -> GossipStats {
        self.counters.snapshot()
    }

    /// Stops gossip and waits until its tasks ended. Peers see this node die after their
    /// failure detector's timeout (chitchat has no leave message).
    pub(crate) async fn shutdown(self) -> Result<(), Error> {
        let Self {
            chitchat,
            stop,
            tasks,
            node_id,
            ..
        } = self;
        drop(stop);
        for task in tasks {
            if let Err(error) = task.await {
                error!(%error, "a gossip task failed");
            }
        }
        let chitchat = Arc::into_inner(chitchat).expect("every task holding chitchat has ended");
        let result = chitchat.shutdown().await;
        info!(node_id, "gossip stopped");
        result.map_err(|source| Error::Stopped {
            source: source.into(),
        })
    }
}

/// Rebuilds the view after every gossip round and whenever chitchat's live set changes;
/// publishes it only when it changed.
async fn run_view(
    chitchat: Arc<ChitchatHandle>,
    interval: std::time::Duration,
    membership: watch::Sender<Membership>,
    mut stop: watch::Receiver<()>,
) {
    let termination = chitchat.termination_watcher();
    tokio::pin!(termination);
    let mut live_changes = chitchat.with_chitchat(|c| c.live_nodes_watcher()).await;
    let mut tick = time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tracker = Tracker::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                membership.send_replace(Membership::default());
                return;
            }
            result = &mut termination => {
                match result {
                    Ok(()) => warn!("gossip ended by itself"),
                    Err(error) => error!(%error, "gossip failed: membership is unknown"),
                }
                membership.send_replace(Membership::default());
                return;
            }
            changed = live_changes.changed() => {
                // Chitchat lives as long as `chitchat`; closed only if it is gone.
                if changed.is_err() {
                    membership.send_replace(Membership::default());
                    return;
                }
            }
            _ = tick.tick() => {}
        }
        let view = chitchat
            .with_chitchat(|c| observe(c, &mut tracker, Instant::now()))
            .await;
        membership.send_if_modified(|current| {
            if *current == view {
                return false;
            }
            log_changes(current, &view);
            *current = view;
            true
        });
    }
}

fn observe(chitchat: &Chitchat, tracker: &mut Tracker, now: Instant) -> Membership {
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    for (id, state) in chitchat.node_states() {
        let key = NodeKey {
            node_id: Arc::clone(&id.node_id),
            generation: id.generation_id,
            gossip_addr: id.gossip_advertise_addr,
        };
        tracker.observe(
            &key,
            live.contains(id),
            state.max_version(),
            state.key_values(),
            now,
        );
    }
    tracker.finish_round()
}

/// Membership changes are logged at info: who came up, who went down.
fn log_changes(before: &Membership, after: &Membership) {
    let ids = |view: &Membership| -> HashSet<(i32, u64, String)> {
        view.live
            .iter()
            .map(|m| (m.node_id, m.generation, m.info.incarnation.clone()))
            .collect()
    };
    let (was_live, is_live) = (ids(before), ids(after));
    for (node_id, generation, incarnation) in is_live.difference(&was_live) {
        info!(node_id, generation, incarnation, "gossip member live");
    }
    for (node_id, generation, incarnation) in was_live.difference(&is_live) {
        info!(
            node_id,
            generation, incarnation, "gossip member no longer live"
        );
    }
}

#[cfg(test)]
impl GossipHandle {
    /// Chitchat's own state: (node id, generation, considered live) of every node it holds,
    /// dead ones included.
    pub(super) async fn chitchat_nodes(&self) -> Vec<(String, u64, bool)> {
        self.chitchat
            .with_chitchat(|c| {
                let live: HashSet<&ChitchatId> = c.live_nodes().collect();
                c.node_states()
                    .keys()
                    .map(|id| (id.node_id.to_string(), id.generation_id, live.contains(id)))
                    .collect()
            })
            .await
    }
}
