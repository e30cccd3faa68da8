//! The printed report: the results table, the client latency windows, and the group report.

use std::time::Duration;

use crate::cli::Args;
use crate::delivery::ClientWindow;
use crate::group::{
    GROUP_AUTO_COMMIT_MS, GROUP_HEARTBEAT_MS, GROUP_MEMBERS, GROUP_PARTITIONS,
    GROUP_SESSION_TIMEOUT_MS, GROUP_STREAM_RATE, GroupReport,
};
use crate::produce::STATISTICS_INTERVAL_MS;
use crate::runs::{ProduceMode, RunReport};
use crate::security::{ProtocolRun, SASL_SSL_MECHANISM, SecurityReport};
use crate::wire::{SASL_AUTHENTICATE_VERSION, SASL_HANDSHAKE_VERSION};

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

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
pub(crate) fn per_sec(count: u64, elapsed: Duration) -> f64 {
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

pub(crate) fn print_report(
    reports: &[RunReport],
    group: Option<&GroupReport>,
    final_hwm_kb: Option<u64>,
) {
    println!();
    println!(
        "{:<11} {:>9} {:>6} | {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} | {:>9} {:>14} {:>14}",
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
            "{:<11} {:>9} {:>6} | {:>10.0} {:>9.1} {:>8.2} {:>8.2} | {:>10.0} {:>9.1} | {:>9} {:>14} {:>14}",
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
    println!(
        "(CPU s = produce/consume phase; latency = enqueue -> delivery callback; -idem = \
         enable.idempotence, -txn = transactional; every consumer is read_committed)"
    );
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
        print_client_windows(&report.spec.name, &report.produce.client_windows);
    }
    print_exactly_once(reports);
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
    check(
        "idempotent produce cost % (100 B, median)",
        median(idempotence_costs(reports, 100)),
        5.0,
        false,
    );
}

/// For each plain run of `record_bytes` followed by its idempotent twin: how much slower the
/// twin produced, in percent of the plain run's records/s (negative: it was faster).
fn idempotence_costs(reports: &[RunReport], record_bytes: usize) -> Vec<f64> {
    let rate = |report: &RunReport| per_sec(report.spec.record_count, report.produce.elapsed);
    reports
        .windows(2)
        .filter(|pair| {
            pair.iter()
                .all(|report| report.spec.record_bytes == record_bytes)
                && pair[0].spec.mode == ProduceMode::Plain
                && pair[1].spec.mode == ProduceMode::Idempotent
        })
        .map(|pair| (rate(&pair[0]) - rate(&pair[1])) / rate(&pair[0]) * 100.0)
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The idempotence cost of each plain/idempotent pair and the transactional run's commits.
fn print_exactly_once(reports: &[RunReport]) {
    for (label, record_bytes) in [("100 B", 100), ("1 KiB", 1024)] {
        let costs = idempotence_costs(reports, record_bytes);
        if let Some(cost) = median(costs.clone()) {
            let each: Vec<String> = costs.iter().map(|cost| format!("{cost:+.1}%")).collect();
            println!(
                "idempotence cost, {label} (records/s lost against the plain run just before): \
                 median {cost:+.1}% of {} pairs ({})",
                costs.len(),
                each.join(", ")
            );
        }
    }
    for report in reports {
        if let Some(txn) = &report.produce.transactions {
            println!(
                "{}: {} transactions (one commit every {} ms of producing), commit_transaction \
                 p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; consumed read_committed at {:.0} \
                 records/s",
                report.spec.name,
                txn.commit_count,
                txn.commit_interval.as_millis(),
                txn.commit.p50_ms,
                txn.commit.p99_ms,
                txn.commit.max_ms,
                per_sec(report.spec.record_count, report.consume.elapsed)
            );
        }
    }
}

/// The security run: records/s and MB/s per protocol and size with the ratio to PLAINTEXT, then
/// authentications/s per mechanism and connection count.
pub(crate) fn print_security_report(security: &SecurityReport, args: &Args) {
    println!();
    if !security.runs.is_empty() {
        println!(
            "security: one broker with PLAINTEXT, SSL and SASL_SSL ({SASL_SSL_MECHANISM}) \
             listeners (rustls, ECDSA P-256 certificate; librdkafka's OpenSSL); {} records per \
             run, acks=all, each size over each protocol in turn",
            args.security_records
        );
        println!(
            "{:<10} {:>6} | {:>10} {:>9} {:>8} {:>8} | {:>10} {:>9} | {:>12} | {:>6} {:>6}",
            "protocol",
            "size",
            "prod rec/s",
            "prod MB/s",
            "p50 ms",
            "p99 ms",
            "cons rec/s",
            "cons MB/s",
            "broker CPU s",
            "prod x",
            "cons x"
        );
    }
    for run in &security.runs {
        let count = run.spec.record_count;
        let baseline = security.runs.iter().find(|other| {
            other.protocol == "PLAINTEXT" && other.spec.record_bytes == run.spec.record_bytes
        });
        let ratio = |of: fn(&ProtocolRun) -> Duration| {
            baseline
                .map(|plain| per_sec(count, of(run)) / per_sec(plain.spec.record_count, of(plain)))
        };
        println!(
            "{:<10} {:>6} | {:>10.0} {:>9.1} {:>8.2} {:>8.2} | {:>10.0} {:>9.1} | {:>12} | {:>6} {:>6}",
            run.protocol,
            run.spec.record_bytes,
            per_sec(count, run.produce.elapsed),
            mb_per_sec(count * run.spec.record_bytes as u64, run.produce.elapsed),
            run.produce.latency.p50_ms,
            run.produce.latency.p99_ms,
            per_sec(count, run.consume.elapsed),
            mb_per_sec(run.consume.bytes, run.consume.elapsed),
            format!(
                "{}/{}",
                optional(run.broker_cpu_produce_secs, 2),
                optional(run.broker_cpu_consume_secs, 2)
            ),
            optional(ratio(|run| run.produce.elapsed), 2),
            optional(ratio(|run| run.consume.elapsed), 2),
        );
    }
    if !security.runs.is_empty() {
        println!(
            "(x = records/s against PLAINTEXT of the same size; CPU s = produce/consume phase)"
        );
    }
    if security.auths.is_empty() {
        return;
    }
    let iterations = security
        .auths
        .iter()
        .find_map(|auth| auth.iterations)
        .map_or_else(|| "n/a".to_owned(), |i| i.to_string());
    println!(
        "authentications against the SASL_PLAINTEXT listener, each on a fresh connection \
         (connect, SaslHandshake v{SASL_HANDSHAKE_VERSION}, SaslAuthenticate \
         v{SASL_AUTHENTICATE_VERSION} until done, server signature checked, close); SCRAM \
         iterations {iterations}; the client runs PBKDF2 once per mechanism, the broker for \
         every PLAIN authentication"
    );
    println!(
        "{:<14} {:>5} {:>7} | {:>9} {:>8} {:>8} {:>8}",
        "mechanism", "conns", "auths", "auths/s", "p50 ms", "p99 ms", "max ms"
    );
    for auth in &security.auths {
        println!(
            "{:<14} {:>5} {:>7} | {:>9.0} {:>8.2} {:>8.2} {:>8.2}",
            auth.mechanism.name(),
            auth.connection_count,
            auth.auth_count,
            per_sec(auth.auth_count, auth.elapsed),
            auth.latency.p50_ms,
            auth.latency.p99_ms,
            auth.latency.max_ms
        );
    }
}
