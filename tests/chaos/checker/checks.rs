//! The checks: each a pure function from the history (and indexes built once from it) to the
//! findings of one anomaly kind. A finding is one line a person can act on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::history::{History, Outcome, Tp, Write, show};

/// The kinds of anomaly, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Check {
    /// An acknowledged write is not in the final log of its partition.
    LostAcknowledged,
    /// A value sits at more than one offset of the final logs.
    Duplicate,
    /// An idempotent producer's records are out of send order within a partition.
    Reordered,
    /// One offset named different records, or one record was seen at different offsets.
    InconsistentOffset,
    /// A consumer read a record that was never acknowledged and is not in the final log.
    VanishedRead,
    /// A write the client saw fail definitely was read.
    FailedWriteVisible,
    /// A record nobody wrote to that partition was read.
    Phantom,
    /// Replica logs differ below the high watermark (or a replica differs from what was read).
    DivergentReplica,
    /// A partition could not be read up to its high watermark after the faults healed.
    Undrained,
}

impl Check {
    pub(crate) const ALL: [Check; 9] = [
        Check::LostAcknowledged,
        Check::Duplicate,
        Check::Reordered,
        Check::InconsistentOffset,
        Check::VanishedRead,
        Check::FailedWriteVisible,
        Check::Phantom,
        Check::DivergentReplica,
        Check::Undrained,
    ];

    /// The row label of the report table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Check::LostAcknowledged => "acknowledged writes lost",
            Check::Duplicate => "duplicates in the log",
            Check::Reordered => "out of producer order in a partition",
            Check::InconsistentOffset => "offsets naming different records",
            Check::VanishedRead => "unacknowledged reads that vanished",
            Check::FailedWriteVisible => "failed writes that were read",
            Check::Phantom => "records nobody wrote",
            Check::DivergentReplica => "divergent replicas",
            Check::Undrained => "partitions not drainable after heal",
        }
    }
}

/// Indexes over the history, built once.
pub(crate) struct Index<'h> {
    pub(crate) history: &'h History,
    pub(crate) writes: HashMap<&'h [u8], &'h Write>,
    /// Final log of each completely drained partition: offset -> value.
    pub(crate) logs: BTreeMap<&'h Tp, BTreeMap<i64, &'h [u8]>>,
    /// Where each value sits in the final logs.
    pub(crate) positions: HashMap<&'h [u8], Vec<(&'h Tp, i64)>>,
}

impl<'h> Index<'h> {
    pub(crate) fn new(history: &'h History) -> Index<'h> {
        let writes = history
            .writes
            .iter()
            .map(|write| (write.value.as_slice(), write))
            .collect();
        let mut logs = BTreeMap::new();
        let mut positions: HashMap<&[u8], Vec<(&Tp, i64)>> = HashMap::new();
        for (tp, drain) in &history.drains {
            let mut log = BTreeMap::new();
            for (offset, value) in &drain.records {
                if log.insert(*offset, value.as_slice()).is_none() {
                    positions
                        .entry(value.as_slice())
                        .or_default()
                        .push((tp, *offset));
                }
            }
            logs.insert(tp, log);
        }
        Index {
            history,
            writes,
            logs,
            positions,
        }
    }

    fn is_drained(&self, tp: &Tp) -> bool {
        self.history
            .drains
            .get(tp)
            .is_some_and(|drain| drain.complete)
    }

    fn in_final_log(&self, value: &[u8]) -> bool {
        self.positions.contains_key(value)
    }
}

pub(crate) fn undrained(index: &Index<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    for (tp, drain) in &index.history.drains {
        if !drain.complete {
            let reached = drain.records.last().map_or(0, |(offset, _)| offset + 1);
            findings.push(format!(
                "{tp}: read up to offset {reached} of high watermark {}: {}",
                drain.high_watermark,
                drain.error.as_deref().unwrap_or("stopped")
            ));
        }
    }
    let written: BTreeSet<&Tp> = index.history.writes.iter().map(|write| &write.tp).collect();
    for tp in written {
        if !index.history.drains.contains_key(tp) {
            findings.push(format!("{tp}: written to but never drained"));
        }
    }
    findings
}

pub(crate) fn lost_acknowledged(index: &Index<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    for write in &index.history.writes {
        let Outcome::Acked { offset } = write.outcome else {
            continue;
        };
        if index.is_drained(&write.tp) && !index.in_final_log(&write.value) {
            let high_watermark = index.history.drains[&write.tp].high_watermark;
            findings.push(format!(
                "{}: {} acknowledged at offset {offset}, not in the final log (high watermark {high_watermark})",
                write.tp,
                show(&write.value)
            ));
        }
    }
    findings
}

pub(crate) fn duplicates(index: &Index<'_>) -> Vec<String> {
    let mut findings: Vec<String> = index
        .positions
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(value, at)| {
            let at: Vec<String> = at
                .iter()
                .map(|(tp, offset)| format!("{tp}@{offset}"))
                .collect();
            format!("{} at {}", show(value), at.join(", "))
        })
        .collect();
    findings.sort();
    findings
}

