//! Runs the `tidelog` binary as a child process on 127.0.0.1:0 and builds librdkafka clients for it.
//! Owns process lifecycle (start, SIGTERM, kill -9, restart) and polling helpers; asserts nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::metadata::Metadata;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

use crate::netlab::tidelog::{parse_listening_addr, strip_ansi};

/// How long a broker may take to bind its listener or to stop after SIGTERM.
pub(crate) const PROCESS_DEADLINE: Duration = Duration::from_secs(60);
/// Default deadline for client operations (metadata, admin, consuming a modest amount of data).
pub(crate) const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

const LISTENING_MARKER: &str = "listening addr=";
/// The line [`Broker::restart`] puts between the log of one run and the next.
const RESTART_MARK: &str = "----- restart -----";
/// `--listen` for a fresh port.
const ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// One `tidelog serve` child process. Drop kills it; if the test is panicking, Drop prints its log.
pub(crate) struct Broker {
    dir: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    /// Extra `TIDELOG_*` variables, kept for restarts.
    env: Vec<(String, String)>,
    /// The `--listen` address: port 0 picks a fresh port on every start.
    listen: SocketAddr,
}

impl Broker {
    /// Spawns `tidelog serve --data-dir DIR --listen 127.0.0.1:0` and waits for the listening line.
    pub(crate) fn start(dir: &Path) -> Broker {
        Self::start_with_log(dir, String::new(), Vec::new(), ANY_PORT)
    }

    /// Like [`Broker::start`] with extra environment variables (e.g. `TIDELOG_LOG__...`).
    pub(crate) fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Broker {
        let env = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Self::start_with_log(dir, String::new(), env, ANY_PORT)
    }

    fn start_with_log(
        dir: &Path,
        previous_log: String,
        env: Vec<(String, String)>,
        listen: SocketAddr,
    ) -> Broker {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidelog"));
        // The broker rejects unknown TIDELOG_* variables; start from none of them.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TIDELOG_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(listen.to_string())
            // IT_TIDELOG_LOG=debug raises the broker's log level when investigating a failure.
            .env(
                "TIDELOG_LOG",
                std::env::var("IT_TIDELOG_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the tidelog binary");
        let log = Arc::new(Mutex::new(previous_log));
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let readers = vec![
            spawn_log_reader("stderr", stderr, Arc::clone(&log), Some(addr_tx)),
            spawn_log_reader("stdout", stdout, Arc::clone(&log), None),
        ];
        let mut broker = Broker {
            dir: dir.to_path_buf(),
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            readers,
            env,
            listen,
        };
        match addr_rx.recv_timeout(PROCESS_DEADLINE) {
            Ok(addr) => broker.addr = addr,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("broker did not log `{LISTENING_MARKER}` within {PROCESS_DEADLINE:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = broker.child.as_mut().and_then(|c| c.wait().ok());
                panic!(
                    "broker closed stderr before logging `{LISTENING_MARKER}`; exit status {status:?}"
                )
            }
        }
        broker
    }

    /// The bound address of listener `name`, from the broker's `listening` log line.
    pub(crate) fn listener_addr(&self, name: &str) -> SocketAddr {
        let mut found = None;
        wait_until(PROCESS_DEADLINE, "the listener's listening line", || {
            // This run's line only: a restarted broker binds again, maybe after other lines
            // a test waits for (the previous run's line names a closed port).
            let log = self.log();
            let this_run = log.rsplit(RESTART_MARK).next().unwrap_or_default();
            found = this_run.lines().rev().find_map(|line| {
                let line = line.trim();
                if !line.contains(&format!("listener={name} ")) {
                    return None;
                }
                let start = line.find("listening addr=")? + "listening addr=".len();
                line[start..].split_whitespace().next()?.parse().ok()
            });
            found.is_some()
        });
        found.expect("waited for it")
    }

    /// `host:port` for `bootstrap.servers`.
    pub(crate) fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything the broker has written to stderr/stdout so far (all runs on this Broker).
    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The broker's process id (to read its memory use from /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Sends SIGTERM and waits (with a deadline) for the process to exit; returns its status.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            child.id()
        );
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("try_wait") {
                break exit;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.join_readers();
                panic!("broker did not exit within {PROCESS_DEADLINE:?} after SIGTERM");
            }
            std::thread::sleep(POLL_INTERVAL);
        };
        self.join_readers();
        exit
    }

    /// Sends `signal` (a name `kill` knows: STOP, CONT) to the running process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// Sends SIGKILL (no chance to flush) and reaps the process.
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("kill -9 the broker");
        child.wait().expect("reap the broker");
        self.join_readers();
    }

    /// Starts a new process on the same data dir (after `stop` or `kill9`); the port changes.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "restart needs a stopped broker");
        let previous = format!("{}\n{RESTART_MARK}\n", self.log());
        let next = Broker::start_with_log(&self.dir, previous, self.env.clone(), self.listen);
        *self = next;
    }

    /// Sets `key` in the environment of the next [`Broker::restart`].
    pub(crate) fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Like [`Broker::restart`] but on the port it listened on, so running clients reconnect.
    pub(crate) fn restart_on_same_port(&mut self) {
        self.listen = self.addr;
        self.restart();
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_readers();
        if std::thread::panicking() {
            eprintln!(
                "===== tidelog log ({}) =====\n{}\n===== end of tidelog log =====",
                self.dir.display(),
                self.log()
            );
        }
    }
}

