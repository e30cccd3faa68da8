//! Where the cluster RPC reaches each broker: the address gossip sees it at now, learned by a
//! task of its own at every change of the gossip view, so a broker restarted on another
//! address is reached there before (and whatever) the controller group's membership says.

use std::sync::Arc;

use tokio::sync::watch;

use crate::gossip::{Member, Membership};
use crate::metadata::State;
use crate::replication::controller::Published;
use crate::replication::rpc::Peers;
use crate::storage;

/// Tells `peers` where gossip sees each live broker of this broker's cluster (the metadata's
/// cluster id, else `stored`), now and at every change of the view or of the metadata state,
/// until `stopped`. It reads the view through
/// its own receiver: a reader that marks a view seen without learning it (the duties' loop did
/// when a change came while it was busy) would leave the peers calling a moved broker at its
/// old address for good, since the address gossip saw last wins over the membership's.
pub(super) async fn follow(
    peers: Arc<Peers>,
    mut membership: watch::Receiver<Membership>,
    mut published: watch::Receiver<Published>,
    stored: Option<String>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let state = Arc::clone(&published.borrow_and_update().state);
        learn(
            &peers,
            &membership.borrow_and_update(),
            &state,
            stored.as_deref(),
        );
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            changed = membership.changed() => if changed.is_err() { return },
            changed = published.changed() => if changed.is_err() { return },
        }
    }
}

