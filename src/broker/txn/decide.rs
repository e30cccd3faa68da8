//! The transaction coordinator's decisions, Kafka's TransactionCoordinator request by request:
//! pure functions of a transactional id's metadata and the request, returning the transition to
//! write or the answer. No locks, no I/O; `mod.rs` does both.

use std::collections::BTreeSet;

use super::TxnError;
use super::metadata::{
    IllegalTransition, NO_PRODUCER_ID, TRANSACTIONS_V2, TxnMetadata, TxnTransit, is_epoch_exhausted,
};
use super::state::TxnState;
use crate::broker::TopicPartition;

/// What an InitProducerId leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InitDecision {
    /// Write this transition, then answer with its producer id and epoch.
    Write(TxnTransit),
    /// A transaction is open: it is being fenced and aborted (this prepare of the abort must be
    /// written); the client is answered CONCURRENT_TRANSACTIONS and retries.
    Abort(EndDecision),
}

/// What an EndTxn (from the client, or the coordinator's own abort) leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EndDecision {
    /// Already done (a retry): answer with this producer id and epoch.
    Done {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// Write this PrepareCommit or PrepareAbort; then the markers.
    Prepare {
        transit: TxnTransit,
        is_epoch_fence: bool,
    },
}

/// What an add of partitions leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AddDecision {
    /// Already in the transaction.
    Done,
    Write(TxnTransit),
}

impl From<IllegalTransition> for TxnError {
    fn from(error: IllegalTransition) -> Self {
        tracing::error!(%error, "illegal transaction state transition");
        TxnError::IllegalState
    }
}

/// InitProducerId for an existing (or just created) transactional id (Kafka's
/// prepareInitProducerIdTransit). `new_producer_id` is asked only when the epoch is exhausted.
pub(crate) fn init_producer_id(
    meta: &mut TxnMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    server_transaction_version: i16,
    now: i64,
) -> Result<InitDecision, TxnError> {
    let is_valid = |(producer_id, epoch): (i64, i16)| {
        meta.producer_epoch == -1
            || producer_id == meta.producer_id
            || (producer_id == meta.prev_producer_id && is_epoch_exhausted(epoch))
    };
    if meta.pending.is_some() {
        return Err(TxnError::ConcurrentTransactions);
    }
    if expected.is_some_and(|expected| !is_valid(expected)) {
        return Err(TxnError::ProducerFenced);
    }
    match meta.state {
        TxnState::PrepareAbort | TxnState::PrepareCommit => Err(TxnError::ConcurrentTransactions),
        TxnState::CompleteAbort | TxnState::CompleteCommit | TxnState::Empty => {
            let expected_epoch = expected.map(|(_, epoch)| epoch);
            if meta.is_producer_epoch_exhausted()
                && expected_epoch.is_none_or(|epoch| epoch == meta.producer_epoch)
            {
                let producer_id = new_producer_id()?;
                let transit = meta.prepare_producer_id_rotation(
                    producer_id,
                    timeout_ms,
                    now,
                    expected.is_some(),
                )?;
                return Ok(InitDecision::Write(transit));
            }
            match meta.prepare_increment_producer_epoch(timeout_ms, expected_epoch, now)? {
                Some(transit) => Ok(InitDecision::Write(transit)),
                None => Err(TxnError::ProducerFenced),
            }
        }
        TxnState::Ongoing => {
            let fence = meta.prepare_fence_producer_epoch()?;
            let abort = end_txn(
                meta,
                fence.producer_id,
                fence.producer_epoch,
                false,
                false,
                server_transaction_version,
                new_producer_id,
                now,
            );
            if abort.is_err() {
                meta.abandon_pending();
            }
            Ok(InitDecision::Abort(abort?))
        }
        TxnState::Dead | TxnState::PrepareEpochFence => Err(TxnError::IllegalState),
    }
}

