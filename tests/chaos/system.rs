//! The system under test: brokers in lab namespaces, either one cluster (the issue-9 flags, topic
//! with replication factor 3) or independent single nodes (one topic each, no replication), and
//! the topics the workload writes to.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::netlab::Lab;
use crate::netlab::tidelog::{Broker, ClusterFlags, PROCESS_DEADLINE};

/// How long topic creation and the first leaders may take.
const SETUP_DEADLINE: Duration = Duration::from_secs(90);
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Independent single-node brokers, one topic each (no replication).
    Single,
    /// One cluster of every broker, one topic replicated on min(3, brokers).
    Cluster,
}

/// A topic the workload writes to, and the brokers that serve it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) bootstrap: String,
    /// Indexes into [`System::brokers`].
    pub(crate) brokers: Vec<usize>,
    /// `cleanup.policy=compact` with small segments (see `Options::compacted`).
    pub(crate) compacted: bool,
}

/// Topic configs of a compacted target: segments small enough to roll under the workload's
/// rate, every dirty segment due for cleaning.
const COMPACTED_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.bytes", "65536"),
    ("min.cleanable.dirty.ratio", "0.01"),
];
/// Broker environment of a compacted run: maintenance (rolls, purges, compaction) every second.
const COMPACTED_ENV: &[(&str, &str)] = &[("TIDELOG_LOG__RETENTION_CHECK_INTERVAL_MS", "1000")];

#[derive(Debug)]
pub(crate) struct System {
    pub(crate) mode: Mode,
    /// Replication factor of the topics (1 in single-node mode; in cluster mode, 1 if the
    /// cluster refuses more, i.e. before replication exists).
    pub(crate) replication: i32,
    pub(crate) brokers: Vec<Broker>,
    pub(crate) targets: Vec<Target>,
    // Last, so brokers are dropped (killed) before their namespaces go.
    pub(crate) lab: Lab,
}

impl System {
    pub(crate) fn start(
        mode: Mode,
        program: &Path,
        broker_count: usize,
        partitions: i32,
        compacted: bool,
    ) -> anyhow::Result<System> {
        let lab = Lab::create(broker_count).context("create the network lab")?;
        let seeds: Vec<SocketAddr> = (0..broker_count)
            .map(|i| SocketAddr::from((lab.node_ip(i), crate::netlab::tidelog::CLUSTER_PORT)))
            .collect();
        let cluster = ClusterFlags {
            seeds,
            bootstrap_expect: broker_count,
        };
        let mut brokers: Vec<Broker> = (0..broker_count)
            .map(|i| {
                let node_id = u32::try_from(i + 1).expect("few brokers");
                let flags = (mode == Mode::Cluster).then_some(&cluster);
                let env = if compacted { COMPACTED_ENV } else { &[] };
                Broker::new(&lab, program, i, node_id, flags, env)
            })
            .collect();
        for broker in &mut brokers {
            broker.launch(&lab)?;
        }
        let deadline = Instant::now() + PROCESS_DEADLINE;
        for broker in &mut brokers {
            broker.wait_listening(deadline)?;
        }
        let targets = match mode {
            Mode::Single => brokers
                .iter()
                .map(|broker| Target {
                    topic: format!("chaos-n{}", broker.node_id()),
                    partitions,
                    bootstrap: broker.kafka_addr().to_string(),
                    brokers: vec![broker.node()],
                    compacted,
                })
                .collect(),
            Mode::Cluster => vec![Target {
                topic: "chaos".to_owned(),
                partitions,
                bootstrap: brokers
                    .iter()
                    .map(|b| b.kafka_addr().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                brokers: (0..broker_count).collect(),
                compacted,
            }],
        };
        let mut system = System {
            mode,
            replication: 1,
            brokers,
            targets,
            lab,
        };
        for target in &system.targets {
            if mode == Mode::Cluster {
                wait_for_brokers(target, broker_count)?;
                let wanted = i32::try_from(broker_count.min(3)).expect("small");
                system.replication = create_replicated_topic(target, wanted)?;
            } else {
                create_topic(target, 1, SETUP_DEADLINE)?;
            }
            wait_for_leaders(target)?;
        }
        Ok(system)
    }

    /// Restarts brokers that are down and resumes paused ones; heals every cut link.
    pub(crate) fn heal_everything(&mut self) -> anyhow::Result<()> {
        self.lab.heal_all()?;
        for broker in &mut self.brokers {
            if broker.is_paused() {
                broker.resume()?;
            }
        }
        let mut errors = Vec::new();
        for broker in &mut self.brokers {
            broker.reap_if_exited();
            if !broker.is_started()
                && let Err(error) = broker.start(&self.lab)
            {
                errors.push(format!("{error:#}"));
            }
        }
        if !errors.is_empty() {
            bail!("brokers did not come back: {}", errors.join("; "));
        }
        Ok(())
    }

    /// SIGTERM to every running broker, waiting for each to exit.
    pub(crate) fn stop_all(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for broker in &mut self.brokers {
            if broker.is_started()
                && let Err(error) = broker.stop()
            {
                errors.push(format!("broker {}: {error:#}", broker.node_id()));
            }
        }
        errors
    }
}

pub(crate) fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("log_level", "3");
    config
}

