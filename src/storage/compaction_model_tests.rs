//! Model-based property test of compaction: random keyed appends (tombstones, compressed
//! batches), rolls, compaction passes, reopens and crashes, checked against a list of records
//! that applies Kafka's rule (latest per key below the cleaned end, expired tombstones gone).

use proptest::prelude::*;

use super::compaction_tests::{Entry, compact, eager, read_records, settings};
use super::records_tests::{GZIP, LZ4, SNAPPY_RAW, SNAPPY_XERIAL, ZSTD, keyed_batch};
use super::{CompactionSettings, Log};

/// Far beyond every timestamp the test writes, so expiry is never ambiguous.
const LATE_MS: i64 = 10_000_000;
const DELETE_RETENTION_MS: u64 = 100_000;

#[derive(Clone, Debug)]
enum Op {
    /// (key index, is tombstone) per record, and a codec choice.
    Append(Vec<(u8, bool)>, usize),
    Roll,
    /// Compact at a time where tombstones are (true) or are not (false) past retention.
    Compact(bool),
    /// A pass with an append (which may roll) between its build and its install.
    CompactAroundAppend(Vec<(u8, bool)>),
    Reopen,
    Crash,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (proptest::collection::vec((0..6u8, proptest::bool::weighted(0.2)), 1..4), 0..6usize)
            .prop_map(|(records, codec)| Op::Append(records, codec)),
        2 => Just(Op::Roll),
        4 => any::<bool>().prop_map(Op::Compact),
        2 => proptest::collection::vec((0..6u8, proptest::bool::weighted(0.2)), 1..4)
            .prop_map(Op::CompactAroundAppend),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn compaction_settings() -> CompactionSettings {
    CompactionSettings {
        delete_retention_ms: DELETE_RETENTION_MS,
        ..eager()
    }
}

#[derive(Debug, Default)]
struct Model {
    records: Vec<Entry>,
    log_end_offset: i64,
    /// Offsets below this were compacted by an earlier pass.
    checkpoint: i64,
}

impl Model {
    /// One pass over offsets below `cleaned_end`: only the latest record per key stays, and
    /// tombstones below the previous checkpoint go when `is_expired`.
    fn compact(&mut self, cleaned_end: i64, is_expired: bool) {
        if cleaned_end <= self.checkpoint {
            return;
        }
        let previous_checkpoint = self.checkpoint;
        let below: Vec<Entry> = self.records.clone();
        self.records.retain(|(offset, key, value)| {
            if *offset >= cleaned_end {
                return true;
            }
            let is_superseded = below
                .iter()
                .any(|(o, k, _)| *o > *offset && *o < cleaned_end && k == key);
            let is_expired_tombstone =
                value.is_none() && is_expired && *offset < previous_checkpoint;
            !is_superseded && !is_expired_tombstone
        });
        self.checkpoint = cleaned_end;
    }
}

fn codec(choice: usize) -> i16 {
    [0, GZIP, SNAPPY_RAW, SNAPPY_XERIAL, LZ4, ZSTD][choice % 6]
}

fn check(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end_offset);
    let records = read_records(log);
    assert_eq!(records, model.records);
    // Reading from any retained offset starts at the batch holding it.
    for (offset, _, _) in &model.records {
        let bytes = log
            .read(*offset, model.log_end_offset, 1, true)
            .expect("read a retained offset");
        let header = super::BatchHeader::parse(&bytes).expect("a whole batch");
        assert!(header.base_offset <= *offset && *offset <= header.last_offset());
    }
}

/// Appends keyed records (`(key index, is tombstone)`) as one batch and records them.
fn append(log: &mut Log, model: &mut Model, records: &[(u8, bool)], codec_choice: usize) {
    let records: Vec<_> = records
        .iter()
        .map(|&(key, is_tombstone)| {
            let value = (!is_tombstone).then(|| format!("v{}", model.log_end_offset));
            (Some(vec![b'k', key]), value.map(String::into_bytes))
        })
        .collect();
    let mut batch = keyed_batch(&records, 1_000, codec(codec_choice));
    let appended = log.append(&mut batch, 0, 1_000).expect("append");
    assert_eq!(appended.base_offset, model.log_end_offset);
    for (delta, (key, value)) in records.into_iter().enumerate() {
        model
            .records
            .push((appended.base_offset + delta as i64, key, value));
    }
    model.log_end_offset = appended.last_offset + 1;
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Some(Log::open(dir.path(), settings(compaction_settings()), 0).unwrap());
    let mut model = Model::default();
    for op in ops {
        let current = log.as_mut().expect("log is open between ops");
        match op {
            Op::Append(records, choice) => append(current, &mut model, &records, choice),
            Op::Roll => {
                let mut later = settings(compaction_settings());
                later.segment_ms_max = Some(1);
                current.set_settings(later);
                current.roll_if_due(LATE_MS).expect("roll");
                current.set_settings(settings(compaction_settings()));
            }
            Op::Compact(is_expired) => {
                let now_ms = if is_expired { LATE_MS } else { 2_000 };
                let cleaned_end = current.segments().last().unwrap().base_offset();
                compact(current, now_ms);
                model.compact(cleaned_end, is_expired);
            }
            Op::CompactAroundAppend(records) => {
                let cleaned_end = current.segments().last().unwrap().base_offset();
                let plan = current.plan_compaction(2_000).expect("plan");
                let cleaned = plan.map(|plan| plan.build().expect("build"));
                append(current, &mut model, &records, 0);
                if let Some(cleaned) = cleaned {
                    let outcome = current.install_compaction(cleaned).expect("install");
                    assert!(outcome.is_installed, "appends never invalidate a pass");
                }
                model.compact(cleaned_end, false);
            }
            Op::Reopen => {
                log.take().unwrap().close().unwrap();
                log = Some(Log::open(dir.path(), settings(compaction_settings()), 0).unwrap());
            }
            Op::Crash => {
                drop(log.take());
                log = Some(Log::open(dir.path(), settings(compaction_settings()), 0).unwrap());
            }
        }
        check(log.as_ref().unwrap(), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn compaction_matches_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        run(ops);
    }
}