fn spawn_log_reader(
    name: &'static str,
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    mut addr_tx: Option<mpsc::Sender<SocketAddr>>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("tidelog-{name}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = strip_ansi(&String::from_utf8_lossy(&line));
                if addr_tx.is_some()
                    && let Some(addr) = parse_listening_addr(&text)
                {
                    let _ = addr_tx.take().expect("checked").send(addr);
                }
                let mut log = log.lock().expect("log lock");
                log.push_str(&text);
                if !text.ends_with('\n') {
                    log.push('\n');
                }
            }
        })
        .expect("spawn log reader thread")
}

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `cond` until it returns true; panics with `what` once `deadline` has elapsed.
pub(crate) fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("millis fit i64")
}

fn unique_suffix() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "tidelog-it")
        .set("socket.timeout.ms", "30000")
        // librdkafka otherwise backs off up to 10 s between reconnects (restart tests).
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "1000");
    config
}

/// A FutureProducer with a deep local queue so tests can enqueue everything, then await.
/// `extra` overrides defaults (e.g. `("acks", "all")`, `("compression.type", "zstd")`).
pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = base_config(bootstrap);
    config
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("linger.ms", "5")
        .set("acks", "all");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("create FutureProducer")
}

/// A BaseConsumer for `assign()`-style reads (its own group.id; nothing is committed).
pub(crate) fn consumer(bootstrap: &str) -> BaseConsumer {
    let mut config = base_config(bootstrap);
    config
        .set(
            "group.id",
            format!("tidelog-it-{}-{}", std::process::id(), unique_suffix()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true")
        .set("allow.auto.create.topics", "false");
    config.create().expect("create BaseConsumer")
}

pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    base_config(bootstrap).create().expect("create AdminClient")
}

pub(crate) fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE))
}

/// Creates a topic and panics unless the broker reports success.
pub(crate) async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics([&topic], &admin_options())
        .await
        .expect("CreateTopics request");
    assert_eq!(results.len(), 1, "one result per topic: {results:?}");
    assert!(
        results[0].is_ok(),
        "creating topic {name:?} failed: {results:?}"
    );
}

/// Full cluster metadata (all topics; never auto-creates).
pub(crate) fn metadata(bootstrap: &str) -> Metadata {
    consumer(bootstrap)
        .fetch_metadata(None, CLIENT_DEADLINE)
        .expect("fetch metadata")
}

/// Names of the non-internal topics (not starting with `__`), sorted.
pub(crate) fn user_topics(bootstrap: &str) -> Vec<String> {
    let mut names: Vec<String> = metadata(bootstrap)
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|name| !name.starts_with("__"))
        .collect();
    names.sort();
    names
}

/// Partition count of `topic` from fresh metadata, None if the topic is not listed.
pub(crate) fn partition_count(bootstrap: &str, topic: &str) -> Option<usize> {
    metadata(bootstrap)
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
}

/// (low, high) watermarks of one partition.
pub(crate) fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap)
        .fetch_watermarks(topic, partition, CLIENT_DEADLINE)
        .expect("fetch watermarks")
}

/// Reads exactly `count` records from each listed `(partition, start_offset, count)`, in order.
/// Panics if the deadline passes first or a read returns an error other than end-of-partition.
pub(crate) fn consume(
    bootstrap: &str,
    topic: &str,
    wanted: &[(i32, i64, usize)],
    deadline: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    let consumer = consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    let mut out: BTreeMap<i32, Vec<OwnedMessage>> = BTreeMap::new();
    let mut expected: BTreeMap<i32, usize> = BTreeMap::new();
    for &(partition, start, count) in wanted {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(start))
            .expect("add partition to assignment");
        out.insert(partition, Vec::with_capacity(count));
        expected.insert(partition, count);
    }
    consumer.assign(&assignment).expect("assign partitions");
    let end = Instant::now() + deadline;
    let done = |out: &BTreeMap<i32, Vec<OwnedMessage>>| {
        expected.iter().all(|(p, count)| out[p].len() >= *count)
    };
    while !done(&out) {
        let progress: Vec<(i32, usize, usize)> = expected
            .iter()
            .map(|(p, c)| (*p, out[p].len(), *c))
            .collect();
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} consuming {topic}; (partition, got, want): {progress:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                let records = out
                    .get_mut(&message.partition())
                    .expect("message from an assigned partition");
                records.push(message.detach());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => panic!("consuming {topic} failed: {error}"),
        }
    }
    for (partition, records) in &out {
        assert_eq!(
            records.len(),
            expected[partition],
            "partition {partition} returned more records than asked for"
        );
    }
    out
}

/// Convenience: every record of one partition from `start` up to the current high watermark.
pub(crate) fn consume_to_high_watermark(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    start: i64,
) -> Vec<OwnedMessage> {
    let (_, high) = watermarks(bootstrap, topic, partition);
    let count = usize::try_from(high - start).expect("start <= high watermark");
    consume(
        bootstrap,
        topic,
        &[(partition, start, count)],
        CLIENT_DEADLINE,
    )
    .remove(&partition)
    .expect("partition was requested")
}

/// A record key/value as text, for assertion messages.
pub(crate) fn describe(message: &OwnedMessage) -> String {
    format!(
        "p{} @{} key={:?} value={:?}",
        message.partition(),
        message.offset(),
        message.key().map(String::from_utf8_lossy),
        message.payload().map(String::from_utf8_lossy)
    )
}
