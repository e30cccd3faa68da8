//! Transaction markers: the COMMIT or ABORT control batch ending a producer's transaction in each
//! of its partitions, appended through the normal append path behind one broker method (which a
//! cluster routes to each partition's leader), and the completion of a prepared transaction.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::decide;
use super::state::TxnState;
use super::{TxnError, refused};
use crate::broker::error::{Error, Result};
use crate::broker::idempotence;
use crate::broker::partition::Partition;
use crate::broker::produce::Refusal;
use crate::broker::topic_config::TimestampPolicy;
use crate::broker::{Acks, Broker, LEADER_EPOCH, PendingProduce, TopicPartition, now_ms};
use crate::storage;

/// The offsets topic: its markers go through the group coordinator.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A marker write in flight.
enum Waiting {
    Log(Box<PendingProduce>),
    Group(Pin<Box<dyn Future<Output = Result<()>> + Send>>),
}

/// Epoch of this node as transaction coordinator (the `__transaction_state` leader epoch).
pub(crate) const COORDINATOR_EPOCH: i32 = LEADER_EPOCH;

/// One marker write: whose transaction, its outcome, and who decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MarkerSpec {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) commit: bool,
    pub(crate) coordinator_epoch: i32,
    /// The transaction version the transaction ran with (v2 markers must bump the epoch).
    pub(crate) transaction_version: i16,
}

impl Broker {
    /// Writes `marker` to every partition and waits until each is durable; returns what failed.
    /// Partitions another broker leads get theirs through it (cluster RPC).
    pub(crate) async fn write_txn_markers(
        &self,
        partitions: &BTreeSet<TopicPartition>,
        marker: MarkerSpec,
    ) -> Vec<(TopicPartition, Error)> {
        let mut local = BTreeSet::new();
        let mut remote: std::collections::BTreeMap<i32, BTreeSet<TopicPartition>> =
            std::collections::BTreeMap::new();
        for tp in partitions {
            match self.remote_leader(&tp.0, tp.1) {
                Some(leader) => {
                    remote.entry(leader).or_default().insert(tp.clone());
                }
                None => {
                    local.insert(tp.clone());
                }
            }
        }
        let mut failed = self.write_txn_markers_here(&local, marker).await;
        for (leader, partitions) in remote {
            failed.extend(self.markers_on(leader, partitions, marker).await);
        }
        failed
    }

    /// [`Broker::write_txn_markers`] for partitions this broker holds.
    /// A partition that no longer exists needs no marker (its topic was deleted).
    pub(crate) async fn write_txn_markers_here(
        &self,
        partitions: &BTreeSet<TopicPartition>,
        marker: MarkerSpec,
    ) -> Vec<(TopicPartition, Error)> {
        let mut pending: Vec<(TopicPartition, Waiting)> = Vec::with_capacity(partitions.len());
        let mut failed = Vec::new();
        for (topic, partition) in partitions {
            let tp = (topic.clone(), *partition);
            if topic == OFFSETS_TOPIC {
                // The group coordinator applies it in log order with the offset commits.
                let write = self.write_offsets_marker(*partition, marker);
                pending.push((tp, Waiting::Group(Box::pin(write))));
                continue;
            }
            let appended = match self.partition(topic, *partition) {
                Ok((_, target)) if target.is_replicated() => {
                    self.append_marker_replicated(&target, marker).await
                }
                _ => self.append_marker(topic, *partition, marker),
            };
            match appended {
                Ok(write) => pending.push((tp, Waiting::Log(Box::new(write)))),
                Err(Error::UnknownTopicOrPartition { .. }) => {}
                Err(error) => failed.push((tp, error)),
            }
        }
        for (partition, write) in pending {
            let written = match write {
                Waiting::Log(write) => write.wait().await.map(|_| ()),
                Waiting::Group(write) => write.await,
            };
            match written {
                Ok(()) => {
                    tracing::trace!(topic = %partition.0, partition = partition.1, "marker written")
                }
                Err(error) => failed.push((partition, error)),
            }
        }
        failed
    }

    /// [`Broker::append_marker`] to a replicated partition: checked against the log and
    /// proposed to its raft group; durable once committed.
    async fn append_marker_replicated(
        &self,
        target: &Arc<Partition>,
        marker: MarkerSpec,
    ) -> Result<PendingProduce> {
        let log_append_time = self
            .topic_state(&target.topic)
            .is_some_and(|t| t.settings.timestamp_policy == TimestampPolicy::LogAppendTime);
        let batch = marker_batch(marker, log_append_time, now_ms());
        let prepare = move |log: &storage::Log| {
            check_marker(log, marker).map_err(Refusal::Producer)?;
            Ok(Bytes::from(batch))
        };
        self.propose_write(target, Acks::All, -1, prepare).await
    }

