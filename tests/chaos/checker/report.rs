//! The checker's verdict: findings per check plus the run's counts, printed as a table.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::checks::Check;

/// Examples printed per check (the counts include every finding).
const EXAMPLES_SHOWN: usize = 3;

/// Counts that describe the history (not anomalies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) writes: usize,
    pub(crate) acknowledged: usize,
    pub(crate) failed: usize,
    pub(crate) unknown: usize,
    /// Writes of unknown outcome found in the final log.
    pub(crate) unknown_in_log: usize,
    pub(crate) reads: usize,
    pub(crate) drained_records: usize,
    pub(crate) partitions: usize,
    /// Replica logs compared, and batches in them below the high watermark.
    pub(crate) replica_logs: usize,
    pub(crate) replica_batches: usize,
}

/// Findings per check.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub(crate) findings: BTreeMap<Check, Vec<String>>,
    pub(crate) stats: Stats,
}

impl Report {
    pub(crate) fn count(&self, check: Check) -> usize {
        self.findings.get(&check).map_or(0, Vec::len)
    }

    /// Whether no check found anything.
    pub(crate) fn is_clean(&self) -> bool {
        Check::ALL.iter().all(|&check| self.count(check) == 0)
    }

    /// The anomaly table, then the counts.
    pub(crate) fn table(&self) -> String {
        let width = Check::ALL
            .iter()
            .map(|check| check.label().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(out, "| {:width$} | count | examples", "anomaly");
        let _ = writeln!(out, "|-{:-<width$}-|-------|---------", "");
        for check in Check::ALL {
            let findings = self.findings.get(&check).map_or(&[][..], Vec::as_slice);
            let first = findings.first().map_or("", String::as_str);
            let _ = writeln!(
                out,
                "| {:width$} | {:>5} | {first}",
                check.label(),
                findings.len()
            );
            for more in findings.iter().skip(1).take(EXAMPLES_SHOWN - 1) {
                let _ = writeln!(out, "| {:width$} |       | {more}", "");
            }
            if findings.len() > EXAMPLES_SHOWN {
                let _ = writeln!(
                    out,
                    "| {:width$} |       | ... and {} more",
                    "",
                    findings.len() - EXAMPLES_SHOWN
                );
            }
        }
        let s = &self.stats;
        let _ = writeln!(
            out,
            "writes: {} ({} acknowledged, {} unknown of which {} in the log, {} failed); \
             consumer reads: {}; final read: {} records in {} partitions; \
             replica logs compared: {} ({} batches below the high watermark)",
            s.writes,
            s.acknowledged,
            s.unknown,
            s.unknown_in_log,
            s.failed,
            s.reads,
            s.drained_records,
            s.partitions,
            s.replica_logs,
            s.replica_batches
        );
        let verdict = if self.is_clean() {
            "no anomalies".to_owned()
        } else {
            let total: usize = Check::ALL.iter().map(|&check| self.count(check)).sum();
            format!("{total} ANOMALIES")
        };
        let _ = writeln!(out, "verdict: {verdict}");
        out
    }
}