/// Tells `peers` where `view` sees each live broker of this cluster (`state`'s cluster id,
/// else `stored`; nobody before one is known). A member is of this cluster when it gossips
/// that cluster id, or gossips none yet while its data dir is the one `state` registered under
/// its id: a broker killed before it stored the cluster id comes back without one and learns it
/// only from the controller's log, which must reach it at its new address. A node id claimed
/// twice is left alone. A registered broker gossip sees nowhere live is reached where its
/// registration says: the address gossip saw last belongs to a process that is gone, while the
/// controller re-registers a broker that came back elsewhere (it may be the controller leader
/// itself, back before gossip healed).
fn learn(peers: &Peers, view: &Membership, state: &State, stored: Option<&str>) {
    let Some(cluster_id) = state.cluster_id.as_deref().or(stored) else {
        return;
    };
    let registered_here = |member: &Member| {
        storage::decode_uuid(&member.info.incarnation).is_some_and(|incarnation| {
            state
                .brokers
                .get(&member.node_id)
                .is_some_and(|known| known.incarnation == incarnation)
        })
    };
    for member in &view.live {
        let ours = match member.info.cluster_id.as_deref() {
            Some(id) => id == cluster_id,
            None => registered_here(member),
        };
        if ours
            && view.live_claims(member.node_id).count() == 1
            && let Ok(id) = u64::try_from(member.node_id)
        {
            peers.discovered(id, member.info.cluster_rpc.to_string());
        }
    }
    for broker in state.brokers.values() {
        if !view.is_live(broker.id)
            && let Ok(id) = u64::try_from(broker.id)
        {
            peers.discovered(id, broker.cluster_rpc_addr());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::gossip::{BrokerInfo, Endpoint};
    use crate::metadata::{self, BrokerRegistration};
    use crate::replication::rpc::{GroupId, Handler, HandlerFuture, Method, Registry, serve};

    const GROUP: GroupId = 5;
    const DEADLINE: Duration = Duration::from_secs(30);

    /// Answers every call with the name of its server.
    struct Named(&'static str);

    impl Handler for Named {
        fn handle(&self, _method: Method, _payload: Bytes) -> HandlerFuture {
            let name = self.0;
            Box::pin(async move { Ok(Bytes::from_static(name.as_bytes())) })
        }
    }

    /// A cluster RPC server on a fresh loopback port whose calls answer `name`.
    async fn server(name: &'static str, stopped: watch::Receiver<bool>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Arc::new(Registry::default());
        registry.insert(GROUP, Arc::new(Named(name)));
        tokio::spawn(serve(listener, registry, stopped, None));
        addr
    }

    /// The data dir identity broker 7 gossips.
    const INCARNATION: [u8; 16] = [7; 16];

    /// Broker 7 of cluster `c`, live with its cluster RPC at `rpc`.
    fn view(rpc: SocketAddr) -> Membership {
        view_claiming(rpc, Some("c"))
    }

    /// Broker 7, live with its cluster RPC at `rpc`, gossiping `cluster_id`.
    fn view_claiming(rpc: SocketAddr, cluster_id: Option<&str>) -> Membership {
        let info = BrokerInfo {
            incarnation: storage::encode_uuid(INCARNATION),
            listeners: BTreeMap::new(),
            cluster_rpc: Endpoint::new(rpc.ip().to_string(), rpc.port()),
            rack: None,
            software_version: "test".into(),
            cluster_id: cluster_id.map(str::to_owned),
            extras: BTreeMap::new(),
        };
        let member = Member {
            node_id: 7,
            generation: u64::from(rpc.port()),
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            info,
        };
        Membership {
            live: vec![member],
            dead: Vec::new(),
        }
    }

    fn published(cluster_id: Option<&str>) -> Published {
        let state = State {
            cluster_id: cluster_id.map(str::to_owned),
            ..State::default()
        };
        Published {
            state: Arc::new(state),
            applied_index: 0,
        }
    }

    /// Calls broker 7 at an address nobody listens on (where a stale membership would send
    /// it) until the server where gossip saw it last answers `name`.
    async fn reached(peers: &Peers, name: &str) {
        let answered = tokio::time::timeout(DEADLINE, async {
            loop {
                let answer = peers
                    .call(7, "127.0.0.1:1", (GROUP, 0), Bytes::new(), DEADLINE)
                    .await;
                if answer.is_ok_and(|bytes| bytes == name.as_bytes()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(answered.is_ok(), "broker 7 not reached at server {name}");
    }

    /// Cluster `c`'s state with broker 7 registered under data dir `incarnation`.
    fn registered(incarnation: [u8; 16]) -> State {
        registered_at(incarnation, "127.0.0.1:1".parse().unwrap())
    }

    /// [`registered`] with broker 7's cluster RPC registered at `rpc`.
    fn registered_at(incarnation: [u8; 16], rpc: SocketAddr) -> State {
        let endpoint = metadata::Endpoint {
            host: rpc.ip().to_string(),
            port: rpc.port(),
        };
        let registration = BrokerRegistration {
            id: 7,
            incarnation,
            kafka: endpoint.clone(),
            cluster: endpoint,
            listeners: BTreeMap::new(),
            rack: None,
            fenced: false,
        };
        State {
            cluster_id: Some("c".into()),
            brokers: BTreeMap::from([(7, registration)]),
            ..State::default()
        }
    }

    /// The name of the server one call to broker 7 reaches.
    async fn answering(peers: &Peers) -> String {
        let answer = peers
            .call(7, "127.0.0.1:1", (GROUP, 0), Bytes::new(), DEADLINE)
            .await
            .unwrap();
        String::from_utf8(answer.to_vec()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_back_without_the_cluster_id_is_followed_only_if_its_data_dir_is_registered() {
        let (_stop, stopped) = watch::channel(false);
        let before = server("before", stopped.clone()).await;
        let after = server("after", stopped).await;
        let peers = Peers::new(None);
        learn(&peers, &view(before), &registered(INCARNATION), None);
        assert_eq!(answering(&peers).await, "before");

        // Back elsewhere before it stored the cluster id (killed right after it joined): not
        // followed while another data dir is registered under its id, nor when it claims
        // another cluster.
        let back = view_claiming(after, None);
        learn(&peers, &back, &registered([8; 16]), None);
        assert_eq!(answering(&peers).await, "before");
        learn(
            &peers,
            &view_claiming(after, Some("d")),
            &registered(INCARNATION),
            None,
        );
        assert_eq!(answering(&peers).await, "before");
        // Its own data dir is registered: followed, so the controller's log can reach it.
        learn(&peers, &back, &registered(INCARNATION), None);
        assert_eq!(answering(&peers).await, "after");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_gossip_lost_is_reached_where_the_controller_registered_it_last() {
        let (_stop, stopped) = watch::channel(false);
        let before = server("before", stopped.clone()).await;
        let after = server("after", stopped).await;
        let peers = Peers::new(None);
        learn(
            &peers,
            &view(before),
            &registered_at(INCARNATION, after),
            None,
        );
        assert_eq!(
            answering(&peers).await,
            "before",
            "gossip's live address wins"
        );

        // Its old process is gone from gossip and it came back where gossip does not see it
        // (its new gossip port is nobody's seed) while the controller registered it there.
        let gone = Membership {
            live: Vec::new(),
            dead: Vec::new(),
        };
        learn(&peers, &gone, &registered_at(INCARNATION, after), None);
        assert_eq!(answering(&peers).await, "after");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_moved_broker_is_reached_where_gossip_sees_it_whoever_else_reads_the_view() {
        let (stop, stopped) = watch::channel(false);
        let before = server("before", stopped.clone()).await;
        let after = server("after", stopped.clone()).await;
        let (gossip, membership) = watch::channel(view(before));
        let (controller, state) = watch::channel(published(None));
        let peers = Peers::new(None);
        let task = tokio::spawn(follow(
            Arc::clone(&peers),
            membership.clone(),
            state,
            None,
            stopped,
        ));
        // A new broker learns nothing before it knows its cluster id; then at once.
        controller.send_replace(published(Some("c")));
        reached(&peers, "before").await;

        // The broker restarts elsewhere while another reader (the duties' loop) takes the
        // change: the peers follow it all the same.
        let mut duties = membership;
        gossip.send_replace(view(after));
        assert_eq!(
            duties.borrow_and_update().live[0].info.cluster_rpc.port,
            after.port()
        );
        reached(&peers, "after").await;

        stop.send_replace(true);
        tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
    }
}
