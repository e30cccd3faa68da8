//! One producer id's state in one partition: its epoch, the last five appended batches (for
//! deduplicating retries), its open transaction and coordinator epoch. Kafka's
//! ProducerStateEntry; plain data plus the sequence arithmetic, no I/O.

use std::collections::VecDeque;

/// How many of a producer's latest batches are remembered to answer retries (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, the client's `max.in.flight.requests.per.connection` limit of 5).
pub(crate) const BATCHES_RETAINED: usize = 5;
/// Epoch of a producer that has not written yet (Kafka's `NO_PRODUCER_EPOCH`).
pub(crate) const NO_EPOCH: i16 = -1;
/// Sequence before the first one (Kafka's `NO_SEQUENCE`).
pub(crate) const NO_SEQUENCE: i32 = -1;

/// One appended batch of a producer, as much as deduplication and the response need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// The batch's max timestamp (what Kafka answers a duplicate's log append time with).
    pub(crate) timestamp: i64,
}

/// The state of one producer id in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    /// Oldest first, at most [`BATCHES_RETAINED`], all of `epoch`.
    pub(crate) batches: VecDeque<BatchMeta>,
    /// Epoch of the transaction coordinator that wrote the last marker; -1 before any.
    pub(crate) coordinator_epoch: i32,
    /// Max timestamp of the latest batch or marker: producer expiry counts from it.
    pub(crate) last_timestamp: i64,
    /// First offset of the producer's open transaction in this partition.
    pub(crate) current_txn_first_offset: Option<i64>,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: NO_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }
}

impl ProducerEntry {
    /// Last sequence appended at the current epoch, or [`NO_SEQUENCE`].
    pub(crate) fn last_seq(&self) -> i32 {
        self.batches
            .back()
            .map_or(NO_SEQUENCE, |batch| batch.last_seq)
    }

    /// Switches to `epoch`, forgetting the batches of the old one.
    pub(crate) fn set_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    /// Remembers an appended batch (at `epoch`), dropping the oldest beyond the window.
    pub(crate) fn add_batch(&mut self, epoch: i16, batch: BatchMeta) {
        self.set_epoch(epoch);
        if self.batches.len() == BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.timestamp;
    }

    /// The retained batch with exactly this epoch and sequence range: a retry.
    pub(crate) fn find_duplicate(
        &self,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Option<BatchMeta> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|batch| batch.first_seq == first_seq && batch.last_seq == last_seq)
            .copied()
    }
}

/// Whether `next` directly follows `last`: one more, or 0 after `i32::MAX` (sequences wrap).
pub(crate) fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// The last sequence of a batch starting at `base` with `last_offset_delta` more records,
/// wrapping past `i32::MAX` to 0 as Kafka's `incrementSequence` does.
pub(crate) fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    if base > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base) - 1
    } else {
        base + last_offset_delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchMeta {
        BatchMeta {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
            timestamp: first_offset,
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert!(in_sequence(NO_SEQUENCE, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
        assert!(!in_sequence(4, 4));
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(i32::MAX - 1, 0));
        assert_eq!(last_sequence(0, 0), 0);
        assert_eq!(last_sequence(10, 4), 14);
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn the_window_keeps_the_last_five_batches_of_one_epoch() {
        let mut entry = ProducerEntry::default();
        for i in 0..7 {
            entry.add_batch(0, meta(i * 2, i * 2 + 1, i64::from(i) * 2));
        }
        assert_eq!(entry.batches.len(), BATCHES_RETAINED);
        assert_eq!(entry.last_seq(), 13);
        assert!(entry.find_duplicate(0, 0, 1).is_none(), "evicted");
        assert_eq!(entry.find_duplicate(0, 4, 5), Some(meta(4, 5, 4)));
        assert!(entry.find_duplicate(1, 4, 5).is_none(), "other epoch");
        assert!(entry.find_duplicate(0, 4, 6).is_none(), "other range");
        entry.add_batch(1, meta(0, 0, 20));
        assert_eq!(
            entry.batches.len(),
            1,
            "a new epoch forgets the old batches"
        );
        assert_eq!(entry.epoch, 1);
    }
}
