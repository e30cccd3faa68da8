//! Idempotent and transactional producer state of one partition, Kafka's ProducerStateManager:
//! per producer id its epoch, last five batches and open transaction, plus the partition's open
//! transactions. A pure function of the log: [`ProducerState::apply`] is its only writer and runs
//! on every appended or replayed batch; [`ProducerState::check`] is the produce-side rule set
//! (sequence, epoch, transaction) over (state, batch header) and never changes anything.

mod entry;
pub(crate) mod marker;
pub(crate) mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub(crate) use entry::{BatchMeta, NO_EPOCH, ProducerEntry};
pub(crate) use marker::{Control, Marker};

use super::batch::BatchHeader;
use entry::{in_sequence, last_sequence};

/// Who is appending: a client's batches get every check; the coordinators' own (transactional
/// offset commits) carry no meaningful sequence, so only their epoch is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Client,
    Coordinator,
}

/// A transaction verification in progress for one producer (Kafka's VerificationStateEntry):
/// created before asking the coordinator whether the partition is in the producer's transaction,
/// cleared by the producer's next transactional batch or marker. An append carrying a guard that
/// is no longer here (a marker came in between) is refused, so a late write never lands after
/// its transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verification {
    pub(crate) guard: u64,
    /// The lowest sequence seen while verifying: a higher one may not overtake it.
    pub(crate) lowest_sequence: i32,
    pub(crate) epoch: i16,
    /// Transactions v2 (KIP-890): a producer without state here must start at sequence 0.
    pub(crate) supports_epoch_bump: bool,
    pub(crate) started_ms: i64,
}

impl Verification {
    /// Kafka's `maybeUpdateLowestSequenceAndEpoch`.
    pub(crate) fn observe(&mut self, sequence: i32, epoch: i16) {
        if epoch == self.epoch && sequence < self.lowest_sequence {
            self.lowest_sequence = sequence;
        }
        if epoch > self.epoch {
            self.epoch = epoch;
            self.lowest_sequence = sequence;
        }
    }
}

/// A produce batch that passed [`ProducerState::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it.
    Append,
    /// A retry of a batch that is already in the log: answer with this, append nothing.
    Duplicate(BatchMeta),
}

/// Why a producer's batch is refused; each maps to one Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "out of order sequence for producer {producer_id} at epoch {epoch}: {sequence} does not follow {last_sequence}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        last_sequence: i32,
    },
    #[error("producer {producer_id}: {reason}")]
    InvalidTxnState {
        producer_id: i64,
        reason: &'static str,
    },
    #[error(
        "marker of producer {producer_id} from coordinator epoch {coordinator_epoch} is older than {current}"
    )]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
}

/// A transaction whose marker was just applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// Offset of the marker.
    pub(crate) last_offset: i64,
    pub(crate) is_aborted: bool,
    /// Where the last stable offset stands once this transaction is done: the first offset of
    /// the next open transaction, or the offset after the marker (Kafka's `.txnindex` field).
    pub(crate) last_stable_offset: i64,
}

/// The producer and transaction state of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerState {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Completed transactions whose marker may not be below the high watermark yet:
    /// first offset -> marker offset. They keep the last stable offset until it is.
    completing: BTreeMap<i64, i64>,
    /// The offset after the last applied batch.
    end_offset: i64,
}

impl ProducerState {
    /// An empty state for a log whose next offset is `end_offset`.
    pub(crate) fn new(end_offset: i64) -> ProducerState {
        ProducerState {
            end_offset,
            ..ProducerState::default()
        }
    }

    /// The offset after the last applied batch.
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub(crate) fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer with state here, by id.
    pub(crate) fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> + '_ {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// The batch a client's retry repeats, if it is one of the producer's last five.
    pub(crate) fn duplicate_of(&self, header: &BatchHeader) -> Option<BatchMeta> {
        let entry = self.producers.get(&header.producer_id)?;
        let last_seq = last_sequence(header.base_sequence, header.last_offset_delta);
        entry.find_duplicate(header.producer_epoch, header.base_sequence, last_seq)
    }

    /// Whether `producer_id` has an open transaction in this partition.
    pub(crate) fn has_ongoing_transaction(&self, producer_id: i64) -> bool {
        self.entry(producer_id)
            .is_some_and(|entry| entry.current_txn_first_offset.is_some())
    }

    /// Whether `producer_id` has an open transaction here at `epoch` (no verification needed).
    pub(crate) fn has_ongoing_transaction_at(&self, producer_id: i64, epoch: i16) -> bool {
        self.entry(producer_id)
            .is_some_and(|entry| entry.current_txn_first_offset.is_some() && entry.epoch == epoch)
    }

