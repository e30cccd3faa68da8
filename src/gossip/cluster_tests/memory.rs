//! Gossip over chitchat's in-memory network with paused time: discovery from seeds, data
//! propagation, cut links and the failure detector, restarts, id conflicts, foreign clusters.

use std::net::SocketAddr;
use std::time::Duration;

use super::{DEADLINE, dead_ids, info, live_ids, settings, wait_all_live, wait_for};
use crate::gossip::{Endpoint, GossipHandle, GossipSettings, Listener, Membership, MemoryNetwork};

fn addr(node_id: i32) -> SocketAddr {
    let port = 7000 + u16::try_from(node_id).unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn start(network: &MemoryNetwork, settings: GossipSettings) -> GossipHandle {
    let node_id = settings.node_id;
    GossipHandle::start_in_memory(settings, info(node_id), network)
        .await
        .unwrap()
}

/// Nodes 1..=count, each seeded with node 1 (which lists itself too).
async fn cluster(network: &MemoryNetwork, count: i32) -> Vec<GossipHandle> {
    let mut nodes = Vec::new();
    for node_id in 1..=count {
        nodes.push(start(network, settings(node_id, 1, addr(node_id), &[addr(1)])).await);
    }
    nodes
}

#[tokio::test(start_paused = true)]
async fn three_nodes_find_each_other_from_one_seed() {
    let network = MemoryNetwork::new();
    let nodes = cluster(&network, 3).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    wait_all_live(&[a, b, c], &[1, 2, 3]).await;
    let view = a.membership().borrow().clone();
    for (member, node) in view.live.iter().zip([a, b, c]) {
        assert_eq!(member.info, node.published().await);
        assert_eq!(member.gossip_addr, node.gossip_addr());
        assert_eq!(member.generation, 1);
    }
    assert!(view.dead.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_published_change_reaches_every_peer() {
    let network = MemoryNetwork::new();
    let nodes = cluster(&network, 3).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    wait_all_live(&[a, b, c], &[1, 2, 3]).await;

    b.set_cluster_id("MkU3OEVBNTcwNTJENDM2Qk".to_string())
        .await
        .unwrap();
    b.set_extra("ready".to_string(), Some("true".to_string()))
        .await
        .unwrap();
    b.update(|info| {
        info.rack = None;
        info.listeners.insert(
            "SASL_SSL".to_string(),
            Listener {
                endpoint: Endpoint::new("broker-2.example", 9094),
                security_protocol: "SASL_SSL".to_string(),
            },
        );
    })
    .await
    .unwrap();
    let published = b.published().await;
    assert_eq!(published.extras["ready"], "true");
    for node in [a, c] {
        wait_for(node, "node 2's new info", |v| {
            v.live_claims(2).any(|m| m.info == published)
        })
        .await;
    }

    b.set_extra("ready".to_string(), None).await.unwrap();
    let published = b.published().await;
    assert!(published.extras.is_empty());
    wait_for(a, "node 2's extra removed", |v| {
        v.live_claims(2).any(|m| m.info == published)
    })
    .await;

    // An invalid update is refused and changes nothing.
    let refused = b
        .update(|info| info.incarnation = "not valid".to_string())
        .await;
    assert!(refused.is_err());
    assert_eq!(b.published().await, published);
}

#[tokio::test(start_paused = true)]
async fn a_cut_node_is_reported_dead_then_live_again_after_healing() {
    let network = MemoryNetwork::new();
    let nodes = cluster(&network, 3).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    wait_all_live(&[a, b, c], &[1, 2, 3]).await;

    network.cut(addr(3), addr(1)).await;
    network.cut(addr(3), addr(2)).await;
    let cut_at = tokio::time::Instant::now();
    for node in [a, b] {
        let view = wait_for(node, "node 3 dead", |v| dead_ids(v) == [3].into()).await;
        assert_eq!(live_ids(&view), [1, 2].into());
        assert!(view.dead[0].dead_since > cut_at);
        assert_eq!(view.dead[0].member.info, c.published().await);
    }
    let view = wait_for(c, "nodes 1 and 2 dead", |v| dead_ids(v) == [1, 2].into()).await;
    assert_eq!(live_ids(&view), [3].into());

    network.heal(addr(3), addr(1)).await;
    network.heal(addr(3), addr(2)).await;
    wait_all_live(&[a, b, c], &[1, 2, 3]).await;
    for node in [a, b, c] {
        assert!(node.membership().borrow().dead.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_stopped_node_stays_dead_until_the_grace_period_forgets_it() {
    let network = MemoryNetwork::new();
    let mut nodes = Vec::new();
    for node_id in 1..=3 {
        let mut settings = settings(node_id, 1, addr(node_id), &[addr(1)]);
        settings.dead_node_grace_period = Duration::from_secs(20);
        nodes.push(start(&network, settings).await);
    }
    wait_all_live(&[&nodes[0], &nodes[1], &nodes[2]], &[1, 2, 3]).await;

    let c = nodes.pop().unwrap();
    c.shutdown().await.unwrap();
    let a = &nodes[0];
    let view = wait_for(a, "node 3 dead", |v| dead_ids(v) == [3].into()).await;
    let dead_since = view.dead[0].dead_since;
    // Chitchat keeps the dead node's state meanwhile: it is never reported live.
    assert!(
        a.chitchat_nodes()
            .await
            .contains(&("3".to_string(), 1, false))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(a.membership().borrow().dead[0].dead_for() >= Duration::from_secs(1));

    let view = wait_for(a, "node 3 forgotten", |v| v.dead.is_empty()).await;
    assert_eq!(live_ids(&view), [1, 2].into());
    assert!(dead_since.elapsed() >= Duration::from_secs(20));
    assert!(!a.chitchat_nodes().await.iter().any(|(id, _, _)| id == "3"));
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_a_higher_generation_replaces_the_previous_run() {
    let network = MemoryNetwork::new();
    let mut nodes = cluster(&network, 3).await;
    wait_all_live(&[&nodes[0], &nodes[1], &nodes[2]], &[1, 2, 3]).await;

    nodes.pop().unwrap().shutdown().await.unwrap();
    let restarted = start(&network, settings(3, 2, addr(3), &[addr(1)])).await;
    let [a, b] = [&nodes[0], &nodes[1]];
    for node in [a, b, &restarted] {
        let view = wait_for(node, "node 3 at generation 2", |v| {
            v.live_claims(3).map(|m| m.generation).eq([2])
        })
        .await;
        assert_eq!(live_ids(&view), [1, 2, 3].into());
        assert!(view.dead.is_empty());
    }
    // The previous run lingers in chitchat's state until its detector gives up on it ...
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !a
        .chitchat_nodes()
        .await
        .contains(&("3".to_string(), 1, false))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "generation 1 never declared dead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and is never reported, live or dead.
    let view = a.membership().borrow().clone();
    assert!(view.live_claims(3).map(|m| m.generation).eq([2]));
    assert!(view.dead.is_empty());
}

#[tokio::test(start_paused = true)]
async fn two_brokers_claiming_one_id_are_both_reported() {
    let network = MemoryNetwork::new();
    let nodes = cluster(&network, 2).await;
    wait_all_live(&[&nodes[0], &nodes[1]], &[1, 2]).await;

    // Another data directory (incarnation) claiming node id 2, from another address.
    let mut impostor_info = info(2);
    impostor_info.incarnation = "another-directory".to_string();
    let impostor =
        GossipHandle::start_in_memory(settings(2, 1, addr(9), &[addr(1)]), impostor_info, &network)
            .await
            .unwrap();
    let view = wait_for(&nodes[0], "two claims of node 2", |v| {
        v.live_claims(2).count() == 2
    })
    .await;
    assert_eq!(view.conflicting_node_ids(), [2]);
    impostor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_node_of_a_foreign_cluster_is_never_seen() {
    let network = MemoryNetwork::new();
    let a = start(&network, settings(1, 1, addr(1), &[])).await;
    let mut foreign_settings = settings(5, 1, addr(5), &[addr(1)]);
    foreign_settings.cluster_name = "another-cluster".to_string();
    let foreign = start(&network, foreign_settings).await;
    // A node of the same cluster with the same seed joins: the foreign one had as many chances.
    let b = start(&network, settings(2, 1, addr(2), &[addr(1)])).await;
    wait_all_live(&[&a, &b], &[1, 2]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    for node in [&a, &b] {
        assert_eq!(live_ids(&node.membership().borrow()), [1, 2].into());
        assert!(
            !node
                .chitchat_nodes()
                .await
                .iter()
                .any(|(id, _, _)| id == "5")
        );
    }
    assert_eq!(live_ids(&foreign.membership().borrow()), [5].into());
    assert_eq!(foreign.chitchat_nodes().await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn membership_empties_and_closes_when_gossip_is_dropped() {
    let network = MemoryNetwork::new();
    let a = start(&network, settings(1, 1, addr(1), &[])).await;
    let mut views = a.membership();
    wait_for(&a, "itself live", |v| live_ids(v) == [1].into()).await;
    drop(a);
    let closed =
        tokio::time::timeout(DEADLINE, async { while views.changed().await.is_ok() {} }).await;
    assert!(
        closed.is_ok(),
        "the membership channel closes when gossip stops"
    );
    assert_eq!(
        *views.borrow(),
        Membership::default(),
        "a stopped node knows no members"
    );
}
