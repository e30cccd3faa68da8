//! Figures, not assertions (run by hand, `--ignored --nocapture`): how long the default failure
//! detector takes to report a dead node and a healed one, and the CPU gossip costs at the default
//! 500 ms interval.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{dead_ids, info, live_ids, wait_for};
use crate::gossip::{GossipHandle, GossipSettings, MemoryNetwork};

fn default_settings(node_id: i32, listen_addr: SocketAddr, seed: SocketAddr) -> GossipSettings {
    let mut settings = GossipSettings::new(node_id, 1, listen_addr);
    settings.seeds = vec![seed.to_string()];
    settings
}

/// Cut one node of three after `warm_up` of gossip; prints virtual times to dead and back.
#[tokio::test(start_paused = true)]
#[ignore = "prints figures"]
async fn detection_times_with_default_settings() {
    for warm_up in [
        Duration::from_secs(5),
        Duration::from_secs(60),
        Duration::from_secs(600),
    ] {
        let network = MemoryNetwork::new();
        let addr = |id: u16| SocketAddr::from(([127, 0, 0, 1], 7000 + id));
        let mut nodes = Vec::new();
        for id in 1..=3u16 {
            let settings = default_settings(i32::from(id), addr(id), addr(1));
            let node_info = info(i32::from(id));
            nodes.push(
                GossipHandle::start_in_memory(settings, node_info, &network)
                    .await
                    .unwrap(),
            );
        }
        for node in &nodes {
            wait_for(node, "all live", |v| live_ids(v).len() == 3).await;
        }
        tokio::time::sleep(warm_up).await;
        network.cut(addr(3), addr(1)).await;
        network.cut(addr(3), addr(2)).await;
        let cut_at = Instant::now();
        wait_for(&nodes[0], "node 3 dead", |v| dead_ids(v) == [3].into()).await;
        let to_dead = cut_at.elapsed();
        network.heal(addr(3), addr(1)).await;
        network.heal(addr(3), addr(2)).await;
        let healed_at = Instant::now();
        wait_for(&nodes[0], "node 3 live", |v| live_ids(v).len() == 3).await;
        let to_live = healed_at.elapsed();
        eprintln!(
            "interval 500 ms, default detector, after {warm_up:?} of gossip: \
             cut -> dead {to_dead:?}, heal -> live {to_live:?}"
        );
    }
}

/// Process CPU time (user + system) so far, from /proc/self/stat, in clock ticks of 10 ms.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "prints figures"]
async fn cpu_per_node_at_the_default_interval() {
    const MEASURED: Duration = Duration::from_secs(30);
    for count in [3, 10, 30] {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let first = GossipHandle::start(GossipSettings::new(1, 1, any), info(1))
            .await
            .unwrap();
        let mut nodes = vec![first];
        for id in 2..=count {
            let settings = default_settings(id, any, nodes[0].gossip_addr());
            nodes.push(GossipHandle::start(settings, info(id)).await.unwrap());
        }
        for node in &nodes {
            let all = usize::try_from(count).unwrap();
            wait_for(node, "all live", |v| v.live.len() == all).await;
        }
        let (cpu_before, sent_before) = (cpu_time(), nodes[0].stats().datagrams_sent);
        tokio::time::sleep(MEASURED).await;
        let cpu = cpu_time() - cpu_before;
        let sent = nodes[0].stats().datagrams_sent - sent_before;
        let per_node = cpu / u32::try_from(count).unwrap();
        eprintln!(
            "{count} nodes in one process, 500 ms interval, {MEASURED:?}: CPU {cpu:?} in all, \
             {per_node:?} per node ({:.2}% of a core); node 1 sent {sent} datagrams",
            per_node.as_secs_f64() / MEASURED.as_secs_f64() * 100.0
        );
        for node in nodes {
            node.shutdown().await.unwrap();
        }
    }
}