pub(crate) fn reordered(index: &Index<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    for (tp, log) in &index.logs {
        // producer -> (seq, offset) of its latest record so far in offset order
        let mut last: HashMap<&str, (u64, i64)> = HashMap::new();
        for (&offset, value) in log {
            let Some(write) = index.writes.get(value) else {
                continue;
            };
            // Phantoms and later copies of a duplicate are reported as such.
            let first_copy = index.positions[value].iter().map(|(_, at)| *at).min();
            if write.tp != **tp || first_copy != Some(offset) {
                continue;
            }
            if let Some(&(seq, at)) = last.get(write.producer.as_str())
                && write.seq < seq
            {
                findings.push(format!(
                    "{tp}: producer {} record #{} at offset {offset} follows its #{seq} at offset {at}",
                    write.producer, write.seq
                ));
            }
            let newest = last
                .entry(write.producer.as_str())
                .or_insert((write.seq, offset));
            if write.seq >= newest.0 {
                *newest = (write.seq, offset);
            }
        }
    }
    findings
}

/// What was observed, each with the set of observers (reader names, "ack", "final read").
type Sourced<T> = BTreeMap<T, BTreeSet<String>>;

pub(crate) fn inconsistent_offsets(index: &Index<'_>) -> Vec<String> {
    // (tp, offset) -> value -> who said so
    let mut by_offset: BTreeMap<(&Tp, i64), Sourced<&[u8]>> = BTreeMap::new();
    // (tp, value) -> offsets it was seen at, with who
    let mut by_value: BTreeMap<(&Tp, &[u8]), Sourced<i64>> = BTreeMap::new();
    let mut observe = |tp, offset, value, source: String| {
        by_offset
            .entry((tp, offset))
            .or_default()
            .entry(value)
            .or_default()
            .insert(source.clone());
        by_value
            .entry((tp, value))
            .or_default()
            .entry(offset)
            .or_default()
            .insert(source);
    };
    for write in &index.history.writes {
        // An acknowledgement without an offset names none.
        if let Outcome::Acked { offset } = write.outcome
            && offset >= 0
        {
            observe(&write.tp, offset, write.value.as_slice(), "ack".to_owned());
        }
    }
    for read in &index.history.reads {
        observe(
            &read.tp,
            read.offset,
            read.value.as_slice(),
            read.reader.clone(),
        );
    }
    for (tp, drain) in &index.history.drains {
        for (offset, value) in &drain.records {
            observe(tp, *offset, value.as_slice(), "final read".to_owned());
        }
    }
    let mut findings = Vec::new();
    for ((tp, offset), values) in &by_offset {
        if values.len() > 1 {
            let seen: Vec<String> = values
                .iter()
                .map(|(value, sources)| format!("{} ({})", show(value), joined(sources)))
                .collect();
            findings.push(format!("{tp}@{offset} named {}", seen.join(" and ")));
        }
    }
    for ((tp, value), offsets) in &by_value {
        // A value at two offsets of the final log is a duplicate, reported as such.
        let in_log = index.positions.get(value).map_or(0, Vec::len);
        if offsets.len() > 1 && in_log <= 1 {
            let seen: Vec<String> = offsets
                .iter()
                .map(|(offset, sources)| format!("@{offset} ({})", joined(sources)))
                .collect();
            findings.push(format!(
                "{tp}: {} seen at {}",
                show(value),
                seen.join(" and ")
            ));
        }
    }
    findings
}

pub(crate) fn vanished_reads(index: &Index<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    let mut reported = BTreeSet::new();
    for read in &index.history.reads {
        let Some(write) = index.writes.get(read.value.as_slice()) else {
            continue; // a phantom, reported as such
        };
        let acknowledged = matches!(write.outcome, Outcome::Acked { .. });
        if !acknowledged
            && write.tp == read.tp
            && index.is_drained(&read.tp)
            && !index.in_final_log(&read.value)
            && reported.insert(read.value.as_slice())
        {
            findings.push(format!(
                "{}@{}: {} read by {} (write {}), not in the final log",
                read.tp,
                read.offset,
                show(&read.value),
                read.reader,
                outcome_text(&write.outcome)
            ));
        }
    }
    findings
}

pub(crate) fn failed_writes_visible(index: &Index<'_>) -> Vec<String> {
    let mut findings = Vec::new();
    for write in &index.history.writes {
        let Outcome::Failed { error } = &write.outcome else {
            continue;
        };
        let read_by: BTreeSet<&str> = index
            .history
            .reads
            .iter()
            .filter(|read| read.value == write.value)
            .map(|read| read.reader.as_str())
            .collect();
        if index.in_final_log(&write.value) || !read_by.is_empty() {
            findings.push(format!(
                "{}: {} failed ({error}) but was read",
                write.tp,
                show(&write.value)
            ));
        }
    }
    findings
}

pub(crate) fn phantoms(index: &Index<'_>) -> Vec<String> {
    let mut findings = BTreeSet::new();
    let mut check = |tp: &Tp, offset: i64, value: &[u8], source: &str| {
        let known = index.writes.get(value).is_some_and(|write| write.tp == *tp);
        if !known {
            let written_to = index
                .writes
                .get(value)
                .map_or(String::new(), |write| format!(", written to {}", write.tp));
            findings.insert(format!(
                "{tp}@{offset}: {} read by {source}{written_to}",
                show(value)
            ));
        }
    };
    for read in &index.history.reads {
        check(&read.tp, read.offset, &read.value, &read.reader);
    }
    for (tp, drain) in &index.history.drains {
        for (offset, value) in &drain.records {
            check(tp, *offset, value, "final read");
        }
    }
    findings.into_iter().collect()
}

fn joined(sources: &BTreeSet<String>) -> String {
    sources.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Acked { offset } => format!("acknowledged at {offset}"),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::Unknown { error } => format!("outcome unknown: {error}"),
    }
}
