//! One chaos run end to end: start the system, the workload and the nemesis, heal, check the
//! system is live again, drain, stop the brokers, read their logs from disk, check, print.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::checker::{self, History};
use crate::nemesis;
use crate::netlab::tidelog::supports_replication;
use crate::options::{ModeChoice, Options};
use crate::rng::Rng;
use crate::system::{Mode, System};
use crate::workload::{self, ConsumerPlan, ProducerPlan, Progress};

/// How long the workload may take to get its first acknowledgements, and to get new ones after
/// every fault is healed.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(60);
/// Acknowledgements per producer that count as progress.
const PROGRESS_ACKS: usize = 50;
/// How long the final drain may take.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
/// Upper bound of one fault cycle (gap, hold, a restart) used for the threads' safety deadline.
const FAULT_CYCLE_MAX: Duration = Duration::from_secs(70);
const POLL: Duration = Duration::from_millis(50);

/// Runs the whole thing; Ok(true) if the checker found nothing and the run had no errors.
pub(crate) fn run(options: &Options) -> anyhow::Result<bool> {
    let program = options
        .tidelog
        .as_deref()
        .unwrap_or(Path::new(env!("CARGO_BIN_EXE_tidelog")));
    println!("broker binary: {}", program.display());
    let mode = choose_mode(options, program)?;
    print_header(options, mode);
    let mut system = System::start(
        mode,
        program,
        options.brokers,
        options.partitions,
        options.compacted,
    )?;
    let topics: Vec<&str> = system.targets.iter().map(|t| t.topic.as_str()).collect();
    println!(
        "lab: {} (broker logs: node<i>.log); topics {} with replication factor {}",
        system.lab.dir().display(),
        topics.join(", "),
        system.replication
    );
    let started = Instant::now();
    let thread_deadline = started
        + FAULT_CYCLE_MAX * u32::try_from(options.faults).unwrap_or(u32::MAX)
        + DRAIN_DEADLINE * 3;
    let rng = Rng::new(options.seed);
    let progress = Arc::new(Progress::default());
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_consumers = Arc::new(AtomicBool::new(false));

    let producer_count = options.producers.max(system.targets.len());
    let mut producers = Vec::new();
    for id in 0..producer_count {
        let plan = ProducerPlan {
            id,
            target: system.targets[id % system.targets.len()].clone(),
            rate_per_s: options.rate,
            rng: rng.fork(id as u64),
        };
        producers.push(workload::spawn_producer(
            plan,
            Arc::clone(&stop_producers),
            Arc::clone(&progress),
            thread_deadline,
        )?);
    }
    let mut consumers = Vec::new();
    for (t, target) in system.targets.iter().enumerate() {
        for k in 0..options.consumers {
            let plan = ConsumerPlan {
                name: format!("c{t}.{k}"),
                target: target.clone(),
                group: (k % 2 == 1).then(|| format!("chaos-group-{t}-{}", std::process::id())),
            };
            consumers.push(workload::spawn_consumer(
                plan,
                Arc::clone(&stop_consumers),
                Arc::clone(&progress),
                thread_deadline,
            )?);
        }
    }

    let mut run_errors = Vec::new();
    if !wait_for_acks(&progress, PROGRESS_ACKS * producer_count) {
        run_errors.push(format!(
            "fewer than {} acknowledged writes within {PROGRESS_DEADLINE:?} before any fault",
            PROGRESS_ACKS * producer_count
        ));
    }
    let fault_counts = if run_errors.is_empty() {
        run_nemesis(&mut system, options, &rng, started, &mut run_errors)
    } else {
        BTreeMap::new()
    };
    if let Err(error) = system.heal_everything() {
        run_errors.push(format!("final heal: {error:#}"));
    }
    let acked = progress.acknowledged.load(Ordering::Relaxed);
    if !wait_for_acks(&progress, acked + PROGRESS_ACKS * producer_count) {
        run_errors.push(format!(
            "no progress after healing: fewer than {} new acknowledged writes within {PROGRESS_DEADLINE:?}",
            PROGRESS_ACKS * producer_count
        ));
    }
    println!(
        "[{:>7.1}s] healed; stopping producers",
        started.elapsed().as_secs_f64()
    );

    stop_producers.store(true, Ordering::Relaxed);
    let mut history = History::default();
    let mut notes = Vec::new();
    for producer in producers {
        let (writes, fatal) = producer
            .join()
            .map_err(|_| anyhow::anyhow!("a producer thread panicked"))?;
        history.writes.extend(writes);
        notes.extend(
            fatal
                .into_iter()
                .map(|f| format!("producer instance replaced after {f}")),
        );
    }
    println!("[{:>7.1}s] draining", started.elapsed().as_secs_f64());
    for target in &system.targets {
        let drains = crate::drain::drain(target, Instant::now() + DRAIN_DEADLINE)?;
        history.drains.extend(drains);
    }
    stop_consumers.store(true, Ordering::Relaxed);
    for consumer in consumers {
        let reads = consumer
            .join()
            .map_err(|_| anyhow::anyhow!("a consumer thread panicked"))?
            .context("consumer")?;
        history.reads.extend(reads);
    }
    println!(
        "[{:>7.1}s] stopping brokers",
        started.elapsed().as_secs_f64()
    );
    run_errors.extend(system.stop_all());
    collect_replicas(&system, &mut history)?;

    let report = checker::check(&history);
    println!("[{:>7.1}s] checked", started.elapsed().as_secs_f64());
    print_summary(&fault_counts, &notes);
    print!("\n{}", report.table());
    for error in &run_errors {
        println!("run error: {error}");
    }
    let clean = report.is_clean() && run_errors.is_empty();
    if !clean || options.keep {
        let kept = system.lab.keep_dir();
        println!("kept the lab directory (logs, data): {}", kept.display());
    }
    Ok(clean)
}

