//! One transactional id's metadata and its transitions (Kafka's TransactionMetadata): a change
//! is prepared (the id gets a pending state and nothing else moves), written to
//! `__transaction_state`, and completed only once that record is durable. Pure, no I/O.

use std::collections::BTreeSet;

use super::state::TxnState;
use crate::broker::TopicPartition;

/// No producer id / epoch (Kafka's NO_PRODUCER_ID / NO_PRODUCER_EPOCH).
pub(crate) const NO_PRODUCER_ID: i64 = -1;
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;

/// Transaction version of transactions v2 (KIP-890): an epoch bump at every EndTxn.
pub(crate) const TRANSACTIONS_V2: i16 = 2;

/// The fields a transition sets, as written to the log (Kafka's TxnTransitMetadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxnTransit {
    pub(crate) producer_id: i64,
    pub(crate) prev_producer_id: i64,
    pub(crate) next_producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) last_producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) start_ms: i64,
    pub(crate) last_update_ms: i64,
    pub(crate) client_transaction_version: i16,
}

/// A transactional id's coordinator state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    /// The producer id before the last transition (a retried bump after a rotation names it).
    pub(crate) prev_producer_id: i64,
    /// The producer id to rotate to when the epoch is exhausted (transactions v2).
    pub(crate) next_producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// The epoch before the last bump, to recognise a retried InitProducerId or EndTxn.
    pub(crate) last_producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    /// When the current transaction started (its first partition); -1 when none.
    pub(crate) start_ms: i64,
    pub(crate) last_update_ms: i64,
    pub(crate) client_transaction_version: i16,
    /// The state a prepared, not yet durable transition goes to.
    pub(crate) pending: Option<TxnState>,
    /// A fencing bump failed to be written: the next fence reuses the epoch.
    pub(crate) has_failed_epoch_fence: bool,
}

/// A transition that may not happen; Kafka treats these as coordinator bugs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transactional id {transactional_id}: {reason}")]
pub(crate) struct IllegalTransition {
    pub(crate) transactional_id: String,
    pub(crate) reason: String,
}

