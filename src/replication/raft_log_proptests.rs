//! Property test of the raft log over the segment log against a model (a `Vec` of entries,
//! the purge point and the vote): random appends, truncations, purges, votes and restarts
//! (clean or not). After every step the log holds exactly the model's entries, Kafka offsets
//! stay contiguous, and the log state and vote match. Then crash cases those steps cannot make.

use bytes::Bytes;
use proptest::prelude::*;
use tempfile::TempDir;

use super::log_store_tests::same_entry;
use super::raft_log::RaftLog;
use super::types::{Entry, LogId, Payload, RecordBatch, Vote, log_id, term_of};
use crate::storage::{BatchHeader, Log, LogSettings, test_batches};

#[derive(Clone, Debug)]
enum Op {
    /// Entries of these kinds (0 blank, 1..=3 data of that many records), term bumped or not.
    Append {
        kinds: Vec<u8>,
        new_term: bool,
    },
    /// After the entry at this fraction of the held range; None: truncate everything.
    TruncateAfter(Option<u8>),
    /// Up to the entry at this fraction of the held range, plus `beyond` past its end.
    Purge {
        at: u8,
        beyond: u8,
    },
    SaveVote {
        term: u64,
        node_id: u64,
        committed: bool,
    },
    Restart {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec(0u8..4, 1..6), any::<bool>())
            .prop_map(|(kinds, new_term)| Op::Append { kinds, new_term }),
        1 => prop::option::of(any::<u8>()).prop_map(Op::TruncateAfter),
        1 => (any::<u8>(), prop_oneof![4 => Just(0u8), 1 => 1u8..3])
            .prop_map(|(at, beyond)| Op::Purge { at, beyond }),
        1 => (0u64..50, 0u64..5, any::<bool>())
            .prop_map(|(term, node_id, committed)| Op::SaveVote { term, node_id, committed }),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
    ]
}

#[derive(Debug, Default)]
struct Model {
    entries: Vec<Entry>,
    purged: Option<LogId>,
    vote: Option<Vote>,
}

impl Model {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .last()
            .map(|entry| entry.log_id)
            .or(self.purged)
    }

    fn next_index(&self) -> u64 {
        self.last_log_id().map_or(0, |last| last.index + 1)
    }

    /// The index at `fraction` (of 256) of the held entries.
    fn pick(&self, fraction: u8) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.entries.len() * usize::from(fraction) / 256)
    }
}

fn settings() -> LogSettings {
    LogSettings {
        segment_bytes_max: 500,
        ..LogSettings::default()
    }
}

fn open(dir: &TempDir) -> RaftLog {
    let log = Log::open(dir.path(), settings(), 0).expect("open partition log");
    RaftLog::open(log, 1).expect("open raft log")
}

fn entry(index: u64, term: u64, kind: u8) -> Entry {
    let payload = match kind {
        0 => Payload::Blank,
        records => Payload::Normal(RecordBatch(Bytes::from(test_batches::build(
            i32::from(records),
            index as i64,
            8,
        )))),
    };
    Entry {
        log_id: log_id(term, index),
        payload,
    }
}