fn choose_mode(options: &Options, program: &Path) -> anyhow::Result<Mode> {
    let cluster_capable = supports_replication(program)?;
    Ok(match options.mode {
        ModeChoice::Auto if cluster_capable => Mode::Cluster,
        ModeChoice::Auto | ModeChoice::Single => Mode::Single,
        ModeChoice::Cluster => {
            anyhow::ensure!(
                cluster_capable,
                "--mode cluster: {} does not replicate partitions yet (issue 10)",
                program.display()
            );
            Mode::Cluster
        }
    })
}

fn print_header(options: &Options, mode: Mode) {
    match mode {
        Mode::Single => println!(
            "chaos mode: SINGLE-NODE ({} independent brokers, one per namespace, one topic each, \
             no replication; the binary does not replicate partitions yet, so no cluster run)",
            options.brokers
        ),
        Mode::Cluster => println!(
            "chaos mode: CLUSTER ({} brokers started with --cluster-listen/--seeds/--bootstrap-expect, \
             one topic, replication factor {} asked)",
            options.brokers,
            options.brokers.min(3)
        ),
    }
    println!(
        "seed {seed}; {faults} faults; {p} partitions per topic; replay: scripts/chaos --seed {seed} \
         --faults {faults} --brokers {brokers}{compacted}",
        seed = options.seed,
        faults = options.faults,
        p = options.partitions,
        brokers = options.brokers,
        compacted = if options.compacted {
            " --compacted"
        } else {
            ""
        },
    );
}

fn run_nemesis(
    system: &mut System,
    options: &Options,
    rng: &Rng,
    started: Instant,
    run_errors: &mut Vec<String>,
) -> BTreeMap<&'static str, usize> {
    let mut rng = rng.fork(u64::MAX);
    let mut counts = BTreeMap::new();
    for i in 0..options.faults {
        std::thread::sleep(nemesis::gap(&mut rng));
        for broker in &mut system.brokers {
            if broker.reap_if_exited() {
                run_errors.push(format!(
                    "broker {} exited by itself (log: {})",
                    broker.node_id(),
                    broker.log_path().display()
                ));
            }
        }
        if let Err(error) = system.heal_everything() {
            run_errors.push(format!("{error:#}"));
            return counts;
        }
        let fault = if options.sabotage && i == 0 {
            nemesis::Fault::Kill(0)
        } else {
            nemesis::next_fault(&mut rng, system.mode, system.brokers.len())
        };
        let hold = nemesis::hold(&mut rng);
        println!(
            "[{:>7.1}s] fault {}/{}: {fault} for {:.1}s",
            started.elapsed().as_secs_f64(),
            i + 1,
            options.faults,
            hold.as_secs_f64()
        );
        if let Err(error) = nemesis::inject(system, &fault) {
            run_errors.push(format!("{error:#}"));
            continue;
        }
        *counts.entry(fault.kind()).or_insert(0) += 1;
        if options.sabotage && i == 0 {
            match crate::sabotage::cut_tail(system.brokers[0].data_dir(), &system.targets) {
                Ok(what) => println!("[sabotage] {what}"),
                Err(error) => run_errors.push(format!("sabotage: {error:#}")),
            }
        }
        std::thread::sleep(hold);
        if let Err(error) = nemesis::heal(system, &fault) {
            run_errors.push(format!("{error:#}"));
        }
    }
    counts
}

fn wait_for_acks(progress: &Progress, wanted: usize) -> bool {
    let deadline = Instant::now() + PROGRESS_DEADLINE;
    while progress.acknowledged.load(Ordering::Relaxed) < wanted {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

fn collect_replicas(system: &System, history: &mut History) -> anyhow::Result<()> {
    for target in &system.targets {
        for partition in 0..target.partitions {
            let tp = checker::Tp::new(&target.topic, partition);
            let mut replicas = Vec::new();
            for &b in &target.brokers {
                let broker = &system.brokers[b];
                let name = format!("broker {}", broker.node_id());
                if let Some(log) = crate::disk::read_replica(&name, broker.data_dir(), &tp)? {
                    replicas.push(log);
                }
            }
            history.replicas.insert(tp, replicas);
        }
    }
    Ok(())
}

fn print_summary(fault_counts: &BTreeMap<&'static str, usize>, notes: &[String]) {
    let total: usize = fault_counts.values().sum();
    let counts: Vec<String> = fault_counts
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    println!("\nfaults injected: {total} ({})", counts.join(", "));
    for note in notes {
        println!("note: {note}");
    }
}
