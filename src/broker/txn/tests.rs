//! Unit tests of the coordinator's pure state machine (Kafka's TransactionCoordinatorTest and
//! TransactionMetadataTest cases): decisions, transitions and their completion.

use std::collections::BTreeSet;

use super::TxnError;
use super::decide::{self, AddDecision, EndDecision, InitDecision};
use super::metadata::{TRANSACTIONS_V2, TxnMetadata, TxnTransit};
use super::state::TxnState;

const V1: i16 = 0;
const PID: i64 = 10;

fn no_new_id() -> impl FnMut() -> Result<i64, TxnError> {
    || panic!("no new producer id expected")
}

fn partitions(names: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
    names.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

/// Completes a prepared transition as the runtime does once its record is durable.
#[track_caller]
fn complete(meta: &mut TxnMetadata, transit: &TxnTransit) {
    meta.complete_transition(transit)
        .expect("a valid transition");
}

#[track_caller]
fn init(meta: &mut TxnMetadata, expected: Option<(i64, i16)>) -> TxnTransit {
    let decision = decide::init_producer_id(meta, 60_000, expected, &mut no_new_id(), 2, 1)
        .expect("InitProducerId accepted");
    let InitDecision::Write(transit) = decision else {
        panic!("expected a write, got {decision:?}");
    };
    complete(meta, &transit);
    transit
}

#[track_caller]
fn add(meta: &mut TxnMetadata, epoch: i16, tps: &[(&str, i32)], version: i16) {
    match decide::add_partitions(meta, PID, epoch, &partitions(tps), version, 2) {
        Ok(AddDecision::Write(transit)) => complete(meta, &transit),
        Ok(AddDecision::Done) => {}
        Err(error) => panic!("add refused: {error:?}"),
    }
}

/// EndTxn through prepare and completion; returns the epoch to continue with.
#[track_caller]
fn end(meta: &mut TxnMetadata, epoch: i16, commit: bool, version: i16) -> i16 {
    let decision = decide::end_txn(meta, PID, epoch, commit, true, version, &mut no_new_id(), 3)
        .expect("EndTxn accepted");
    let EndDecision::Prepare { transit, .. } = decision else {
        panic!("expected a prepare, got {decision:?}");
    };
    complete(meta, &transit);
    let done = decide::prepare_complete(meta, PID, transit.producer_epoch, commit, version, 4)
        .expect("completion prepared");
    complete(meta, &done);
    meta.producer_epoch
}

#[test]
fn init_bumps_the_epoch_and_fences_older_producers() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    assert_eq!(init(&mut meta, None).producer_epoch, 0);
    assert_eq!(init(&mut meta, None).producer_epoch, 1);
    // KIP-360: the current producer may bump its own epoch; an older one is fenced.
    assert_eq!(init(&mut meta, Some((PID, 1))).producer_epoch, 2);
    let fenced =
        decide::init_producer_id(&mut meta, 60_000, Some((PID, 0)), &mut no_new_id(), 2, 1);
    assert_eq!(fenced, Err(TxnError::ProducerFenced));
    assert_eq!(meta.state, TxnState::Empty);
    assert_eq!(meta.pending, None);
}

#[test]
fn a_v1_transaction_commits_and_a_retried_end_is_answered() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    add(&mut meta, 0, &[("a", 0), ("b", 1)], V1);
    assert_eq!(meta.state, TxnState::Ongoing);
    assert_eq!(meta.partitions, partitions(&[("a", 0), ("b", 1)]));
    assert_eq!(end(&mut meta, 0, true, V1), 0, "v1 keeps the epoch");
    assert_eq!(meta.state, TxnState::CompleteCommit);
    assert!(meta.partitions.is_empty());
    let retry = decide::end_txn(&mut meta, PID, 0, true, true, V1, &mut no_new_id(), 5);
    assert!(matches!(retry, Ok(EndDecision::Done { .. })));
    let wrong = decide::end_txn(&mut meta, PID, 0, false, true, V1, &mut no_new_id(), 5);
    assert_eq!(wrong, Err(TxnError::InvalidTxnState));
    let empty = decide::end_txn(&mut meta, PID, 0, true, true, V1, &mut no_new_id(), 5);
    assert!(matches!(empty, Ok(EndDecision::Done { .. })));
}

#[test]
fn end_requests_of_the_wrong_producer_are_refused() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    add(&mut meta, 0, &[("a", 0)], V1);
    let other = decide::end_txn(&mut meta, PID + 1, 0, true, true, V1, &mut no_new_id(), 5);
    assert_eq!(other, Err(TxnError::InvalidProducerIdMapping));
    let stale = decide::end_txn(&mut meta, PID, 7, true, true, V1, &mut no_new_id(), 5);
    assert_eq!(stale, Err(TxnError::ProducerFenced));
    let mut fresh = TxnMetadata::new("u", PID, 60_000, 0);
    init(&mut fresh, None);
    let nothing_open = decide::end_txn(&mut fresh, PID, 0, true, true, V1, &mut no_new_id(), 5);
    assert_eq!(nothing_open, Err(TxnError::InvalidTxnState));
}

