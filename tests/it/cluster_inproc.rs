//! The in-process cluster harness: five brokers started with `tidelog::app::start` on loopback
//! ports in this test's process (each with its own temp data dir), on a runtime of their own so
//! the test may block; the multi-process harness is `cluster.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use tidelog::app::{self, Running};
use tidelog::config::{self, CliOverrides};

use crate::harness::{self, CLIENT_DEADLINE, wait_until};

const FORM_DEADLINE: Duration = Duration::from_secs(90);

/// Brokers of one cluster running in this process.
pub(crate) struct InProcessCluster {
    runtime: tokio::runtime::Runtime,
    brokers: Vec<Running>,
    _dirs: Vec<tempfile::TempDir>,
}

impl InProcessCluster {
    /// Starts `count` brokers (node ids 1..=count); the first `expect` form the controller.
    fn start(count: i32, expect: u32) -> InProcessCluster {
        let mut cluster = InProcessCluster::empty();
        for _ in 0..count {
            cluster.add(expect);
        }
        cluster
    }

    /// No broker yet; `add` starts them.
    pub(crate) fn empty() -> InProcessCluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the brokers");
        InProcessCluster {
            runtime,
            brokers: Vec::new(),
            _dirs: Vec::new(),
        }
    }

    /// Starts the next broker (node id = its position + 1, seeded by the first), with an admin
    /// listener; the first `expect` brokers form the controller.
    pub(crate) fn add(&mut self, expect: u32) -> &Running {
        let id = i32::try_from(self.brokers.len() + 1).expect("few brokers");
        let dir = tempfile::tempdir().expect("temp dir");
        let seeds = self
            .brokers
            .first()
            .and_then(Running::gossip_addr)
            .map(|addr| vec![addr.to_string()])
            .unwrap_or_default();
        let env = [
            ("TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS", "100"),
            ("TIDELOG_CLUSTER__BROKER_SESSION_TIMEOUT_MS", "3000"),
        ];
        let overrides = CliOverrides {
            data_dir: Some(dir.path().to_path_buf()),
            listen: Some(loopback()),
            node_id: Some(id),
            cluster_listen: Some(loopback()),
            seeds: Some(seeds),
            bootstrap_expect: Some(expect),
            admin_listen: Some(loopback()),
            ..CliOverrides::default()
        };
        let config = config::resolve(None, env, &overrides).expect("a valid config");
        let running = self
            .runtime
            .block_on(app::start(&config))
            .expect("the broker starts");
        self.brokers.push(running);
        self._dirs.push(dir);
        self.brokers.last().expect("just pushed")
    }

    /// The runtime the brokers run on (clients' futures may be driven on it too).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The brokers started so far, in node id order.
    pub(crate) fn brokers(&self) -> &[Running] {
        &self.brokers
    }

    fn bootstrap(&self, at: usize) -> String {
        self.brokers[at].kafka_addr().to_string()
    }

    pub(crate) fn stop(self) {
        let InProcessCluster {
            runtime, brokers, ..
        } = self;
        for broker in brokers {
            runtime
                .block_on(broker.shutdown())
                .expect("a clean shutdown");
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn five_brokers_in_one_process_spread_a_topic_and_serve_every_partition() {
    let cluster = InProcessCluster::start(5, 3);
    let bootstraps: Vec<String> = (0..5).map(|at| cluster.bootstrap(at)).collect();
    wait_until(FORM_DEADLINE, "every broker lists all five", || {
        bootstraps
            .iter()
            .all(|b| harness::metadata(b).brokers().len() == 5)
    });
    cluster
        .runtime
        .block_on(harness::create_topic(&bootstraps[4], "five", 10, &[]));
    let leaders = |bootstrap: &str| -> Vec<i32> {
        harness::metadata(bootstrap)
            .topics()
            .iter()
            .filter(|t| t.name() == "five")
            .flat_map(|t| t.partitions().iter().map(|p| p.leader()))
            .collect()
    };
    wait_until(FORM_DEADLINE, "ten partitions led by all five", || {
        let mut led = leaders(&bootstraps[0]);
        led.sort_unstable();
        led.dedup();
        led == [1, 2, 3, 4, 5]
    });
    let producer = harness::producer(&bootstraps[2], &[]);
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    let deliveries: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let record = FutureRecord::to("five")
                .partition(i as i32 % 10)
                .key("k")
                .payload(value);
            producer.send(record, CLIENT_DEADLINE)
        })
        .collect();
    for delivery in deliveries {
        cluster.runtime.block_on(delivery).expect("delivered");
    }
    let wanted: Vec<(i32, i64, usize)> = (0..10).map(|p| (p, 0, 10)).collect();
    let read = harness::consume(&bootstraps[1], "five", &wanted, CLIENT_DEADLINE);
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), 100);
    drop(producer);
    cluster.stop();
}
