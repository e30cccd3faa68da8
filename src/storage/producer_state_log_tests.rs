//! Property test of a [`Log`]'s producer state: after random idempotent and transactional
//! appends, markers, rolls, truncations, clean reopens and crashes, the state the log keeps
//! (incrementally, from snapshots plus replay) equals the state rebuilt by applying every
//! batch still in the log to an empty state; so do the aborted transactions and the LSO.

use std::path::PathBuf;

use proptest::prelude::*;

use super::batch_builder::{self, Producer, Record};
use super::producer_state::marker::{self, Marker};
use super::producer_state::{Origin, ProducerState, Verdict};
use super::txn_index::AbortedTxn;
use super::{BatchHeader, Log, LogSettings};

const PRODUCERS: i64 = 3;

#[derive(Clone, Debug)]
enum Op {
    Data {
        producer: i64,
        records: usize,
        transactional: bool,
    },
    Marker {
        producer: i64,
        is_commit: bool,
        bump: bool,
    },
    Roll,
    Truncate(u16),
    Reopen,
    Crash(u16),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..PRODUCERS, 1..4usize, any::<bool>()).prop_map(|(producer, records, transactional)| {
            Op::Data { producer, records, transactional }
        }),
        3 => (0..PRODUCERS, any::<bool>(), any::<bool>()).prop_map(|(producer, is_commit, bump)| {
            Op::Marker { producer, is_commit, bump }
        }),
        1 => Just(Op::Roll),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::Crash),
    ]
}

struct Harness {
    dir: PathBuf,
    settings: LogSettings,
    log: Option<Log>,
    epochs: [i16; PRODUCERS as usize],
    now_ms: i64,
}

impl Harness {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("open between ops")
    }

    fn reopen(&mut self) {
        self.log = Some(Log::open(&self.dir, self.settings.clone(), self.now_ms).expect("open"));
    }

    fn apply(&mut self, op: Op) {
        self.now_ms += 50;
        let now_ms = self.now_ms;
        match op {
            Op::Data {
                producer,
                records,
                transactional,
            } => self.append_data(producer, records, transactional),
            Op::Marker {
                producer,
                is_commit,
                bump,
            } => {
                let epoch = &mut self.epochs[producer as usize];
                if bump {
                    *epoch += 1;
                }
                let marker = Marker {
                    is_commit,
                    coordinator_epoch: 0,
                };
                let mut batch = marker::build(marker, producer, *epoch, now_ms);
                self.log()
                    .append(&mut batch, 0, now_ms)
                    .expect("append marker");
            }
            Op::Roll => {
                self.now_ms += 10_000;
                let now_ms = self.now_ms;
                self.log().roll_if_due(now_ms).expect("roll");
            }
            Op::Truncate(selector) => {
                let log = self.log();
                let span = log.log_end_offset() - log.log_start_offset() + 1;
                let offset = log.log_start_offset() + i64::from(selector) % span;
                log.truncate_suffix(offset).expect("truncate");
            }
            Op::Reopen => {
                self.log.take().expect("open").close().expect("close");
                self.reopen();
            }
            Op::Crash(selector) => {
                drop(self.log.take());
                let active = last_segment(&self.dir);
                let len = std::fs::metadata(&active).expect("stat").len();
                let cut = u64::from(selector) % (len + 1);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&active)
                    .expect("open segment");
                file.set_len(cut).expect("cut");
                self.reopen();
            }
        }
    }

    fn append_data(&mut self, producer: i64, records: usize, transactional: bool) {
        let epoch = self.epochs[producer as usize];
        let state = self.log().producer_state();
        let sequence = state
            .entry(producer)
            .filter(|entry| entry.epoch == epoch)
            .map_or(0, |entry| entry.last_seq().wrapping_add(1).max(0));
        let transactional = transactional || state.has_ongoing_transaction(producer);
        let fields = Producer {
            producer_id: producer,
            producer_epoch: epoch,
            base_sequence: sequence,
            is_transactional: transactional,
            is_control: false,
        };
        let body: Vec<Record> = (0..records)
            .map(|i| Record {
                key: Some(vec![i as u8]),
                value: Some(vec![7; 10]),
            })
            .collect();
        let now_ms = self.now_ms;
        let mut batch = batch_builder::build_with(&body, now_ms, fields);
        let header = BatchHeader::parse(&batch).expect("header");
        // What the broker does before a transactional append: verify with the coordinator.
        let guard = if transactional {
            self.log()
                .start_transaction_verification(producer, epoch, sequence, false, now_ms)
        } else {
            None
        };
        match self.log().check_batch(&header, Origin::Client, guard) {
            Ok(Verdict::Append) => {
                self.log()
                    .append(&mut batch, 0, now_ms)
                    .expect("append data");
            }
            other => panic!("a well-formed batch was refused: {other:?}"),
        }
    }

    /// Rebuilds the state from every stored batch and compares it with the log's.
    fn check(&self) {
        let log = self.log.as_ref().expect("open");
        let end = log.log_end_offset();
        let first_base = log.segments().first().expect("segment").base_offset();
        let mut model = ProducerState::new(first_base);
        let mut aborted = Vec::new();
        let mut offset = first_base;
        while offset < end {
            let bytes = log.read(offset, end, 1, true).expect("read");
            let header = BatchHeader::parse(&bytes).expect("stored header");
            let control = header.is_control().then(|| marker::parse(&bytes, &header));
            if let Some(done) = model.apply(&header, control)
                && done.is_aborted
            {
                aborted.push(AbortedTxn {
                    producer_id: done.producer_id,
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                    last_stable_offset: done.last_stable_offset,
                });
            }
            offset = header.last_offset() + 1;
        }
        let mut kept = log.producer_state().clone();
        kept.on_high_watermark(end);
        model.on_high_watermark(end);
        assert_eq!(kept, model, "producer state");
        assert_eq!(
            log.aborted_transactions(0, i64::MAX),
            aborted,
            "aborted transactions"
        );
        let lso = model.first_unstable_offset(end).unwrap_or(end);
        assert_eq!(log.last_stable_offset(end), lso, "last stable offset");
    }
}

fn last_segment(dir: &std::path::Path) -> PathBuf {
    let mut names = super::test_batches::file_names(dir);
    names.retain(|name| name.ends_with(".log"));
    dir.join(names.pop().expect("a segment"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn producer_state_kept_by_the_log_equals_a_rebuild_from_its_batches(
        ops in proptest::collection::vec(op_strategy(), 1..50),
    ) {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let mut harness = Harness {
            dir: dir.path().join("topic-0"),
            settings: LogSettings {
                segment_bytes_max: 600,
                segment_ms_max: Some(1_000),
                index_interval_bytes: 64,
                index_file_bytes: 64,
                ..LogSettings::default()
            },
            log: None,
            epochs: [0; PRODUCERS as usize],
            now_ms: 1_000_000,
        };
        harness.reopen();
        for op in ops {
            harness.apply(op);
            harness.check();
        }
    }
}