fn apply(raft_log: &mut RaftLog, model: &mut Model, op: &Op, dir: &TempDir) {
    match op {
        Op::Append { kinds, new_term } => {
            let term = model.last_log_id().map_or(0, |last| term_of(&last)) + u64::from(*new_term);
            let first = model.next_index();
            let entries: Vec<Entry> = (first..)
                .zip(kinds)
                .map(|(index, kind)| entry(index, term, *kind))
                .collect();
            raft_log.append(&entries, 0).expect("append");
            model.entries.extend(entries);
        }
        Op::TruncateAfter(at) => {
            let last = match at {
                None => None,
                Some(fraction) => match model.pick(*fraction) {
                    Some(at) => Some(model.entries[at].log_id),
                    None => return,
                },
            };
            raft_log.truncate_after(last).expect("truncate");
            let keep = last.map_or(0, |last| {
                model
                    .entries
                    .iter()
                    .take_while(|e| e.log_id.index <= last.index)
                    .count()
            });
            model.entries.truncate(keep);
        }
        Op::Purge { at, beyond } => {
            let upto = match model.pick(*at) {
                Some(at) if *beyond == 0 => model.entries[at].log_id,
                _ => match model.last_log_id() {
                    Some(last) => log_id(term_of(&last), last.index + u64::from(*beyond)),
                    None => return,
                },
            };
            raft_log.purge(upto).expect("purge");
            model
                .entries
                .retain(|entry| entry.log_id.index > upto.index);
            model.purged = model.purged.max(Some(upto));
        }
        Op::SaveVote {
            term,
            node_id,
            committed,
        } => {
            let vote = Vote {
                committed: *committed,
                ..Vote::new(*term, *node_id)
            };
            raft_log.save_vote(&vote).expect("save vote");
            model.vote = Some(vote);
        }
        Op::Restart { clean } => {
            let old = std::mem::replace(raft_log, open_placeholder());
            if *clean {
                old.into_log().close().expect("close");
            } else {
                drop(old);
            }
            *raft_log = open(dir);
        }
    }
}

/// A raft log over a throwaway directory, to hold the place while the real one restarts.
fn open_placeholder() -> RaftLog {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(dir.path(), settings(), 0).expect("open placeholder");
    RaftLog::open(log, 1).expect("placeholder raft log")
}

fn check(raft_log: &RaftLog, model: &Model) {
    assert_eq!(raft_log.last_purged(), model.purged);
    assert_eq!(raft_log.last_log_id(), model.last_log_id());
    assert_eq!(raft_log.vote(), model.vote);
    let entries = raft_log.read(0..u64::MAX, usize::MAX).expect("read");
    assert_eq!(entries.len(), model.entries.len());
    for (read, written) in entries.iter().zip(&model.entries) {
        assert!(same_entry(read, written), "{read:?} != {written:?}");
    }
    let mut expected_offset = None;
    for entry in &entries {
        let offset = raft_log.offset_of(entry.log_id.index).expect("offset");
        if let Some(expected) = expected_offset {
            assert_eq!(offset, expected, "Kafka offsets stay contiguous");
        }
        let records = match &entry.payload {
            Payload::Normal(RecordBatch(bytes)) => {
                let header = BatchHeader::parse(bytes).expect("header");
                assert_eq!(header.base_offset, offset);
                assert_eq!(
                    i64::from(header.partition_leader_epoch),
                    term_of(&entry.log_id) as i64
                );
                i64::from(header.last_offset_delta) + 1
            }
            _ => 1,
        };
        expected_offset = Some(offset + records);
    }
    if let Some(expected) = expected_offset {
        assert_eq!(raft_log.log().log_end_offset(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn raft_log_matches_its_model_through_appends_truncations_purges_and_restarts(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut raft_log = open(&dir);
        let mut model = Model::default();
        for op in &ops {
            apply(&mut raft_log, &mut model, op, &dir);
            check(&raft_log, &model);
        }
    }
}

/// A purge that saved the new raft log start but stopped before the Kafka log start moved
/// (a crash between the two) is finished when the log opens again.
#[test]
fn a_purge_cut_short_by_a_crash_is_finished_on_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut raft_log = open(&dir);
    let entries: Vec<Entry> = (0..30).map(|index| entry(index, 1, 2)).collect();
    raft_log.append(&entries, 0).expect("append");
    let first_offset = raft_log.offset_of(21).expect("offset of 21");
    let start = super::persisted::LogStart {
        purged: Some(log_id(1, 20)),
        first_index: 21,
        first_offset,
        keeps_prefix: false,
    };
    super::persisted::write_log_start(raft_log.log(), &start).expect("save the start only");
    drop(raft_log);
    let raft_log = open(&dir);
    assert_eq!(raft_log.log().log_start_offset(), first_offset);
    assert_eq!(raft_log.last_purged(), Some(log_id(1, 20)));
    let read = raft_log.read(0..100, usize::MAX).expect("read");
    assert_eq!(read.first().map(|entry| entry.log_id.index), Some(21));
    assert_eq!(read.len(), 9);
}