    /// The first offset a read_committed reader may not pass yet, if any transaction holds it.
    pub(crate) fn first_unstable_offset(&self, high_watermark: i64) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let completing = self
            .completing
            .iter()
            .find(|(_, marker_offset)| **marker_offset >= high_watermark)
            .map(|(first_offset, _)| *first_offset);
        match (ongoing, completing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets completed transactions whose marker is below `high_watermark`.
    pub(crate) fn on_high_watermark(&mut self, high_watermark: i64) {
        self.completing
            .retain(|_, marker_offset| *marker_offset >= high_watermark);
    }

    /// Kafka's produce-side rules for a batch, in Kafka's order: a client's retry of one of the
    /// last five batches is a duplicate; an older epoch is fenced; a client's sequence must
    /// follow the last one (or start at 0 with a new epoch; anything goes while the producer is
    /// unknown, unless transactions v2 verified it); a producer with an open transaction may only
    /// write transactionally. `verification` is the producer's verification in progress, if any.
    pub(crate) fn check(
        &self,
        header: &BatchHeader,
        origin: Origin,
        verification: Option<&Verification>,
    ) -> Result<Verdict, ProducerError> {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return Ok(Verdict::Append);
        }
        let epoch = header.producer_epoch;
        let sequence = header.base_sequence;
        let empty = ProducerEntry::default();
        let current = self.producers.get(&producer_id).unwrap_or(&empty);
        let last_seq = last_sequence(sequence, header.last_offset_delta);
        if origin == Origin::Client
            && let Some(duplicate) = current.find_duplicate(epoch, sequence, last_seq)
        {
            return Ok(Verdict::Duplicate(duplicate));
        }
        if epoch < current.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: current.epoch,
            });
        }
        if origin == Origin::Client {
            check_sequence(current, header, verification)?;
        }
        if current.current_txn_first_offset.is_some() && !header.is_transactional() {
            return Err(ProducerError::InvalidTxnState {
                producer_id,
                reason: "a non-transactional write while its transaction is open",
            });
        }
        Ok(Verdict::Append)
    }

    /// Kafka's checks of a transaction marker before it is appended: its epoch may not be older
    /// than the producer's (transactions v2 bump it, so there it must be newer), and its
    /// coordinator epoch may not be older than the last marker's.
    pub(crate) fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        transaction_version: i16,
    ) -> Result<(), ProducerError> {
        let Some(current) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        let is_stale = if transaction_version >= 2 {
            epoch <= current.epoch
        } else {
            epoch < current.epoch
        };
        if is_stale {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: current.epoch,
            });
        }
        if current.coordinator_epoch > coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: current.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Applies one batch that is in the log at its final offsets: the only writer of the state.
    /// `control` is what a control batch holds (see [`marker::parse`]). Never refuses: the
    /// leader checked the batch before appending it, a follower or a replay takes it as is.
    pub(crate) fn apply(
        &mut self,
        header: &BatchHeader,
        control: Option<Control>,
    ) -> Option<CompletedTxn> {
        self.end_offset = self.end_offset.max(header.last_offset() + 1);
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return None;
        }
        if header.is_control() {
            return match control {
                Some(Control::Marker(marker)) => self.apply_marker(header, marker),
                Some(Control::Other) | None => None,
            };
        }
        let entry = self.producers.entry(producer_id).or_default();
        entry.add_batch(
            header.producer_epoch,
            BatchMeta {
                first_seq: header.base_sequence,
                last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
                timestamp: header.max_timestamp,
            },
        );
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
            self.ongoing.insert(header.base_offset, producer_id);
        }
        None
    }

    fn apply_marker(&mut self, header: &BatchHeader, marker: Marker) -> Option<CompletedTxn> {
        let producer_id = header.producer_id;
        let entry = self.producers.entry(producer_id).or_default();
        let first_offset = entry.current_txn_first_offset.take();
        entry.set_epoch(header.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = header.max_timestamp;
        let first_offset = first_offset?;
        self.ongoing.remove(&first_offset);
        let marker_offset = header.base_offset;
        self.completing.insert(first_offset, marker_offset);
        let last_stable_offset = self
            .ongoing
            .keys()
            .next()
            .copied()
            .unwrap_or(marker_offset + 1);
        Some(CompletedTxn {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            is_aborted: !marker.is_commit,
            last_stable_offset,
        })
    }

    /// Forgets producers idle for `expiration_ms` (counted from their last batch's timestamp)
    /// that have no open transaction, as Kafka's `producer.id.expiration.ms` does.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Rebuilds the state from decoded snapshot parts; open transactions are re-derived.
    fn from_parts(end_offset: i64, producers: BTreeMap<i64, ProducerEntry>) -> ProducerState {
        let ongoing = producers
            .iter()
            .filter_map(|(id, entry)| entry.current_txn_first_offset.map(|first| (first, *id)))
            .collect();
        ProducerState {
            producers,
            ongoing,
            completing: BTreeMap::new(),
            end_offset,
        }
    }
}

/// The sequence rules of a client batch (Kafka's `ProducerAppendInfo.checkSequence`).
fn check_sequence(
    current: &ProducerEntry,
    header: &BatchHeader,
    verification: Option<&Verification>,
) -> Result<(), ProducerError> {
    let producer_id = header.producer_id;
    let epoch = header.producer_epoch;
    let sequence = header.base_sequence;
    let out_of_order = |last_sequence| ProducerError::OutOfOrderSequence {
        producer_id,
        epoch,
        sequence,
        last_sequence,
    };
    if let Some(verification) = verification {
        if verification.supports_epoch_bump && sequence != 0 && current.batches.is_empty() {
            return Err(out_of_order(entry::NO_SEQUENCE));
        }
        if sequence > verification.lowest_sequence {
            return Err(out_of_order(verification.lowest_sequence));
        }
    }
    if epoch != current.epoch {
        if sequence != 0 && current.epoch != NO_EPOCH {
            return Err(out_of_order(current.last_seq()));
        }
    } else if current.epoch != NO_EPOCH && !in_sequence(current.last_seq(), sequence) {
        return Err(out_of_order(current.last_seq()));
    }
    Ok(())
}
