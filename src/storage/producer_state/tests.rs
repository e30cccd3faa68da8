//! Unit tests of the producer-state rules (Kafka's ProducerStateManagerTest cases) and a
//! property test: a snapshot taken anywhere, decoded and fed the rest of the batches, equals
//! the state built batch by batch.

use proptest::prelude::*;

use super::marker::{Control, Marker};
use super::snapshot;
use super::*;

const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

fn header(producer_id: i64, epoch: i16, sequence: i32, records: i32) -> BatchHeader {
    BatchHeader {
        base_offset: 0,
        batch_length: 100,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: records - 1,
        base_timestamp: 1_000,
        max_timestamp: 1_000,
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        record_count: records,
    }
}

fn transactional(mut header: BatchHeader) -> BatchHeader {
    header.attributes |= TRANSACTIONAL;
    header
}

impl ProducerState {
    fn check_client(&self, header: &BatchHeader) -> Result<Verdict, ProducerError> {
        self.check(header, Origin::Client, None)
    }
}

/// Appends a checked batch at the state's end offset, as the log would.
#[track_caller]
fn append(state: &mut ProducerState, mut header: BatchHeader) -> i64 {
    assert_eq!(
        state.check(&header, Origin::Client, None),
        Ok(Verdict::Append)
    );
    header.base_offset = state.end_offset();
    state.apply(&header, None);
    header.base_offset
}

fn marker(
    state: &mut ProducerState,
    producer_id: i64,
    epoch: i16,
    is_commit: bool,
) -> Option<CompletedTxn> {
    let mut header = header(producer_id, epoch, -1, 1);
    header.attributes = TRANSACTIONAL | CONTROL;
    header.base_offset = state.end_offset();
    let control = Control::Marker(Marker {
        is_commit,
        coordinator_epoch: 0,
    });
    state.apply(&header, Some(control))
}