/// An epoch at which no more bumps are allowed (one is kept to fence the producer).
pub(crate) fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMetadata {
    /// A transactional id seen for the first time, with its producer id but no epoch yet.
    pub(crate) fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            client_transaction_version: 0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// Metadata rebuilt from a stored record (no pending transition).
    pub(crate) fn from_transit(transactional_id: &str, transit: TxnTransit) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id: transit.producer_id,
            prev_producer_id: transit.prev_producer_id,
            next_producer_id: transit.next_producer_id,
            producer_epoch: transit.producer_epoch,
            last_producer_epoch: transit.last_producer_epoch,
            timeout_ms: transit.timeout_ms,
            state: transit.state,
            partitions: transit.partitions,
            start_ms: transit.start_ms,
            last_update_ms: transit.last_update_ms,
            client_transaction_version: transit.client_transaction_version,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    pub(crate) fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    fn has_pending_transaction(&self) -> bool {
        matches!(
            self.state,
            TxnState::Ongoing | TxnState::PrepareAbort | TxnState::PrepareCommit
        )
    }

    /// The current values, to be changed by a transition.
    fn current(&self, state: TxnState) -> TxnTransit {
        TxnTransit {
            producer_id: self.producer_id,
            prev_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state,
            partitions: self.partitions.clone(),
            start_ms: self.start_ms,
            last_update_ms: self.last_update_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }

    fn illegal(&self, reason: String) -> IllegalTransition {
        IllegalTransition {
            transactional_id: self.transactional_id.clone(),
            reason,
        }
    }

    /// Marks the transition pending and returns what to write (Kafka's prepareTransitionTo).
    fn prepare(&mut self, mut data: TxnTransit) -> Result<TxnTransit, IllegalTransition> {
        if let Some(pending) = self.pending {
            return Err(self.illegal(format!(
                "preparing {:?} while {pending:?} is pending",
                data.state
            )));
        }
        if data.producer_id < 0 {
            return Err(self.illegal(format!("illegal producer id {}", data.producer_id)));
        }
        if data.state != TxnState::Dead && data.producer_epoch < 0 {
            return Err(self.illegal(format!("illegal epoch {}", data.producer_epoch)));
        }
        if !data.state.may_follow(self.state) {
            return Err(self.illegal(format!("{:?} cannot follow {:?}", data.state, self.state)));
        }
        data.prev_producer_id = self.producer_id;
        self.pending = Some(data.state);
        Ok(data)
    }

    /// InitProducerId while a transaction is open: bump the epoch (once per failed attempt) to
    /// fence the old producer; the abort that follows never returns this epoch to a client.
    pub(crate) fn prepare_fence_producer_epoch(&mut self) -> Result<TxnTransit, IllegalTransition> {
        let bumped = if self.has_failed_epoch_fence || self.producer_epoch == i16::MAX {
            self.producer_epoch
        } else {
            self.producer_epoch + 1
        };
        let mut data = self.current(TxnState::PrepareEpochFence);
        data.producer_epoch = bumped;
        self.prepare(data)
    }

    /// InitProducerId (Kafka's prepareIncrementProducerEpoch): a new epoch, or the current one
    /// again when `expected_epoch` is the previous one (a retry of a bump that succeeded).
    /// `Ok(None)` means the expected epoch is fenced.
    pub(crate) fn prepare_increment_producer_epoch(
        &mut self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now: i64,
    ) -> Result<Option<TxnTransit>, IllegalTransition> {
        if self.is_producer_epoch_exhausted() {
            return Err(self.illegal("no epochs left to bump".to_owned()));
        }
        let bumped = self.producer_epoch + 1;
        let mut data = self.current(TxnState::Empty);
        match expected_epoch {
            None => {
                data.producer_epoch = bumped;
                data.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            Some(expected)
                if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch =>
            {
                data.producer_epoch = bumped;
                data.last_producer_epoch = self.producer_epoch;
            }
            Some(expected) if expected == self.last_producer_epoch => {}
            Some(_) => return Ok(None),
        }
        data.timeout_ms = timeout_ms;
        data.partitions = BTreeSet::new();
        data.start_ms = -1;
        data.last_update_ms = now;
        self.prepare(data).map(Some)
    }

    /// InitProducerId with the epoch exhausted: a fresh producer id at epoch 0.
    pub(crate) fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now: i64,
        record_last_epoch: bool,
    ) -> Result<TxnTransit, IllegalTransition> {
        if self.has_pending_transaction() {
            return Err(self.illegal("rotating the producer id mid-transaction".to_owned()));
        }
        let mut data = self.current(TxnState::Empty);
        data.producer_id = new_producer_id;
        data.producer_epoch = 0;
        data.last_producer_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        data.timeout_ms = timeout_ms;
        data.partitions = BTreeSet::new();
        data.start_ms = -1;
        data.last_update_ms = now;
        self.prepare(data)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn / an implicit add: the transaction is (or stays)
    /// Ongoing with `added` in it; it starts now if none was open.
    pub(crate) fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<TopicPartition>,
        now: i64,
        client_transaction_version: i16,
    ) -> Result<TxnTransit, IllegalTransition> {
        let mut data = self.current(TxnState::Ongoing);
        if matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit
        ) {
            data.start_ms = now;
        }
        data.partitions.extend(added.iter().cloned());
        data.last_update_ms = now;
        data.client_transaction_version = client_transaction_version;
        self.prepare(data)
    }

    /// EndTxn: PrepareCommit or PrepareAbort. With transactions v2 the epoch is bumped here and
    /// the markers carry the new one; an exhausted epoch moves on to `next_producer_id`.
    pub(crate) fn prepare_abort_or_commit(
        &mut self,
        state: TxnState,
        client_transaction_version: i16,
        next_producer_id: i64,
        now: i64,
        no_partition_added: bool,
    ) -> Result<TxnTransit, IllegalTransition> {
        let mut data = self.current(state);
        if client_transaction_version >= TRANSACTIONS_V2 {
            if self.producer_epoch == i16::MAX && state == TxnState::PrepareAbort {
                tracing::error!(transactional_id = %self.transactional_id, "aborting at the largest epoch");
            } else {
                data.producer_epoch = self.producer_epoch + 1;
            }
            data.last_producer_epoch = self.producer_epoch;
        }
        if no_partition_added {
            data.start_ms = now;
        }
        data.next_producer_id = next_producer_id;
        data.last_update_ms = now;
        data.client_transaction_version = client_transaction_version;
        self.prepare(data)
    }

    /// Once the markers are written: CompleteCommit or CompleteAbort (and, after an epoch
    /// overflow in v2, the next producer id at epoch 0).
    pub(crate) fn prepare_complete(&mut self, now: i64) -> Result<TxnTransit, IllegalTransition> {
        self.has_failed_epoch_fence = false;
        let state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let mut data = self.current(state);
        if self.client_transaction_version >= TRANSACTIONS_V2
            && self.next_producer_id != NO_PRODUCER_ID
        {
            data.producer_id = self.next_producer_id;
            data.producer_epoch = 0;
        }
        data.next_producer_id = NO_PRODUCER_ID;
        data.partitions = BTreeSet::new();
        data.last_update_ms = now;
        self.prepare(data)
    }

    /// The transactional id expires (a tombstone is written).
    pub(crate) fn prepare_dead(&mut self) -> Result<TxnTransit, IllegalTransition> {
        let mut data = self.current(TxnState::Dead);
        data.partitions = BTreeSet::new();
        self.prepare(data)
    }

    /// Applies a prepared transition whose record is now durable (Kafka's
    /// completeTransitionTo), after checking it is the one that was prepared.
    pub(crate) fn complete_transition(
        &mut self,
        transit: &TxnTransit,
    ) -> Result<(), IllegalTransition> {
        let Some(to) = self.pending else {
            return Err(self.illegal("completing a transition that is not pending".to_owned()));
        };
        if to != transit.state {
            return Err(self.illegal(format!("completing {:?}, {to:?} is pending", transit.state)));
        }
        let is_valid = match to {
            TxnState::Empty => {
                (self.producer_epoch == transit.producer_epoch || self.is_valid_epoch_bump(transit))
                    && transit.partitions.is_empty()
                    && transit.start_ms == -1
            }
            TxnState::Ongoing => {
                self.is_valid_epoch(transit)
                    && transit.partitions.is_superset(&self.partitions)
                    && self.timeout_ms == transit.timeout_ms
            }
            TxnState::PrepareAbort | TxnState::PrepareCommit => {
                let allowed_empty_abort = to == TxnState::PrepareAbort
                    && transit.client_transaction_version >= TRANSACTIONS_V2
                    && self.state.is_expiration_allowed();
                self.is_valid_epoch(transit)
                    && self.partitions == transit.partitions
                    && self.timeout_ms == transit.timeout_ms
                    && (self.start_ms == transit.start_ms || allowed_empty_abort)
            }
            TxnState::CompleteAbort | TxnState::CompleteCommit => {
                self.is_valid_epoch(transit)
                    && self.timeout_ms == transit.timeout_ms
                    && transit.start_ms != -1
            }
            TxnState::PrepareEpochFence | TxnState::Dead => false,
        };
        if !is_valid {
            return Err(self.illegal(format!("unexpected transit {transit:?} from {self:?}")));
        }
        self.producer_id = transit.producer_id;
        self.prev_producer_id = transit.prev_producer_id;
        self.next_producer_id = transit.next_producer_id;
        self.producer_epoch = transit.producer_epoch;
        self.last_producer_epoch = transit.last_producer_epoch;
        self.timeout_ms = transit.timeout_ms;
        self.partitions = transit.partitions.clone();
        self.start_ms = transit.start_ms;
        self.last_update_ms = transit.last_update_ms;
        self.client_transaction_version = transit.client_transaction_version;
        self.pending = None;
        self.state = to;
        Ok(())
    }

    /// Kafka's validProducerEpoch: v2 prepares bump the epoch, a v2 completion after an
    /// overflow starts a new producer id at epoch 0; otherwise the id and epoch stay.
    fn is_valid_epoch(&self, transit: &TxnTransit) -> bool {
        let is_v2 = transit.client_transaction_version >= TRANSACTIONS_V2;
        let state = transit.state;
        if is_v2
            && matches!(state, TxnState::CompleteCommit | TxnState::CompleteAbort)
            && transit.producer_epoch == 0
            && transit.producer_id != self.producer_id
        {
            return transit.last_producer_epoch == self.last_producer_epoch
                && transit.prev_producer_id == self.producer_id;
        }
        if is_v2 && matches!(state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return transit.last_producer_epoch == self.producer_epoch
                && transit.producer_id == self.producer_id;
        }
        transit.producer_epoch == self.producer_epoch && transit.producer_id == self.producer_id
    }

    fn is_valid_epoch_bump(&self, transit: &TxnTransit) -> bool {
        transit.producer_epoch == self.producer_epoch.wrapping_add(1)
            || (transit.producer_epoch == 0 && transit.producer_id != self.producer_id)
    }

    /// Forgets a prepared transition whose record could not be written.
    pub(crate) fn abandon_pending(&mut self) {
        self.pending = None;
    }
}
