//! Brokers on one in-process gossip network and loopback cluster RPC: forming a cluster,
//! joining it, refusing a second claimant of an id and a data dir of another cluster, fencing
//! a lost broker and unfencing it when back, controller failover.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::gossip::MemoryNetwork;
use crate::metadata::{Command, Outcome, State};
use crate::storage;

const DEADLINE: Duration = Duration::from_secs(60);

fn gossip_addr(id: i32, run: u16) -> std::net::SocketAddr {
    format!("127.0.{run}.{}:7946", id + 1).parse().unwrap()
}

fn settings(
    id: i32,
    dir: &Path,
    seeds: &[std::net::SocketAddr],
    expect: usize,
    run: u16,
) -> ClusterSettings {
    let identity = storage::Identity::load_or_create(dir, id, || {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).unwrap();
        bytes
    })
    .unwrap();
    ClusterSettings {
        node_id: id,
        data_dir: dir.to_path_buf(),
        directory_id: identity.directory_id,
        stored_cluster_id: identity.cluster_id,
        rpc_listen: "127.0.0.1:0".parse().unwrap(),
        rpc_advertised: None,
        kafka_host: "127.0.0.1".into(),
        kafka_port: 9000 + id as u16,
        kafka_security_protocol: "PLAINTEXT".into(),
        listeners: Vec::new(),
        gossip_listen: gossip_addr(id, run),
        gossip_advertise: None,
        seeds: seeds.iter().map(ToString::to_string).collect(),
        name: "tidelog".into(),
        gossip_interval: Duration::from_millis(100),
        bootstrap_expect: expect,
        controller_voters: 3,
        rack: None,
        controller_heartbeat: Duration::from_millis(100),
        controller_election_timeout: Duration::from_millis(600),
        broker_session_timeout: Duration::from_millis(1500),
        request_timeout: Duration::from_secs(20),
        internal_topics: Vec::new(),
        rpc_tls: None,
    }
}

async fn start(
    id: i32,
    dir: &Path,
    network: &MemoryNetwork,
    seeds: &[std::net::SocketAddr],
    expect: usize,
    run: u16,
) -> Arc<ClusterNode> {
    ClusterNode::start(
        settings(id, dir, seeds, expect, run),
        GossipNetwork::Memory(network),
    )
    .await
    .unwrap()
}

/// Waits until `node` has applied a state for which `done` holds.
async fn state_where(node: &ClusterNode, done: impl Fn(&State) -> bool) -> Arc<State> {
    let mut published = node.published();
    tokio::time::timeout(DEADLINE, published.wait_for(|p| done(&p.state)))
        .await
        .expect("state reached in time")
        .unwrap()
        .state
        .clone()
}

fn serving(state: &State, ids: &[i32]) -> bool {
    state.cluster_id.is_some()
        && ids
            .iter()
            .all(|id| state.brokers.get(id).is_some_and(|b| !b.fenced))
}

