//! The consistency checker, in the spirit of Jepsen's Kafka queue workload: a pure function from
//! what a run recorded (writes and outcomes, reads, the final drain, replica logs) to a report of
//! anomalies. No I/O and no clocks, so synthetic histories test every check (tests/chaos_checker.rs).

mod checks;
mod history;
mod replicas;
mod report;

pub(crate) use checks::Check;
pub(crate) use history::{Drain, History, Outcome, Read, ReplicaLog, Tp, Write};
pub(crate) use replicas::parse_segment;
pub(crate) use report::{Report, Stats};

/// Runs every check over `history`.
pub(crate) fn check(history: &History) -> Report {
    let index = checks::Index::new(history);
    let mut report = Report::default();
    type Run = fn(&checks::Index<'_>) -> Vec<String>;
    let runs: [(Check, Run); 8] = [
        (Check::LostAcknowledged, checks::lost_acknowledged),
        (Check::Duplicate, checks::duplicates),
        (Check::Reordered, checks::reordered),
        (Check::InconsistentOffset, checks::inconsistent_offsets),
        (Check::VanishedRead, checks::vanished_reads),
        (Check::FailedWriteVisible, checks::failed_writes_visible),
        (Check::Phantom, checks::phantoms),
        (Check::Undrained, checks::undrained),
    ];
    for (kind, run) in runs {
        report.findings.insert(kind, run(&index));
    }
    let mut divergent = Vec::new();
    for (tp, replicas) in &history.replicas {
        let drain = history.drains.get(tp).cloned().unwrap_or_default();
        divergent.extend(replicas::divergences(tp, &drain, replicas));
        report.stats.replica_logs += replicas.len();
        report.stats.replica_batches += replicas
            .iter()
            .flat_map(|replica| &replica.batches)
            .filter(|batch| batch.base_offset < drain.high_watermark)
            .count();
    }
    report.findings.insert(Check::DivergentReplica, divergent);
    report.stats = Stats {
        replica_logs: report.stats.replica_logs,
        replica_batches: report.stats.replica_batches,
        ..stats(&index)
    };
    report
}

fn stats(index: &checks::Index<'_>) -> Stats {
    let history = index.history;
    let mut stats = Stats {
        writes: history.writes.len(),
        reads: history.reads.len(),
        drained_records: history.drains.values().map(|d| d.records.len()).sum(),
        partitions: history.drains.len(),
        ..Stats::default()
    };
    for write in &history.writes {
        match write.outcome {
            Outcome::Acked { .. } => stats.acknowledged += 1,
            Outcome::Failed { .. } => stats.failed += 1,
            Outcome::Unknown { .. } => {
                stats.unknown += 1;
                if index.positions.contains_key(write.value.as_slice()) {
                    stats.unknown_in_log += 1;
                }
            }
        }
    }
    stats
}
