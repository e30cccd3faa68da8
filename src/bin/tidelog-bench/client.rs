//! librdkafka client plumbing: the log context, the cluster's client config, topic creation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

use crate::broker::TOPIC_READY_TIMEOUT;
use crate::report::ms;

/// Librdkafka log lines and errors shown per client before going quiet.
const CLIENT_LOG_LINES_MAX: u32 = 20;

/// Shows a client's first librdkafka warnings and errors on stderr (there is no `log` logger).
#[derive(Debug)]
pub(crate) struct ClientLog {
    label: &'static str,
    line_count: AtomicU32,
    /// `--client-debug`: show every line, with a timestamp, without a cap.
    is_verbose: bool,
    origin: Instant,
}

impl ClientLog {
    pub(crate) fn show(&self, text: std::fmt::Arguments<'_>) {
        if self.is_verbose {
            let at_ms = ms(self.origin.elapsed());
            eprintln!("  [{} +{at_ms:.1}ms] {text}", self.label);
            return;
        }
        let count = self.line_count.fetch_add(1, Ordering::Relaxed);
        if count < CLIENT_LOG_LINES_MAX {
            eprintln!("  [{}] {text}", self.label);
        } else if count == CLIENT_LOG_LINES_MAX {
            eprintln!(
                "  [{}] (further librdkafka messages suppressed)",
                self.label
            );
        }
    }
}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let is_warning_or_worse = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if is_warning_or_worse || self.is_verbose {
            self.show(format_args!("librdkafka {level:?} {fac}: {log_message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.show(format_args!("librdkafka error {error}: {reason}"));
    }
}

impl ConsumerContext for ClientLog {}

/// Where the clients connect and how they log.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) bootstrap: String,
    pub(crate) client_debug: Option<String>,
    /// Partitions are raft groups: their control batches (a new term's blank entry) take
    /// offsets between records.
    pub(crate) replicated: bool,
    /// Extra librdkafka settings of every client, e.g. `security.protocol`, `ssl.ca.location`
    /// and `sasl.*` for the security run's listeners.
    pub(crate) settings: Vec<(&'static str, String)>,
}

impl Cluster {
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "tidelog-bench");
        for (key, value) in &self.settings {
            config.set(*key, value);
        }
        // rdkafka sets the level from the `log` crate, which has no logger here: set it directly.
        match &self.client_debug {
            Some(contexts) => config
                .set("debug", contexts)
                .set_log_level(RDKafkaLogLevel::Debug),
            None => config.set_log_level(RDKafkaLogLevel::Warning),
        };
        config
    }

    pub(crate) fn client_log(&self, label: &'static str) -> ClientLog {
        ClientLog {
            label,
            line_count: AtomicU32::new(0),
            is_verbose: self.client_debug.is_some(),
            origin: Instant::now(),
        }
    }
}

/// Creates `topic` with the broker's default replication factor (1 on a single node, min(3,
/// brokers) in a cluster) and waits until metadata shows every partition led;
/// returns each partition's leader, by partition.
pub(crate) fn create_topic(
    runtime: &tokio::runtime::Runtime,
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    deadline: Instant,
) -> Result<Vec<i32>> {
    let admin: AdminClient<ClientLog> =
        AdminClient::from_config_and_context(&cluster.client_config(), cluster.client_log("admin"))
            .context("creating the admin client")?;
    let options = AdminOptions::new()
        .request_timeout(Some(TOPIC_READY_TIMEOUT))
        .operation_timeout(Some(TOPIC_READY_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .context("CreateTopics request")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("CreateTopics for {name} failed: {code}");
        }
    }
    // Wait until metadata shows every partition with a leader.
    let ready_by = (Instant::now() + TOPIC_READY_TIMEOUT).min(deadline);
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .context("Metadata request")?;
        let ready = metadata.topics().iter().find(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
                && t.partitions()
                    .iter()
                    .all(|p| p.error().is_none() && p.leader() >= 0)
        });
        if let Some(ready) = ready {
            let mut led: Vec<(i32, i32)> = ready
                .partitions()
                .iter()
                .map(|p| (p.id(), p.leader()))
                .collect();
            led.sort_unstable();
            return Ok(led.into_iter().map(|(_, leader)| leader).collect());
        }
        ensure!(
            Instant::now() < ready_by,
            "topic {topic} not ready with {partitions} led partitions in metadata"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