/// How long CreateTopics may refuse a replication factor while every broker is registered
/// before the run concludes the cluster cannot replicate yet.
const REPLICATION_REFUSED_DEADLINE: Duration = Duration::from_secs(20);

/// Creates the topic with `wanted` replicas, or with 1 if the cluster keeps answering
/// INVALID_REPLICATION_FACTOR (a cluster without replication, issue 9 before issue 10); returns
/// the replication factor used.
fn create_replicated_topic(target: &Target, wanted: i32) -> anyhow::Result<i32> {
    match create_topic(target, wanted, REPLICATION_REFUSED_DEADLINE) {
        Ok(()) => Ok(wanted),
        Err(error) if format!("{error:#}").contains("InvalidReplicationFactor") => {
            println!(
                "CreateTopics keeps refusing replication factor {wanted} with every broker \
                 registered: this cluster does not replicate yet; testing replication factor 1"
            );
            create_topic(target, 1, SETUP_DEADLINE)?;
            Ok(1)
        }
        Err(error) => Err(error),
    }
}

/// Waits until metadata lists `count` brokers (the cluster formed).
fn wait_for_brokers(target: &Target, count: usize) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(&target.bootstrap)
        .create()
        .context("create a metadata client")?;
    let deadline = Instant::now() + SETUP_DEADLINE;
    loop {
        let seen = consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .map_or(0, |metadata| metadata.brokers().len());
        if seen >= count {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the cluster did not form: metadata lists {seen} of {count} brokers");
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}

fn create_topic(target: &Target, replication: i32, patience: Duration) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(&target.bootstrap)
        .create()
        .context("create an admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build a runtime for the admin client")?;
    let mut topic = NewTopic::new(
        &target.topic,
        target.partitions,
        TopicReplication::Fixed(replication),
    );
    if target.compacted {
        for (name, value) in COMPACTED_CONFIGS {
            topic = topic.set(name, value);
        }
    }
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let deadline = Instant::now() + patience;
    loop {
        let result = runtime.block_on(admin.create_topics([&topic], &options));
        let last = match result {
            Ok(results) => match results.first() {
                Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return Ok(()),
                Some(Err((_, code))) => format!("{code:?}"),
                None => "no result".to_owned(),
            },
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "creating topic {} failed until the deadline: {last}",
                target.topic
            );
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}

/// Waits until metadata lists every partition of the target's topic with a leader.
fn wait_for_leaders(target: &Target) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(&target.bootstrap)
        .create()
        .context("create a metadata client")?;
    let deadline = Instant::now() + SETUP_DEADLINE;
    loop {
        let led = consumer
            .fetch_metadata(Some(&target.topic), Duration::from_secs(5))
            .ok()
            .and_then(|metadata| {
                let topic = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == target.topic)?;
                let partitions = topic.partitions();
                Some(
                    partitions.len() == usize::try_from(target.partitions).ok()?
                        && partitions
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none()),
                )
            })
            .unwrap_or(false);
        if led {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "topic {} has no leader for every partition in time",
                target.topic
            );
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}
