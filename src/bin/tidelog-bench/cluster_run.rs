//! The cluster run: the single node's plain produce/consume runs against three brokers (the
//! default replication factor, 3; partitions spread, bootstrap from broker 1) and against
//! three brokers whose topics have replication factor 1 (`--skip-rf1` skips those), then, once per
//! freshly formed cluster, the time from kill -9 of the controller leader to the next
//! successful CreateTopics through a survivor, and from kill -9 of a partition leader to the
//! next acknowledged write (`partition_failover.rs`); then how fast a restarted broker catches
//! up (`catch_up.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use crate::catch_up::{CATCH_UP_RECORD_BYTES, CatchUp, restarted_broker_catch_up};
use crate::cli::Args;
use crate::disk::DiskUse;
use crate::partition_failover::{PartitionFailover, kill_partition_leader};
use crate::report::{ms, per_sec};
use crate::runs::{ProduceMode, RunReport, RunSpec, run_all};
use crate::three::{CLUSTER_SIZE, POLL_INTERVAL, REQUEST_TIMEOUT, ThreeBrokers};
use crate::wire::{ERROR_TOPIC_ALREADY_EXISTS, create_topic_at};

/// How long CreateTopics may keep failing after the kill before the run gives up.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// A new CreateTopics attempt this often after the kill: the figure's resolution.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// What the CreateTopics probes after a kill got.
#[derive(Debug)]
struct Probes {
    /// From the kill to the earliest successful answer.
    first_success: Option<Duration>,
    attempts: u32,
    failures: BTreeMap<String, u32>,
}

/// Sends CreateTopics of `{topic}-{n}` to `addr`, a new attempt on its own connection every
/// `PROBE_INTERVAL` from `killed_at` (a request held by the broker does not hide a later one
/// that would succeed), until one succeeds or `give_up_at`; waits for every attempt's answer
/// (each bounded by `REQUEST_TIMEOUT`, so at most REQUEST_TIMEOUT / PROBE_INTERVAL in flight).
fn probe_create_topics(
    addr: &str,
    topic: &str,
    partitions: i32,
    killed_at: Instant,
    give_up_at: Instant,
) -> Probes {
    let (answer_tx, answer_rx) = mpsc::channel::<(Instant, String)>();
    let mut probes = Probes {
        first_success: None,
        attempts: 0,
        failures: BTreeMap::new(),
    };
    let mut answered = 0u32;
    thread::scope(|scope| {
        let mut next_launch = killed_at;
        loop {
            let now = Instant::now();
            if probes.first_success.is_none() && now < give_up_at && now >= next_launch {
                probes.attempts += 1;
                let name = format!("{topic}-{}", probes.attempts);
                let answer_tx = answer_tx.clone();
                scope.spawn(move || {
                    let outcome = match create_topic_at(addr, &name, partitions, REQUEST_TIMEOUT) {
                        Ok(0 | ERROR_TOPIC_ALREADY_EXISTS) => String::new(),
                        Ok(code) => format!("error code {code}"),
                        Err(error) => format!("{error:#}"),
                    };
                    let _ = answer_tx.send((Instant::now(), outcome));
                });
                next_launch += PROBE_INTERVAL;
            }
            if let Ok((at, outcome)) = answer_rx.recv_timeout(POLL_INTERVAL) {
                answered += 1;
                if outcome.is_empty() {
                    let elapsed = at - killed_at;
                    probes.first_success = Some(
                        probes
                            .first_success
                            .map_or(elapsed, |first| first.min(elapsed)),
                    );
                } else {
                    *probes.failures.entry(outcome).or_insert(0) += 1;
                }
            }
            let is_done = probes.first_success.is_some() || Instant::now() >= give_up_at;
            if is_done && answered == probes.attempts {
                break;
            }
        }
    });
    probes
}

/// One kill -9 of a controller leader and the CreateTopics that next succeeded.
#[derive(Debug)]
pub(crate) struct Failover {
    pub(crate) killed: i32,
    /// The survivor CreateTopics was sent to.
    pub(crate) via: i32,
    pub(crate) elapsed: Duration,
    pub(crate) attempts: u32,
    /// What the failed attempts got, with counts (error code or transport error); attempts
    /// still in flight at the first success may succeed too.
    pub(crate) failures: BTreeMap<String, u32>,
    /// The controller leader the survivors named after the success (-1: they disagreed).
    pub(crate) new_controller: i32,
}