    /// Appends one marker (its epoch and coordinator epoch checked, as Kafka's leader does).
    pub(crate) fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: MarkerSpec,
    ) -> Result<PendingProduce> {
        let (state, target) = self.partition(topic, partition)?;
        let now = now_ms();
        let log_append_time = state.settings.timestamp_policy == TimestampPolicy::LogAppendTime;
        let mut batch = marker_batch(marker, log_append_time, now);
        if target.is_replicated() {
            // A replicated offsets partition: in order with the group coordinator's writes.
            return crate::broker::internal_writes::queue_write(
                &target,
                Box::new(move |log: &storage::Log| {
                    check_marker(log, marker).map_err(Refusal::Producer)?;
                    Ok(Bytes::from(batch))
                }),
            );
        }
        let appended = target
            .with_log(|log| {
                if let Err(refused) = check_marker(log, marker) {
                    return Ok(Err(refused));
                }
                let appended = log.append(&mut batch, LEADER_EPOCH, now)?;
                Ok(Ok((
                    appended.base_offset,
                    log.log_end_offset(),
                    log.log_start_offset(),
                )))
            })?
            .map_err(|source| idempotence::refused(topic, partition, source))?;
        target.request_flush();
        let (base_offset, end_offset, log_start_offset) = appended;
        Ok(PendingProduce::durable(
            target,
            base_offset,
            end_offset,
            log_start_offset,
        ))
    }

    /// Finishes a transaction whose PrepareCommit or PrepareAbort is durable: markers to every
    /// partition, then CompleteCommit or CompleteAbort. Returns the producer id and epoch the
    /// producer continues with.
    pub(super) async fn complete_transaction(&self, transactional_id: &str) -> Result<(i64, i16)> {
        let fail = |error| refused(transactional_id, error);
        let coordinator_epoch = self.coordinator_epoch(transactional_id);
        let (complete, partitions, marker) = {
            let mut state = self.transactions.lock();
            let meta = state
                .txns
                .get_mut(transactional_id)
                .ok_or(fail(TxnError::CoordinatorNotAvailable))?;
            let commit = meta.state == TxnState::PrepareCommit;
            let marker = MarkerSpec {
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                commit,
                coordinator_epoch,
                transaction_version: meta.client_transaction_version,
            };
            let partitions = meta.partitions.clone();
            let complete = decide::prepare_complete(
                meta,
                meta.producer_id,
                meta.producer_epoch,
                commit,
                meta.client_transaction_version,
                now_ms(),
            )
            .map_err(fail)?;
            (complete, partitions, marker)
        };
        let failed = self.write_txn_markers(&partitions, marker).await;
        if let Some((partition, error)) = failed.first() {
            tracing::warn!(transactional_id, topic = %partition.0, partition = partition.1, %error, failed = failed.len(), "writing transaction markers failed");
            if let Some(meta) = self.transactions.lock().txns.get_mut(transactional_id) {
                meta.abandon_pending();
            }
            return Err(fail(TxnError::CoordinatorNotAvailable));
        }
        self.write_and_complete(transactional_id, &complete).await?;
        tracing::debug!(
            transactional_id,
            commit = marker.commit,
            partitions = partitions.len(),
            "transaction completed"
        );
        Ok((complete.producer_id, complete.producer_epoch))
    }
}

/// Whether `log` takes `marker` (its epochs checked, as Kafka's leader does).
fn check_marker(
    log: &storage::Log,
    marker: MarkerSpec,
) -> std::result::Result<(), storage::ProducerError> {
    log.check_marker(
        marker.producer_id,
        marker.producer_epoch,
        marker.coordinator_epoch,
        marker.transaction_version,
    )
}

/// The control batch of `marker`, written at `now_ms` (stamped with it on a LogAppendTime topic).
fn marker_batch(marker: MarkerSpec, log_append_time: bool, now_ms: i64) -> Vec<u8> {
    let mut batch = storage::build_marker(
        marker.commit,
        marker.coordinator_epoch,
        marker.producer_id,
        marker.producer_epoch,
        now_ms,
    );
    if log_append_time {
        storage::stamp_log_append_time(&mut batch, now_ms);
    }
    batch
}
