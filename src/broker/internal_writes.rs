//! The coordinators' writes to a replicated internal partition (`__consumer_offsets`,
//! `__transaction_state`). The coordinators append under their own locks and need their writes
//! in the log in the order they queued them (the group journal applies effects in that order);
//! a raft proposal is asynchronous, so each such partition has one bounded queue and one task
//! that proposes its writes one after the other, each once the one before is in the log.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::error::{Error, Result};
use super::partition::Partition;
use super::produce::{Refusal, Retried};
use super::{Acks, Broker, PendingProduce, idempotence};
use crate::limits::INTERNAL_WRITES_QUEUED_MAX;
use crate::storage::{self, BatchHeader, Verdict};

/// Checks a write against the log (under raft's proposal lock) and gives the batch to propose.
pub(super) type Prepare =
    Box<dyn FnOnce(&storage::Log) -> std::result::Result<Bytes, Refusal> + Send>;

/// One queued write and who waits for it to be in the log.
pub(crate) struct QueuedWrite {
    prepare: Prepare,
    appended: oneshot::Sender<Result<PendingProduce>>,
}

impl std::fmt::Debug for QueuedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueuedWrite")
    }
}

impl Broker {
    /// Starts the writer of replicated internal partition `target`.
    pub(super) fn start_internal_writes(self: &Arc<Self>, target: &Arc<Partition>) {
        let (queue, writes) = mpsc::channel(INTERNAL_WRITES_QUEUED_MAX);
        target.attach_internal_writes(queue);
        tokio::spawn(write_in_order(
            Arc::downgrade(self),
            Arc::clone(target),
            writes,
        ));
    }

    /// Queues a coordinator batch for replicated internal partition `target`, checked like a
    /// client's (`checks`) when it is proposed; the answer resolves once it is committed.
    pub(super) fn queue_internal_batch(
        &self,
        target: &Arc<Partition>,
        batch: Bytes,
        checks: idempotence::Checks,
    ) -> Result<PendingProduce> {
        let prepare = move |log: &storage::Log| {
            let header = BatchHeader::parse(&batch).map_err(Refusal::Storage)?;
            match log.check_batch(&header, checks.origin, checks.guard) {
                Ok(Verdict::Append) => Ok(batch),
                Ok(Verdict::Duplicate(first)) => {
                    Err(Refusal::Duplicate(Retried::of(&header, first)))
                }
                Err(refused) => Err(Refusal::Producer(refused)),
            }
        };
        queue_write(target, Box::new(prepare))
    }
}

/// Queues `prepare` on `target`'s writer; COORDINATOR_NOT_AVAILABLE when the queue is full.
pub(super) fn queue_write(target: &Arc<Partition>, prepare: Prepare) -> Result<PendingProduce> {
    let unavailable = || Error::CoordinatorNotAvailable {
        group: format!("{}-{}", target.topic, target.index),
    };
    let queue = target.internal_writes().ok_or_else(unavailable)?;
    let (appended, answer) = oneshot::channel();
    queue
        .try_send(QueuedWrite { prepare, appended })
        .map_err(|_| unavailable())?;
    Ok(PendingProduce::queued(Arc::clone(target), answer))
}

/// The writer task: proposes each queued write once the one before is in the log, until the
/// broker or the queue is gone.
async fn write_in_order(
    broker: Weak<Broker>,
    target: Arc<Partition>,
    mut writes: mpsc::Receiver<QueuedWrite>,
) {
    while let Some(write) = writes.recv().await {
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let appended = broker
            .propose_write(&target, Acks::All, -1, write.prepare)
            .await;
        let _ = write.appended.send(appended);
    }
}