#[test]
fn a_retry_of_any_of_the_last_five_batches_is_a_duplicate_with_its_offsets() {
    let mut state = ProducerState::new(0);
    for i in 0..6 {
        append(&mut state, header(1, 0, i * 2, 2));
    }
    let retry = state.check_client(&header(1, 0, 4, 2));
    assert!(
        matches!(retry, Ok(Verdict::Duplicate(meta)) if meta.first_offset == 4 && meta.last_offset == 5)
    );
    // The first batch left the window: its retry is out of order, as in Kafka.
    assert!(matches!(
        state.check_client(&header(1, 0, 0, 2)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn a_gap_is_out_of_order_and_the_next_sequence_is_accepted() {
    let mut state = ProducerState::new(0);
    append(&mut state, header(1, 0, 0, 3));
    assert!(matches!(
        state.check_client(&header(1, 0, 4, 1)),
        Err(ProducerError::OutOfOrderSequence {
            sequence: 4,
            last_sequence: 2,
            ..
        })
    ));
    append(&mut state, header(1, 0, 3, 1));
}

#[test]
fn an_older_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
    let mut state = ProducerState::new(0);
    append(&mut state, header(1, 3, 0, 1));
    assert!(matches!(
        state.check_client(&header(1, 2, 1, 1)),
        Err(ProducerError::InvalidProducerEpoch {
            epoch: 2,
            current: 3,
            ..
        })
    ));
    assert!(matches!(
        state.check_client(&header(1, 4, 5, 1)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
    append(&mut state, header(1, 4, 0, 1));
}

#[test]
fn an_unknown_producer_may_start_at_any_sequence_kip_360() {
    let mut state = ProducerState::new(0);
    append(&mut state, header(9, 2, 77, 1));
    append(&mut state, header(9, 2, 78, 1));
}

#[test]
fn sequences_wrap_from_i32_max_to_zero() {
    let mut state = ProducerState::new(0);
    append(&mut state, header(1, 0, i32::MAX - 1, 2));
    append(&mut state, header(1, 0, 0, 1));
}

#[test]
fn a_plain_write_inside_an_open_transaction_is_invalid_txn_state() {
    let mut state = ProducerState::new(0);
    append(&mut state, transactional(header(1, 0, 0, 1)));
    assert!(matches!(
        state.check_client(&header(1, 0, 1, 1)),
        Err(ProducerError::InvalidTxnState { .. })
    ));
}

#[test]
fn markers_complete_transactions_and_move_the_last_stable_offset() {
    let mut state = ProducerState::new(0);
    let first_a = append(&mut state, transactional(header(1, 0, 0, 2)));
    let first_b = append(&mut state, transactional(header(2, 0, 0, 2)));
    append(&mut state, header(3, 0, 0, 1));
    assert_eq!(state.first_unstable_offset(100), Some(first_a));
    let done = marker(&mut state, 1, 0, false).expect("a completed transaction");
    assert!(done.is_aborted);
    assert_eq!(
        (done.first_offset, done.last_stable_offset),
        (first_a, first_b)
    );
    let marker_not_durable = done.last_offset;
    assert_eq!(
        state.first_unstable_offset(marker_not_durable),
        Some(first_a)
    );
    state.on_high_watermark(100);
    assert_eq!(state.first_unstable_offset(100), Some(first_b));
    let done = marker(&mut state, 2, 0, true).expect("completed");
    assert!(!done.is_aborted);
    assert_eq!(done.last_stable_offset, done.last_offset + 1);
    assert_eq!(state.first_unstable_offset(done.last_offset + 1), None);
    assert!(!state.has_ongoing_transaction(2));
    // A marker for a producer without an open transaction completes nothing.
    assert_eq!(marker(&mut state, 2, 0, true), None);
}

#[test]
fn a_bumped_marker_epoch_resets_the_sequence_window() {
    let mut state = ProducerState::new(0);
    append(&mut state, transactional(header(1, 0, 0, 1)));
    marker(&mut state, 1, 1, true);
    append(&mut state, transactional(header(1, 1, 0, 1)));
}

#[test]
fn idle_producers_expire_unless_their_transaction_is_open() {
    let mut state = ProducerState::new(0);
    append(&mut state, header(1, 0, 0, 1));
    append(&mut state, transactional(header(2, 0, 0, 1)));
    assert_eq!(state.remove_expired(1_000 + 500, 1_000), 0);
    assert_eq!(state.remove_expired(1_000 + 1_000, 1_000), 1);
    assert!(state.entry(1).is_none() && state.entry(2).is_some());
}

#[test]
fn corrupt_snapshots_are_errors_not_panics() {
    let mut state = ProducerState::new(0);
    append(&mut state, transactional(header(1, 0, 0, 3)));
    append(&mut state, header(2, 5, 9, 1));
    let bytes = snapshot::encode(&state);
    assert_eq!(
        snapshot::decode(&bytes, state.end_offset()),
        Ok(state.clone())
    );
    assert!(matches!(
        snapshot::decode(&bytes, 99),
        Err(snapshot::SnapshotError::OffsetMismatch { .. })
    ));
    for cut in 0..bytes.len() {
        assert!(
            snapshot::decode(bytes.get(..cut).unwrap_or_default(), state.end_offset()).is_err()
        );
    }
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        if let Some(byte) = flipped.get_mut(at) {
            *byte ^= 0x40;
        }
        assert!(
            snapshot::decode(&flipped, state.end_offset()).is_err(),
            "flip at {at}"
        );
    }
    let mut huge = bytes.clone();
    huge.truncate(18);
    if let Some(count) = huge.get_mut(14..18) {
        count.copy_from_slice(&u32::MAX.to_be_bytes());
    }
    assert!(snapshot::decode(&huge, state.end_offset()).is_err());
}

/// One generated batch: data of a producer (maybe transactional) or a marker.
#[derive(Clone, Debug)]
enum Step {
    Data {
        producer: i64,
        records: i32,
        transactional: bool,
    },
    Marker {
        producer: i64,
        is_commit: bool,
        bump: bool,
    },
    Plain,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..4i64, 1..4i32, any::<bool>()).prop_map(|(producer, records, transactional)| {
            Step::Data { producer, records, transactional }
        }),
        2 => (0..4i64, any::<bool>(), any::<bool>()).prop_map(|(producer, is_commit, bump)| {
            Step::Marker { producer, is_commit, bump }
        }),
        1 => Just(Step::Plain),
    ]
}

/// Turns steps into the batch headers (and control contents) a well-behaved log would hold.
fn batches(steps: &[Step]) -> Vec<(BatchHeader, Option<Control>)> {
    let mut state = ProducerState::new(0);
    let mut out = Vec::new();
    let mut epochs = [0i16; 4];
    for step in steps {
        let (mut header, control) = match step {
            Step::Data {
                producer,
                records,
                transactional: is_txn,
            } => {
                let index = *producer as usize;
                let sequence = state
                    .entry(*producer)
                    .filter(|entry| entry.epoch == epochs[index])
                    .map_or(0, |entry| entry.last_seq().wrapping_add(1).max(0));
                let plain = header(*producer, epochs[index], sequence, *records);
                let open = state.has_ongoing_transaction(*producer);
                let header = if *is_txn || open {
                    transactional(plain)
                } else {
                    plain
                };
                (header, None)
            }
            Step::Marker {
                producer,
                is_commit,
                bump,
            } => {
                let index = *producer as usize;
                if *bump {
                    epochs[index] += 1;
                }
                let mut header = header(*producer, epochs[index], -1, 1);
                header.attributes = TRANSACTIONAL | CONTROL;
                let control = Control::Marker(Marker {
                    is_commit: *is_commit,
                    coordinator_epoch: 1,
                });
                (header, Some(control))
            }
            Step::Plain => (header(-1, -1, -1, 2), None),
        };
        header.base_offset = state.end_offset();
        if control.is_none() {
            assert!(
                state.check(&header, Origin::Client, None).is_ok(),
                "generated batch refused: {header:?}"
            );
        }
        state.apply(&header, control);
        out.push((header, control));
    }
    out
}

proptest! {
    #[test]
    fn a_snapshot_anywhere_plus_the_rest_equals_the_state_built_batch_by_batch(
        steps in proptest::collection::vec(step_strategy(), 1..60),
        cut in any::<prop::sample::Index>(),
    ) {
        let log = batches(&steps);
        let mut incremental = ProducerState::new(0);
        for (header, control) in &log {
            let before = incremental.clone();
            incremental.apply(header, *control);
            if control.is_none() && header.producer_id >= 0 {
                // Every applied batch's retry is now a duplicate with the same offsets.
                let retry = incremental.check(header, Origin::Client, None);
                prop_assert!(
                    matches!(retry, Ok(Verdict::Duplicate(meta)) if meta.first_offset == header.base_offset),
                    "retry of {:?} after {:?}: {:?}", header, before, retry
                );
            }
        }
        let split = cut.index(log.len() + 1);
        let mut prefix = ProducerState::new(0);
        for (header, control) in log.iter().take(split) {
            prefix.apply(header, *control);
        }
        // A snapshot is taken where the prefix is durable.
        prefix.on_high_watermark(prefix.end_offset());
        let mut rebuilt = snapshot::decode(&snapshot::encode(&prefix), prefix.end_offset())
            .expect("own snapshot decodes");
        prop_assert_eq!(&rebuilt, &prefix);
        for (header, control) in log.iter().skip(split) {
            rebuilt.apply(header, *control);
        }
        incremental.on_high_watermark(incremental.end_offset());
        rebuilt.on_high_watermark(rebuilt.end_offset());
        prop_assert_eq!(rebuilt, incremental);
    }
}
