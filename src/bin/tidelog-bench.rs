//! The Tidelog benchmark: drives a real `tidelog` broker with librdkafka and prints a report.
//! It starts the release broker binary (or uses `--bootstrap`) and only measures: it never
//! imports broker code, so it measures exactly what a Kafka client sees.
#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Bytes of a record value that carry its sequence number (little-endian u64).
const SEQUENCE_BYTES: usize = 8;
/// The filler after the sequence number repeats with this period, shifted by the sequence number,
/// so a record swapped with another or corrupted in its body is caught.
const PATTERN_PERIOD: usize = 251;
/// The sequence number of the one warm-up record at offset 0 of every partition: it is produced
/// and delivered before the clock starts, so connection setup is not measured.
const WARMUP_SEQUENCE: u64 = u64::MAX;
/// Librdkafka producer batch limit (bytes), as the brief asks.
const BATCH_BYTES: u32 = 1_048_576;
/// Producer queue bounds: large enough that the throughput runs never block on the client queue.
const QUEUE_KBYTES_MAX: u32 = 2_097_152;
const QUEUE_MESSAGES_MAX: u32 = 5_000_000;
/// How often librdkafka reports its own latency windows (queue time, broker round trip).
const STATISTICS_INTERVAL_MS: u32 = 1000;
/// How often the RSS sampler reads /proc/<pid>/status.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Time allowed for each of: broker start, topic creation, graceful broker stop.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Librdkafka log lines and errors shown per client before going quiet.
const CLIENT_LOG_LINES_MAX: u32 = 20;
/// Linux reports process CPU time in clock ticks of this many per second (USER_HZ).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
/// Broker log lines printed when the benchmark fails.
const LOG_TAIL_LINES: usize = 40;

/// Benchmark a Tidelog broker with librdkafka: produce (acks=all), consume back and verify, and
/// measure delivery latency at a fixed rate.
#[derive(Debug, Parser)]
#[command(name = "tidelog-bench", version)]
struct Args {
    /// Records of 100 B in the first throughput run (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    records_100b: u64,
    /// Records of 1 KiB in the second throughput run (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    records_1k: u64,
    /// Length of the fixed-rate latency run in seconds (0 skips it).
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Records per second in the latency run.
    #[arg(long, default_value_t = 5_000)]
    latency_rate: u64,
    /// Record value size in the latency run, in bytes.
    #[arg(long, default_value_t = 1024)]
    latency_record_bytes: usize,
    /// Partitions of each benchmark topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// The broker binary to start (default: `tidelog` next to this executable).
    #[arg(long, conflicts_with = "bootstrap")]
    broker_bin: Option<PathBuf>,
    /// Use an already running broker at HOST:PORT instead of starting one.
    #[arg(long)]
    bootstrap: Option<String>,
    /// With --bootstrap: the broker's pid, to sample its RSS and CPU time.
    #[arg(long, requires = "bootstrap")]
    broker_pid: Option<u32>,
    /// Overall time limit for the whole benchmark, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Keep the broker's temporary data directory and log instead of removing them.
    #[arg(long)]
    keep_data: bool,
    /// Append every record's delivery latency to this CSV file (for plotting or digging).
    #[arg(long)]
    latency_csv: Option<PathBuf>,
    /// Librdkafka `debug` contexts (e.g. `broker,topic,msg`); shows every client log line.
    #[arg(long)]
    client_debug: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tidelog-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One benchmark run: a topic, a number of records of one size, optionally paced.
#[derive(Debug, Clone)]
struct RunSpec {
    name: &'static str,
    record_count: u64,
    record_bytes: usize,
    /// Records per second; None = as fast as the producer accepts them.
    rate_per_sec: Option<u64>,
}

fn run(args: &Args) -> Result<()> {
    ensure!(args.partitions >= 1, "--partitions must be at least 1");
    ensure!(
        args.latency_record_bytes >= SEQUENCE_BYTES,
        "--latency-record-bytes must be at least {SEQUENCE_BYTES}"
    );
    ensure!(args.latency_rate >= 1, "--latency-rate must be at least 1");
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let specs = run_specs(args);

    let mut broker = None;
    let bootstrap = match &args.bootstrap {
        Some(bootstrap) => bootstrap.clone(),
        None => {
            let bin = match &args.broker_bin {
                Some(bin) => bin.clone(),
                None => default_broker_bin()?,
            };
            let work_dir =
                std::env::temp_dir().join(format!("tidelog-bench-{}", std::process::id()));
            let (process, addr) = BrokerProcess::start(&bin, work_dir, args.keep_data)?;
            eprintln!(
                "started broker {} (pid {}) on {addr}",
                bin.display(),
                process.pid()
            );
            broker = Some(process);
            addr
        }
    };
    let broker_pid = broker.as_ref().map(BrokerProcess::pid).or(args.broker_pid);

    let (rdkafka_version_code, rdkafka_version) = rdkafka::util::get_rdkafka_version();
    println!(
        "tidelog-bench: bootstrap {bootstrap}, librdkafka {rdkafka_version} (0x{rdkafka_version_code:08x})"
    );
    println!(
        "producer: acks=all linger.ms={} batch.size={BATCH_BYTES} compression=none; \
         topics of {} partitions; MB = 10^6 bytes of record values",
        args.linger_ms, args.partitions
    );

    // Other work on the machine shares the cores with the broker and the client.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine: {} cores, load average {}",
        thread::available_parallelism().map_or(0, usize::from),
        load.join(" ")
    );
    let sampler = broker_pid.map(ProcSampler::start);
    let cluster = Cluster {
        bootstrap,
        client_debug: args.client_debug.clone(),
    };
    let result = run_all(args, &cluster, &specs, sampler.as_ref(), deadline);

