//! The consumer-group run: three members consume while a stream flows, a fourth joins and one
//! leaves, and the rebalances are timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::cli::Args;
use crate::client::{Cluster, create_topic};
use crate::consume::ConsumeStats;
use crate::group_member::{spawn_member, spawn_stream_producer};
use crate::group_shared::{GroupShared, SeenBits};
use crate::produce::produce;
use crate::report::{ms, per_sec};
use crate::runs::{ProduceMode, RunReport, RunSpec, difference};
use crate::sampler::{ProcSampler, self_cpu_secs};

/// Partitions of the group run's topic.
pub(crate) const GROUP_PARTITIONS: i32 = 6;
/// Members that consume the group run's records; one more joins for the rebalance measurement.
pub(crate) const GROUP_MEMBERS: usize = 3;
pub(crate) const MEMBER_LABELS: [&str; GROUP_MEMBERS + 1] =
    ["member-1", "member-2", "member-3", "member-4"];
/// Group settings: librdkafka's default partition.assignment.strategy `range,roundrobin` is eager
/// (every member gives up all its partitions on each rebalance), offsets are stored when poll()
/// returns a record and auto-committed this often, plus librdkafka's commit on revoke and close.
/// The broker's groups.initial_rebalance_delay_ms is 0, so the first member starts at once and
/// the others join through rebalances (that churn is part of the group consume time).
pub(crate) const GROUP_AUTO_COMMIT_MS: u32 = 500;
pub(crate) const GROUP_SESSION_TIMEOUT_MS: u32 = 6000;
pub(crate) const GROUP_HEARTBEAT_MS: u32 = 500;
/// Records per second of the stream produced while the group rebalances.
pub(crate) const GROUP_STREAM_RATE: u64 = 2000;
/// The stream runs at most this long (it sizes the duplicate bitmap).
pub(crate) const GROUP_STREAM_MAX: Duration = Duration::from_secs(180);
/// Time allowed for each rebalance to bring every partition back, and for the stream to drain.
pub(crate) const REBALANCE_TIMEOUT: Duration = Duration::from_secs(60);
/// The group consumes the stream this long before a member joins or leaves.
const GROUP_SETTLE: Duration = Duration::from_secs(2);
/// Marks a rebalance measurement as inactive.
const NO_THRESHOLD: u64 = u64::MAX;

/// What the group run measured beyond its produce/consume row.
#[derive(Debug)]
pub(crate) struct GroupReport {
    pub(crate) records: u64,
    pub(crate) consume_elapsed: Duration,
    pub(crate) first_record_after: Duration,
    pub(crate) bulk_duplicates: u64,
    pub(crate) bulk_missing: u64,
    pub(crate) join_back: Duration,
    pub(crate) new_member_partitions: u32,
    pub(crate) leave_back_all: Duration,
    pub(crate) leave_back_own: Duration,
    pub(crate) leaver_partitions: u32,
    pub(crate) close_time: Duration,
    pub(crate) stream_sent: u64,
    pub(crate) stream_duplicates: u64,
    pub(crate) stream_missing: u64,
    pub(crate) rebalance_callbacks: u64,
    pub(crate) commit_errors: u64,
}

impl GroupReport {
    pub(crate) fn is_exactly_once(&self) -> bool {
        self.bulk_duplicates == 0 && self.bulk_missing == 0
    }
}

/// The group run: produce the records, consume them with a group of `GROUP_MEMBERS`, then time a
/// member joining and one leaving while a stream keeps flowing.
pub(crate) fn run_group(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    cluster: &Cluster,
    sampler: Option<&ProcSampler>,
    unique: u64,
    deadline: Instant,
) -> Result<(RunReport, GroupReport)> {
    let spec = RunSpec {
        name: "group".to_owned(),
        record_count: args.group_records,
        record_bytes: 100,
        rate_per_sec: None,
        mode: ProduceMode::Plain,
        max_in_flight: None,
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
        disk_produce: None,
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
