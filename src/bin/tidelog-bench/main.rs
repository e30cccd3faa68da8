//! The Tidelog benchmark: drives a real `tidelog` broker with librdkafka and prints a report.
//! It starts the release broker binary (or uses `--bootstrap`), then one with TLS and SASL
//! listeners (plaintext against TLS, authentications per second), then three of them as one
//! cluster (the plain runs again, the controller leader's and a partition leader's kill -9, a
//! restarted broker catching up), and only measures: it never
//! imports broker code, so it measures exactly what a Kafka client sees.
#![allow(clippy::print_stdout)] // a benchmark's output is its report

mod auth;
mod broker;
mod catch_up;
mod cli;
mod client;
mod cluster_run;
mod consume;
mod delivery;
mod disk;
mod group;
mod group_member;
mod group_shared;
mod latency;
mod partition_failover;
mod produce;
mod records;
mod report;
mod runs;
mod sampler;
mod scram;
mod security;
mod three;
mod transactions;
mod wire;

use std::fs;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;

use crate::broker::{BROKER_STOP_TIMEOUT, BrokerProcess, LOG_TAIL_LINES, default_broker_bin};
use crate::cli::Args;
use crate::client::Cluster;
use crate::cluster_run::{print_cluster_report, run_cluster};
use crate::produce::BATCH_BYTES;
use crate::records::SEQUENCE_BYTES;
use crate::report::{ms, print_report, print_security_report};
use crate::runs::{run_all, run_specs};
use crate::sampler::{ProcSampler, read_status_kb};
use crate::security::run_security;

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
    let bin = match (&args.bootstrap, &args.broker_bin) {
        (Some(_), _) => None,
        (None, Some(bin)) => Some(bin.clone()),
        (None, None) => Some(default_broker_bin()?),
    };
    let bootstrap = match (&args.bootstrap, &bin) {
        (Some(bootstrap), _) => bootstrap.clone(),
        (None, None) => bail!("neither --bootstrap nor a broker binary"),
        (None, Some(bin)) => {
            let work_dir =
                std::env::temp_dir().join(format!("tidelog-bench-{}", std::process::id()));
            let (process, addr) = BrokerProcess::start(bin, work_dir, args.keep_data, &[])?;
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
        "producer: acks=all linger.ms={} batch.size={BATCH_BYTES} compression=none{}; \
         topics of {} partitions; MB = 10^6 bytes of record values",
        args.linger_ms,
        args.max_in_flight
            .map(|n| format!(" max.in.flight={n} (plain runs)"))
            .unwrap_or_default(),
        args.partitions
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
        replicated: false,
        settings: Vec::new(),
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
    match (&bin, args.security_records > 0 || args.scram_auths > 0) {
        (Some(bin), true) => {
            // A time limit of its own, as the cluster run's.
            let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
            let security = run_security(args, bin, deadline).context("security run")?;
            print_security_report(&security, args);
        }
        (None, true) => println!("security run skipped: --bootstrap gives no broker binary"),
        (_, false) => {}
    }
    match (&bin, args.skip_cluster) {
        (Some(bin), false) => {
            // A time limit of its own: the single-node runs may have used most of theirs.
            let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
            let cluster = run_cluster(args, bin, &specs, deadline).context("cluster run")?;
            print_cluster_report(&reports, &cluster, args);
        }
        (None, false) => println!("cluster run skipped: --bootstrap gives no broker binary"),
        (_, true) => {}
    }
    ensure!(
        group_ok,
        "the consumer group did not receive every record exactly once"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::broker::{parse_gossip_addr, parse_listen_addr, strip_ansi};
    use crate::disk::{Disk, DiskUse};
    use crate::latency::latency_summary;
    use crate::records::{fill_record, pattern, pattern_shift};

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
    fn a_disk_use_is_described_over_the_time_between_its_samples() {
        let used = DiskUse {
            written_bytes: 500_000_000,
            busy: Duration::from_millis(1_500),
            over: Duration::from_secs(2),
        };
        assert_eq!(used.describe(), "500 MB written at 250 MB/s, busy 75%");
        // A file system without a block device (procfs) has no disk to sample.
        assert!(Disk::of(std::path::Path::new("/proc")).is_none());
    }

    #[test]
    fn parse_gossip_addr_finds_the_gossip_address_of_the_member_start_line() {
        let line = "2026-12-04T17:00:00Z  INFO tidelog::cluster::node: cluster member started \
                    node_id=1 rpc=127.0.0.1:4001 gossip=127.0.0.1:4002";
        assert_eq!(parse_gossip_addr(line).as_deref(), Some("127.0.0.1:4002"));
        assert_eq!(parse_gossip_addr("listening addr=127.0.0.1:9092"), None);
        assert_eq!(parse_gossip_addr("cluster member started node_id=1"), None);
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
