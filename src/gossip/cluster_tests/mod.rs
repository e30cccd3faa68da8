//! Gossip scenarios with several nodes in one test: `memory.rs` over chitchat's in-memory
//! network with paused time (cut links, restarts, foreign clusters), `udp.rs` over real UDP on
//! loopback (cluster key, garbage datagrams, seeds by name). This file holds their harness.

mod cost;
mod memory;
mod udp;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use super::{
    BrokerInfo, DeadMember, FailureDetectorSettings, GossipHandle, GossipSettings, Member,
    Membership,
};

/// How long any awaited condition may take (virtual time under `start_paused`).
const DEADLINE: Duration = Duration::from_secs(60);

/// Settings tuned for tests: 100 ms rounds, a failure detector primed for them.
fn settings(
    node_id: i32,
    generation: u64,
    listen_addr: SocketAddr,
    seeds: &[SocketAddr],
) -> GossipSettings {
    let mut settings = GossipSettings::new(node_id, generation, listen_addr);
    settings.seeds = seeds.iter().map(SocketAddr::to_string).collect();
    settings.interval = Duration::from_millis(100);
    settings.failure_detector = FailureDetectorSettings {
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(2),
        ..FailureDetectorSettings::default()
    };
    settings.dead_node_grace_period = Duration::from_secs(60);
    settings
}

fn info(node_id: i32) -> BrokerInfo {
    let mut info = BrokerInfo::for_test(&format!("incarnation-{node_id}"));
    let listener = info
        .listeners
        .get_mut("PLAINTEXT")
        .expect("for_test has PLAINTEXT");
    listener.endpoint.host = format!("broker-{node_id}.example");
    info
}

/// Node ids of the live members.
fn live_ids(view: &Membership) -> BTreeSet<i32> {
    view.live.iter().map(|m: &Member| m.node_id).collect()
}

fn dead_ids(view: &Membership) -> BTreeSet<i32> {
    view.dead
        .iter()
        .map(|d: &DeadMember| d.member.node_id)
        .collect()
}

/// What every view must satisfy, whenever a test looks at one.
#[track_caller]
fn check_invariants(view: &Membership) {
    let mut seen = BTreeSet::new();
    for member in view.live.iter().chain(view.dead.iter().map(|d| &d.member)) {
        assert!(
            seen.insert((member.node_id, member.info.incarnation.clone())),
            "one broker reported twice (live and dead, or two generations): {view:#?}"
        );
    }
}

/// Waits until `node`'s view satisfies `condition` (checking invariants on every view seen).
async fn wait_for(
    node: &GossipHandle,
    what: &str,
    condition: impl Fn(&Membership) -> bool,
) -> Membership {
    let mut views = node.membership();
    wait_for_view(&mut views, node.node_id(), what, condition).await
}

async fn wait_for_view(
    views: &mut watch::Receiver<Membership>,
    node_id: i32,
    what: &str,
    condition: impl Fn(&Membership) -> bool,
) -> Membership {
    let waited = tokio::time::timeout(
        DEADLINE,
        views.wait_for(|view| {
            check_invariants(view);
            condition(view)
        }),
    )
    .await
    .map(|result| result.map(|view| view.clone()));
    match waited {
        Ok(Ok(view)) => view,
        Ok(Err(_)) => panic!("node {node_id}: gossip stopped while waiting for {what}"),
        Err(_) => panic!(
            "node {node_id}: no view with {what} within {DEADLINE:?}; last: {:#?}",
            *views.borrow()
        ),
    }
}

/// Waits until every node sees exactly `ids` live.
async fn wait_all_live(nodes: &[&GossipHandle], ids: &[i32]) {
    let expected: BTreeSet<i32> = ids.iter().copied().collect();
    for node in nodes {
        wait_for(node, &format!("live {ids:?}"), |v| live_ids(v) == expected).await;
    }
}
