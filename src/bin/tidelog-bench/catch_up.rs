//! The catch-up figure: on a freshly formed cluster, a topic (replication factor 3) is written
//! while one broker is down (kill -9 of a broker that is neither the bootstrap broker nor the
//! controller leader), and after its restart (same data dir and port) the time until every one
//! of its replicas' logs is as long as the longest of the other replicas' (DescribeLogDirs at
//! each broker, the size of each partition's log there) gives the rate at which it caught up.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail, ensure};

use crate::cli::Args;
use crate::client::create_topic;
use crate::produce::produce;
use crate::report::ms;
use crate::runs::{ProduceMode, RunSpec};
use crate::three::{POLL_INTERVAL, REQUEST_TIMEOUT, ThreeBrokers};
use crate::wire::{log_sizes, topic_view};

/// Record value size of the writes the broker misses.
pub(crate) const CATCH_UP_RECORD_BYTES: usize = 1024;
/// Time allowed for writing the records while the broker is down (a failover included).
const WRITE_TIMEOUT: Duration = Duration::from_secs(180);
/// Time allowed from the restart to every replica caught up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);
/// Time allowed from caught up to back in every partition's in-sync replicas.
const ISR_TIMEOUT: Duration = Duration::from_secs(60);

/// One restarted broker catching up.
#[derive(Debug)]
pub(crate) struct CatchUp {
    pub(crate) restarted: i32,
    pub(crate) partitions: i32,
    /// Records written while it was down (besides one warm-up record per partition).
    pub(crate) records: u64,
    /// Bytes its replicas' logs were behind when it restarted, all partitions together.
    pub(crate) lag_bytes: i64,
    /// From the kill to the restart.
    pub(crate) down_for: Duration,
    /// From the restart to its `listening` line.
    pub(crate) listening_after: Duration,
    /// From the restart to every replica's log as long as the longest other replica's.
    pub(crate) caught_up_after: Duration,
    /// From the restart to being in every partition's in-sync replicas (Metadata), if within
    /// `ISR_TIMEOUT` of catching up.
    pub(crate) in_sync_after: Option<Duration>,
}

/// Runs the measurement on a cluster of its own (stopped at the end).
pub(crate) fn restarted_broker_catch_up(
    args: &Args,
    bin: &Path,
    deadline: Instant,
) -> Result<CatchUp> {
    let mut brokers = ThreeBrokers::form(bin, "catch-up", args.keep_data, deadline)?;
    let outcome = measure(args, bin, &mut brokers, deadline)
        .map_err(|error| anyhow!("{error:#}{}", brokers.log_tails()));
    brokers.stop();
    outcome
}

