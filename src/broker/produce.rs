//! The produce path: validate the client's batches, stamp them, append them in call order, then
//! wait for the durability the acks level asks for.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::{Error, Result};
use super::partition::Partition;
use super::topic_config::TimestampPolicy;
use super::{Broker, idempotence, now_ms, validate};
use crate::replication::partition::{Proposal, ProposeError};
use crate::storage::{self, BatchHeader, BatchMeta, ProducerError, Verdict};

/// Why a replicated partition's check refused to propose a batch.
#[derive(Debug)]
pub(super) enum Refusal {
    /// A retry of one of the producer's last batches: answered with where it went first.
    Duplicate(Retried),
    Producer(ProducerError),
    Storage(storage::Error),
}

/// A batch a producer sent again, found in a replicated partition's log: where it went first
/// and who wrote it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retried {
    first: BatchMeta,
    producer_id: i64,
    producer_epoch: i16,
}

impl Retried {
    pub(super) fn of(header: &BatchHeader, first: BatchMeta) -> Retried {
        Retried {
            first,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
        }
    }

    /// Whether `stored` (the log's batch at the first append's offset) is that batch.
    fn is(&self, stored: &BatchHeader) -> bool {
        stored.producer_id == self.producer_id
            && stored.producer_epoch == self.producer_epoch
            && stored.base_sequence == self.first.first_seq
    }
}

/// How much durability a producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acks {
    /// No response at all.
    None,
    /// The leader wrote it (fsynced too if `acks_one_waits_for_fsync`).
    Leader,
    /// Every in-sync replica fsynced it.
    All,
}

impl Acks {
    /// Kafka's wire value: 0, 1 or -1.
    pub(crate) fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// The result of a successful append, as the produce response reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProduceOutcome {
    pub(crate) base_offset: i64,
    /// The stamped time for LogAppendTime topics, -1 for CreateTime.
    pub(crate) log_append_time_ms: i64,
    pub(crate) log_start_offset: i64,
}

/// An append that happened; `wait` resolves once it is as durable as its acks asked.
#[derive(Debug)]
pub(crate) struct PendingProduce {
    partition: Arc<Partition>,
    outcome: ProduceOutcome,
    end_offset: i64,
    wait_for_durable: bool,
    /// A replicated partition's batch: durable once its raft group committed it.
    proposal: Option<Proposal>,
    /// A replicated partition's retried batch: durable once the high watermark passed it,
    /// if the log still holds it there then.
    retried: Option<Retried>,
    /// A coordinator's write queued for a replicated internal partition: the append it becomes
    /// once proposed (see `internal_writes.rs`).
    queued: Option<oneshot::Receiver<Result<PendingProduce>>>,
}

impl PendingProduce {
    /// A coordinator's write (a marker): wait until everything below `end_offset` is durable.
    pub(crate) fn durable(
        partition: Arc<Partition>,
        base_offset: i64,
        end_offset: i64,
        log_start_offset: i64,
    ) -> PendingProduce {
        PendingProduce {
            partition,
            outcome: ProduceOutcome {
                base_offset,
                log_append_time_ms: -1,
                log_start_offset,
            },
            end_offset,
            wait_for_durable: true,
            proposal: None,
            retried: None,
            queued: None,
        }
    }

    /// A write queued for `partition`'s internal writer; `appended` gives the append it became.
    pub(super) fn queued(
        partition: Arc<Partition>,
        appended: oneshot::Receiver<Result<PendingProduce>>,
    ) -> PendingProduce {
        let mut pending = PendingProduce::durable(partition, -1, -1, -1);
        pending.queued = Some(appended);
        pending
    }

    pub(crate) async fn wait(mut self) -> Result<ProduceOutcome> {
        if let Some(appended) = self.queued.take() {
            let partition = Arc::clone(&self.partition);
            let appended = appended.await.map_err(|_| Error::Cluster {
                reason: format!(
                    "{}-{}: the partition's writer stopped",
                    partition.topic, partition.index
                ),
            })??;
            return appended.wait_appended().await;
        }
        self.wait_appended().await
    }