/// EndTxn: commit or abort (Kafka's endTransaction and endTransactionWithTV1).
#[allow(clippy::too_many_arguments)] // reason: Kafka's request fields, one each
pub(crate) fn end_txn(
    meta: &mut TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    from_client: bool,
    transaction_version: i16,
    new_producer_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    now: i64,
) -> Result<EndDecision, TxnError> {
    if transaction_version < TRANSACTIONS_V2 {
        return end_txn_v1(meta, producer_id, producer_epoch, commit, from_client, now);
    }
    let is_epoch_fence = meta.pending == Some(TxnState::PrepareEpochFence);
    let retry_on_overflow = !is_epoch_fence
        && meta.prev_producer_id == producer_id
        && producer_epoch == i16::MAX - 1
        && meta.producer_epoch == 0;
    let retry_on_epoch_bump =
        !is_epoch_fence && i32::from(meta.producer_epoch) == i32::from(producer_epoch) + 1;
    let is_valid_epoch = if is_epoch_fence {
        (!from_client || producer_epoch == meta.producer_epoch)
            && producer_epoch >= meta.producer_epoch
    } else {
        match meta.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                producer_epoch == meta.producer_epoch
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_epoch_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_epoch_bump || retry_on_overflow || producer_epoch == meta.producer_epoch
            }
        }
    };
    let is_retry = retry_on_epoch_bump || retry_on_overflow;
    if meta.producer_id != producer_id && !retry_on_overflow {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if !is_valid_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if meta
        .pending
        .is_some_and(|pending| pending != TxnState::PrepareEpochFence)
    {
        return Err(TxnError::ConcurrentTransactions);
    }
    let done = EndDecision::Done {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
    };
    let mut prepare = |meta: &mut TxnMetadata, state: TxnState, no_partition_added: bool| {
        let next_producer_id = if !is_epoch_fence && meta.is_producer_epoch_exhausted() {
            new_producer_id()?
        } else {
            NO_PRODUCER_ID
        };
        if state == TxnState::PrepareAbort && is_epoch_fence {
            meta.pending = None;
            meta.producer_epoch = producer_epoch;
            meta.last_producer_epoch = -1;
        }
        let transit = meta.prepare_abort_or_commit(
            state,
            transaction_version,
            next_producer_id,
            now,
            no_partition_added,
        )?;
        Ok(EndDecision::Prepare {
            transit,
            is_epoch_fence,
        })
    };
    match (meta.state, commit) {
        (TxnState::Ongoing, true) => prepare(meta, TxnState::PrepareCommit, false),
        (TxnState::Ongoing, false) => prepare(meta, TxnState::PrepareAbort, false),
        (TxnState::CompleteCommit, true) if is_retry => Ok(done),
        (TxnState::CompleteCommit, false) if !is_retry => {
            prepare(meta, TxnState::PrepareAbort, true)
        }
        (TxnState::CompleteAbort, false) if is_retry => Ok(done),
        (TxnState::CompleteAbort, false) => prepare(meta, TxnState::PrepareAbort, true),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(TxnError::ConcurrentTransactions)
        }
        (TxnState::Empty, false) => prepare(meta, TxnState::PrepareAbort, true),
        (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(TxnError::IllegalState),
        _ => Err(TxnError::InvalidTxnState),
    }
}

fn end_txn_v1(
    meta: &mut TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    from_client: bool,
    now: i64,
) -> Result<EndDecision, TxnError> {
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if (from_client && producer_epoch != meta.producer_epoch)
        || producer_epoch < meta.producer_epoch
    {
        return Err(TxnError::ProducerFenced);
    }
    if meta
        .pending
        .is_some_and(|pending| pending != TxnState::PrepareEpochFence)
    {
        return Err(TxnError::ConcurrentTransactions);
    }
    let done = EndDecision::Done {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
    };
    match (meta.state, commit) {
        (TxnState::Ongoing, _) => {
            let state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            let mut is_epoch_fence = false;
            if !commit && meta.pending == Some(TxnState::PrepareEpochFence) {
                is_epoch_fence = true;
                meta.pending = None;
                meta.producer_epoch = producer_epoch;
                meta.last_producer_epoch = -1;
            }
            let transit = meta.prepare_abort_or_commit(state, 0, NO_PRODUCER_ID, now, false)?;
            Ok(EndDecision::Prepare {
                transit,
                is_epoch_fence,
            })
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(done),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(TxnError::ConcurrentTransactions)
        }
        (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(TxnError::IllegalState),
        _ => Err(TxnError::InvalidTxnState),
    }
}

/// The checks Kafka repeats once a prepare is durable, before the markers: then the
/// completion (CompleteCommit or CompleteAbort) to write after them.
pub(crate) fn prepare_complete(
    meta: &mut TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    transaction_version: i16,
    now: i64,
) -> Result<TxnTransit, TxnError> {
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    let epoch_ok = meta.producer_epoch == producer_epoch
        || (transaction_version >= TRANSACTIONS_V2
            && i32::from(meta.producer_epoch) == i32::from(producer_epoch) + 1);
    if !epoch_ok {
        return Err(TxnError::ProducerFenced);
    }
    if meta.pending.is_some() {
        return Err(TxnError::ConcurrentTransactions);
    }
    match (meta.state, commit) {
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Ok(meta.prepare_complete(now)?)
        }
        (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(TxnError::IllegalState),
        _ => Err(TxnError::InvalidTxnState),
    }
}

/// AddPartitionsToTxn, AddOffsetsToTxn and the implicit add of transactions v2.
pub(crate) fn add_partitions(
    meta: &mut TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TopicPartition>,
    transaction_version: i16,
    now: i64,
) -> Result<AddDecision, TxnError> {
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if meta.pending.is_some()
        || matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
    {
        return Err(TxnError::ConcurrentTransactions);
    }
    if meta.state == TxnState::Ongoing && partitions.is_subset(&meta.partitions) {
        return Ok(AddDecision::Done);
    }
    Ok(AddDecision::Write(meta.prepare_add_partitions(
        partitions,
        now,
        transaction_version,
    )?))
}

/// The verification of a transactional produce (KIP-890 part 1): is the partition part of the
/// producer's ongoing transaction? Per partition: None or the reason it is not.
pub(crate) fn verify(
    meta: &TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    partition: &TopicPartition,
) -> Result<(), TxnError> {
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return Err(TxnError::ConcurrentTransactions);
    }
    if meta.partitions.contains(partition) {
        Ok(())
    } else {
        Err(TxnError::TransactionAbortable)
    }
}