/// Everything measured on clusters.
#[derive(Debug)]
pub(crate) struct ClusterReport {
    pub(crate) runs: Vec<RunReport>,
    /// The same runs on a cluster whose topics have replication factor 1.
    pub(crate) rf1_runs: Vec<RunReport>,
    pub(crate) failovers: Vec<Failover>,
    pub(crate) leader_kills: Vec<PartitionFailover>,
    pub(crate) catch_up: Option<CatchUp>,
}

/// The single node's plain runs, one of each size and rate (no idempotent, transactional or
/// group runs, and no repeated rounds).
fn cluster_specs(specs: &[RunSpec]) -> Vec<RunSpec> {
    let mut seen = BTreeSet::new();
    specs
        .iter()
        .filter(|spec| spec.mode == ProduceMode::Plain)
        .filter(|spec| seen.insert((spec.record_bytes, spec.rate_per_sec)))
        .cloned()
        .collect()
}

/// The plain runs `specs` on a freshly formed cluster whose topics take `replication_factor`
/// (the cluster's default, 3, when None).
fn cluster_runs(
    args: &Args,
    bin: &Path,
    specs: &[RunSpec],
    replication_factor: Option<i16>,
    deadline: Instant,
) -> Result<Vec<RunReport>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let label = replication_factor.map_or_else(|| "cluster".to_owned(), |rf| format!("rf{rf}"));
    let brokers =
        ThreeBrokers::form_with(bin, &label, args.keep_data, deadline, replication_factor)?;
    eprintln!(
        "cluster formed ({label}): brokers {:?} (pids {:?}), controller leader {}",
        brokers.members.iter().map(|m| &m.addr).collect::<Vec<_>>(),
        brokers
            .members
            .iter()
            .map(|m| m.process.pid())
            .collect::<Vec<_>>(),
        brokers.controller_id()
    );
    let cluster = brokers.clients(args.client_debug.clone());
    let run_args = Args {
        skip_group: true,
        latency_csv: None,
        ..args.clone()
    };
    let runs = match run_all(&run_args, &cluster, specs, None, deadline) {
        Ok((reports, _)) => reports,
        Err(error) => bail!("{error:#}{}", brokers.log_tails()),
    };
    brokers.stop();
    Ok(runs)
}

pub(crate) fn run_cluster(
    args: &Args,
    bin: &Path,
    specs: &[RunSpec],
    deadline: Instant,
) -> Result<ClusterReport> {
    let specs = cluster_specs(specs);
    let runs = cluster_runs(args, bin, &specs, None, deadline)?;
    let rf1_runs = if args.skip_rf1 {
        Vec::new()
    } else {
        cluster_runs(args, bin, &specs, Some(1), deadline)?
    };
    let mut failovers = Vec::new();
    for round in 1..=args.failover_rounds {
        let brokers =
            ThreeBrokers::form(bin, &format!("failover{round}"), args.keep_data, deadline)?;
        let failover = kill_controller_leader(args, brokers, round, deadline)?;
        eprintln!(
            "failover {round}: kill -9 of controller leader {}, CreateTopics through broker {} \
             succeeded after {:.0} ms",
            failover.killed,
            failover.via,
            ms(failover.elapsed)
        );
        failovers.push(failover);
    }
    let mut leader_kills = Vec::new();
    for round in 1..=args.failover_rounds {
        let brokers = ThreeBrokers::form(
            bin,
            &format!("leader-kill{round}"),
            args.keep_data,
            deadline,
        )?;
        let kill = kill_partition_leader(args, brokers, round, deadline)?;
        eprintln!(
            "partition failover {round}: kill -9 of partition leader {}, next acknowledged \
             write after {:.0} ms ({} records, all acknowledged)",
            kill.killed,
            ms(kill.elapsed),
            kill.records
        );
        leader_kills.push(kill);
    }
    let catch_up = if args.catch_up_records > 0 {
        let catch_up = restarted_broker_catch_up(args, bin, deadline).context("catch-up")?;
        eprintln!(
            "catch-up: broker {} caught up {:.1} MB of log in {:.0} ms",
            catch_up.restarted,
            mb(catch_up.lag_bytes),
            ms(catch_up.caught_up_after)
        );
        Some(catch_up)
    } else {
        None
    };
    Ok(ClusterReport {
        runs,
        rf1_runs,
        failovers,
        leader_kills,
        catch_up,
    })
}