    /// [`PendingProduce::wait`] for an append that happened.
    async fn wait_appended(self) -> Result<ProduceOutcome> {
        if !self.wait_for_durable {
            return Ok(self.outcome);
        }
        if let Some(retried) = self.retried {
            self.wait_retried(retried).await?;
            return Ok(self.outcome);
        }
        let Some(proposal) = self.proposal else {
            self.partition.wait_for_durable(self.end_offset).await?;
            return Ok(self.outcome);
        };
        let partition = &self.partition;
        let committed = proposal
            .committed()
            .await
            .map_err(|error| proposal_failed(&partition.topic, partition.index, error))?;
        Ok(ProduceOutcome {
            base_offset: committed.base_offset,
            ..self.outcome
        })
    }

    /// Waits (at most the commit timeout) until the high watermark passes a retried batch
    /// found in a replicated partition's log, then checks the log still holds it there: the
    /// copy found may have been an uncommitted one of an earlier leader, cut since by a new
    /// leader whose own batches now fill those offsets (the retry is then answered
    /// NOT_LEADER_OR_FOLLOWER and goes to the leader again, never acknowledged unwritten).
    async fn wait_retried(&self, retried: Retried) -> Result<()> {
        let partition = &self.partition;
        let not_leader = |leader| not_leader(&partition.topic, partition.index, leader);
        let Some(group) = partition.raft() else {
            return Err(not_leader(None));
        };
        let timeout = group.commit_timeout();
        tokio::time::timeout(timeout, partition.wait_for_durable(self.end_offset))
            .await
            .map_err(|_| Error::Cluster {
                reason: format!(
                    "{}-{}: a retried batch not committed within {timeout:?}",
                    partition.topic, partition.index
                ),
            })??;
        let stored = partition.read_log(|log| log.batch_header_at(retried.first.first_offset))?;
        if stored.is_some_and(|stored| retried.is(&stored)) {
            return Ok(());
        }
        tracing::debug!(topic = %partition.topic, partition = partition.index, producer_id = retried.producer_id, sequence = retried.first.first_seq, "a retried batch's first append was cut from the log");
        Err(not_leader(group.leadership().leader))
    }
}

/// A proposal raft did not take: NOT_LEADER_OR_FOLLOWER with the leader raft knows of, or
/// REQUEST_TIMED_OUT for anything else (a timeout, raft stopping).
pub(super) fn proposal_failed<R>(topic: &str, partition: i32, error: ProposeError<R>) -> Error
where
    ProposeError<R>: std::fmt::Display,
{
    match error {
        ProposeError::NotLeader { leader } => not_leader(topic, partition, leader),
        other => Error::Cluster {
            reason: format!("{topic}-{partition}: {other}"),
        },
    }
}

/// NOT_LEADER_OR_FOLLOWER naming the leader raft knows of, if any.
fn not_leader(topic: &str, partition: i32, leader: Option<u64>) -> Error {
    Error::NotLeader {
        topic: topic.to_owned(),
        partition,
        leader: leader.and_then(|l| i32::try_from(l).ok()),
    }
}

/// Runs blocking storage work (file writes, a segment roll's fsync, under a partition lock) on
/// the blocking pool, so a slow disk holds up only the partition it serves and never an async
/// worker. A panic in `work` resumes in the caller, as if it had run inline.
pub(super) async fn off_worker<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) if join_error.is_panic() => {
            std::panic::resume_unwind(join_error.into_panic())
        }
        // Cancelled: only when the runtime shuts down, so nothing waits for the answer.
        Err(_) => Err(Error::OperationNotAttempted),
    }
}

impl Broker {
    /// [`Broker::append`] on the blocking pool (see [`off_worker`]): what the produce
    /// handler calls.
    #[tracing::instrument(name = "append", skip_all, fields(topic = %topic, partition = partition))]
    pub(crate) async fn append_off_worker(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
    ) -> Result<PendingProduce> {
        if super::topic_name::is_internal(topic) {
            return Err(Error::InternalTopic {
                topic: topic.to_owned(),
            });
        }
        let broker = Arc::clone(self);
        let (state, target) = self.partition(topic, partition)?;
        let bytes = records.len() as u64;
        let appended = if target.is_replicated() {
            let settings = state.settings.clone();
            let (batches, log_append_time_ms, _) =
                off_worker(move || broker.validated(&settings, &records)).await?;
            self.append_replicated(
                &target,
                &state,
                batches,
                (log_append_time_ms, acks),
                idempotence::Checks::CLIENT,
            )
            .await
        } else {
            off_worker(move || {
                broker.append_to(&state, target, records, acks, idempotence::Checks::CLIENT)
            })
            .await
        };
        if appended.is_ok() {
            crate::telemetry::metrics::bytes_in(topic, bytes);
        }
        appended
    }

