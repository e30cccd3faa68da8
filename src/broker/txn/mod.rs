//! The transaction coordinator (Kafka's TransactionCoordinator): transactional ids, their
//! producer ids and epochs, and their transactions, persisted as records of the compacted
//! internal topic `__transaction_state` and rebuilt from it on start. `decide.rs` and
//! `metadata.rs` are the pure state machine; this file is the runtime: one lock, and every
//! change written (and durable) before it is applied, in the order it was prepared.

mod decide;
mod markers;
mod metadata;
mod record;
mod state;
mod store;

pub(super) use store::TXN_TOPIC;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::error::{Error, Result};
use super::{Broker, TopicPartition, now_ms};
use decide::{AddDecision, EndDecision, InitDecision};
use metadata::{TRANSACTIONS_V2, TxnMetadata, TxnTransit};

pub(crate) use markers::MarkerSpec;
pub(crate) use state::TxnState;

/// Why a transaction request is refused: each is one Kafka error code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum TxnError {
    #[error("the transactional id is empty")]
    InvalidRequest,
    #[error("the transaction timeout is not positive or exceeds transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("the producer id does not belong to the transactional id")]
    InvalidProducerIdMapping,
    #[error("a newer producer with the same transactional id fenced this one")]
    ProducerFenced,
    #[error("the producer epoch is stale")]
    InvalidProducerEpoch,
    #[error("another change of this transaction is in progress; retry")]
    ConcurrentTransactions,
    #[error("the transaction is not in a state that allows this request")]
    InvalidTxnState,
    #[error("the partition is not part of the transaction; abort it")]
    TransactionAbortable,
    #[error("the transactional id is unknown")]
    TransactionalIdNotFound,
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("the transaction coordinator is still loading its partition")]
    CoordinatorLoadInProgress,
    #[error("another broker coordinates this transactional id")]
    NotCoordinator,
    #[error("the transaction coordinator met an illegal state transition")]
    IllegalState,
}

/// Transaction coordinator and producer settings (Kafka's `transaction.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnSettings {
    /// Partitions of `__transaction_state` (`transaction.state.log.num.partitions`).
    pub(crate) state_topic_partitions: i32,
    /// Largest `transaction.timeout.ms` a producer may ask for (`transaction.max.timeout.ms`).
    pub(crate) max_timeout_ms: i32,
    /// How long an unused transactional id is kept (`transactional.id.expiration.ms`).
    pub(crate) transactional_id_expiration_ms: i64,
    /// How often timed-out transactions are aborted
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    pub(crate) abort_check_interval_ms: u64,
    /// How often expired transactional ids are removed
    /// (`transaction.remove.expired.transaction.cleanup.interval.ms`).
    pub(crate) expiration_check_interval_ms: u64,
    /// How long an idle producer's state is kept in a partition (`producer.id.expiration.ms`).
    pub(crate) producer_id_expiration_ms: i64,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            state_topic_partitions: 8,
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            abort_check_interval_ms: 10_000,
            expiration_check_interval_ms: 60 * 60 * 1000,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// What DescribeTransactions and ListTransactions show of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnDescription {
    pub(crate) transactional_id: String,
    pub(crate) state: TxnState,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) start_ms: i64,
    pub(crate) partitions: BTreeSet<TopicPartition>,
}

/// The coordinator's state, behind one lock.
#[derive(Debug, Default)]
struct State {
    txns: BTreeMap<String, TxnMetadata>,
    /// False until the state is loaded, and again once shutdown begins.
    is_active: bool,
}

/// The transaction coordinator of this broker.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    state: Mutex<State>,
}

impl Coordinator {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn refused(transactional_id: &str, error: TxnError) -> Error {
    Error::Transaction {
        transactional_id: transactional_id.to_owned(),
        error,
    }
}

impl Broker {
    fn txn_state(&self, transactional_id: &str) -> Result<MutexGuard<'_, State>> {
        match self.txn_coordinator(transactional_id) {
            super::CoordinatorAt::Here => {}
            super::CoordinatorAt::Broker { .. } => {
                return Err(refused(transactional_id, TxnError::NotCoordinator));
            }
            super::CoordinatorAt::Unavailable => {
                return Err(refused(transactional_id, TxnError::CoordinatorNotAvailable));
            }
            super::CoordinatorAt::Loading => {
                return Err(refused(
                    transactional_id,
                    TxnError::CoordinatorLoadInProgress,
                ));
            }
        }
        let state = self.transactions.lock();
        if state.is_active {
            Ok(state)
        } else {
            Err(refused(transactional_id, TxnError::CoordinatorNotAvailable))
        }
    }

    fn next_producer_id(&self) -> std::result::Result<i64, TxnError> {
        self.producer_ids.next().map_err(|error| {
            tracing::error!(%error, "allocating a producer id failed");
            TxnError::CoordinatorNotAvailable
        })
    }