/// Kills the controller leader of a formed cluster with SIGKILL and probes CreateTopics at the
/// lowest surviving node id until one succeeds; then stops the survivors.
fn kill_controller_leader(
    args: &Args,
    mut brokers: ThreeBrokers,
    round: u32,
    deadline: Instant,
) -> Result<Failover> {
    let leader = brokers.controller_id();
    let Some(at) = brokers.members.iter().position(|m| m.node_id == leader) else {
        bail!("the brokers name no common controller leader ({leader})");
    };
    let via = brokers
        .members
        .iter()
        .find(|m| m.node_id != leader)
        .context("a survivor")?;
    let (via_id, via_addr) = (via.node_id, via.addr.clone());
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = format!(
        "tidelog-bench-failover{round}-{}-{unique}",
        std::process::id()
    );
    brokers.members[at].process.kill9()?;
    let killed_at = Instant::now();
    brokers.members[at].is_alive = false;
    let give_up_at = (killed_at + FAILOVER_TIMEOUT).min(deadline);
    let probes = probe_create_topics(&via_addr, &topic, args.partitions, killed_at, give_up_at);
    let Some(elapsed) = probes.first_success else {
        bail!(
            "no CreateTopics through broker {via_id} succeeded within {:?} of the controller \
             leader's kill -9 ({} attempts: {:?}){}",
            give_up_at - killed_at,
            probes.attempts,
            probes.failures,
            brokers.log_tails()
        );
    };
    let (attempts, failures) = (probes.attempts, probes.failures);
    let new_controller = brokers.controller_id();
    brokers.stop();
    Ok(Failover {
        killed: leader,
        via: via_id,
        elapsed,
        attempts,
        failures,
        new_controller,
    })
}

