//! Idempotent producers on the produce path: Kafka's sequence and epoch checks against the
//! partition's producer state (pure, in storage) run under the partition lock right before the
//! append, a retried batch is answered with its first append, and idle producers expire.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::error::{Error, Result};
use super::{Acks, Broker, LEADER_EPOCH, PendingProduce, TxnError, now_ms};
use crate::storage::{self, BatchHeader, Origin, ProducerError, Verdict};

/// How often idle producers are looked for (Kafka's `producer.id.expiration.check.interval.ms`).
const EXPIRATION_CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// What appending one request's batches to a partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub(super) base_offset: i64,
    /// Every offset below this must be durable before the producer is answered.
    pub(super) end_offset: i64,
    pub(super) log_start_offset: i64,
    /// Set when the batch was a retry: the stored batch's max timestamp, which Kafka reports
    /// as the log append time of a duplicate.
    pub(super) duplicate_timestamp: Option<i64>,
}

/// Who appends and, for a transactional batch, the guard of its verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checks {
    pub(super) origin: Origin,
    pub(super) guard: Option<u64>,
}

impl Checks {
    pub(super) const CLIENT: Checks = Checks {
        origin: Origin::Client,
        guard: None,
    };
}

/// Checks then appends each (validated) batch under the partition lock the caller holds. A
/// batch that repeats one of its producer's last five is not appended again: the answer is
/// where it was appended the first time (and nothing after it in the request is appended).
pub(super) fn append_batches(
    log: &mut storage::Log,
    batches: &mut [Vec<u8>],
    checks: Checks,
    log_append_time_ms: i64,
    now: i64,
) -> std::result::Result<std::result::Result<Written, ProducerError>, storage::Error> {
    let Checks { origin, guard } = checks;
    let mut base_offset = None;
    for batch in batches.iter_mut() {
        let header = BatchHeader::parse(batch)?;
        match log.check_batch(&header, origin, guard) {
            Ok(Verdict::Append) => {}
            Ok(Verdict::Duplicate(first)) => {
                tracing::debug!(
                    producer_id = header.producer_id,
                    sequence = header.base_sequence,
                    base_offset = first.first_offset,
                    "duplicate batch answered with its first append"
                );
                return Ok(Ok(Written {
                    base_offset: first.first_offset,
                    end_offset: first.last_offset + 1,
                    log_start_offset: log.log_start_offset(),
                    duplicate_timestamp: Some(first.timestamp),
                }));
            }
            Err(refused) => return Ok(Err(refused)),
        }
        if log_append_time_ms >= 0 {
            storage::stamp_log_append_time(batch, log_append_time_ms);
        }
        let appended = log.append(batch, LEADER_EPOCH, now)?;
        base_offset.get_or_insert(appended.base_offset);
    }
    Ok(Ok(Written {
        base_offset: base_offset.unwrap_or_else(|| log.log_end_offset()),
        end_offset: log.log_end_offset(),
        log_start_offset: log.log_start_offset(),
        duplicate_timestamp: None,
    }))
}

/// The broker error a refused producer batch is reported as.
pub(super) fn refused(topic: &str, partition: i32, source: ProducerError) -> Error {
    let topic = topic.to_owned();
    match source {
        ProducerError::OutOfOrderSequence { .. } => Error::OutOfOrderSequence {
            topic,
            partition,
            source,
        },
        ProducerError::InvalidProducerEpoch { .. } => Error::InvalidProducerEpoch {
            topic,
            partition,
            source,
        },
        ProducerError::InvalidTxnState { .. } => Error::InvalidTxnState {
            topic,
            partition,
            source,
        },
        ProducerError::CoordinatorFenced { .. } => Error::TransactionCoordinatorFenced {
            topic,
            partition,
            source,
        },
    }
}

/// The first Produce version of transactions v2: a transactional produce adds its partition
/// to the transaction itself (KIP-890 part 2).
const TRANSACTIONS_V2_PRODUCE_VERSION: i16 = 12;
/// The first Produce version whose clients understand TRANSACTION_ABORTABLE (KIP-890 part 1).
const TRANSACTION_ABORTABLE_PRODUCE_VERSION: i16 = 11;

/// What DescribeProducers shows of one producer of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerDescription {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) last_sequence: i32,
    pub(crate) last_timestamp: i64,
    pub(crate) coordinator_epoch: i32,
    /// First offset of the producer's open transaction here, -1 when none.
    pub(crate) current_txn_start_offset: i64,
}