async fn fatal_of(node: &ClusterNode) -> String {
    let mut fatal = node.fatal();
    tokio::time::timeout(DEADLINE, fatal.wait_for(Option::is_some))
        .await
        .expect("refused in time")
        .unwrap()
        .clone()
        .unwrap()
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_form_a_cluster_by_gossip_admit_a_fourth_fence_the_lost_and_fail_over() {
    let dirs: Vec<_> = (0..=5).map(|_| tempfile::tempdir().unwrap()).collect();
    let network = MemoryNetwork::new();
    let seeds = [gossip_addr(1, 1)];
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, dirs[id as usize].path(), &network, &seeds, 3, 1).await);
    }
    let state = state_where(&nodes[0], |s| serving(s, &[1, 2, 3])).await;
    let cluster_id = state.cluster_id.clone().unwrap();
    for node in &nodes {
        let seen = state_where(node, |s| serving(s, &[1, 2, 3])).await;
        assert_eq!(seen.cluster_id.as_deref(), Some(cluster_id.as_str()));
    }
    wait_until(|| nodes[0].controller_members().0 == vec![1, 2, 3]).await;
    // Every data dir records the cluster it joined.
    for id in 1..=3 {
        let dir = dirs[id as usize].path();
        wait_until(|| {
            storage::Identity::load_or_create(dir, id, || [0; 16])
                .unwrap()
                .cluster_id
                .as_deref()
                == Some(cluster_id.as_str())
        })
        .await;
    }

    // A fourth broker with only the seeds joins as a learner (three voters are enough).
    nodes.push(start(4, dirs[4].path(), &network, &seeds, 3, 1).await);
    state_where(&nodes[3], |s| serving(s, &[1, 2, 3, 4])).await;
    wait_until(|| nodes[0].controller_members().1 == vec![4]).await;

    // A second broker claiming live id 2 with another data dir is refused.
    let mut impostor = settings(2, dirs[5].path(), &seeds, 3, 1);
    impostor.gossip_listen = gossip_addr(9, 1);
    let impostor = ClusterNode::start(impostor, GossipNetwork::Memory(&network))
        .await
        .unwrap();
    let reason = fatal_of(&impostor).await;
    assert!(reason.contains("node id 2 is already used"), "{reason}");
    impostor.shutdown().await;
    assert!(!nodes[0].published().borrow().state.brokers[&2].fenced);

    // Broker 3 stops: it is fenced after the session timeout, unfenced when it is back.
    nodes.remove(2).shutdown().await;
    state_where(&nodes[0], |s| s.brokers.get(&3).is_some_and(|b| b.fenced)).await;
    nodes.insert(2, start(3, dirs[3].path(), &network, &seeds, 3, 1).await);
    state_where(&nodes[0], |s| serving(s, &[1, 2, 3, 4])).await;

    // Broker 3 came back on another cluster port: the group reaches it there.
    let moved = nodes[2].rpc_addr().to_string();
    wait_until(|| nodes[0].controller.addresses().get(&3) == Some(&moved)).await;

    // The controller leader stops: another takes over and commands keep working.
    let leader = nodes[0].controller_leader().unwrap();
    let at = nodes.iter().position(|n| n.node_id() == leader).unwrap();
    nodes.remove(at).shutdown().await;
    let survivor = &nodes[0];
    let create = Command::CreateTopic {
        name: "after-failover".into(),
        id: [7; 16],
        partitions: 1,
        replication_factor: 1,
        assignment: None,
        configs: Default::default(),
        internal: false,
    };
    assert_eq!(survivor.propose(&create).await.unwrap(), Ok(Outcome::Done));
    assert_ne!(survivor.controller_leader(), Some(leader));
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_of_another_cluster_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let network = MemoryNetwork::new();
    // Two one-broker clusters that do not know each other.
    let first = start(1, a.path(), &network, &[], 1, 2).await;
    let second = start(2, b.path(), &network, &[], 1, 2).await;
    let ids: Vec<String> = [
        state_where(&first, |s| serving(s, &[1])).await,
        state_where(&second, |s| serving(s, &[2])).await,
    ]
    .iter()
    .map(|s| s.cluster_id.clone().unwrap())
    .collect();
    assert_ne!(ids[0], ids[1], "each formed its own cluster");
    // Broker 2's stored id must be on disk before it restarts pointed at the first cluster.
    wait_until(|| {
        storage::Identity::load_or_create(b.path(), 2, || [0; 16])
            .unwrap()
            .cluster_id
            .is_some()
    })
    .await;
    second.shutdown().await;
    let second = start(2, b.path(), &network, &[gossip_addr(1, 2)], 1, 2).await;
    let reason = fatal_of(&second).await;
    assert!(
        reason.contains(&format!("belongs to cluster {}", ids[1])),
        "{reason}"
    );
    second.shutdown().await;
    assert!(!first.published().borrow().state.brokers.contains_key(&2));
    // The broker the stranger found is not the stranger: it keeps running.
    assert!(first.fatal().borrow().is_none());
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_broker_forms_a_cluster_and_rejoins_it_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let network = MemoryNetwork::new();
    let node = start(1, dir.path(), &network, &[], 1, 3).await;
    let cluster_id = state_where(&node, |s| serving(s, &[1]))
        .await
        .cluster_id
        .clone();
    wait_until(|| {
        storage::Identity::load_or_create(dir.path(), 1, || [0; 16])
            .unwrap()
            .cluster_id
            == cluster_id
    })
    .await;
    node.shutdown().await;
    let node = start(1, dir.path(), &network, &[], 1, 3).await;
    let again = state_where(&node, |s| serving(s, &[1])).await;
    assert_eq!(again.cluster_id, cluster_id);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_cut_off_from_gossip_is_fenced_and_unfenced_when_the_link_heals() {
    let dirs: Vec<_> = (0..=3).map(|_| tempfile::tempdir().unwrap()).collect();
    let network = MemoryNetwork::new();
    let seeds = [gossip_addr(1, 4)];
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, dirs[id as usize].path(), &network, &seeds, 3, 4).await);
    }
    state_where(&nodes[0], |s| serving(s, &[1, 2, 3])).await;
    // Gossip says one broker is dead to everyone (raft still reaches it): the leader fences
    // it after the session timeout, and nothing else changes by gossip alone. When the cut
    // broker is the leader itself, it sees no majority and fences no one.
    let leader = nodes[0].controller_leader().unwrap();
    let victim = (1..=3).find(|&id| id != leader).unwrap();
    let others: Vec<i32> = (1..=3).filter(|&id| id != victim).collect();
    for &other in &others {
        network
            .cut(gossip_addr(victim, 4), gossip_addr(other, 4))
            .await;
    }
    let fenced = state_where(&nodes[0], |s| {
        s.brokers.get(&victim).is_some_and(|b| b.fenced)
    })
    .await;
    assert!(
        others.iter().all(|id| !fenced.brokers[id].fenced),
        "{fenced:?}"
    );
    let cut = nodes.iter().find(|n| n.node_id() == victim).unwrap();
    assert!(
        cut.fatal().borrow().is_none(),
        "a cut link is not a refusal"
    );
    for &other in &others {
        network
            .heal(gossip_addr(victim, 4), gossip_addr(other, 4))
            .await;
    }
    state_where(&nodes[0], |s| serving(s, &[1, 2, 3])).await;
    for node in nodes {
        node.shutdown().await;
    }
}
