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

/// Benchmark a Tidelog broker with librdkafka: produce (acks=all), consume back and verify,
/// measure delivery latency at a fixed rate, and consume with a consumer group and time its
/// rebalances.
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
    /// Records of 100 B in the consumer group run (6 partitions, 3 members, then a member joins
    /// and one leaves while a stream flows).
    #[arg(long, default_value_t = 1_000_000)]
    group_records: u64,
    /// Skip the consumer group run.
    #[arg(long)]
    skip_group: bool,
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
    let group_ok = match &result {
        Ok((_, Some(group))) => group.is_exactly_once(),
        _ => true,
    };

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
    let (reports, group) = result?;
    print_report(&reports, group.as_ref(), final_hwm_kb);
    ensure!(
        group_ok,
        "the consumer group did not receive every record exactly once"
    );
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
) -> Result<(Vec<RunReport>, Option<GroupReport>)> {
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
    let mut group = None;
    if !args.skip_group && args.group_records > 0 {
        let (report, group_report) =
            run_group(&runtime, args, cluster, sampler, unique, deadline).context("run group")?;
        reports.push(report);
        group = Some(group_report);
    }
    Ok((reports, group))
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

fn new_tracker(cluster: &Cluster, label: &'static str, capacity: u64) -> DeliveryTracker {
    DeliveryTracker {
        log: cluster.client_log(label),
        origin: Instant::now(),
        delivered_count: AtomicU64::new(0),
        failed_count: AtomicU64::new(0),
        first_error: Mutex::new(None),
        deliveries: Mutex::new(Vec::with_capacity(usize::try_from(capacity).unwrap_or(0))),
        last_delivery_ns: AtomicU64::new(0),
        client_windows: Mutex::new(Vec::new()),
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
    let tracker = new_tracker(cluster, "producer", spec.record_count);
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
// Consumer group

/// Partitions of the group run's topic.
const GROUP_PARTITIONS: i32 = 6;
/// Members that consume the group run's records; one more joins for the rebalance measurement.
const GROUP_MEMBERS: usize = 3;
const MEMBER_LABELS: [&str; GROUP_MEMBERS + 1] = ["member-1", "member-2", "member-3", "member-4"];
/// Group settings: librdkafka's default partition.assignment.strategy `range,roundrobin` is eager
/// (every member gives up all its partitions on each rebalance), offsets are stored when poll()
/// returns a record and auto-committed this often, plus librdkafka's commit on revoke and close.
/// The broker's groups.initial_rebalance_delay_ms is 0, so the first member starts at once and
/// the others join through rebalances (that churn is part of the group consume time).
const GROUP_AUTO_COMMIT_MS: u32 = 500;
const GROUP_SESSION_TIMEOUT_MS: u32 = 6000;
const GROUP_HEARTBEAT_MS: u32 = 500;
/// Records per second of the stream produced while the group rebalances.
const GROUP_STREAM_RATE: u64 = 2000;
/// The stream runs at most this long (it sizes the duplicate bitmap).
const GROUP_STREAM_MAX: Duration = Duration::from_secs(180);
/// Time allowed for each rebalance to bring every partition back, and for the stream to drain.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(60);
/// The group consumes the stream this long before a member joins or leaves.
const GROUP_SETTLE: Duration = Duration::from_secs(2);
/// Marks a rebalance measurement as inactive.
const NO_THRESHOLD: u64 = u64::MAX;

/// One bit per sequence number: which records some member has received.
#[derive(Debug)]
struct SeenBits {
    words: Vec<AtomicU64>,
}

impl SeenBits {
    fn new(bit_count: u64) -> SeenBits {
        let word_count = usize::try_from(bit_count.div_ceil(64)).unwrap_or(0);
        SeenBits {
            words: (0..word_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Marks `bit`; true if it was not marked before. None if `bit` is out of range.
    fn mark(&self, bit: u64) -> Option<bool> {
        let word = self.words.get(usize::try_from(bit / 64).ok()?)?;
        let mask = 1u64 << (bit % 64);
        Some(word.fetch_or(mask, Ordering::Relaxed) & mask == 0)
    }
}

/// State the members and the coordinating thread share.
#[derive(Debug)]
struct GroupShared {
    origin: Instant,
    /// Records of the bulk part: sequences 0..bulk_count.
    bulk_count: u64,
    bulk_seen: SeenBits,
    bulk_unique: AtomicU64,
    bulk_duplicates: AtomicU64,
    /// Nanoseconds since `origin` of the first bulk record and of the last new bulk record.
    bulk_first_ns: AtomicU64,
    bulk_last_ns: AtomicU64,
    /// Stream records: sequences bulk_count.. (bit = sequence - bulk_count).
    stream_seen: SeenBits,
    stream_unique: AtomicU64,
    stream_duplicates: AtomicU64,
    warmup_count: AtomicU64,
    /// The sequence the stream producer enqueues next.
    stream_next: AtomicU64,
    /// Rebalance measurement: it starts at `phase_start_ns`; records with a sequence at or above
    /// `threshold`, delivered by a member assigned after the start, count.
    phase_start_ns: AtomicU64,
    threshold: AtomicU64,
    /// Per partition: when it first delivered a counting record (0 = not yet).
    partition_back_ns: Vec<AtomicU64>,
    /// Per member: when it last received an assignment (0 = never), and its partitions as a mask.
    assigned_ns: Vec<AtomicU64>,
    assigned_mask: Vec<AtomicU64>,
    rebalance_count: AtomicU64,
    commit_error_count: AtomicU64,
    /// Per member: asked to leave the group (close its consumer).
    should_leave: Vec<AtomicBool>,
    /// Per member: how long its close took, in nanoseconds.
    close_ns: Vec<AtomicU64>,
    should_stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl GroupShared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Starts a rebalance measurement now: records enqueued from now on count.
    fn start_phase(&self) {
        for back_ns in &self.partition_back_ns {
            back_ns.store(0, Ordering::SeqCst);
        }
        self.phase_start_ns.store(self.now_ns(), Ordering::SeqCst);
        self.threshold
            .store(self.stream_next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().expect("never poisoned");
        if failure.is_none() {
            *failure = Some(message);
        }
        self.should_stop.store(true, Ordering::SeqCst);
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().expect("never poisoned").clone()
    }

    /// Checks and counts one record delivered to `member`.
    fn receive(&self, member: usize, partition: i32, value: &[u8], pattern: &[u8]) -> Result<()> {
        ensure!(
            value.len() == 100,
            "partition {partition}: value is {} bytes, expected 100",
            value.len()
        );
        let (head, body) = value.split_at(SEQUENCE_BYTES);
        let sequence = u64::from_le_bytes(head.try_into().context("sequence bytes")?);
        let shift = pattern_shift(sequence);
        ensure!(
            body == &pattern[shift..shift + body.len()],
            "partition {partition}: body of record {sequence} is corrupt"
        );
        if sequence == WARMUP_SEQUENCE {
            self.warmup_count.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        ensure!(
            partition_of(sequence, GROUP_PARTITIONS) == partition,
            "record {sequence} arrived from partition {partition}"
        );
        let now_ns = self.now_ns();
        if sequence < self.bulk_count {
            if self.bulk_seen.mark(sequence) == Some(true) {
                let _ = self.bulk_first_ns.compare_exchange(
                    0,
                    now_ns,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.bulk_last_ns.fetch_max(now_ns, Ordering::Relaxed);
                self.bulk_unique.fetch_add(1, Ordering::SeqCst);
            } else {
                self.bulk_duplicates.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        match self.stream_seen.mark(sequence - self.bulk_count) {
            Some(true) => {
                self.stream_unique.fetch_add(1, Ordering::SeqCst);
            }
            Some(false) => {
                self.stream_duplicates.fetch_add(1, Ordering::Relaxed);
            }
            None => bail!("record {sequence} is beyond the stream's bitmap"),
        }
        let threshold = self.threshold.load(Ordering::SeqCst);
        if sequence >= threshold {
            let phase_start_ns = self.phase_start_ns.load(Ordering::SeqCst);
            if self.assigned_ns[member].load(Ordering::SeqCst) > phase_start_ns {
                let index = usize::try_from(partition).context("partition index")?;
                let _ = self.partition_back_ns[index].compare_exchange(
                    0,
                    now_ns,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        }
        Ok(())
    }

    /// Waits (bounded) until every partition delivered a counting record; returns when each did.
    fn wait_partitions_back(&self, what: &str) -> Result<Vec<u64>> {
        let started = Instant::now();
        loop {
            if let Some(failure) = self.failure() {
                bail!("{failure}");
            }
            let back: Vec<u64> = self
                .partition_back_ns
                .iter()
                .map(|back_ns| back_ns.load(Ordering::SeqCst))
                .collect();
            if back.iter().all(|&back_ns| back_ns != 0) {
                return Ok(back);
            }
            ensure!(
                started.elapsed() < REBALANCE_TIMEOUT,
                "{what}: partitions not consumed again within {REBALANCE_TIMEOUT:?} \
                 (per-partition back times, ns: {back:?})"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Time from the phase start until the last partition in `mask` came back.
    fn back_after(&self, back: &[u64], mask: u64) -> Duration {
        let start_ns = self.phase_start_ns.load(Ordering::SeqCst);
        let last_ns = back
            .iter()
            .enumerate()
            .filter(|(index, _)| mask & (1u64 << index) != 0)
            .map(|(_, &back_ns)| back_ns)
            .max()
            .unwrap_or(start_ns);
        Duration::from_nanos(last_ns.saturating_sub(start_ns))
    }
}

/// A member's librdkafka context: logs, and records its assignments for the rebalance timing.
#[derive(Debug)]
struct MemberContext {
    log: ClientLog,
    member: usize,
    shared: Arc<GroupShared>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        self.shared.rebalance_count.fetch_add(1, Ordering::Relaxed);
        match rebalance {
            rdkafka::consumer::Rebalance::Assign(assignment) => {
                let mask = assignment
                    .elements()
                    .iter()
                    .filter_map(|element| u32::try_from(element.partition()).ok())
                    .filter(|&partition| partition < 64)
                    .fold(0u64, |mask, partition| mask | (1u64 << partition));
                self.shared.assigned_mask[self.member].store(mask, Ordering::SeqCst);
                self.shared.assigned_ns[self.member].store(self.shared.now_ns(), Ordering::SeqCst);
            }
            rdkafka::consumer::Rebalance::Revoke(_) => {
                self.shared.assigned_mask[self.member].store(0, Ordering::SeqCst);
            }
            rdkafka::consumer::Rebalance::Error(error) => {
                self.log.show(format_args!("rebalance error: {error}"));
            }
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(error) = result {
            // A commit with nothing new to commit reports _NO_OFFSET; that is not a failure.
            if !matches!(
                error,
                KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
            ) {
                let count = self
                    .shared
                    .commit_error_count
                    .fetch_add(1, Ordering::Relaxed);
                if count < 5 {
                    self.log.show(format_args!("commit failed: {error}"));
                }
            }
        }
    }
}

/// One group member on its own thread: subscribes, then polls until told to stop or leave.
/// With `marks_join`, the rebalance measurement starts at its subscribe().
fn spawn_member(
    cluster: &Cluster,
    group_id: &str,
    topic: &str,
    member: usize,
    shared: &Arc<GroupShared>,
    marks_join: bool,
    deadline: Instant,
) -> Result<JoinHandle<()>> {
    let mut config = cluster.client_config();
    config
        .set("client.id", MEMBER_LABELS[member])
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", GROUP_AUTO_COMMIT_MS.to_string())
        .set("enable.auto.offset.store", "true")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", GROUP_SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", GROUP_HEARTBEAT_MS.to_string())
        .set("enable.partition.eof", "false")
        // as in the single-consumer runs: never idle on librdkafka 2.0's queue thresholds
        .set("queued.min.messages", "10000000")
        .set("queued.max.messages.kbytes", "2097151");
    let context = MemberContext {
        log: cluster.client_log(MEMBER_LABELS[member]),
        member,
        shared: Arc::clone(shared),
    };
    let consumer: BaseConsumer<MemberContext> =
        BaseConsumer::from_config_and_context(&config, context)
            .with_context(|| format!("creating group {}", MEMBER_LABELS[member]))?;
    let shared = Arc::clone(shared);
    let topic = topic.to_owned();
    thread::Builder::new()
        .name(MEMBER_LABELS[member].into())
        .spawn(move || {
            if let Err(error) = run_member(&consumer, &topic, member, &shared, marks_join, deadline)
            {
                shared.fail(format!("{}: {error:#}", MEMBER_LABELS[member]));
            }
            if shared.should_leave[member].load(Ordering::SeqCst) {
                shared.start_phase();
            }
            let closing = Instant::now();
            drop(consumer); // rd_kafka_consumer_close: commits, leaves the group
            let close_ns = u64::try_from(closing.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shared.close_ns[member].store(close_ns, Ordering::SeqCst);
        })
        .context("spawning a group member")
}

fn run_member(
    consumer: &BaseConsumer<MemberContext>,
    topic: &str,
    member: usize,
    shared: &GroupShared,
    marks_join: bool,
    deadline: Instant,
) -> Result<()> {
    let pattern = pattern(100);
    if marks_join {
        shared.start_phase();
    }
    consumer.subscribe(&[topic]).context("subscribe")?;
    let mut error_count = 0u64;
    loop {
        if shared.should_stop.load(Ordering::SeqCst)
            || shared.should_leave[member].load(Ordering::SeqCst)
        {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "overall timeout");
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => shared.receive(
                member,
                message.partition(),
                message.payload().unwrap_or_default(),
                &pattern,
            )?,
            Some(Err(error)) => {
                error_count += 1;
                if error_count <= 5 {
                    eprintln!("  {} error: {error}", MEMBER_LABELS[member]);
                }
                ensure!(
                    error_count < 1000,
                    "too many consumer errors (last: {error})"
                );
            }
        }
    }
}

/// Produces 100 B records at `GROUP_STREAM_RATE` from sequence `first` until told to stop.
fn spawn_stream_producer(
    cluster: &Cluster,
    topic: &str,
    shared: &Arc<GroupShared>,
    should_stop: &Arc<AtomicBool>,
    deadline: Instant,
) -> Result<JoinHandle<Result<u64>>> {
    let mut config = cluster.client_config();
    config
        .set("client.id", "group-stream")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("message.timeout.ms", "60000");
    let producer: ThreadedProducer<DeliveryTracker> =
        ThreadedProducer::from_config_and_context(&config, new_tracker(cluster, "group-stream", 0))
            .context("creating the stream producer")?;
    let shared = Arc::clone(shared);
    let should_stop = Arc::clone(should_stop);
    let topic = topic.to_owned();
    thread::Builder::new()
        .name("group-stream".into())
        .spawn(move || -> Result<u64> {
            let pattern = pattern(100);
            let mut value = vec![0u8; 100];
            let first = shared.bulk_count;
            let started = Instant::now();
            let mut sent = 0u64;
            while !should_stop.load(Ordering::SeqCst) {
                ensure!(
                    Instant::now() < deadline && started.elapsed() < GROUP_STREAM_MAX,
                    "stream producer ran out of time"
                );
                let due = started
                    + Duration::from_nanos(sent.saturating_mul(1_000_000_000) / GROUP_STREAM_RATE);
                let now = Instant::now();
                if due > now {
                    thread::sleep((due - now).min(Duration::from_millis(50)));
                    continue;
                }
                let sequence = first + sent;
                fill_record(&mut value, &pattern, sequence);
                let record = BaseRecord::<(), [u8], usize>::with_opaque_to(&topic, 0)
                    .partition(partition_of(sequence, GROUP_PARTITIONS))
                    .payload(&value[..]);
                producer
                    .send(record)
                    .map_err(|(error, _)| error)
                    .with_context(|| format!("enqueuing stream record {sequence}"))?;
                sent += 1;
                shared.stream_next.store(sequence + 1, Ordering::SeqCst);
            }
            producer
                .flush(Duration::from_secs(30))
                .context("flushing the stream")?;
            let tracker = producer.context();
            let failed = tracker.failed_count.load(Ordering::Relaxed);
            ensure!(failed == 0, "{failed} stream records failed delivery");
            Ok(sent)
        })
        .context("spawning the stream producer")
}

/// What the group run measured beyond its produce/consume row.
#[derive(Debug)]
struct GroupReport {
    records: u64,
    consume_elapsed: Duration,
    first_record_after: Duration,
    bulk_duplicates: u64,
    bulk_missing: u64,
    join_back: Duration,
    new_member_partitions: u32,
    leave_back_all: Duration,
    leave_back_own: Duration,
    leaver_partitions: u32,
    close_time: Duration,
    stream_sent: u64,
    stream_duplicates: u64,
    stream_missing: u64,
    rebalance_callbacks: u64,
    commit_errors: u64,
}

impl GroupReport {
    fn is_exactly_once(&self) -> bool {
        self.bulk_duplicates == 0 && self.bulk_missing == 0
    }
}

/// The group run: produce the records, consume them with a group of `GROUP_MEMBERS`, then time a
/// member joining and one leaving while a stream keeps flowing.
fn run_group(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    cluster: &Cluster,
    sampler: Option<&ProcSampler>,
    unique: u64,
    deadline: Instant,
) -> Result<(RunReport, GroupReport)> {
    let spec = RunSpec {
        name: "group",
        record_count: args.group_records,
        record_bytes: 100,
        rate_per_sec: None,
    };
    let topic = format!("tidelog-bench-group-{}-{unique}", std::process::id());
    let group_id = format!("tidelog-bench-group-{}-{unique}", std::process::id());
    eprintln!(
        "run group: {} records of 100 B to {topic} ({GROUP_PARTITIONS} partitions), \
         {GROUP_MEMBERS} members in group {group_id}",
        spec.record_count
    );
    create_topic(runtime, cluster, &topic, GROUP_PARTITIONS, deadline)
        .with_context(|| format!("creating topic {topic}"))?;
    if let Some(sampler) = sampler {
        sampler.reset_peak();
    }
    let broker_cpu_0 = sampler.and_then(ProcSampler::cpu_secs);
    let bench_cpu_0 = self_cpu_secs();
    let produce = produce(
        cluster,
        &topic,
        GROUP_PARTITIONS,
        &spec,
        args.linger_ms,
        None,
        deadline,
    )
    .context("run group: producing")?;
    let broker_cpu_1 = sampler.and_then(ProcSampler::cpu_secs);
    let bench_cpu_1 = self_cpu_secs();
    eprintln!(
        "  produced in {:.2} s ({:.0} records/s)",
        produce.elapsed.as_secs_f64(),
        per_sec(spec.record_count, produce.elapsed)
    );

    let stream_capacity = GROUP_STREAM_RATE * GROUP_STREAM_MAX.as_secs() + GROUP_STREAM_RATE;
    let partition_count = usize::try_from(GROUP_PARTITIONS).context("partitions")?;
    let shared = Arc::new(GroupShared {
        origin: Instant::now(),
        bulk_count: spec.record_count,
        bulk_seen: SeenBits::new(spec.record_count),
        bulk_unique: AtomicU64::new(0),
        bulk_duplicates: AtomicU64::new(0),
        bulk_first_ns: AtomicU64::new(0),
        bulk_last_ns: AtomicU64::new(0),
        stream_seen: SeenBits::new(stream_capacity),
        stream_unique: AtomicU64::new(0),
        stream_duplicates: AtomicU64::new(0),
        warmup_count: AtomicU64::new(0),
        stream_next: AtomicU64::new(spec.record_count),
        phase_start_ns: AtomicU64::new(0),
        threshold: AtomicU64::new(NO_THRESHOLD),
        partition_back_ns: (0..partition_count).map(|_| AtomicU64::new(0)).collect(),
        assigned_ns: (0..=GROUP_MEMBERS).map(|_| AtomicU64::new(0)).collect(),
        assigned_mask: (0..=GROUP_MEMBERS).map(|_| AtomicU64::new(0)).collect(),
        rebalance_count: AtomicU64::new(0),
        commit_error_count: AtomicU64::new(0),
        should_leave: (0..=GROUP_MEMBERS)
            .map(|_| AtomicBool::new(false))
            .collect(),
        close_ns: (0..=GROUP_MEMBERS).map(|_| AtomicU64::new(0)).collect(),
        should_stop: AtomicBool::new(false),
        failure: Mutex::new(None),
    });
    let stream_stop = Arc::new(AtomicBool::new(false));
    let mut members = Vec::new();
    let mut stream = None;
    let result = group_phases(
        cluster,
        &group_id,
        &topic,
        &shared,
        &stream_stop,
        &mut members,
        &mut stream,
        deadline,
    );
    // Always stop the members and the stream, bounded by their own poll timeouts.
    shared.should_stop.store(true, Ordering::SeqCst);
    stream_stop.store(true, Ordering::SeqCst);
    for handle in members {
        let _ = handle.join();
    }
    let stream_result = stream.map(|handle| {
        handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("stream producer panicked")))
    });
    let mut report = result?;
    if let Some(stream_result) = stream_result {
        stream_result?;
    }
    let broker_cpu_2 = sampler.and_then(ProcSampler::cpu_secs);
    let bench_cpu_2 = self_cpu_secs();
    report.rebalance_callbacks = shared.rebalance_count.load(Ordering::SeqCst);
    report.commit_errors = shared.commit_error_count.load(Ordering::SeqCst);
    report.bulk_duplicates = shared.bulk_duplicates.load(Ordering::SeqCst);
    report.stream_duplicates = shared.stream_duplicates.load(Ordering::SeqCst);
    let run_report = RunReport {
        spec,
        produce,
        consume: ConsumeStats {
            elapsed: report.consume_elapsed,
            bytes: report.records * 100,
        },
        broker_rss_peak_kb: sampler.map(ProcSampler::peak_kb),
        broker_cpu_produce_secs: difference(broker_cpu_0, broker_cpu_1),
        broker_cpu_consume_secs: difference(broker_cpu_1, broker_cpu_2),
        bench_cpu_produce_secs: difference(bench_cpu_0, bench_cpu_1),
        bench_cpu_consume_secs: difference(bench_cpu_1, bench_cpu_2),
    };
    Ok((run_report, report))
}

#[allow(clippy::too_many_arguments)] // the handles are the caller's so it can always clean up
fn group_phases(
    cluster: &Cluster,
    group_id: &str,
    topic: &str,
    shared: &Arc<GroupShared>,
    stream_stop: &Arc<AtomicBool>,
    members: &mut Vec<JoinHandle<()>>,
    stream: &mut Option<JoinHandle<Result<u64>>>,
    deadline: Instant,
) -> Result<GroupReport> {
    let records = shared.bulk_count;
    // 1. Three members consume the records; the clock runs from the subscribe() calls.
    let started_ns = shared.now_ns();
    for member in 0..GROUP_MEMBERS {
        members.push(spawn_member(
            cluster, group_id, topic, member, shared, false, deadline,
        )?);
    }
    loop {
        if let Some(failure) = shared.failure() {
            bail!("{failure}");
        }
        if shared.bulk_unique.load(Ordering::SeqCst) == records {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "overall timeout: the group consumed {} of {records} records",
            shared.bulk_unique.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(2));
    }
    let last_ns = shared.bulk_last_ns.load(Ordering::SeqCst);
    let consume_elapsed = Duration::from_nanos(last_ns.saturating_sub(started_ns));
    let first_record_after = Duration::from_nanos(
        shared
            .bulk_first_ns
            .load(Ordering::SeqCst)
            .saturating_sub(started_ns),
    );
    eprintln!(
        "  group consumed in {:.2} s ({:.0} records/s), first record after {:.0} ms, \
         {} duplicates",
        consume_elapsed.as_secs_f64(),
        per_sec(records, consume_elapsed),
        ms(first_record_after),
        shared.bulk_duplicates.load(Ordering::SeqCst)
    );

    // 2. A stream flows; a fourth member joins.
    *stream = Some(spawn_stream_producer(
        cluster,
        topic,
        shared,
        stream_stop,
        deadline,
    )?);
    thread::sleep(GROUP_SETTLE);
    let joiner = GROUP_MEMBERS;
    members.push(spawn_member(
        cluster, group_id, topic, joiner, shared, true, deadline,
    )?);
    let back = shared.wait_partitions_back("join")?;
    let join_back = shared.back_after(&back, u64::MAX);
    let new_member_partitions = shared.assigned_mask[joiner]
        .load(Ordering::SeqCst)
        .count_ones();
    eprintln!(
        "  member-4 joined: all partitions consumed again after {:.0} ms (it got {} partitions)",
        ms(join_back),
        new_member_partitions
    );

    // 3. Member 1 leaves (closes its consumer); the phase starts at its close.
    thread::sleep(GROUP_SETTLE);
    let leaver = 0;
    let leaver_mask = shared.assigned_mask[leaver].load(Ordering::SeqCst);
    shared.should_leave[leaver].store(true, Ordering::SeqCst);
    let handle = members.remove(leaver);
    // the member sees the flag within one poll timeout, then starts the phase and closes
    let leave_by = Instant::now() + REBALANCE_TIMEOUT;
    while !handle.is_finished() {
        ensure!(
            Instant::now() < leave_by,
            "member-1 did not close within {REBALANCE_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let _ = handle.join();
    let back = shared.wait_partitions_back("leave")?;
    let leave_back_all = shared.back_after(&back, u64::MAX);
    let leave_back_own = shared.back_after(&back, leaver_mask);
    let close_time = Duration::from_nanos(shared.close_ns[leaver].load(Ordering::SeqCst));
    eprintln!(
        "  member-1 left (close {:.0} ms): its {} partitions consumed again after {:.0} ms, \
         all after {:.0} ms",
        ms(close_time),
        leaver_mask.count_ones(),
        ms(leave_back_own),
        ms(leave_back_all)
    );

    // 4. Stop the stream and wait (bounded) until every streamed record arrived.
    thread::sleep(GROUP_SETTLE);
    stream_stop.store(true, Ordering::SeqCst);
    let stream_handle = stream.take().context("stream producer missing")?;
    let stream_sent = stream_handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("stream producer panicked")))?;
    let drain_by = Instant::now() + REBALANCE_TIMEOUT;
    while shared.stream_unique.load(Ordering::SeqCst) < stream_sent && Instant::now() < drain_by {
        if let Some(failure) = shared.failure() {
            bail!("{failure}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let stream_missing = stream_sent.saturating_sub(shared.stream_unique.load(Ordering::SeqCst));
    let bulk_missing = records.saturating_sub(shared.bulk_unique.load(Ordering::SeqCst));
    Ok(GroupReport {
        records,
        consume_elapsed,
        first_record_after,
        bulk_duplicates: 0,
        bulk_missing,
        join_back,
        new_member_partitions,
        leave_back_all,
        leave_back_own,
        leaver_partitions: leaver_mask.count_ones(),
        close_time,
        stream_sent,
        stream_duplicates: 0,
        stream_missing,
        rebalance_callbacks: 0,
        commit_errors: 0,
    })
}

fn print_group_report(group: &GroupReport) {
    println!(
        "group: {} records, {GROUP_MEMBERS} members, {GROUP_PARTITIONS} partitions, \
         auto-commit every {GROUP_AUTO_COMMIT_MS} ms, session.timeout.ms \
         {GROUP_SESSION_TIMEOUT_MS}, heartbeat.interval.ms {GROUP_HEARTBEAT_MS}",
        group.records
    );
    println!(
        "group consume: {:.0} records/s ({:.2} s from subscribe, first record after {:.0} ms); \
         exactly once: {} ({} duplicates, {} missing)",
        per_sec(group.records, group.consume_elapsed),
        group.consume_elapsed.as_secs_f64(),
        ms(group.first_record_after),
        if group.is_exactly_once() {
            "OK"
        } else {
            "FAILED"
        },
        group.bulk_duplicates,
        group.bulk_missing
    );
    println!(
        "group rebalance, member joins ({GROUP_STREAM_RATE} records/s stream): {:.0} ms from \
         its subscribe() to all partitions consumed again (it got {} partitions)",
        ms(group.join_back),
        group.new_member_partitions
    );
    println!(
        "group rebalance, member leaves: {:.0} ms from its close to its {} partitions consumed \
         again, {:.0} ms to all partitions (close itself took {:.0} ms)",
        ms(group.leave_back_own),
        group.leaver_partitions,
        ms(group.leave_back_all),
        ms(group.close_time)
    );
    println!(
        "group stream: {} records, {} duplicates, {} missing; {} rebalance callbacks, {} commit \
         errors",
        group.stream_sent,
        group.stream_duplicates,
        group.stream_missing,
        group.rebalance_callbacks,
        group.commit_errors
    );
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

fn print_report(reports: &[RunReport], group: Option<&GroupReport>, final_hwm_kb: Option<u64>) {
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
    if let Some(group) = group {
        print_group_report(group);
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