    let final_hwm_kb = broker_pid.and_then(|pid| read_status_kb(pid, "VmHWM:"));
    if let Some(sampler) = sampler {
        sampler.stop();
    }
    if let Some(mut broker) = broker {
        if result.is_err() {
            eprintln!(
                "--- last lines of the broker log ({}) ---",
                broker.log_path.display()
            );
            eprintln!("{}", broker.log_tail(LOG_TAIL_LINES));
        }
        match broker.stop(BROKER_STOP_TIMEOUT) {
            Ok(elapsed) => println!("broker stopped on SIGTERM in {:.0} ms", ms(elapsed)),
            Err(error) => eprintln!("tidelog-bench: warning: {error:#}"),
        }
    }
    let reports = result?;
    print_report(&reports, final_hwm_kb);
    Ok(())
}

fn run_specs(args: &Args) -> Vec<RunSpec> {
    let mut specs = Vec::new();
    if args.records_100b > 0 {
        specs.push(RunSpec {
            name: "100B",
            record_count: args.records_100b,
            record_bytes: 100,
            rate_per_sec: None,
        });
    }
    if args.records_1k > 0 {
        specs.push(RunSpec {
            name: "1KiB",
            record_count: args.records_1k,
            record_bytes: 1024,
            rate_per_sec: None,
        });
    }
    if args.latency_secs > 0 {
        specs.push(RunSpec {
            name: "latency",
            record_count: args.latency_rate.saturating_mul(args.latency_secs),
            record_bytes: args.latency_record_bytes,
            rate_per_sec: Some(args.latency_rate),
        });
    }
    specs
}

fn default_broker_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable's path")?;
    let bin = exe.with_file_name("tidelog");
    ensure!(
        bin.is_file(),
        "broker binary {} not found: build it (`cargo build --release --bin tidelog`) or pass \
         --broker-bin or --bootstrap",
        bin.display()
    );
    Ok(bin)
}

/// Everything measured in one run.
#[derive(Debug)]
struct RunReport {
    spec: RunSpec,
    produce: ProduceStats,
    consume: ConsumeStats,
    /// Broker peak VmRSS (KiB) sampled during this run.
    broker_rss_peak_kb: Option<u64>,
    broker_cpu_produce_secs: Option<f64>,
    broker_cpu_consume_secs: Option<f64>,
    bench_cpu_produce_secs: Option<f64>,
    bench_cpu_consume_secs: Option<f64>,
}

fn run_all(
    args: &Args,
    cluster: &Cluster,
    specs: &[RunSpec],
    sampler: Option<&ProcSampler>,
    deadline: Instant,
) -> Result<Vec<RunReport>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime for the admin client")?;
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut reports = Vec::new();
    for spec in specs {
        let topic = format!(
            "tidelog-bench-{}-{}-{unique}",
            spec.name,
            std::process::id()
        );
        eprintln!(
            "run {}: {} records of {} B to {topic}{}",
            spec.name,
            spec.record_count,
            spec.record_bytes,
            spec.rate_per_sec
                .map(|rate| format!(" at {rate} records/s"))
                .unwrap_or_default()
        );
        create_topic(&runtime, cluster, &topic, args.partitions, deadline)
            .with_context(|| format!("creating topic {topic}"))?;
        if let Some(sampler) = sampler {
            sampler.reset_peak();
        }
        let broker_cpu_0 = sampler.and_then(ProcSampler::cpu_secs);
        let bench_cpu_0 = self_cpu_secs();
        let produce = produce(
            cluster,
            &topic,
            args.partitions,
            spec,
            args.linger_ms,
            args.latency_csv.as_deref(),
            deadline,
        )
        .with_context(|| format!("run {}: producing", spec.name))?;
        let broker_cpu_1 = sampler.and_then(ProcSampler::cpu_secs);
        let bench_cpu_1 = self_cpu_secs();
        eprintln!(
            "  produced in {:.2} s ({:.0} records/s)",
            produce.elapsed.as_secs_f64(),
            per_sec(spec.record_count, produce.elapsed)
        );
        let consume = consume(cluster, &topic, args.partitions, spec, deadline)
            .with_context(|| format!("run {}: consuming", spec.name))?;
        let broker_cpu_2 = sampler.and_then(ProcSampler::cpu_secs);
        let bench_cpu_2 = self_cpu_secs();
        eprintln!(
            "  consumed and verified in {:.2} s ({:.0} records/s)",
            consume.elapsed.as_secs_f64(),
            per_sec(spec.record_count, consume.elapsed)
        );
        reports.push(RunReport {
            spec: spec.clone(),
            produce,
            consume,
            broker_rss_peak_kb: sampler.map(ProcSampler::peak_kb),
            broker_cpu_produce_secs: difference(broker_cpu_0, broker_cpu_1),
            broker_cpu_consume_secs: difference(broker_cpu_1, broker_cpu_2),
            bench_cpu_produce_secs: difference(bench_cpu_0, bench_cpu_1),
            bench_cpu_consume_secs: difference(bench_cpu_1, bench_cpu_2),
        });
    }
    Ok(reports)
}

