//! The network lab (tests/netlab): a broker in a namespace serves clients in the root namespace
//! over the bridge; cut links and isolation stall traffic until healed; a restart keeps the
//! address; dropping the lab leaves no namespace; stale namespaces of dead runs are swept; a
//! cluster's controller leader isolated in its namespace is replaced and rejoins when healed.
//! Skipped (with the reason printed) where namespaces cannot be made (not root, no iproute2).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use rdkafka::producer::FutureRecord;

use crate::harness::{self, CLIENT_DEADLINE};
use crate::netlab::tidelog::{Broker, ClusterFlags};
use crate::netlab::{self, End, Lab};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_500);

fn lab_or_skip(nodes: usize) -> Option<Lab> {
    if let Some(reason) = netlab::unavailable_reason() {
        eprintln!("skipped: network lab unavailable: {reason}");
        return None;
    }
    Some(Lab::create(nodes).expect("create the lab"))
}

fn host_reaches(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok()
}

/// Whether a TCP connection from node `from` to `addr` opens (bash's /dev/tcp, 1.5 s limit).
fn node_reaches(lab: &Lab, from: usize, addr: SocketAddr) -> bool {
    let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
    lab.command(from, "timeout")
        .args(["1.5", "bash", "-c", &script])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run timeout bash in the namespace")
        .success()
}

fn namespaces() -> String {
    String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_in_a_lab_namespace_serves_the_host_until_its_links_are_cut() {
    let Some(lab) = lab_or_skip(2) else {
        return;
    };
    let names = [lab.netns(0).to_owned(), lab.netns(1).to_owned()];
    let program = Path::new(env!("CARGO_BIN_EXE_tidelog"));
    let mut broker = Broker::new(&lab, program, 0, 1, None, &[]);
    broker.start(&lab).expect("start the broker in node 0");
    let addr = broker.kafka_addr();
    assert_eq!(addr.ip(), lab.node_ip(0));
    assert!(host_reaches(addr), "host -> node 0");
    assert!(node_reaches(&lab, 1, addr), "node 1 -> node 0");

    lab.cut(End::Node(0), End::Host).expect("cut host link");
    assert!(!host_reaches(addr), "host reached node 0 across a cut link");
    assert!(
        node_reaches(&lab, 1, addr),
        "cutting the host link cut node 1 too"
    );
    lab.cut(End::Node(0), End::Node(1)).expect("cut node link");
    assert!(
        !node_reaches(&lab, 1, addr),
        "node 1 reached node 0 across a cut link"
    );
    lab.heal_all().expect("heal");
    assert!(
        host_reaches(addr) && node_reaches(&lab, 1, addr),
        "heal restores both links"
    );
    lab.isolate(0).expect("isolate");
    assert!(
        !host_reaches(addr) && !node_reaches(&lab, 1, addr),
        "isolated node was reached"
    );
    lab.heal(End::Node(0), End::Host).expect("heal one link");
    assert!(host_reaches(addr), "healed link");
    assert!(
        !node_reaches(&lab, 1, addr),
        "healing one link healed another"
    );
    lab.heal_all().expect("heal");

    // Kafka through the bridge, across a kill -9 and a restart on the same address.
    let bootstrap = broker.kafka_addr().to_string();
    harness::create_topic(&bootstrap, "lab", 1, &[]).await;
    let producer = harness::producer(&bootstrap, &[("acks", "all")]);
    let delivered = producer
        .send(
            FutureRecord::<(), _>::to("lab").payload("one"),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce through the bridge");
    assert_eq!(delivered, (0, 0));
    broker.kill9().expect("kill -9");
    assert!(
        !host_reaches(addr),
        "a killed broker still accepts connections"
    );
    broker.start(&lab).expect("restart");
    let records = harness::consume_to_high_watermark(&bootstrap, "lab", 0, 0);
    assert_eq!(records.len(), 1, "the acknowledged record survived kill -9");

    drop(broker);
    drop(lab);
    let left = namespaces();
    for name in &names {
        assert!(!left.contains(name.as_str()), "{name} left behind:\n{left}");
    }
}

#[test]
fn stale_namespaces_of_dead_runs_are_swept_and_foreign_ones_kept() {
    let Some(lab) = lab_or_skip(1) else {
        return;
    };
    // A lab name of this pid with another start time: its owner is dead.
    let live = lab.netns(0).to_owned(); // tlab-<pid>-<start>-<seq>-n0
    let fields: Vec<&str> = live.split('-').collect();
    let start: u64 = fields[2].parse().expect("start ticks");
    let stale = format!("tlab-{}-{}-0-n0", fields[1], start + 1);
    let foreign = format!("tidelog-it-foreign-{}", std::process::id());
    for name in [&stale, &foreign] {
        let status = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip netns add");
        assert!(status.success(), "ip netns add {name}");
    }
    let second = Lab::create(1).expect("create a second lab");
    let left = namespaces();
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &foreign])
        .status();
    assert!(
        !left.contains(&stale),
        "stale {stale} was not swept:\n{left}"
    );
    assert!(
        left.contains(&foreign),
        "foreign {foreign} was touched:\n{left}"
    );
    assert!(
        left.contains(&live),
        "the live lab {live} was swept:\n{left}"
    );
    drop(second);
    drop(lab);
}

