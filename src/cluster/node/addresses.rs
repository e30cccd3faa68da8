//! Where the cluster RPC reaches each broker: the address gossip sees it at now, learned by a
//! task of its own at every change of the gossip view, so a broker restarted on another
//! address is reached there before (and whatever) the controller group's membership says.

use std::sync::Arc;

use tokio::sync::watch;

use crate::gossip::Membership;
use crate::replication::controller::Published;
use crate::replication::rpc::Peers;

/// Tells `peers` where gossip sees each live broker of this broker's cluster (the metadata's
/// cluster id, else `stored`), now and at every change of the view, until `stopped`; while no
/// cluster id is known, also at every change of the metadata state. It reads the view through
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
        let cluster_id = published
            .borrow_and_update()
            .state
            .cluster_id
            .clone()
            .or_else(|| stored.clone());
        learn(
            &peers,
            &membership.borrow_and_update(),
            cluster_id.as_deref(),
        );
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            changed = membership.changed() => if changed.is_err() { return },
            changed = published.changed(), if cluster_id.is_none() => if changed.is_err() { return },
        }
    }
}

/// Tells `peers` where `view` sees each live broker of cluster `cluster_id` (none before it is
/// known; a node id claimed twice is left alone).
fn learn(peers: &Peers, view: &Membership, cluster_id: Option<&str>) {
    let Some(cluster_id) = cluster_id else {
        return;
    };
    for member in &view.live {
        if view.live_claims(member.node_id).count() == 1
            && member.info.cluster_id.as_deref() == Some(cluster_id)
            && let Ok(id) = u64::try_from(member.node_id)
        {
            peers.discovered(id, member.info.cluster_rpc.to_string());
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
    use crate::gossip::{BrokerInfo, Endpoint, Member};
    use crate::metadata::State;
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

    /// Broker 7 of cluster `c`, live with its cluster RPC at `rpc`.
    fn view(rpc: SocketAddr) -> Membership {
        let info = BrokerInfo {
            incarnation: "i7".into(),
            listeners: BTreeMap::new(),
            cluster_rpc: Endpoint::new(rpc.ip().to_string(), rpc.port()),
            rack: None,
            software_version: "test".into(),
            cluster_id: Some("c".into()),
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
