//! Brokers as real processes forming one cluster by gossip: every broker lists the same
//! brokers, cluster id and controller; the controller fails over after kill -9 of its leader;
//! a broker whose data dir belongs to another cluster is refused and exits.

use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

use crate::harness::{Broker, wait_until};
use crate::raw::RawConn;

const FORM_DEADLINE: Duration = Duration::from_secs(90);

fn cluster_env(node_id: i32, expect: usize, seeds: &str) -> Vec<(String, String)> {
    [
        ("TIDELOG_NODE_ID", node_id.to_string()),
        ("TIDELOG_CLUSTER__LISTEN", "127.0.0.1:0".to_owned()),
        ("TIDELOG_CLUSTER__BOOTSTRAP_EXPECT", expect.to_string()),
        ("TIDELOG_CLUSTER__SEEDS", seeds.to_owned()),
        ("TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS", "100".to_owned()),
        (
            "TIDELOG_CLUSTER__BROKER_SESSION_TIMEOUT_MS",
            "3000".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn start(dir: &std::path::Path, env: &[(String, String)]) -> Broker {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Broker::start_with_env(dir, &env)
}

/// The gossip address a broker logged when its cluster member started.
fn gossip_addr(broker: &Broker) -> String {
    let mut found = None;
    wait_until(FORM_DEADLINE, "the cluster member's start line", || {
        found = broker.log().lines().find_map(|line| {
            let at = line.find("cluster member started")?;
            let rest = &line[at..];
            let addr = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("gossip="))?;
            Some(addr.trim_matches('"').to_owned())
        });
        found.is_some()
    });
    found.expect("wait_until returned once the line was found")
}

fn metadata(addr: SocketAddr) -> MetadataResponse {
    RawConn::connect(addr).roundtrip(
        &MetadataRequest::default().with_topics(Some(Vec::new())),
        12,
    )
}

/// (cluster id, controller id, sorted broker ids) as `addr` reports them.
fn view(addr: SocketAddr) -> (String, i32, Vec<i32>) {
    let response = metadata(addr);
    let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    (
        response
            .cluster_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        response.controller_id.0,
        ids,
    )
}

#[test]
fn three_brokers_form_one_cluster_by_gossip_and_survive_the_controller_leaders_kill() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut brokers = vec![start(dirs[0].path(), &cluster_env(1, 3, ""))];
    let seed = gossip_addr(&brokers[0]);
    for id in 2..=3 {
        brokers.push(start(
            dirs[id as usize - 1].path(),
            &cluster_env(id, 3, &seed),
        ));
    }
    wait_until(FORM_DEADLINE, "every broker lists all three", || {
        brokers.iter().all(|b| {
            let (_, controller, ids) = view(b.addr());
            ids == [1, 2, 3] && controller > 0
        })
    });
    let views: Vec<_> = brokers.iter().map(|b| view(b.addr())).collect();
    let cluster_id = views[0].0.clone();
    assert_ne!(cluster_id, "tidelog-single-node");
    assert!(views.iter().all(|v| v.0 == cluster_id), "{views:?}");
    // Every data dir records the cluster it joined.
    for dir in &dirs {
        let meta = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
        assert!(meta.contains(&format!("cluster.id={cluster_id}")), "{meta}");
    }

    // kill -9 of the controller leader: the two others elect another and list only themselves
    // once the lost broker is fenced.
    let leader = views[0].1;
    let at = usize::try_from(leader - 1).unwrap();
    brokers[at].kill9();
    let survivors: Vec<SocketAddr> = brokers
        .iter_mut()
        .filter_map(|b| b.is_running().then(|| b.addr()))
        .collect();
    assert_eq!(survivors.len(), 2);
    wait_until(
        FORM_DEADLINE,
        "a new controller and the lost broker fenced",
        || {
            survivors.iter().all(|&addr| {
                let (id, controller, ids) = view(addr);
                id == cluster_id && controller > 0 && controller != leader && !ids.contains(&leader)
            })
        },
    );
}

#[test]
fn a_broker_of_another_cluster_is_refused_and_exits() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = start(a.path(), &cluster_env(1, 1, ""));
    let seed = gossip_addr(&first);
    let mut stranger = start(b.path(), &cluster_env(2, 1, ""));
    let formed = |addr: SocketAddr, id: i32| {
        let (cluster_id, controller, ids) = view(addr);
        cluster_id != "tidelog-single-node" && controller == id && ids == [id]
    };
    wait_until(FORM_DEADLINE, "both one-broker clusters formed", || {
        formed(first.addr(), 1) && formed(stranger.addr(), 2)
    });
    let theirs = view(stranger.addr()).0;
    assert_ne!(theirs, view(first.addr()).0);
    assert!(stranger.stop().success());
    let mut stranger = start(b.path(), &cluster_env(2, 1, &seed));
    wait_until(FORM_DEADLINE, "the stranger exits", || {
        !stranger.is_running()
    });
    let log = stranger.log();
    assert!(
        log.contains(&format!("this data dir belongs to cluster {theirs}")),
        "{log}"
    );
    assert_eq!(view(first.addr()).2, [1], "never registered");
    assert!(
        first.is_running(),
        "the broker the stranger found keeps running"
    );
}