fn difference(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

// ---------------------------------------------------------------------------------------------
// Broker process

/// The broker child process, its temporary directory and its log; killed and removed on drop.
#[derive(Debug)]
struct BrokerProcess {
    child: Child,
    work_dir: PathBuf,
    log_path: PathBuf,
    keep_data: bool,
    is_stopped: bool,
}

impl BrokerProcess {
    /// Starts `bin serve` on a fresh data dir and waits for its `listening addr=` log line.
    fn start(bin: &Path, work_dir: PathBuf, keep_data: bool) -> Result<(BrokerProcess, String)> {
        if work_dir.exists() {
            fs::remove_dir_all(&work_dir)
                .with_context(|| format!("removing stale {}", work_dir.display()))?;
        }
        let data_dir = work_dir.join("data");
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let log_path = work_dir.join("broker.log");
        let stdout_log = File::create(work_dir.join("broker.stdout.log"))
            .context("creating the broker stdout log")?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_log))
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut broker = BrokerProcess {
            child,
            work_dir,
            log_path,
            keep_data,
            is_stopped: false,
        };
        let addr_rx = broker.spawn_log_reader()?;
        let started = Instant::now();
        loop {
            match addr_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => return Ok((broker, addr)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed without the line; fall through to the exit check
                    thread::sleep(Duration::from_millis(200));
                }
            }
            if let Some(status) = broker.child.try_wait().context("checking the broker")? {
                broker.is_stopped = true;
                bail!(
                    "broker exited with {status} before listening; log tail:\n{}",
                    broker.log_tail(LOG_TAIL_LINES)
                );
            }
            if started.elapsed() > BROKER_START_TIMEOUT {
                bail!(
                    "broker printed no `listening addr=` line within {BROKER_START_TIMEOUT:?}; \
                     log tail:\n{}",
                    broker.log_tail(LOG_TAIL_LINES)
                );
            }
        }
    }

    /// Copies the broker's stderr into the log file; sends the listen address once seen.
    fn spawn_log_reader(&mut self) -> Result<mpsc::Receiver<String>> {
        let stderr = self
            .child
            .stderr
            .take()
            .context("broker stderr is not piped")?;
        let mut log = File::create(&self.log_path)
            .with_context(|| format!("creating {}", self.log_path.display()))?;
        let (addr_tx, addr_rx) = mpsc::channel();
        thread::Builder::new()
            .name("broker-log".into())
            .spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut line = Vec::new();
                let mut is_addr_sent = false;
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if log.write_all(&line).is_err() {
                        break;
                    }
                    if !is_addr_sent {
                        let text = strip_ansi(&String::from_utf8_lossy(&line));
                        if let Some(addr) = parse_listen_addr(&text) {
                            is_addr_sent = addr_tx.send(addr).is_ok();
                        }
                    }
                }
            })
            .context("spawning the broker log reader")?;
        Ok(addr_rx)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit; kills the broker if it outlives `timeout`.
    fn stop(&mut self, timeout: Duration) -> Result<Duration> {
        if self.is_stopped {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("running kill -TERM")?;
        ensure!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        loop {
            if let Some(exit) = self.child.try_wait().context("waiting for the broker")? {
                self.is_stopped = true;
                ensure!(exit.success(), "broker exited with {exit} after SIGTERM");
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                self.child.kill().context("killing the broker")?;
                self.child.wait().context("reaping the broker")?;
                self.is_stopped = true;
                bail!("broker did not stop within {timeout:?} of SIGTERM; killed it");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self, line_count: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(line_count)..].join("\n")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if !self.is_stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.keep_data {
            eprintln!("kept broker data and log in {}", self.work_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Removes ANSI escape sequences (ESC '[' params final-byte) from a log line.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds HOST:PORT in a line containing `listening addr=HOST:PORT`.
fn parse_listen_addr(line: &str) -> Option<String> {
    let after = &line[line.find("listening")?..];
    let value = &after[after.find("addr=")? + "addr=".len()..];
    let addr: String = value
        .trim_start_matches('"')
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',' && *c != '}')
        .collect();
    addr.contains(':').then_some(addr)
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

/// Samples a process's VmRSS every 100 ms on its own thread and keeps the peak.
#[derive(Debug)]
struct ProcSampler {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    should_stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl ProcSampler {
    fn start(pid: u32) -> ProcSampler {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let should_stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let peak_kb = Arc::clone(&peak_kb);
            let should_stop = Arc::clone(&should_stop);
            thread::spawn(move || {
                while !should_stop.load(Ordering::Relaxed) {
                    if let Some(rss_kb) = read_status_kb(pid, "VmRSS:") {
                        peak_kb.fetch_max(rss_kb, Ordering::Relaxed);
                    }
                    thread::sleep(RSS_SAMPLE_INTERVAL);
                }
            })
        };
        ProcSampler {
            pid,
            peak_kb,
            should_stop,
            handle,
        }
    }

    /// Starts a new peak from the current RSS.
    fn reset_peak(&self) {
        let now_kb = read_status_kb(self.pid, "VmRSS:").unwrap_or(0);
        self.peak_kb.store(now_kb, Ordering::Relaxed);
    }

    fn peak_kb(&self) -> u64 {
        let now_kb = read_status_kb(self.pid, "VmRSS:").unwrap_or(0);
        self.peak_kb
            .fetch_max(now_kb, Ordering::Relaxed)
            .max(now_kb)
    }

    fn cpu_secs(&self) -> Option<f64> {
        read_cpu_secs(&format!("/proc/{}/stat", self.pid))
    }

    fn stop(self) {
        self.should_stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

/// Reads a `Key:   N kB` line of /proc/<pid>/status.
fn read_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// User + system CPU seconds from a /proc/<pid>/stat file.
fn read_cpu_secs(stat_path: &str) -> Option<f64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // fields after the parenthesised command name: state(3) ... utime(14) stime(15)
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)] // tick counts stay far below 2^52
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SEC)
}

fn self_cpu_secs() -> Option<f64> {
    read_cpu_secs("/proc/self/stat")
}

// ---------------------------------------------------------------------------------------------
// librdkafka clients

/// Shows a client's first librdkafka warnings and errors on stderr (there is no `log` logger).
#[derive(Debug)]
struct ClientLog {
    label: &'static str,
    line_count: AtomicU32,
    /// `--client-debug`: show every line, with a timestamp, without a cap.
    is_verbose: bool,
    origin: Instant,
}

impl ClientLog {
    fn show(&self, text: std::fmt::Arguments<'_>) {
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
struct Cluster {
    bootstrap: String,
    client_debug: Option<String>,
}

impl Cluster {
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "tidelog-bench");
        // rdkafka sets the level from the `log` crate, which has no logger here: set it directly.
        match &self.client_debug {
            Some(contexts) => config
                .set("debug", contexts)
                .set_log_level(RDKafkaLogLevel::Debug),
            None => config.set_log_level(RDKafkaLogLevel::Warning),
        };
        config
    }

    fn client_log(&self, label: &'static str) -> ClientLog {
        ClientLog {
            label,
            line_count: AtomicU32::new(0),
            is_verbose: self.client_debug.is_some(),
            origin: Instant::now(),
        }
    }
}

fn create_topic(
    runtime: &tokio::runtime::Runtime,
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    deadline: Instant,
) -> Result<()> {
    let admin: AdminClient<ClientLog> =
        AdminClient::from_config_and_context(&cluster.client_config(), cluster.client_log("admin"))
            .context("creating the admin client")?;
    let options = AdminOptions::new()
        .request_timeout(Some(TOPIC_READY_TIMEOUT))
        .operation_timeout(Some(TOPIC_READY_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
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
        let is_ready = metadata.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
                && t.partitions()
                    .iter()
                    .all(|p| p.error().is_none() && p.leader() >= 0)
        });
        if is_ready {
            return Ok(());
        }
        ensure!(
            Instant::now() < ready_by,
            "topic {topic} not ready with {partitions} led partitions in metadata"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// The filler pattern: `PATTERN_PERIOD` shifts of a byte ramp, long enough for `record_bytes`.
fn pattern(record_bytes: usize) -> Vec<u8> {
    (0..record_bytes + PATTERN_PERIOD)
        .map(|i| u8::try_from(i % PATTERN_PERIOD).expect("period fits in a byte"))
        .collect()
}

fn pattern_shift(sequence: u64) -> usize {
    usize::try_from(sequence % PATTERN_PERIOD as u64).expect("shift is below the period")
}

/// Writes record `sequence`: its number, then the pattern shifted by it.
fn fill_record(record: &mut [u8], pattern: &[u8], sequence: u64) {
    let (head, body) = record.split_at_mut(SEQUENCE_BYTES);
    head.copy_from_slice(&sequence.to_le_bytes());
    let shift = pattern_shift(sequence);
    body.copy_from_slice(&pattern[shift..shift + body.len()]);
}

/// The partition record `sequence` goes to: round robin, so partition p holds p, p+P, p+2P, ...
fn partition_of(sequence: u64, partitions: i32) -> i32 {
    let partitions = u64::try_from(partitions).expect("partitions is positive");
    i32::try_from(sequence % partitions).expect("partition index fits i32")
}

// ---------------------------------------------------------------------------------------------
// Produce

/// Produce results: wall time from first enqueue to last delivery, and delivery latencies.
#[derive(Debug)]
struct ProduceStats {
    elapsed: Duration,
    latency: Latency,
    client_windows: Vec<ClientWindow>,
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

/// The producer context: counts deliveries and records enqueue→delivery latency per record.
#[derive(Debug)]
struct DeliveryTracker {
    log: ClientLog,
    origin: Instant,
    delivered_count: AtomicU64,
    failed_count: AtomicU64,
    first_error: Mutex<Option<String>>,
    deliveries: Mutex<Vec<Delivery>>,
    last_delivery_ns: AtomicU64,
    /// Librdkafka's own per-interval latency windows for the leader broker connection.
    client_windows: Mutex<Vec<ClientWindow>>,
}

/// One statistics interval of librdkafka's view of the leader connection, in microseconds:
/// `queue` = produce() call to the batch being ready to send (includes linger),
/// `rtt` = request written to response read (the broker's share plus both sides' scheduling).
#[derive(Debug, Clone, Copy)]
struct ClientWindow {
    queue_p50_us: i64,
    queue_p99_us: i64,
    rtt_p50_us: i64,
    rtt_p99_us: i64,
    rtt_max_us: i64,
    request_count: i64,
}

/// One successful delivery report.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    enqueued_ns: u64,
    latency_us: u32,
    partition: i32,
}

impl DeliveryTracker {
    fn nanos_since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl ClientContext for DeliveryTracker {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        for broker in statistics.brokers.values() {
            if broker.nodeid < 0 {
                continue;
            }
            let (Some(queue), Some(rtt)) = (&broker.int_latency, &broker.rtt) else {
                continue;
            };
            if rtt.cnt == 0 {
                continue;
            }
            self.client_windows
                .lock()
                .expect("never poisoned")
                .push(ClientWindow {
                    queue_p50_us: queue.p50,
                    queue_p99_us: queue.p99,
                    rtt_p50_us: rtt.p50,
                    rtt_p99_us: rtt.p99,
                    rtt_max_us: rtt.max,
                    request_count: rtt.cnt,
                });
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for DeliveryTracker {
    /// Enqueue time in nanoseconds since `origin`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, enqueued_ns: usize) {
        let now_ns = self.nanos_since_origin();
        match result {
            Ok(message) => {
                let enqueued_ns = enqueued_ns as u64;
                let latency_ns = now_ns.saturating_sub(enqueued_ns);
                let delivery = Delivery {
                    enqueued_ns,
                    latency_us: u32::try_from(latency_ns / 1_000).unwrap_or(u32::MAX),
                    partition: message.partition(),
                };
                self.deliveries
                    .lock()
                    .expect("delivery lock is never poisoned")
                    .push(delivery);
                self.delivered_count.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let mut first_error = self.first_error.lock().expect("never poisoned");
                if first_error.is_none() {
                    *first_error = Some(format!("partition {}: {error}", message.partition()));
                }
                self.failed_count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
    }
}

fn produce(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    spec: &RunSpec,
    linger_ms: u64,
    latency_csv: Option<&Path>,
    deadline: Instant,
) -> Result<ProduceStats> {
    let mut config = cluster.client_config();
    config
        .set("acks", "all")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", BATCH_BYTES.to_string())
        .set("queue.buffering.max.kbytes", QUEUE_KBYTES_MAX.to_string())
        .set(
            "queue.buffering.max.messages",
            QUEUE_MESSAGES_MAX.to_string(),
        )
        .set("compression.type", "none")
        .set("message.timeout.ms", "120000")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    let tracker = DeliveryTracker {
        log: cluster.client_log("producer"),
        origin: Instant::now(),
        delivered_count: AtomicU64::new(0),
        failed_count: AtomicU64::new(0),
        first_error: Mutex::new(None),
        deliveries: Mutex::new(Vec::with_capacity(
            usize::try_from(spec.record_count).unwrap_or(0),
        )),
        last_delivery_ns: AtomicU64::new(0),
        client_windows: Mutex::new(Vec::new()),
    };
    let producer: ThreadedProducer<DeliveryTracker> =
        ThreadedProducer::from_config_and_context(&config, tracker)
            .context("creating the producer")?;
    let tracker = Arc::clone(producer.context());
    // Warm up outside the timed part: connect and learn the partition leaders.
    producer
        .client()
        .fetch_metadata(Some(topic), TOPIC_READY_TIMEOUT)
        .context("producer metadata warm-up")?;
    let pattern = pattern(spec.record_bytes);
    let mut record_value = vec![0u8; spec.record_bytes];
    warm_up(
        &producer,
        topic,
        partitions,
        &mut record_value,
        &pattern,
        deadline,
    )?;

    let started = Instant::now();
    let started_ns = tracker.nanos_since_origin();
    let mut queue_full_count = 0u64;
    for sequence in 0..spec.record_count {
        if let Some(rate) = spec.rate_per_sec {
            let due = started + Duration::from_nanos(sequence.saturating_mul(1_000_000_000) / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        fill_record(&mut record_value, &pattern, sequence);
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, 0)
            .partition(partition_of(sequence, partitions))
            .payload(&record_value[..]);
        loop {
            record.delivery_opaque = usize::try_from(tracker.nanos_since_origin()).unwrap_or(0);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    queue_full_count += 1;
                    ensure!(
                        Instant::now() < deadline,
                        "overall timeout while enqueuing record {sequence} (producer queue full)"
                    );
                    thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("enqueuing record {sequence}: {error}"),
            }
        }
        if sequence.is_multiple_of(4096) {
            ensure!(
                Instant::now() < deadline,
                "overall timeout after enqueuing {sequence} of {} records",
                spec.record_count
            );
        }
    }
    if queue_full_count > 0 {
        eprintln!("  producer queue was full {queue_full_count} times");
    }

    // Wait for every delivery report.
    loop {
        let delivered = tracker.delivered_count.load(Ordering::Relaxed);
        let failed = tracker.failed_count.load(Ordering::Relaxed);
        if failed > 0 {
            let first = tracker.first_error.lock().expect("never poisoned").clone();
            bail!(
                "{failed} records failed delivery (first: {})",
                first.unwrap_or_default()
            );
        }
        if delivered == spec.record_count {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "overall timeout waiting for deliveries: {delivered} of {} delivered, {} in flight",
            spec.record_count,
            producer.in_flight_count()
        );
        thread::sleep(Duration::from_millis(2));
    }
    let elapsed = Duration::from_nanos(
        tracker
            .last_delivery_ns
            .load(Ordering::Relaxed)
            .saturating_sub(started_ns),
    );
    let deliveries = std::mem::take(&mut *tracker.deliveries.lock().expect("never poisoned"));
    drop(producer);
    let client_windows =
        std::mem::take(&mut *tracker.client_windows.lock().expect("never poisoned"));
    if let Some(path) = latency_csv {
        append_latency_csv(path, spec.name, started_ns, &deliveries)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut latencies_us: Vec<u32> = deliveries.iter().map(|d| d.latency_us).collect();
    Ok(ProduceStats {
        elapsed,
        latency: latency_summary(&mut latencies_us),
        client_windows,
    })
}

/// Produces the warm-up record of every partition, waits for their delivery, and forgets them.
fn warm_up(
    producer: &ThreadedProducer<DeliveryTracker>,
    topic: &str,
    partitions: i32,
    record_value: &mut [u8],
    pattern: &[u8],
    deadline: Instant,
) -> Result<()> {
    let tracker = producer.context();
    fill_record(record_value, pattern, WARMUP_SEQUENCE);
    for partition in 0..partitions {
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, 0)
            .partition(partition)
            .payload(&record_value[..]);
        producer
            .send(record)
            .map_err(|(error, _)| error)
            .with_context(|| format!("enqueuing the warm-up record of partition {partition}"))?;
    }
    let expected = u64::try_from(partitions).context("partition count")?;
    let ready_by = (Instant::now() + TOPIC_READY_TIMEOUT).min(deadline);
    loop {
        let done = tracker.delivered_count.load(Ordering::Relaxed)
            + tracker.failed_count.load(Ordering::Relaxed);
        if done == expected {
            break;
        }
        ensure!(
            Instant::now() < ready_by,
            "warm-up records not delivered: {done} of {expected} reports"
        );
        thread::sleep(Duration::from_millis(1));
    }
    if let Some(error) = tracker.first_error.lock().expect("never poisoned").take() {
        bail!("warm-up record failed: {error}");
    }
    tracker.delivered_count.store(0, Ordering::Relaxed);
    tracker
        .client_windows
        .lock()
        .expect("never poisoned")
        .clear();
    tracker.deliveries.lock().expect("never poisoned").clear();
    Ok(())
}

/// Appends `run,partition,enqueue_ms,latency_ms` rows (enqueue time since the run's start).
fn append_latency_csv(
    path: &Path,
    run: &str,
    started_ns: u64,
    deliveries: &[Delivery],
) -> Result<()> {
    let is_new = !path.exists();
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    if is_new {
        writeln!(out, "run,partition,enqueue_ms,latency_ms")?;
    }
    for delivery in deliveries {
        #[allow(clippy::cast_precision_loss)] // nanoseconds of a run stay far below 2^52
        let enqueue_ms = delivery.enqueued_ns.saturating_sub(started_ns) as f64 / 1e6;
        writeln!(
            out,
            "{run},{},{enqueue_ms:.3},{:.3}",
            delivery.partition,
            f64::from(delivery.latency_us) / 1000.0
        )?;
    }
    out.flush()?;
    Ok(())
}

fn latency_summary(latencies_us: &mut [u32]) -> Latency {
    latencies_us.sort_unstable();
    let at = |per_mille: usize| -> f64 {
        let last = latencies_us.len().saturating_sub(1);
        let value_us = latencies_us
            .get(last * per_mille / 1000)
            .copied()
            .unwrap_or(0);
        f64::from(value_us) / 1000.0
    };
    Latency {
        p50_ms: at(500),
        p99_ms: at(990),
        p999_ms: at(999),
        max_ms: at(1000),
    }
}

// ---------------------------------------------------------------------------------------------
// Consume

/// Consume results: wall time from assign to the last verified record.
#[derive(Debug)]
struct ConsumeStats {
    elapsed: Duration,
    bytes: u64,
}

/// Reads the topic back from offset 0 and checks every record: each partition must hold its
/// warm-up record, then exactly its round-robin share of sequence numbers, in order, at
/// consecutive offsets, with intact bodies. The warm-up records are not counted.
fn consume(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    spec: &RunSpec,
    deadline: Instant,
) -> Result<ConsumeStats> {
    let mut config = cluster.client_config();
    // librdkafka's consumer poll needs a group.id, but with assign() it never joins the group.
    config
        .set("group.id", format!("tidelog-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        // librdkafka 2.0 (before fetch.queue.backoff.ms) stops fetching for ~0.5-1 s once a
        // partition's local queue passes these thresholds; set them high so the client never
        // idles while the broker has data (the fix its maintainers suggest).
        .set("queued.min.messages", "10000000")
        .set("queued.max.messages.kbytes", "2097151");
    let consumer: BaseConsumer<ClientLog> =
        BaseConsumer::from_config_and_context(&config, cluster.client_log("consumer"))
            .context("creating the consumer")?;
    let partition_count = usize::try_from(partitions).context("partition count")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(0))
            .context("building the assignment")?;
    }
    let pattern = pattern(spec.record_bytes);
    let step = u64::try_from(partitions).context("partition count")?;
    let mut next_offset = vec![0i64; partition_count];
    let mut next_sequence = vec![WARMUP_SEQUENCE; partition_count];
    let mut warmup_count = 0usize;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut error_count = 0u64;

    let started = Instant::now();
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    while received < spec.record_count || warmup_count < partition_count {
        if received.is_multiple_of(1024) {
            ensure!(
                Instant::now() < deadline,
                "overall timeout: consumed {received} of {} records (next offsets {next_offset:?})",
                spec.record_count
            );
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => {
                ensure!(
                    Instant::now() < deadline,
                    "overall timeout: consumed {received} of {} records (next offsets {:?})",
                    spec.record_count,
                    next_offset
                );
                continue;
            }
            Some(Err(error)) => {
                error_count += 1;
                if error_count <= 5 {
                    eprintln!("  consumer error: {error}");
                }
                ensure!(
                    error_count < 1000,
                    "too many consumer errors (last: {error})"
                );
                continue;
            }
            Some(Ok(message)) => message,
        };
        let partition = message.partition();
        let index = usize::try_from(partition)
            .ok()
            .filter(|&index| index < partition_count)
            .with_context(|| format!("record from unassigned partition {partition}"))?;
        let offset = message.offset();
        ensure!(
            offset == next_offset[index],
            "partition {partition}: expected offset {} but got {offset}",
            next_offset[index]
        );
        let value = message.payload().unwrap_or_default();
        ensure!(
            value.len() == spec.record_bytes,
            "partition {partition} offset {offset}: value is {} bytes, expected {}",
            value.len(),
            spec.record_bytes
        );
        let (head, body) = value.split_at(SEQUENCE_BYTES);
        let sequence = u64::from_le_bytes(head.try_into().context("sequence bytes")?);
        ensure!(
            sequence == next_sequence[index],
            "partition {partition} offset {offset}: expected record {} but got {sequence} \
             (missing, duplicated or reordered)",
            next_sequence[index]
        );
        let shift = pattern_shift(sequence);
        ensure!(
            body == &pattern[shift..shift + body.len()],
            "partition {partition} offset {offset}: body of record {sequence} is corrupt"
        );
        next_offset[index] += 1;
        if sequence == WARMUP_SEQUENCE {
            next_sequence[index] = u64::try_from(index).context("partition index")?;
            warmup_count += 1;
        } else {
            next_sequence[index] += step;
            received += 1;
            bytes += value.len() as u64;
        }
    }
    let elapsed = started.elapsed();

    // No extra records: each partition's high watermark is exactly its share plus the warm-up.
    for (index, &end_offset) in next_offset.iter().enumerate() {
        let partition = i32::try_from(index).context("partition index")?;
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high_watermark)) => ensure!(
                high_watermark == end_offset,
                "partition {partition}: high watermark {high_watermark} but {end_offset} records \
                 were produced"
            ),
            Err(error) => eprintln!("  warning: watermarks of partition {partition}: {error}"),
        }
    }
    Ok(ConsumeStats { elapsed, bytes })
}

// ---------------------------------------------------------------------------------------------
// Report

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
fn per_sec(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    per_sec(bytes, elapsed) / 1e6
}

#[allow(clippy::cast_precision_loss)] // sizes stay far below 2^52
fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn optional(value: Option<f64>, precision: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.precision$}"))
}

/// Summarises librdkafka's per-interval windows: medians of the window p50s, the worst p99.
fn print_client_windows(run: &str, windows: &[ClientWindow]) {
    if windows.is_empty() {
        println!(
            "{run}: no librdkafka statistics window (run shorter than {STATISTICS_INTERVAL_MS} ms)"
        );
        return;
    }
    let median = |values: &mut Vec<i64>| -> f64 {
        values.sort_unstable();
        #[allow(clippy::cast_precision_loss)] // microseconds stay far below 2^52
        let value = values.get(values.len() / 2).copied().unwrap_or(0) as f64;
        value / 1000.0
    };
    #[allow(clippy::cast_precision_loss)] // microseconds stay far below 2^52
    let worst =
        |f: fn(&ClientWindow) -> i64| windows.iter().map(f).max().unwrap_or(0) as f64 / 1000.0;
    let requests: i64 = windows.iter().map(|w| w.request_count).sum();
    println!(
        "{run}: {} windows, {requests} produce requests; queue p50 {:.2} ms, p99 worst {:.2} ms; \
         rtt p50 {:.2} ms, p99 median {:.2} ms, p99 worst {:.2} ms, max {:.2} ms",
        windows.len(),
        median(&mut windows.iter().map(|w| w.queue_p50_us).collect()),
        worst(|w| w.queue_p99_us),
        median(&mut windows.iter().map(|w| w.rtt_p50_us).collect()),
        median(&mut windows.iter().map(|w| w.rtt_p99_us).collect()),
        worst(|w| w.rtt_p99_us),
        worst(|w| w.rtt_max_us),
    );
}

fn print_report(reports: &[RunReport], final_hwm_kb: Option<u64>) {
    println!();
    println!(
        "{:<8} {:>9} {:>6} | {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} | {:>9} {:>14} {:>14}",
        "run",
        "records",
        "size",
        "prod rec/s",
        "prod MB/s",
        "p50 ms",
        "p99 ms",
        "cons rec/s",
        "cons MB/s",
        "RSS MiB",
        "broker CPU s",
        "bench CPU s"
    );
    for report in reports {
        let produce_bytes = report.spec.record_count * report.spec.record_bytes as u64;
        println!(
            "{:<8} {:>9} {:>6} | {:>10.0} {:>9.1} {:>8.2} {:>8.2} | {:>10.0} {:>9.1} | {:>9} {:>14} {:>14}",
            report.spec.name,
            report.spec.record_count,
            report.spec.record_bytes,
            per_sec(report.spec.record_count, report.produce.elapsed),
            mb_per_sec(produce_bytes, report.produce.elapsed),
            report.produce.latency.p50_ms,
            report.produce.latency.p99_ms,
            per_sec(report.spec.record_count, report.consume.elapsed),
            mb_per_sec(report.consume.bytes, report.consume.elapsed),
            optional(report.broker_rss_peak_kb.map(mib), 1),
            format!(
                "{}/{}",
                optional(report.broker_cpu_produce_secs, 1),
                optional(report.broker_cpu_consume_secs, 1)
            ),
            format!(
                "{}/{}",
                optional(report.bench_cpu_produce_secs, 1),
                optional(report.bench_cpu_consume_secs, 1)
            ),
        );
    }
    println!("(CPU s = produce/consume phase; latency = enqueue -> delivery callback)");
    for report in reports {
        let latency = report.produce.latency;
        println!(
            "{}: produce {:.2} s, consume {:.2} s, latency p99.9 {:.2} ms max {:.2} ms",
            report.spec.name,
            report.produce.elapsed.as_secs_f64(),
            report.consume.elapsed.as_secs_f64(),
            latency.p999_ms,
            latency.max_ms
        );
    }
    println!(
        "librdkafka windows ({STATISTICS_INTERVAL_MS} ms each, leader connection): \
         queue = produce() to batch ready (incl. linger), rtt = request sent to response read"
    );
    for report in reports {
        print_client_windows(report.spec.name, &report.produce.client_windows);
    }
    if let Some(hwm_kb) = final_hwm_kb {
        println!("broker VmHWM (kernel peak RSS) {:.1} MiB", mib(hwm_kb));
    }

    println!();
    println!("targets:");
    let find = |name: &str| reports.iter().find(|report| report.spec.name == name);
    let check = |label: &str, value: Option<f64>, target: f64, is_higher_better: bool| {
        let Some(value) = value else {
            println!("  {label:<36} not measured");
            return;
        };
        let is_met = if is_higher_better {
            value >= target
        } else {
            value < target
        };
        let relation = if is_higher_better { ">=" } else { "<" };
        println!(
            "  {label:<36} {value:>9.1} (target {relation} {target}) {}",
            if is_met { "MET" } else { "MISSED" }
        );
    };
    let produce_mb = |report: &RunReport| {
        mb_per_sec(
            report.spec.record_count * report.spec.record_bytes as u64,
            report.produce.elapsed,
        )
    };
    check(
        "produce 1 KiB acks=all MB/s",
        find("1KiB").map(produce_mb),
        250.0,
        true,
    );
    check(
        "produce 100 B acks=all MB/s",
        find("100B").map(produce_mb),
        60.0,
        true,
    );
    check(
        "consume 1 KiB MB/s",
        find("1KiB").map(|report| mb_per_sec(report.consume.bytes, report.consume.elapsed)),
        300.0,
        true,
    );
    check(
        "p99 delivery latency ms (paced run)",
        find("latency").map(|report| report.produce.latency.p99_ms),
        10.0,
        false,
    );
    let rss_peak_kb = reports
        .iter()
        .filter_map(|report| report.broker_rss_peak_kb)
        .chain(final_hwm_kb)
        .max();
    check("broker peak RSS MiB", rss_peak_kb.map(mib), 256.0, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_listen_addr_finds_the_address_in_plain_and_colored_lines() {
        let plain = "2025-01-01T00:00:00Z  INFO tidelog::server: listening addr=127.0.0.1:40123";
        assert_eq!(parse_listen_addr(plain).as_deref(), Some("127.0.0.1:40123"));
        let colored = "\u{1b}[32m INFO\u{1b}[0m listening \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:9 x";
        assert_eq!(
            parse_listen_addr(&strip_ansi(colored)).as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(parse_listen_addr("starting addr=1.2.3.4:5"), None);
    }

    #[test]
    fn fill_record_round_trips_its_sequence_and_pattern() {
        let pattern = pattern(100);
        let mut record = vec![0u8; 100];
        fill_record(&mut record, &pattern, 1234);
        assert_eq!(u64::from_le_bytes(record[..8].try_into().unwrap()), 1234);
        let shift = pattern_shift(1234);
        assert_eq!(&record[8..], &pattern[shift..shift + 92]);
    }

    #[test]
    fn latency_summary_picks_percentiles() {
        let mut values: Vec<u32> = (1..=1000).rev().map(|ms| ms * 1000).collect();
        let latency = latency_summary(&mut values);
        assert_eq!(latency.p50_ms, 500.0);
        assert_eq!(latency.p99_ms, 990.0);
        assert_eq!(latency.max_ms, 1000.0);
    }
}