/// The cluster's runs beside the single node's runs of the same name, then the failovers.
pub(crate) fn print_cluster_report(single: &[RunReport], cluster: &ClusterReport, args: &Args) {
    println!();
    println!(
        "cluster: {CLUSTER_SIZE} brokers (processes on this machine), replication factor \
         {CLUSTER_SIZE} (the default; each partition a raft group over all three) and, in the \
         RF 1 columns, a cluster of topics with replication factor 1; {} partitions with leaders \
         spread over the brokers, clients bootstrap from broker 1",
        args.partitions
    );
    if !cluster.runs.is_empty() {
        println!(
            "{:<11} {:>9} {:>6} | {:>11} {:>11} {:>11} | {:>11} {:>11} {:>11} | {:>15}",
            "run",
            "records",
            "size",
            "1 node prod",
            "RF 1 prod",
            "RF 3 prod",
            "1 node cons",
            "RF 1 cons",
            "RF 3 cons",
            "RF 3 p50/p99"
        );
    }
    let rate = |report: Option<&RunReport>, elapsed: fn(&RunReport) -> Duration| {
        report.map_or_else(
            || "n/a".to_owned(),
            |r| format!("{:.0}", per_sec(r.spec.record_count, elapsed(r))),
        )
    };
    for run in &cluster.runs {
        let (one, rf1) = (twin(single, run), twin(&cluster.rf1_runs, run));
        println!(
            "{:<11} {:>9} {:>6} | {:>11} {:>11} {:>11} | {:>11} {:>11} {:>11} | {:>15}",
            run.spec.name,
            run.spec.record_count,
            run.spec.record_bytes,
            rate(one, |r| r.produce.elapsed),
            rate(rf1, |r| r.produce.elapsed),
            rate(Some(run), |r| r.produce.elapsed),
            rate(one, |r| r.consume.elapsed),
            rate(rf1, |r| r.consume.elapsed),
            rate(Some(run), |r| r.consume.elapsed),
            format!(
                "{:.2}/{:.2} ms",
                run.produce.latency.p50_ms, run.produce.latency.p99_ms
            )
        );
    }
    if !cluster.runs.is_empty() {
        println!("(records/s; p50/p99 = enqueue -> delivery callback latency)");
    }
    // Three replicas on one machine write every record to the same disk three times.
    let disk = |report: Option<&RunReport>| {
        report
            .and_then(|r| r.disk_produce)
            .map_or_else(|| "n/a".to_owned(), DiskUse::describe)
    };
    for run in cluster.runs.iter().filter(|run| run.disk_produce.is_some()) {
        println!(
            "{} produce, the disk under the data dirs: 1 node {}; RF 1 {}; RF 3 {}",
            run.spec.name,
            disk(twin(single, run)),
            disk(twin(&cluster.rf1_runs, run)),
            disk(Some(run))
        );
    }
    for (round, failover) in cluster.failovers.iter().enumerate() {
        let failures: Vec<String> = failover
            .failures
            .iter()
            .map(|(what, count)| format!("{count} x {what}"))
            .collect();
        println!(
            "failover {}: kill -9 of controller leader {} -> CreateTopics through broker {} \
             succeeded after {:.0} ms ({} attempts, one every {} ms; failed: {}); new \
             controller leader {}",
            round + 1,
            failover.killed,
            failover.via,
            ms(failover.elapsed),
            failover.attempts,
            PROBE_INTERVAL.as_millis(),
            if failures.is_empty() {
                "none".to_owned()
            } else {
                failures.join(", ")
            },
            failover.new_controller
        );
    }
    let mut times: Vec<f64> = cluster.failovers.iter().map(|f| ms(f.elapsed)).collect();
    times.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        println!(
            "controller failover (kill -9 -> next successful CreateTopics), {} fresh clusters: \
             median {:.0} ms, min {first:.0} ms, max {last:.0} ms",
            times.len(),
            times[times.len() / 2]
        );
    }
    let mut times: Vec<f64> = cluster.leader_kills.iter().map(|f| ms(f.elapsed)).collect();
    times.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        println!(
            "partition failover (kill -9 of a partition leader that is not the controller \
             leader -> first acknowledgement of a record sent after it; idempotent acks=all, one \
             record every 10 ms, none lost), {} fresh clusters: median {:.0} ms, min \
             {first:.0} ms, max {last:.0} ms",
            times.len(),
            times[times.len() / 2]
        );
    }
    if let Some(catch_up) = &cluster.catch_up {
        print_catch_up(catch_up);
    }
}

/// Bytes as MB (10^6 bytes).
/// The run of `runs` with the same name as `run`.
fn twin<'a>(runs: &'a [RunReport], run: &RunReport) -> Option<&'a RunReport> {
    runs.iter().find(|r| r.spec.name == run.spec.name)
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1e6
}

fn print_catch_up(catch_up: &CatchUp) {
    let seconds = catch_up.caught_up_after.as_secs_f64();
    let value_bytes = catch_up.records as f64 * CATCH_UP_RECORD_BYTES as f64;
    println!(
        "catch-up of a restarted broker: broker {} down (kill -9) for {:.1} s while {} records \
         of {CATCH_UP_RECORD_BYTES} B (idempotent, acks=all) went to {} partitions of \
         replication factor 3 ({:.1} MB of log per replica); restarted on its data dir: \
         listening after {:.0} ms, every replica's log as long as the longest other's \
         (DescribeLogDirs) after {:.0} ms: {:.0} records/s, {:.1} MB/s of record values \
         ({:.1} MB/s of log); in every partition's in-sync replicas after {}",
        catch_up.restarted,
        catch_up.down_for.as_secs_f64(),
        catch_up.records,
        catch_up.partitions,
        mb(catch_up.lag_bytes),
        ms(catch_up.listening_after),
        ms(catch_up.caught_up_after),
        catch_up.records as f64 / seconds,
        value_bytes / 1e6 / seconds,
        mb(catch_up.lag_bytes) / seconds,
        catch_up.in_sync_after.map_or_else(
            || "(not within 60 s)".to_owned(),
            |d| format!("{:.0} ms", ms(d))
        )
    );
}
