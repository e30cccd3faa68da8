//! How a raft log stores its entries' batches: a leader's stamped proposal and a follower's
//! copy of it as they are (no copy in memory), the one through the page cache and the other
//! past it; a proposal stamped for another place is set right on a copy.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::entry_codec;
use super::raft_log::RaftLog;
use super::types::{Entry, Payload, RecordBatch, Vote, log_id};
use crate::storage::fault::{Fault, Gate, Op};
use crate::storage::{BatchHeader, Fs, Log, LogSettings, test_batches};

const TERM: u64 = 2;
const LEADER: u64 = 1;

/// A raft log of broker `node_id` in `dir` that voted for `LEADER` in `TERM`, whose direct
/// I/O opens pass `gate` (open), which counts them.
fn open(dir: &Path, node_id: u64, gate: &Gate) -> RaftLog {
    let fs = Fs::default();
    fs.inject_always(dir, Op::OpenDirect, Fault::Block(gate.clone()));
    gate.open();
    let log = Log::open_on(fs, dir, [7; 16], LogSettings::default(), 0).expect("open log");
    let mut raft_log = RaftLog::open(log, node_id).expect("open raft log");
    raft_log
        .save_vote(&Vote::new(TERM, LEADER))
        .expect("save vote");
    raft_log
}

fn normal(index: u64, batch: &Bytes) -> Entry {
    Entry {
        log_id: log_id(TERM, index),
        payload: Payload::Normal(RecordBatch(batch.clone())),
    }
}

/// The bytes raft reads back for entry `index`.
fn read_back(raft_log: &RaftLog, index: u64) -> Bytes {
    let entries = raft_log.read(index..index + 1, usize::MAX).expect("read");
    match entries.as_slice() {
        [
            Entry {
                payload: Payload::Normal(RecordBatch(bytes)),
                ..
            },
        ] => bytes.clone(),
        other => panic!("expected one normal entry, got {other:?}"),
    }
}

fn has_opened_direct_io(gate: &Gate) -> bool {
    gate.wait_entered(1, Duration::ZERO)
}

#[test]
fn a_leaders_stamped_proposal_and_its_followers_copy_are_stored_as_they_are() {
    let (leader_dir, follower_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (leader_gate, follower_gate) = (Gate::default(), Gate::default());
    let mut leader = open(leader_dir.path(), LEADER, &leader_gate);
    let mut follower = open(follower_dir.path(), 2, &follower_gate);
    for index in 1..=3 {
        // Long enough to complete 4 KiB blocks, which a follower writes past the page cache.
        let built = Bytes::from(test_batches::build(5, 1_000, 9_000));
        let address = built.as_ptr();
        let next = leader.log().log_end_offset();
        let batch = entry_codec::stamped(built, next, TERM);
        assert_eq!(
            batch.as_ptr(),
            address,
            "a batch held alone is stamped in place"
        );
        let header = BatchHeader::parse(&batch).expect("header");
        assert_eq!(header.base_offset, next);
        assert_eq!(header.partition_leader_epoch, 2);
        leader
            .append(&[normal(index, &batch)], 0)
            .expect("leader append");
        follower
            .append(&[normal(index, &batch)], 0)
            .expect("follower append");
        assert_eq!(
            read_back(&leader, index).as_ptr(),
            address,
            "stored without a copy"
        );
        assert_eq!(
            read_back(&follower, index).as_ptr(),
            address,
            "stored without a copy"
        );
    }
    assert!(
        !has_opened_direct_io(&leader_gate),
        "a leader writes through the page cache"
    );
    assert!(
        has_opened_direct_io(&follower_gate),
        "a follower writes past it"
    );
    assert_eq!(
        test_batches::segment_files(leader_dir.path()),
        test_batches::segment_files(follower_dir.path())
    );
}

#[test]
fn a_proposal_stamped_for_another_place_or_term_is_set_right_on_a_copy() {
    let dir = tempfile::tempdir().expect("dir");
    let gate = Gate::default();
    let mut leader = open(dir.path(), LEADER, &gate);
    let first = Bytes::from(test_batches::build(2, 1_000, 10));
    leader.append(&[normal(1, &first)], 0).expect("append");
    for (index, offset, term) in [(2, 0, TERM), (3, 4, TERM + 1)] {
        let batch =
            entry_codec::stamped(Bytes::from(test_batches::build(2, 1_000, 10)), offset, term);
        let next = leader.log().log_end_offset();
        leader.append(&[normal(index, &batch)], 0).expect("append");
        let stored = read_back(&leader, index);
        assert_ne!(stored.as_ptr(), batch.as_ptr(), "set on a copy");
        let header = BatchHeader::parse(&stored).expect("header");
        assert_eq!(
            (header.base_offset, header.partition_leader_epoch),
            (next, 2)
        );
        assert_eq!(
            stored[BATCH_BODY..],
            batch[BATCH_BODY..],
            "the rest as proposed"
        );
    }
    let shared = Bytes::from(test_batches::build(2, 1_000, 10));
    let kept = shared.clone();
    let returned = entry_codec::stamped(shared, 99, TERM);
    assert_eq!(
        (returned.as_ptr(), &returned[..]),
        (kept.as_ptr(), &kept[..]),
        "shared: as it is"
    );
}

/// Where a batch's bytes stop being the base offset, length and leader epoch.
const BATCH_BODY: usize = 16;