    /// A replicated partition's append: the batch is checked against the log and proposed to
    /// the partition's raft group (acks=1 is answered once it is in this leader's log, acks=all
    /// once committed on a majority).
    pub(super) async fn append_replicated(
        &self,
        target: &Arc<Partition>,
        state: &Arc<super::Topic>,
        batches: Vec<Vec<u8>>,
        (log_append_time_ms, acks): (i64, Acks),
        checks: idempotence::Checks,
    ) -> Result<PendingProduce> {
        if acks == Acks::All
            && let Some(group) = target.raft()
            && state.settings.min_insync_replicas > group.voter_count()
        {
            return Err(Error::NotEnoughReplicas {
                min_insync_replicas: state.settings.min_insync_replicas,
            });
        }
        let [mut batch] = <[Vec<u8>; 1]>::try_from(batches).map_err(|_| Error::InvalidRecord {
            reason: "a produce request to a replicated partition carries one batch per partition"
                .to_owned(),
        })?;
        let prepare = move |log: &storage::Log| {
            let header = BatchHeader::parse(&batch).map_err(Refusal::Storage)?;
            match log.check_batch(&header, checks.origin, checks.guard) {
                Ok(Verdict::Append) => {}
                Ok(Verdict::Duplicate(first)) => {
                    return Err(Refusal::Duplicate(Retried::of(&header, first)));
                }
                Err(refused) => return Err(Refusal::Producer(refused)),
            }
            if log_append_time_ms >= 0 {
                storage::stamp_log_append_time(&mut batch, log_append_time_ms);
            }
            Ok(Bytes::from(std::mem::take(&mut batch)))
        };
        self.propose_write(target, acks, log_append_time_ms, prepare)
            .await
    }

    /// Proposes the batch `prepare` makes (or refuses) from a look at a replicated partition's
    /// log; what the producer then waits for.
    pub(super) async fn propose_write(
        &self,
        target: &Arc<Partition>,
        acks: Acks,
        log_append_time_ms: i64,
        prepare: impl FnOnce(&storage::Log) -> std::result::Result<Bytes, Refusal>,
    ) -> Result<PendingProduce> {
        let (topic, partition) = (target.topic.as_str(), target.index);
        let Some(group) = target.raft() else {
            return Err(not_leader(topic, partition, None));
        };
        let submitted = group.submit(prepare).await;
        let log_start_offset = target.read_log(|log| Ok(log.log_start_offset()))?;
        let proposal = match submitted {
            Ok(proposal) => proposal,
            Err(ProposeError::Refused(Refusal::Duplicate(retried))) => {
                // A retry: answered with the first append once that is committed.
                let first = retried.first;
                return Ok(PendingProduce {
                    partition: Arc::clone(target),
                    outcome: ProduceOutcome {
                        base_offset: first.first_offset,
                        log_append_time_ms: first.timestamp,
                        log_start_offset,
                    },
                    end_offset: first.last_offset + 1,
                    wait_for_durable: acks != Acks::None,
                    proposal: None,
                    retried: Some(retried),
                    queued: None,
                });
            }
            Err(ProposeError::Refused(Refusal::Producer(refused))) => {
                return Err(idempotence::refused(topic, partition, refused));
            }
            Err(ProposeError::Refused(Refusal::Storage(source))) => {
                return Err(target.storage_error(source));
            }
            Err(other) => return Err(proposal_failed(topic, partition, other)),
        };
        let appended = proposal.appended();
        let (base_offset, end_offset) = appended.unwrap_or((-1, -1));
        Ok(PendingProduce {
            partition: Arc::clone(target),
            outcome: ProduceOutcome {
                base_offset,
                log_append_time_ms,
                log_start_offset,
            },
            end_offset,
            // acks=1 is answered at the leader's append when its offsets are known.
            wait_for_durable: acks == Acks::All || appended.is_none(),
            proposal: Some(proposal),
            retried: None,
            queued: None,
        })
    }

