//! Three controllers on loopback: forwarding, the same state everywhere, failover, restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::*;
use crate::metadata::{self, Outcome};
use crate::replication::rpc::serve;

const DEADLINE: Duration = Duration::from_secs(30);

struct Node {
    controller: Arc<Controller>,
    stop: watch::Sender<bool>,
}

async fn start(id: u64, dir: &std::path::Path, listener: TcpListener) -> Node {
    let peers = Peers::new(None);
    let registry = Arc::new(Registry::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(listener, Arc::clone(&registry), stopped, None));
    let settings = ControllerSettings {
        node_id: id,
        dir: dir.join(format!("controller-{id}")),
        heartbeat_interval_ms: 100,
        election_timeout_ms: 500,
        request_timeout: DEADLINE,
    };
    let controller = Controller::start(settings, peers, registry).await.unwrap();
    Node { controller, stop }
}

async fn bind() -> (TcpListener, RaftNode) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc_addr = listener.local_addr().unwrap().to_string();
    (listener, RaftNode { rpc_addr })
}

fn command(n: u8) -> Command {
    Command::CreateTopic {
        name: format!("t{n}"),
        id: [n; 16],
        partitions: 1,
        replication_factor: 1,
        assignment: Some(vec![vec![1]]),
        configs: BTreeMap::new(),
        internal: false,
    }
}

fn register(id: i32) -> Command {
    let endpoint = metadata::Endpoint {
        host: "127.0.0.1".into(),
        port: 9092,
    };
    Command::RegisterBroker(metadata::BrokerRegistration {
        id,
        incarnation: [id as u8; 16],
        kafka: endpoint.clone(),
        cluster: endpoint,
        listeners: Default::default(),
        rack: None,
        fenced: false,
    })
}

/// Controllers 1, 2 and 3 on fresh loopback ports, the group initialized by the first, with
/// their addresses.
async fn three(dir: &std::path::Path) -> (Vec<Node>, BTreeMap<u64, RaftNode>) {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let (listener, node) = bind().await;
        members.insert(id, node);
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, listener) in (1..=3u64).zip(listeners) {
        nodes.push(start(id, dir, listener).await);
    }
    nodes[0]
        .controller
        .initialize(members.clone())
        .await
        .unwrap();
    (nodes, members)
}

/// Waits until `node` has applied a state with `topics` topics.
async fn wait_for_topics(node: &Controller, topics: usize) -> Arc<metadata::State> {
    let mut published = node.published();
    tokio::time::timeout(
        DEADLINE,
        published.wait_for(|p| p.state.topics.len() == topics),
    )
    .await
    .expect("state reached in time")
    .unwrap()
    .state
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_agree_forward_fail_over_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, members) = three(dir.path()).await;
    // Initializing again, anywhere, changes nothing.
    nodes[1]
        .controller
        .initialize(members.clone())
        .await
        .unwrap();

    // Proposed on every broker (forwarded to the leader by two of them).
    assert_eq!(
        nodes[2].controller.propose(&register(1)).await.unwrap(),
        Ok(Outcome::Done)
    );
    for (n, node) in nodes.iter().enumerate() {
        let answer = node.controller.propose(&command(n as u8)).await.unwrap();
        assert_eq!(answer, Ok(Outcome::Done));
    }
    // A refused command is answered as refused, wherever it was proposed.
    let again = nodes[1].controller.propose(&command(0)).await.unwrap();
    assert!(matches!(
        again,
        Err(metadata::Rejection::TopicExists { .. })
    ));
    let states: Vec<_> = {
        let mut states = Vec::new();
        for node in &nodes {
            states.push(wait_for_topics(&node.controller, 3).await);
        }
        states
    };
    assert!(states.iter().all(|s| **s == *states[0]));

    // The leader goes away; the two others elect a new one and keep taking commands.
    let leader = nodes[0].controller.leader().unwrap();
    let leader_at = (leader - 1) as usize;
    let gone = nodes.remove(leader_at);
    gone.controller.shutdown().await;
    gone.stop.send(true).unwrap();
    let answer = nodes[0].controller.propose(&command(10)).await.unwrap();
    assert_eq!(answer, Ok(Outcome::Done));
    assert_ne!(nodes[0].controller.leader(), Some(leader));

    // It comes back from its directory on the same address and catches up.
    let listener = TcpListener::bind(&members[&leader].rpc_addr).await.unwrap();
    let back = start(leader, dir.path(), listener).await;
    let state = wait_for_topics(&back.controller, 4).await;
    assert_eq!(*state, *wait_for_topics(&nodes[0].controller, 4).await);
    let (voters, _) = back.controller.members();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    nodes.push(back);

    // A fourth broker joins as a learner, then replaces a voter, which stays a learner.
    let (listener, fourth) = bind().await;
    let joined = start(4, dir.path(), listener).await;
    let leader = nodes[0].controller.leader().unwrap();
    let leader = nodes
        .iter()
        .find(|n| n.controller.node_id == leader)
        .unwrap();
    leader.controller.add_learner(4, fourth).await.unwrap();
    assert_eq!(*wait_for_topics(&joined.controller, 4).await, *state);
    let voters = BTreeSet::from([leader.controller.node_id, 4]);
    let third = (1..=3).find(|id| !voters.contains(id)).unwrap();
    let voters: BTreeSet<u64> = voters.into_iter().chain([third]).collect();
    let dropped = (1..=3).find(|id| !voters.contains(id)).unwrap();
    leader.controller.set_voters(voters.clone()).await.unwrap();
    let (now_voters, learners) = leader.controller.members();
    assert_eq!(now_voters, voters);
    assert_eq!(learners, BTreeSet::from([dropped]));
    // The new voter takes commands and sees them applied, with their raft index.
    let answer = joined.controller.propose(&command(11)).await.unwrap();
    assert_eq!(answer, Ok(Outcome::Done));
    wait_for_topics(&joined.controller, 5).await;
    assert!(joined.controller.published().borrow().applied_index > 0);
    joined.controller.shutdown().await;
    for node in &nodes {
        node.controller.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_forwarded_to_a_leader_that_never_answers_goes_to_the_next_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, members) = three(dir.path()).await;
    assert_eq!(
        nodes[0].controller.propose(&register(1)).await.unwrap(),
        Ok(Outcome::Done)
    );

    // The leader stops answering (a paused process): its address accepts connections and holds
    // them without a word.
    let leader = nodes[0].controller.leader().unwrap();
    let gone = nodes.remove((leader - 1) as usize);
    gone.controller.shutdown().await;
    gone.stop.send(true).unwrap();
    // (bound once the stopped server has let the address go)
    let silent = tokio::time::timeout(DEADLINE, async {
        loop {
            match TcpListener::bind(&members[&leader].rpc_addr).await {
                Ok(listener) => return listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });

    // A follower that still names the silent leader forwards to it; once the others elect a
    // new leader the proposal goes there, well within the request timeout (the whole timeout
    // spent on the silent one would leave none for the new leader).
    let answer = nodes[0].controller.propose(&command(1)).await;
    assert_eq!(answer.unwrap(), Ok(Outcome::Done));
    assert_ne!(nodes[0].controller.leader(), Some(leader));
    for node in &nodes {
        node.controller.shutdown().await;
    }
}