fn measure(
    args: &Args,
    bin: &Path,
    brokers: &mut ThreeBrokers,
    deadline: Instant,
) -> Result<CatchUp> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime for the admin client")?;
    let cluster = brokers.clients(args.client_debug.clone());
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = format!("tidelog-bench-catch-up-{}-{unique}", std::process::id());
    let leaders = create_topic(&runtime, &cluster, &topic, args.partitions, deadline)?;
    let controller = brokers.controller_id();
    // Not the bootstrap broker (the producer keeps working through it), not the controller
    // leader (no controller failover in the figure); of those, the one leading fewest partitions.
    let at = (1..brokers.members.len())
        .filter(|&i| brokers.members[i].node_id != controller)
        .min_by_key(|&i| {
            let id = brokers.members[i].node_id;
            leaders.iter().filter(|&&leader| leader == id).count()
        })
        .context("a broker that is neither broker 1 nor the controller leader")?;
    let restarted = brokers.members[at].node_id;
    let addrs: Vec<String> = brokers.members.iter().map(|m| m.addr.clone()).collect();

    // Before the kill its replicas hold everything (the topic's first entries).
    let in_sync_by = (Instant::now() + REQUEST_TIMEOUT * 10).min(deadline);
    let before = loop {
        if let Ok(sizes) = behind(&addrs, at, &topic, args.partitions)
            && sizes.values().all(|(own, longest)| own >= longest)
        {
            break sizes.values().map(|(own, _)| own).sum::<i64>();
        }
        ensure!(
            Instant::now() < in_sync_by,
            "broker {restarted}'s replicas of {topic} did not match the others before the kill"
        );
        thread::sleep(POLL_INTERVAL);
    };
    brokers.members[at].process.kill9()?;
    brokers.members[at].is_alive = false;
    let killed_at = Instant::now();
    eprintln!(
        "catch-up: killed broker {restarted} (leaders by partition {leaders:?}); writing {} \
         records of {CATCH_UP_RECORD_BYTES} B to {topic}",
        args.catch_up_records
    );

    let spec = RunSpec {
        name: "catch-up".to_owned(),
        record_count: args.catch_up_records,
        record_bytes: CATCH_UP_RECORD_BYTES,
        rate_per_sec: None,
        mode: ProduceMode::Idempotent,
        max_in_flight: None,
    };
    let write_by = (Instant::now() + WRITE_TIMEOUT).min(deadline);
    let written = produce(
        &cluster,
        &topic,
        args.partitions,
        &spec,
        args.linger_ms,
        None,
        write_by,
    )
    .context("writing while a broker is down")?;
    eprintln!(
        "  written in {:.2} s; restarting broker {restarted}",
        written.elapsed.as_secs_f64()
    );
    let mut longest_total = 0;
    for (i, addr) in addrs.iter().enumerate().filter(|(i, _)| *i != at) {
        let sizes = log_sizes(addr, &topic, args.partitions, REQUEST_TIMEOUT)
            .with_context(|| format!("DescribeLogDirs at {addr}"))?;
        longest_total = longest_total.max(sizes.values().sum::<i64>());
        ensure!(
            sizes.len() == usize::try_from(args.partitions).unwrap_or(0),
            "broker {} holds {} of {} partitions",
            brokers.members[i].node_id,
            sizes.len(),
            args.partitions
        );
    }

    let restarted_at = Instant::now();
    let down_for = restarted_at - killed_at;
    brokers.restart(at, bin)?;
    let listening_after = restarted_at.elapsed();
    let caught_up_by = (restarted_at + CATCH_UP_TIMEOUT).min(deadline);
    let mut last = BTreeMap::new();
    let mut first: Option<(Duration, Sizes)> = None;
    let caught_up_after = loop {
        match behind(&addrs, at, &topic, args.partitions) {
            Ok(sizes) if sizes.values().all(|(own, longest)| own >= longest) => {
                let elapsed = restarted_at.elapsed();
                eprintln!(
                    "  first answer after {:.0} ms (partition: (its log bytes, longest other)): \
                     {:?}; caught up after {:.0} ms: {sizes:?}",
                    first.as_ref().map_or(ms(elapsed), |(at, _)| ms(*at)),
                    first.as_ref().map_or(&sizes, |(_, sizes)| sizes),
                    ms(elapsed)
                );
                break elapsed;
            }
            Ok(sizes) => {
                if first.is_none() {
                    first = Some((restarted_at.elapsed(), sizes.clone()));
                }
                last = sizes;
            }
            Err(_) => {} // not answering yet
        }
        if Instant::now() >= caught_up_by {
            bail!(
                "broker {restarted} did not catch up within {CATCH_UP_TIMEOUT:?} of its restart \
                 (partition: (its log bytes, longest other)): {last:?}"
            );
        }
        thread::sleep(POLL_INTERVAL);
    };
    let isr_by = (Instant::now() + ISR_TIMEOUT).min(deadline);
    let survivor = &addrs[if at == 0 { 1 } else { 0 }];
    let in_sync_after = loop {
        let view = topic_view(survivor, &topic, REQUEST_TIMEOUT);
        if let Ok(view) = &view
            && view.len() == usize::try_from(args.partitions).unwrap_or(0)
            && view.values().all(|p| p.isr.contains(&restarted))
        {
            break Some(restarted_at.elapsed());
        }
        if Instant::now() >= isr_by {
            eprintln!("  not in every in-sync replica set; Metadata at {survivor}: {view:?}");
            break None;
        }
        thread::sleep(POLL_INTERVAL);
    };
    Ok(CatchUp {
        restarted,
        partitions: args.partitions,
        records: args.catch_up_records,
        lag_bytes: longest_total - before,
        down_for,
        listening_after,
        caught_up_after,
        in_sync_after,
    })
}

/// By partition: (bytes of one broker's log, bytes of the longest log among the others).
type Sizes = BTreeMap<i32, (i64, i64)>;

/// DescribeLogDirs at every broker: the sizes of broker `at`'s logs against the others'. Fails
/// while any broker does not answer or lacks a partition.
fn behind(addrs: &[String], at: usize, topic: &str, partitions: i32) -> Result<Sizes> {
    let own = log_sizes(&addrs[at], topic, partitions, REQUEST_TIMEOUT)?;
    let mut sizes = BTreeMap::new();
    for partition in 0..partitions {
        let own = *own
            .get(&partition)
            .with_context(|| format!("partition {partition} not held yet"))?;
        sizes.insert(partition, (own, 0));
    }
    for (_, addr) in addrs.iter().enumerate().filter(|(i, _)| *i != at) {
        let theirs = log_sizes(addr, topic, partitions, REQUEST_TIMEOUT)?;
        for (partition, (_, longest)) in &mut sizes {
            let size = *theirs
                .get(partition)
                .with_context(|| format!("{addr} lacks partition {partition}"))?;
            *longest = (*longest).max(size);
        }
    }
    Ok(sizes)
}