impl Broker {
    /// DescribeProducers: the producers with state in one partition.
    pub(crate) fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>> {
        let (_, target) = self.partition(topic, partition)?;
        target.read_log(|log| {
            Ok(log
                .producer_state()
                .producers()
                .map(|(producer_id, entry)| ProducerDescription {
                    producer_id,
                    producer_epoch: entry.epoch,
                    last_sequence: entry.last_seq(),
                    last_timestamp: entry.last_timestamp,
                    coordinator_epoch: entry.coordinator_epoch,
                    current_txn_start_offset: entry.current_txn_first_offset.unwrap_or(-1),
                })
                .collect())
        })
    }

    /// A client's produce to one partition with a transactional id: a transactional batch of a
    /// producer without an open transaction here is verified with the coordinator first (under
    /// transactions v2 the partition is added), and appended only if no marker came in between
    /// (KIP-890). Other batches take the plain path.
    pub(crate) async fn append_transactional(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
        transactional_id: &str,
        produce_version: i16,
    ) -> Result<PendingProduce> {
        let header = BatchHeader::parse(&records).ok();
        let Some(header) = header.filter(|h| h.is_transactional() && h.producer_id >= 0) else {
            return self
                .append_off_worker(topic, partition, records, acks)
                .await;
        };
        if super::topic_name::is_internal(topic) {
            return Err(Error::InternalTopic {
                topic: topic.to_owned(),
            });
        }
        let (state, target) = self.partition(topic, partition)?;
        let supports_epoch_bump = produce_version >= TRANSACTIONS_V2_PRODUCE_VERSION;
        let guard = target.with_leader_state(|log| {
            Ok(log.start_transaction_verification(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                supports_epoch_bump,
                now_ms(),
            ))
        })?;
        if guard.is_some() {
            let tp = (topic.to_owned(), partition);
            self.verify_transaction(
                transactional_id,
                header.producer_id,
                header.producer_epoch,
                &tp,
                supports_epoch_bump,
            )
            .await
            .map_err(|error| Error::Transaction {
                transactional_id: transactional_id.to_owned(),
                error: verification_error(error, produce_version),
            })?;
        }
        let checks = Checks {
            origin: Origin::Client,
            guard,
        };
        let broker = Arc::clone(self);
        if target.is_replicated() {
            let settings = state.settings.clone();
            let (batches, log_append_time_ms, _) =
                super::produce::off_worker(move || broker.validated(&settings, &records)).await?;
            return self
                .append_replicated(&target, &state, batches, (log_append_time_ms, acks), checks)
                .await;
        }
        let topic = topic.to_owned();
        super::produce::off_worker(move || {
            broker.append_checked(&topic, partition, records, acks, checks)
        })
        .await
    }

    /// InitProducerId without a transactional id: a producer id never used before, epoch 0
    /// (Kafka answers so even when the client names its current id and epoch, KIP-360).
    pub(crate) fn init_idempotent_producer(&self) -> Result<(i64, i16)> {
        let producer_id = self.producer_ids.next()?;
        tracing::debug!(producer_id, "initialized an idempotent producer");
        Ok((producer_id, 0))
    }

    /// Forgets, on every partition, producers idle for `producer.id.expiration.ms`.
    fn expire_producers(&self, now: i64) {
        let expiration_ms = self.settings.transactions.producer_id_expiration_ms;
        let topics: Vec<_> = self.topics_read().values().cloned().collect();
        for topic in topics {
            for partition in &topic.partitions {
                let removed =
                    partition.with_log(|log| Ok(log.remove_expired_producers(now, expiration_ms)));
                if let Ok(removed @ 1..) = removed {
                    tracing::debug!(topic = %topic.name, partition = partition.index, removed, "expired idle producers");
                }
            }
        }
    }
}

/// What a failed verification is answered with (Kafka's AddPartitionsToTxnManager): a fenced
/// producer gets INVALID_PRODUCER_EPOCH, and clients older than Produce v11 get INVALID_TXN_STATE
/// instead of TRANSACTION_ABORTABLE.
fn verification_error(error: TxnError, produce_version: i16) -> TxnError {
    match error {
        TxnError::ProducerFenced => TxnError::InvalidProducerEpoch,
        TxnError::TransactionAbortable
            if produce_version < TRANSACTION_ABORTABLE_PRODUCE_VERSION =>
        {
            TxnError::InvalidTxnState
        }
        other => other,
    }
}

/// Starts the producer-expiry task; it holds only a weak reference to the broker.
pub(super) fn spawn_expiry(broker: &Arc<Broker>) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let mut shutdown = broker.shutdown.subscribe();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EXPIRATION_CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticker.tick() => {}
            }
            let Some(broker) = weak.upgrade() else {
                return;
            };
            broker.expire_producers(now_ms());
        }
    });
}