    /// Validates a produce request's batches by the topic's settings and applies Kafka's
    /// rewrites: the batches to append, the LogAppendTime to stamp (-1 for CreateTime) and now.
    pub(super) fn validated(
        &self,
        settings: &super::TopicSettings,
        records: &Bytes,
    ) -> Result<(Vec<Vec<u8>>, i64, i64)> {
        let rules = validate::Rules {
            message_bytes_max: settings.message_bytes_max,
            segment_bytes_max: settings.log.segment_bytes_max,
            require_keys: settings.log.compaction.is_some(),
            codec: settings.codec,
        };
        let checked = validate::batches(records, &rules)?;
        let now = now_ms();
        let log_append_time_ms = match settings.timestamp_policy {
            TimestampPolicy::LogAppendTime => now,
            TimestampPolicy::CreateTime => -1,
        };
        let batches = checked
            .into_iter()
            .map(|c| match c.rewritten {
                Some(bytes) => bytes,
                None => records.get(c.range).unwrap_or_default().to_vec(),
            })
            .collect();
        Ok((batches, log_append_time_ms, now))
    }

    /// Validates and appends every batch of `records` to the partition, synchronously and in
    /// call order. Nothing is appended if any batch is invalid. Internal topics are refused.
    /// (Tests append through it; the produce handler through [`Broker::append_off_worker`].)
    #[cfg(test)]
    pub(crate) fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
    ) -> Result<PendingProduce> {
        if super::topic_name::is_internal(topic) {
            return Err(Error::InternalTopic {
                topic: topic.to_owned(),
            });
        }
        self.append_internal(topic, partition, records, acks)
    }

    /// `append` without the internal-topic check: the group coordinator's write path.
    pub(crate) fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
    ) -> Result<PendingProduce> {
        self.append_checked(topic, partition, records, acks, idempotence::Checks::CLIENT)
    }

    /// `append_internal` with the producer checks to run (origin, transaction verification).
    pub(super) fn append_checked(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
        checks: idempotence::Checks,
    ) -> Result<PendingProduce> {
        let (state, target) = self.partition(topic, partition)?;
        if target.is_replicated() {
            return self.queue_internal_batch(&target, records, checks);
        }
        self.append_to(&state, target, records, acks, checks)
    }

    /// [`Broker::append_checked`] to a partition already looked up.
    fn append_to(
        &self,
        state: &super::Topic,
        target: Arc<Partition>,
        records: Bytes,
        acks: Acks,
        checks: idempotence::Checks,
    ) -> Result<PendingProduce> {
        let (topic, partition) = (target.topic.as_str(), target.index);
        let settings = &state.settings;
        if acks == Acks::All && settings.min_insync_replicas > 1 {
            return Err(Error::NotEnoughReplicas {
                min_insync_replicas: settings.min_insync_replicas,
            });
        }
        let (mut batches, log_append_time_ms, now) = self.validated(settings, &records)?;
        // A roll fsyncs the segment it closes: do that here, outside the partition lock, so
        // reads and flushes of the partition go on meanwhile (the roll then has nothing left
        // to fsync unless appends raced in).
        if let Some(first) = batches.first() {
            target.sync_before_roll(first.len() as u64, now)?;
        }
        let written = target
            .with_log(|log| {
                idempotence::append_batches(log, &mut batches, checks, log_append_time_ms, now)
            })?
            .map_err(|source| idempotence::refused(topic, partition, source))?;
        target.request_flush();
        let wait_for_durable = match acks {
            Acks::All => true,
            Acks::Leader => self.settings.acks_one_waits_for_fsync,
            Acks::None => false,
        };
        Ok(PendingProduce {
            partition: target,
            outcome: ProduceOutcome {
                base_offset: written.base_offset,
                log_append_time_ms: written.duplicate_timestamp.unwrap_or(log_append_time_ms),
                log_start_offset: written.log_start_offset,
            },
            end_offset: written.end_offset,
            wait_for_durable,
            proposal: None,
            retried: None,
            queued: None,
        })
    }
}

#[cfg(test)]
#[path = "produce_retried_tests.rs"]
mod retried_tests;
