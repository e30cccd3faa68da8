//! Idempotent producers on the produce path: Kafka's sequence and epoch checks against the
//! partition's producer state (pure, in storage) run under the partition lock right before the
//! append, a retried batch is answered with its first append, and idle producers expire.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::error::{Error, Result};
use super::{Broker, LEADER_EPOCH, now_ms};
use crate::storage::{self, BatchHeader, ProducerError, Verdict};

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

/// Checks then appends each (validated) batch under the partition lock the caller holds. A
/// batch that repeats one of its producer's last five is not appended again: the answer is
/// where it was appended the first time (and nothing after it in the request is appended).
pub(super) fn append_batches(
    log: &mut storage::Log,
    batches: &mut [Vec<u8>],
    log_append_time_ms: i64,
    now: i64,
) -> std::result::Result<std::result::Result<Written, ProducerError>, storage::Error> {
    let mut base_offset = None;
    for batch in batches.iter_mut() {
        let header = BatchHeader::parse(batch)?;
        match log.producer_state().check(&header) {
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
    }
}

impl Broker {
    /// InitProducerId without a transactional id: a producer id never used before, epoch 0
    /// (Kafka answers so even when the client names its current id and epoch, KIP-360).
    pub(crate) fn init_idempotent_producer(&self) -> Result<(i64, i16)> {
        let producer_id = self.producer_ids.next()?;
        tracing::debug!(producer_id, "initialized an idempotent producer");
        Ok((producer_id, 0))
    }

    /// Forgets, on every partition, producers idle for `producer.id.expiration.ms`.
    fn expire_producers(&self, now: i64) {
        let expiration_ms = self.settings.producer_id_expiration_ms;
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