#[test]
fn a_pending_change_makes_other_requests_retry() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    let Ok(AddDecision::Write(_pending)) =
        decide::add_partitions(&mut meta, PID, 0, &partitions(&[("a", 0)]), V1, 1)
    else {
        panic!("a write");
    };
    let concurrent = decide::add_partitions(&mut meta, PID, 0, &partitions(&[("b", 0)]), V1, 1);
    assert_eq!(concurrent, Err(TxnError::ConcurrentTransactions));
    let init_now = decide::init_producer_id(&mut meta, 60_000, None, &mut no_new_id(), 2, 1);
    assert_eq!(init_now, Err(TxnError::ConcurrentTransactions));
    meta.abandon_pending();
    assert_eq!(
        meta.state,
        TxnState::Empty,
        "an abandoned change leaves nothing behind"
    );
}

#[test]
fn transactions_v2_bump_the_epoch_at_every_end_and_recognise_retries() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    add(&mut meta, 0, &[("a", 0)], TRANSACTIONS_V2);
    assert_eq!(end(&mut meta, 0, true, TRANSACTIONS_V2), 1);
    // The retry of that EndTxn still carries epoch 0: answered with the new epoch.
    let retry = decide::end_txn(&mut meta, PID, 0, true, true, 2, &mut no_new_id(), 5);
    assert_eq!(
        retry,
        Ok(EndDecision::Done {
            producer_id: PID,
            producer_epoch: 1
        })
    );
    // A zombie at epoch 0 cannot start the next transaction; the producer at epoch 1 can.
    let zombie = decide::add_partitions(&mut meta, PID, 0, &partitions(&[("a", 0)]), 2, 6);
    assert_eq!(zombie, Err(TxnError::ProducerFenced));
    add(&mut meta, 1, &[("a", 0)], TRANSACTIONS_V2);
    assert_eq!(end(&mut meta, 1, false, TRANSACTIONS_V2), 2);
    assert_eq!(meta.state, TxnState::CompleteAbort);
    // v2 may abort with nothing open (the client is unsure); commit may not.
    let commit = decide::end_txn(&mut meta, PID, 2, true, true, 2, &mut no_new_id(), 7);
    assert_eq!(commit, Err(TxnError::InvalidTxnState));
    assert_eq!(end(&mut meta, 2, false, TRANSACTIONS_V2), 3);
}

#[test]
fn init_while_a_transaction_is_open_fences_and_aborts_it() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    add(&mut meta, 0, &[("a", 0)], V1);
    let decision =
        decide::init_producer_id(&mut meta, 60_000, None, &mut no_new_id(), 2, 5).expect("a fence");
    let InitDecision::Abort(EndDecision::Prepare {
        transit,
        is_epoch_fence,
    }) = decision
    else {
        panic!("expected an abort, got {decision:?}");
    };
    assert!(is_epoch_fence);
    assert_eq!(transit.state, TxnState::PrepareAbort);
    assert!(
        transit.producer_epoch > 0,
        "the abort carries a bumped epoch"
    );
    complete(&mut meta, &transit);
    let done = decide::prepare_complete(&mut meta, PID, transit.producer_epoch, false, 2, 6)
        .expect("completion");
    complete(&mut meta, &done);
    // The old producer is fenced from now on; the retried InitProducerId bumps again.
    let stale = decide::add_partitions(&mut meta, PID, 0, &partitions(&[("a", 0)]), V1, 7);
    assert_eq!(stale, Err(TxnError::ProducerFenced));
    let retried = init(&mut meta, None);
    assert!(retried.producer_epoch > transit.producer_epoch);
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    meta.producer_epoch = i16::MAX - 1;
    let decision =
        decide::init_producer_id(&mut meta, 60_000, None, &mut || Ok(PID + 100), 2, 5).expect("ok");
    let InitDecision::Write(transit) = decision else {
        panic!("a write");
    };
    assert_eq!(
        (transit.producer_id, transit.producer_epoch),
        (PID + 100, 0)
    );
    complete(&mut meta, &transit);
    assert_eq!(meta.prev_producer_id, PID);
}

#[test]
fn verification_reports_why_a_partition_is_not_in_the_transaction() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    let tp = ("a".to_owned(), 0);
    assert_eq!(
        decide::verify(&meta, PID, 0, &tp),
        Err(TxnError::TransactionAbortable)
    );
    add(&mut meta, 0, &[("a", 0)], V1);
    assert_eq!(decide::verify(&meta, PID, 0, &tp), Ok(()));
    assert_eq!(
        decide::verify(&meta, PID, 1, &tp),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        decide::verify(&meta, PID + 1, 0, &tp),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn illegal_transitions_are_refused() {
    let mut meta = TxnMetadata::new("t", PID, 60_000, 0);
    init(&mut meta, None);
    assert!(meta.prepare_complete(1).is_err(), "Empty cannot complete");
    let dead = meta.prepare_dead().expect("an idle id may expire");
    assert!(
        meta.complete_transition(&dead).is_err(),
        "Dead is removed, not completed"
    );
}