/// Three brokers in three namespaces form a cluster by gossip; the controller leader's node is
/// cut off from everything: the other two elect a new leader, fence it after the session
/// timeout and keep taking CreateTopics; healed, it is back and follows the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_controller_leader_is_replaced_and_rejoins_when_healed() {
    let Some(lab) = lab_or_skip(3) else {
        return;
    };
    let program = Path::new(env!("CARGO_BIN_EXE_tidelog"));
    let seeds = vec![SocketAddr::from((lab.node_ip(0), 9093))];
    let flags = ClusterFlags {
        seeds,
        bootstrap_expect: 3,
    };
    let env = [
        ("TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS", "100"),
        ("TIDELOG_CLUSTER__BROKER_SESSION_TIMEOUT_MS", "3000"),
    ];
    let mut brokers: Vec<Broker> = (0..3)
        .map(|node| Broker::new(&lab, program, node, node as u32 + 1, Some(&flags), &env))
        .collect();
    for broker in &mut brokers {
        broker.launch(&lab).expect("launch");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for broker in &mut brokers {
        broker.wait_listening(deadline).expect("listening");
    }
    let addrs: Vec<SocketAddr> = brokers.iter().map(Broker::kafka_addr).collect();
    harness::wait_until(Duration::from_secs(90), "one cluster of three", || {
        let views: Vec<_> = addrs.iter().map(|&a| crate::cluster::view(a)).collect();
        views
            .iter()
            .all(|v| v.2 == [1, 2, 3] && v.1 > 0 && v.1 == views[0].1)
    });
    let leader = crate::cluster::view(addrs[0]).1;
    let isolated = usize::try_from(leader - 1).expect("node ids are 1..=3");
    lab.isolate(isolated).expect("isolate the leader's node");
    let survivors: Vec<SocketAddr> = (0..3)
        .filter(|&n| n != isolated)
        .map(|n| addrs[n])
        .collect();
    harness::wait_until(
        Duration::from_secs(90),
        "a new leader, the isolated one fenced",
        || {
            survivors.iter().all(|&a| {
                let (_, controller, ids) = crate::cluster::view(a);
                controller > 0 && controller != leader && !ids.contains(&leader)
            })
        },
    );
    let bootstrap = survivors[0].to_string();
    harness::create_topic(&bootstrap, "while-cut", 2, &[]).await;
    lab.heal_all().expect("heal");
    harness::wait_until(
        Duration::from_secs(90),
        "all three back, one leader",
        || {
            let views: Vec<_> = addrs.iter().map(|&a| crate::cluster::view(a)).collect();
            views
                .iter()
                .all(|v| v.2 == [1, 2, 3] && v.1 > 0 && v.1 == views[0].1)
        },
    );
    // The healed broker learned what happened while it was cut off.
    let healed = addrs[isolated].to_string();
    harness::wait_until(
        Duration::from_secs(60),
        "the topic known everywhere",
        || harness::partition_count(&healed, "while-cut") == Some(2),
    );
}