    /// InitProducerId with a transactional id: its producer id and a new epoch (fencing any
    /// older producer of the id; an open transaction is aborted first and the client retries).
    pub(crate) async fn init_transactional_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16)> {
        let fail = |error| refused(transactional_id, error);
        if transactional_id.is_empty() {
            return Err(fail(TxnError::InvalidRequest));
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.transactions.max_timeout_ms {
            return Err(fail(TxnError::InvalidTransactionTimeout));
        }
        let now = now_ms();
        let decision = {
            let mut state = self.txn_state(transactional_id)?;
            if !state.txns.contains_key(transactional_id) {
                let producer_id = self.next_producer_id().map_err(fail)?;
                let created = TxnMetadata::new(transactional_id, producer_id, timeout_ms, now);
                state.txns.insert(transactional_id.to_owned(), created);
            }
            let meta = state
                .txns
                .get_mut(transactional_id)
                .expect("inserted above if missing");
            decide::init_producer_id(
                meta,
                timeout_ms,
                expected,
                &mut || self.next_producer_id(),
                TRANSACTIONS_V2,
                now,
            )
            .map_err(fail)?
        };
        match decision {
            InitDecision::Write(transit) => {
                self.write_and_complete(transactional_id, &transit).await?;
                tracing::info!(
                    transactional_id,
                    producer_id = transit.producer_id,
                    producer_epoch = transit.producer_epoch,
                    "initialized a transactional producer"
                );
                Ok((transit.producer_id, transit.producer_epoch))
            }
            InitDecision::Abort(decision) => {
                tracing::info!(
                    transactional_id,
                    "fencing the previous producer and aborting its transaction"
                );
                self.end_decided(transactional_id, decision).await?;
                Err(fail(TxnError::ConcurrentTransactions))
            }
        }
    }

    /// EndTxn: commit or abort the transaction; answers once its markers are written, with the
    /// producer id and epoch to continue with (bumped under transactions v2).
    pub(crate) async fn end_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        transaction_version: i16,
    ) -> Result<(i64, i16)> {
        let fail = |error| refused(transactional_id, error);
        if transactional_id.is_empty() {
            return Err(fail(TxnError::InvalidRequest));
        }
        let decision = {
            let mut state = self.txn_state(transactional_id)?;
            let meta = state
                .txns
                .get_mut(transactional_id)
                .ok_or(fail(TxnError::InvalidProducerIdMapping))?;
            decide::end_txn(
                meta,
                producer_id,
                producer_epoch,
                commit,
                true,
                transaction_version,
                &mut || self.next_producer_id(),
                now_ms(),
            )
            .map_err(fail)?
        };
        self.end_decided(transactional_id, decision).await
    }

    /// Carries out an EndTxn decision: write the prepare, then the markers and the completion.
    async fn end_decided(
        &self,
        transactional_id: &str,
        decision: EndDecision,
    ) -> Result<(i64, i16)> {
        let (transit, is_epoch_fence) = match decision {
            EndDecision::Done {
                producer_id,
                producer_epoch,
            } => return Ok((producer_id, producer_epoch)),
            EndDecision::Prepare {
                transit,
                is_epoch_fence,
            } => (transit, is_epoch_fence),
        };
        if let Err(error) = self.write_and_complete(transactional_id, &transit).await {
            if is_epoch_fence
                && let Some(meta) = self.transactions.lock().txns.get_mut(transactional_id)
            {
                meta.has_failed_epoch_fence = true;
            }
            return Err(error);
        }
        // The outcome is decided and durable; markers that fail now are retried by the timer.
        match self.complete_transaction(transactional_id).await {
            Ok(ids) => Ok(ids),
            Err(error) => {
                tracing::warn!(transactional_id, %error, "transaction markers not written yet; retrying in the background");
                Ok((transit.producer_id, transit.producer_epoch))
            }
        }
    }

    /// AddPartitionsToTxn (v0-v3, from the client): every partition must exist; then they join
    /// the transaction. Returns one result per partition, in order.
    pub(crate) async fn add_partitions_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Result<()>)> {
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(topic, partition)| self.partition_exists(topic, *partition).is_err())
            .collect();
        if unknown.iter().any(|u| *u) {
            // Kafka: the unknown ones fail, the others are not attempted.
            return partitions
                .iter()
                .zip(unknown)
                .map(|((topic, partition), unknown)| {
                    let error = if unknown {
                        Error::UnknownTopicOrPartition {
                            topic: topic.clone(),
                            partition: *partition,
                        }
                    } else {
                        Error::OperationNotAttempted
                    };
                    ((topic.clone(), *partition), Err(error))
                })
                .collect();
        }
        let set: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let result = self
            .add_to_transaction(transactional_id, producer_id, producer_epoch, &set, 0)
            .await;
        partitions
            .iter()
            .map(|tp| (tp.clone(), result.map_err(|e| refused(transactional_id, e))))
            .collect()
    }

    /// AddOffsetsToTxn: the group's offsets partition joins the transaction.
    pub(crate) async fn add_offsets_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<()> {
        let partition = self.offsets_partition_for(group_id);
        let set = BTreeSet::from([partition]);
        self.add_to_transaction(transactional_id, producer_id, producer_epoch, &set, 0)
            .await
            .map_err(|e| refused(transactional_id, e))
    }

    /// Adds partitions to the producer's transaction (written and durable before it returns).
    pub(crate) async fn add_to_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        transaction_version: i16,
    ) -> std::result::Result<(), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let decision = {
            let mut state = self.transactions.lock();
            if !state.is_active {
                return Err(TxnError::CoordinatorNotAvailable);
            }
            let meta = state
                .txns
                .get_mut(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            decide::add_partitions(
                meta,
                producer_id,
                producer_epoch,
                partitions,
                transaction_version,
                now_ms(),
            )?
        };
        match decision {
            AddDecision::Done => Ok(()),
            AddDecision::Write(transit) => self
                .write_and_complete(transactional_id, &transit)
                .await
                .map_err(|error| match error {
                    Error::Transaction { error, .. } => error,
                    _ => TxnError::CoordinatorNotAvailable,
                }),
        }
    }

    /// The KIP-890 check of a transactional produce: the partition is in the producer's ongoing
    /// transaction (`add` = transactions v2: add it if it is not).
    pub(crate) async fn verify_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
        add: bool,
    ) -> std::result::Result<(), TxnError> {
        match self.txn_coordinator(transactional_id) {
            super::CoordinatorAt::Here => {}
            super::CoordinatorAt::Broker { id, .. } => {
                let call = (
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partition,
                    add,
                );
                return self.verify_on(id, call).await;
            }
            super::CoordinatorAt::Unavailable | super::CoordinatorAt::Loading => {
                return Err(TxnError::CoordinatorNotAvailable);
            }
        }
        self.verify_transaction_here(
            transactional_id,
            producer_id,
            producer_epoch,
            partition,
            add,
        )
        .await
    }

    /// [`Broker::verify_transaction`] on the coordinator itself.
    pub(crate) async fn verify_transaction_here(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
        add: bool,
    ) -> std::result::Result<(), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        if add {
            let set = BTreeSet::from([partition.clone()]);
            return self
                .add_to_transaction(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &set,
                    TRANSACTIONS_V2,
                )
                .await;
        }
        let state = self.transactions.lock();
        if !state.is_active {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        let meta = state
            .txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        decide::verify(meta, producer_id, producer_epoch, partition)
    }

    /// DescribeTransactions: one transactional id's state.
    pub(crate) fn describe_transaction(&self, transactional_id: &str) -> Result<TxnDescription> {
        let fail = |error| refused(transactional_id, error);
        if transactional_id.is_empty() {
            return Err(fail(TxnError::InvalidRequest));
        }
        let state = self.txn_state(transactional_id)?;
        state
            .txns
            .get(transactional_id)
            .filter(|meta| meta.state != TxnState::Dead)
            .map(describe)
            .ok_or(fail(TxnError::TransactionalIdNotFound))
    }

    /// ListTransactions: every transactional id, filtered by state names, producer ids and
    /// (v1) a minimum running time; empty filters match all.
    pub(crate) fn list_transactions(
        &self,
        states: &[String],
        producer_ids: &[i64],
        duration_filter_ms: i64,
    ) -> Result<Vec<TxnDescription>> {
        let state = self.txn_state("")?;
        let now = now_ms();
        Ok(state
            .txns
            .values()
            .filter(|meta| meta.state != TxnState::Dead)
            .filter(|meta| states.is_empty() || states.iter().any(|s| s == meta.state.name()))
            .filter(|meta| producer_ids.is_empty() || producer_ids.contains(&meta.producer_id))
            .filter(|meta| duration_filter_ms < 0 || now - meta.start_ms > duration_filter_ms)
            .map(describe)
            .collect())
    }

    /// Writes a prepared transition and, once durable, applies it; a failed write drops it.
    async fn write_and_complete(&self, transactional_id: &str, transit: &TxnTransit) -> Result<()> {
        let written = self.write_transit(transactional_id, transit).await;
        let mut state = self.transactions.lock();
        let Some(meta) = state.txns.get_mut(transactional_id) else {
            return Err(refused(transactional_id, TxnError::CoordinatorNotAvailable));
        };
        if let Err(error) = written {
            meta.abandon_pending();
            tracing::warn!(transactional_id, %error, "writing a transaction state record failed");
            return Err(refused(transactional_id, TxnError::CoordinatorNotAvailable));
        }
        if transit.state == TxnState::Dead {
            state.txns.remove(transactional_id);
            return Ok(());
        }
        meta.complete_transition(transit)
            .map_err(|error| refused(transactional_id, error.into()))
    }

    /// Whether the transaction coordinator is loaded and serving (FindCoordinator).
    pub(crate) fn is_coordinating_transactions(&self) -> bool {
        self.transactions.lock().is_active
    }

    /// Stops coordinating: requests get COORDINATOR_NOT_AVAILABLE from now on.
    pub(crate) fn stop_transactions(&self) {
        self.transactions.lock().is_active = false;
    }
}

fn describe(meta: &TxnMetadata) -> TxnDescription {
    TxnDescription {
        transactional_id: meta.transactional_id.clone(),
        state: meta.state,
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        timeout_ms: meta.timeout_ms,
        start_ms: meta.start_ms,
        partitions: meta.partitions.clone(),
    }
}
