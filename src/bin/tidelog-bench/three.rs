//! Three `tidelog` brokers as child processes formed into one cluster by gossip (node ids 1-3,
//! own temp dirs); every one is killed on drop, so no exit path leaves a broker behind.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use crate::broker::{BROKER_STOP_TIMEOUT, BrokerProcess, LOG_TAIL_LINES};
use crate::client::Cluster;
use crate::wire::{ClusterView, cluster_view};

/// Brokers in the cluster; also its `bootstrap_expect`.
pub(crate) const CLUSTER_SIZE: i32 = 3;
/// Time allowed for three brokers to start and agree on the brokers and the controller.
const FORM_TIMEOUT: Duration = Duration::from_secs(90);
/// Socket timeout of each raw request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// Pause between polls of a condition.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One broker of the cluster.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) node_id: i32,
    pub(crate) process: BrokerProcess,
    /// Its Kafka listener, HOST:PORT.
    pub(crate) addr: String,
    pub(crate) is_alive: bool,
}

/// A formed cluster of `CLUSTER_SIZE` brokers.
#[derive(Debug)]
pub(crate) struct ThreeBrokers {
    pub(crate) members: Vec<Member>,
}

/// The cluster settings of broker `node_id` (gossip every 100 ms, 3 s broker session).
fn cluster_env(node_id: i32, seeds: &str) -> Vec<(&'static str, String)> {
    cluster_env_with(node_id, seeds, None)
}

/// [`cluster_env`] with the topics' default replication factor set (the broker's own default,
/// min(3, brokers), when None).
fn cluster_env_with(
    node_id: i32,
    seeds: &str,
    replication_factor: Option<i16>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("TIDELOG_NODE_ID", node_id.to_string()),
        ("TIDELOG_CLUSTER__LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TIDELOG_CLUSTER__BOOTSTRAP_EXPECT",
            CLUSTER_SIZE.to_string(),
        ),
        ("TIDELOG_CLUSTER__SEEDS", seeds.to_owned()),
        ("TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS", "100".to_owned()),
        (
            "TIDELOG_CLUSTER__BROKER_SESSION_TIMEOUT_MS",
            "3000".to_owned(),
        ),
    ];
    if let Some(factor) = replication_factor {
        env.push((
            "TIDELOG_TOPICS__DEFAULT_REPLICATION_FACTOR",
            factor.to_string(),
        ));
    }
    env
}

impl ThreeBrokers {
    /// Starts broker 1 without seeds, then brokers 2 and 3 seeded with its gossip address, and
    /// waits until every broker lists all three and names the same controller leader.
    pub(crate) fn form(
        bin: &Path,
        label: &str,
        keep_data: bool,
        deadline: Instant,
    ) -> Result<ThreeBrokers> {
        ThreeBrokers::form_with(bin, label, keep_data, deadline, None)
    }

    /// [`ThreeBrokers::form`] with the topics' default replication factor set.
    pub(crate) fn form_with(
        bin: &Path,
        label: &str,
        keep_data: bool,
        deadline: Instant,
        replication_factor: Option<i16>,
    ) -> Result<ThreeBrokers> {
        let started = Instant::now();
        let mut cluster = ThreeBrokers {
            members: Vec::new(),
        };
        let mut seeds = String::new();
        for node_id in 1..=CLUSTER_SIZE {
            let work_dir = std::env::temp_dir().join(format!(
                "tidelog-bench-{}-{label}-n{node_id}",
                std::process::id()
            ));
            let (process, addr) = BrokerProcess::start(
                bin,
                work_dir,
                keep_data,
                &cluster_env_with(node_id, &seeds, replication_factor),
            )
            .with_context(|| format!("starting broker {node_id}"))?;
            if node_id == 1 {
                seeds = process.gossip_addr(FORM_TIMEOUT)?;
            }
            cluster.members.push(Member {
                node_id,
                process,
                addr,
                is_alive: true,
            });
        }
        let ready_by = (started + FORM_TIMEOUT).min(deadline);
        let all: Vec<i32> = (1..=CLUSTER_SIZE).collect();
        loop {
            let views: Vec<Option<ClusterView>> = cluster
                .members
                .iter()
                .map(|m| cluster_view(&m.addr, REQUEST_TIMEOUT).ok())
                .collect();
            let controller = views[0].as_ref().map_or(-1, |v| v.controller_id);
            let is_formed = controller > 0
                && views.iter().all(|view| {
                    view.as_ref()
                        .is_some_and(|v| v.broker_ids == all && v.controller_id == controller)
                });
            if is_formed {
                return Ok(cluster);
            }
            ensure!(
                Instant::now() < ready_by,
                "the three brokers did not agree on brokers {all:?} and one controller within \
                 {FORM_TIMEOUT:?} (views {views:?}){}",
                cluster.log_tails()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Starts the stopped (or killed) member `at` again on its data dir and Kafka port, seeded
    /// with a live member's gossip address.
    pub(crate) fn restart(&mut self, at: usize, bin: &Path) -> Result<()> {
        let seed = self
            .members
            .iter()
            .find(|m| m.is_alive)
            .context("a live member to seed the restart")?
            .process
            .gossip_addr(FORM_TIMEOUT)?;
        let member = &mut self.members[at];
        let addr = member
            .process
            .restart(bin, &cluster_env(member.node_id, &seed), &member.addr)
            .with_context(|| format!("restarting broker {}", member.node_id))?;
        ensure!(
            addr == member.addr,
            "restarted broker {} listens on {addr}, not {}",
            member.node_id,
            member.addr
        );
        member.is_alive = true;
        Ok(())
    }

    /// What clients of the cluster are given: broker 1 to bootstrap from, replicated partitions
    /// (raft control batches take offsets between records).
    pub(crate) fn clients(&self, client_debug: Option<String>) -> Cluster {
        Cluster {
            bootstrap: self.bootstrap().to_owned(),
            client_debug,
            replicated: true,
            settings: Vec::new(),
        }
    }

    /// The first member's Kafka address: what clients bootstrap from.
    pub(crate) fn bootstrap(&self) -> &str {
        &self.members[0].addr
    }

    /// The controller leader every live broker names (-1 when they disagree or cannot say).
    pub(crate) fn controller_id(&self) -> i32 {
        let ids: Vec<i32> = self
            .members
            .iter()
            .filter(|m| m.is_alive)
            .map(|m| cluster_view(&m.addr, REQUEST_TIMEOUT).map_or(-1, |v| v.controller_id))
            .collect();
        match ids.first() {
            Some(&id) if ids.iter().all(|&other| other == id) => id,
            _ => -1,
        }
    }

    /// The last log lines of every broker, for an error message.
    pub(crate) fn log_tails(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "\n--- broker {} ({}) ---\n{}",
                    m.node_id,
                    m.process.log_path.display(),
                    m.process.log_tail(LOG_TAIL_LINES)
                )
            })
            .collect()
    }

    /// SIGTERM to every live broker, in turn; a broker that does not stop is killed (and
    /// warned about). Dropping the cluster kills whatever is left.
    pub(crate) fn stop(mut self) {
        for member in self.members.iter_mut().filter(|m| m.is_alive) {
            if let Err(error) = member.process.stop(BROKER_STOP_TIMEOUT) {
                eprintln!(
                    "tidelog-bench: warning: broker {}: {error:#}",
                    member.node_id
                );
            }
            member.is_alive = false;
        }
    }
}
