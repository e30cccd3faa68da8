//! The throughput and latency runs: their specs, and running each one (produce, then consume
//! and verify) while sampling broker and benchmark CPU time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

use crate::cli::Args;
use crate::client::{Cluster, create_topic};
use crate::consume::{ConsumeStats, consume};
use crate::disk::{Disk, DiskUse};
use crate::group::{GroupReport, run_group};
use crate::produce::{ProduceStats, produce};
use crate::report::per_sec;
use crate::sampler::{ProcSampler, self_cpu_secs};

/// One benchmark run: a topic, a number of records of one size, optionally paced.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) name: String,
    pub(crate) record_count: u64,
    pub(crate) record_bytes: usize,
    /// Records per second; None = as fast as the producer accepts them.
    pub(crate) rate_per_sec: Option<u64>,
    pub(crate) mode: ProduceMode,
    /// `max.in.flight.requests.per.connection` when set (plain runs only).
    pub(crate) max_in_flight: Option<u32>,
}

/// How a run's producer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProduceMode {
    /// `enable.idempotence=false` (librdkafka's default).
    Plain,
    /// `enable.idempotence=true`: a producer id and sequence numbers on every batch.
    Idempotent,
    /// A `transactional.id`; the open transaction is committed every `commit_interval`.
    Transactional { commit_interval: Duration },
}

impl ProduceMode {
    pub(crate) fn is_transactional(self) -> bool {
        matches!(self, Self::Transactional { .. })
    }
}

pub(crate) fn run_specs(args: &Args) -> Vec<RunSpec> {
    let mut specs = Vec::new();
    let rounds = if args.skip_idempotent {
        1
    } else {
        args.idempotence_rounds.max(1)
    };
    for (name, record_count, record_bytes) in [
        ("100B", args.records_100b, 100),
        ("1KiB", args.records_1k, 1024),
    ] {
        if record_count == 0 {
            continue;
        }
        for round in 1..=rounds {
            let suffix = if round == 1 {
                String::new()
            } else {
                format!(".{round}")
            };
            specs.push(RunSpec {
                name: format!("{name}{suffix}"),
                record_count,
                record_bytes,
                rate_per_sec: None,
                mode: ProduceMode::Plain,
                max_in_flight: args.max_in_flight,
            });
            // Right after its plain twin, so both see the same machine and broker.
            if !args.skip_idempotent {
                specs.push(RunSpec {
                    name: format!("{name}-idem{suffix}"),
                    record_count,
                    record_bytes,
                    rate_per_sec: None,
                    mode: ProduceMode::Idempotent,
                    max_in_flight: None,
                });
            }
        }
    }
    if args.records_txn > 0 {
        specs.push(RunSpec {
            name: "100B-txn".to_owned(),
            record_count: args.records_txn,
            record_bytes: 100,
            rate_per_sec: None,
            mode: ProduceMode::Transactional {
                commit_interval: Duration::from_millis(args.txn_commit_ms.max(1)),
            },
            max_in_flight: None,
        });
    }
    if args.latency_secs > 0 {
        specs.push(RunSpec {
            name: "latency".to_owned(),
            record_count: args.latency_rate.saturating_mul(args.latency_secs),
            record_bytes: args.latency_record_bytes,
            rate_per_sec: Some(args.latency_rate),
            mode: ProduceMode::Plain,
            max_in_flight: None,
        });
    }
    specs
}

/// Everything measured in one run.
#[derive(Debug)]
pub(crate) struct RunReport {
    pub(crate) spec: RunSpec,
    pub(crate) produce: ProduceStats,
    pub(crate) consume: ConsumeStats,
    /// Broker peak VmRSS (KiB) sampled during this run.
    pub(crate) broker_rss_peak_kb: Option<u64>,
    pub(crate) broker_cpu_produce_secs: Option<f64>,
    pub(crate) broker_cpu_consume_secs: Option<f64>,
    pub(crate) bench_cpu_produce_secs: Option<f64>,
    pub(crate) bench_cpu_consume_secs: Option<f64>,
    /// What the disk under the data dirs did while the run produced (`None` without one).
    pub(crate) disk_produce: Option<DiskUse>,
}

pub(crate) fn run_all(
    args: &Args,
    cluster: &Cluster,
    specs: &[RunSpec],
    sampler: Option<&ProcSampler>,
    deadline: Instant,
) -> Result<(Vec<RunReport>, Option<GroupReport>)> {
    let (runtime, unique) = admin_runtime()?;
    // Every broker's data dir is under the temp dir (BrokerProcess, ThreeBrokers).
    let disk = Disk::of(&std::env::temp_dir());
    let mut reports = Vec::new();
    for spec in specs {
        let topic = topic_name(&spec.name, unique);
        eprintln!(
            "run {}: {} records of {} B to {topic}{}",
            spec.name,
            spec.record_count,
            spec.record_bytes,
            spec.rate_per_sec
                .map(|rate| format!(" at {rate} records/s"))
                .unwrap_or_default()
        );
        let leaders = create_topic(&runtime, cluster, &topic, args.partitions, deadline)
            .with_context(|| format!("creating topic {topic}"))?;
        eprintln!("  partition leaders (by partition): {leaders:?}");
        if let Some(sampler) = sampler {
            sampler.reset_peak();
        }
        let broker_cpu_0 = sampler.and_then(ProcSampler::cpu_secs);
        let bench_cpu_0 = self_cpu_secs();
        let disk_0 = disk.and_then(Disk::sample);
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
        let disk_produce = disk
            .and_then(Disk::sample)
            .zip(disk_0)
            .map(|(after, before)| before.until(after));
        eprintln!(
            "  produced in {:.2} s ({:.0} records/s){}",
            produce.elapsed.as_secs_f64(),
            per_sec(spec.record_count, produce.elapsed),
            disk_produce
                .map(|disk| format!("; disk: {}", disk.describe()))
                .unwrap_or_default()
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
            disk_produce,
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

/// The current-thread runtime the admin client runs on, and the seconds since the epoch that
/// make this benchmark's topic names unique.
pub(crate) fn admin_runtime() -> Result<(tokio::runtime::Runtime, u64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime for the admin client")?;
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok((runtime, unique))
}

/// The topic of run `run_name`.
pub(crate) fn topic_name(run_name: &str, unique: u64) -> String {
    format!("tidelog-bench-{run_name}-{}-{unique}", std::process::id())
}

pub(crate) fn difference(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}
