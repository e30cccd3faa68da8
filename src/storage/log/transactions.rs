//! A [`Log`]'s producer and transaction state, kept a pure function of the log: applied to
//! every appended batch, snapshotted at each segment roll and at close (`.snapshot`), rebuilt on
//! open and after a truncation from the latest snapshot plus a replay of the batches after it,
//! and the aborted-transaction index (`.txnindex`, written when a segment is sealed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Log;
use crate::limits;
use crate::storage::batch::BatchHeader;
use crate::storage::producer_state::{
    Origin, ProducerError, ProducerState, Verdict, Verification, marker, snapshot,
};
use crate::storage::segment::Segment;
use crate::storage::txn_index::{self, AbortedTxn};
use crate::storage::{Result, io_error, sync_dir, write_atomically};

/// The transaction-related state of one log.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    producers: ProducerState,
    /// Every aborted transaction of the log, in marker order.
    aborted: Vec<AbortedTxn>,
    /// Transaction verifications in progress, by producer id: leader-side, never persisted.
    verifications: BTreeMap<i64, Verification>,
}

/// Source of verification guards: unique for the life of the process.
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

impl Log {
    /// The partition's producer state (what the produce-side checks run against).
    pub(crate) fn producer_state(&self) -> &ProducerState {
        &self.transactions.producers
    }

    /// The first offset a read_committed reader may not read: the start of the oldest open
    /// (or not yet durably completed) transaction, at most the high watermark.
    pub(crate) fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.transactions
            .producers
            .first_unstable_offset(high_watermark)
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Starts (or joins) the verification that `producer_id`'s transaction includes this
    /// partition, returning its guard; None when that transaction is already open here at
    /// `epoch`, so the coordinator need not be asked (Kafka's maybeStartTransactionVerification).
    pub(crate) fn start_transaction_verification(
        &mut self,
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        supports_epoch_bump: bool,
        now_ms: i64,
    ) -> Option<u64> {
        if self
            .transactions
            .producers
            .has_ongoing_transaction_at(producer_id, epoch)
        {
            return None;
        }
        let entry = self
            .transactions
            .verifications
            .entry(producer_id)
            .or_insert_with(|| Verification {
                guard: NEXT_GUARD.fetch_add(1, Ordering::Relaxed),
                lowest_sequence: sequence,
                epoch,
                supports_epoch_bump,
                started_ms: now_ms,
            });
        entry.observe(sequence, epoch);
        entry.supports_epoch_bump |= supports_epoch_bump;
        Some(entry.guard)
    }

    /// The produce-side checks of one batch before it is appended, in Kafka's order: a client's
    /// retry is a duplicate; a transactional batch of a producer without an open transaction
    /// here needs the guard of a verification still in progress (a marker in between cleared
    /// it); then the producer rules of [`ProducerState::check`].
    pub(crate) fn check_batch(
        &self,
        header: &BatchHeader,
        origin: Origin,
        guard: Option<u64>,
    ) -> std::result::Result<Verdict, ProducerError> {
        let state = &self.transactions;
        if header.producer_id < 0 {
            return Ok(Verdict::Append);
        }
        if origin == Origin::Client
            && let Some(first) = state.producers.duplicate_of(header)
        {
            return Ok(Verdict::Duplicate(first));
        }
        let verification = state.verifications.get(&header.producer_id);
        let is_verified = guard.is_some_and(|guard| verification.is_some_and(|v| v.guard == guard));
        if header.is_transactional()
            && !state.producers.has_ongoing_transaction(header.producer_id)
            && !is_verified
        {
            return Err(ProducerError::InvalidTxnState {
                producer_id: header.producer_id,
                reason: "the record is not part of an ongoing transaction",
            });
        }
        state.producers.check(header, origin, verification)
    }

    /// The checks of a transaction marker before it is appended (see
    /// [`ProducerState::check_marker`]).
    pub(crate) fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        transaction_version: i16,
    ) -> std::result::Result<(), ProducerError> {
        self.transactions.producers.check_marker(
            producer_id,
            epoch,
            coordinator_epoch,
            transaction_version,
        )
    }

    /// The aborted transactions a read of `[start_offset, upper_offset)` overlaps.
    pub(crate) fn aborted_transactions(
        &self,
        start_offset: i64,
        upper_offset: i64,
    ) -> Vec<AbortedTxn> {
        txn_index::collect(&self.transactions.aborted, start_offset, upper_offset)
    }

    /// Forgets idle producers (`producer.id.expiration.ms`); returns how many went.
    pub(crate) fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.transactions
            .verifications
            .retain(|_, v| now_ms.saturating_sub(v.started_ms) < expiration_ms);
        self.transactions
            .producers
            .remove_expired(now_ms, expiration_ms)
    }

    /// Applies one just-written batch (its offsets assigned) to the producer state.
    pub(super) fn apply_to_transactions(&mut self, batch: &[u8], header: &BatchHeader) {
        let control = header.is_control().then(|| marker::parse(batch, header));
        let state = &mut self.transactions;
        if header.is_transactional() {
            // A first write or a marker: the verification (if any) has served its purpose.
            state.verifications.remove(&header.producer_id);
        }
        if let Some(done) = state.producers.apply(header, control)
            && done.is_aborted
        {
            state.aborted.push(AbortedTxn {
                producer_id: done.producer_id,
                first_offset: done.first_offset,
                last_offset: done.last_offset,
                last_stable_offset: done.last_stable_offset,
            });
        }
        state.producers.on_high_watermark(self.flushed_offset);
    }

    /// After a roll from the segment at `sealed_base` to one at `new_base`: persist the sealed
    /// segment's aborted transactions and a snapshot of the state at `new_base`.
    pub(super) fn persist_transactions_at_roll(
        &mut self,
        sealed_base: i64,
        new_base: i64,
    ) -> Result<()> {
        let entries = self.aborted_in(sealed_base, new_base);
        txn_index::write(&self.dir, sealed_base, &entries)?;
        self.transactions.producers.on_high_watermark(new_base);
        self.write_snapshot()
    }

    /// At a clean close: persist the active segment's aborted transactions and a snapshot at
    /// the log end, so the next open replays nothing.
    pub(super) fn persist_transactions_at_close(&mut self) -> Result<()> {
        let base = self.active().base_offset();
        let entries = self.aborted_in(base, i64::MAX);
        txn_index::write(&self.dir, base, &entries)?;
        self.write_snapshot()
    }

    /// After a snapshot's segments replaced the log: the aborted-transaction index of every
    /// closed segment, from the replayed state (the active one gets its own at roll or close).
    pub(super) fn persist_transactions_of_closed_segments(&mut self) -> Result<()> {
        let closed: Vec<(i64, i64)> = self
            .segments
            .split_last()
            .map(|(_, closed)| {
                closed
                    .iter()
                    .map(|segment| (segment.base_offset(), segment.next_offset()))
                    .collect()
            })
            .unwrap_or_default();
        for (base, next) in closed {
            txn_index::write(&self.dir, base, &self.aborted_in(base, next))?;
        }
        Ok(())
    }

    fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.transactions
            .aborted
            .iter()
            .filter(|entry| (from..to).contains(&entry.last_offset))
            .copied()
            .collect()
    }

    fn write_snapshot(&self) -> Result<()> {
        let state = &self.transactions.producers;
        let name = snapshot::file_name(state.end_offset());
        write_atomically(&self.dir, &name, &snapshot::encode(state))
    }

    /// Drops the state files of segments that are gone (retention, truncation): indexes of
    /// missing segments, snapshots below the first segment or past the log end, and the
    /// in-memory entries of aborted transactions whose marker was deleted.
    pub(super) fn forget_deleted_transactions(&mut self) -> Result<()> {
        let first_base = self.first_segment_base_offset();
        let end = self.log_end_offset();
        self.transactions
            .aborted
            .retain(|entry| entry.last_offset >= first_base && entry.last_offset < end);
        let bases: Vec<i64> = self.segments.iter().map(Segment::base_offset).collect();
        let mut removed_any = false;
        for (path, file) in state_files(&self.dir)? {
            let is_stale = match file {
                StateFile::TxnIndex(base) => bases.binary_search(&base).is_err(),
                StateFile::Snapshot(offset) => offset < first_base || offset > end,
            };
            if is_stale {
                std::fs::remove_file(&path).map_err(io_error("delete state file", &path))?;
                removed_any = true;
            }
        }
        if removed_any {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Rebuilds the state on open or after a truncation: the latest usable snapshot at or
    /// below the log end, the sealed segments' aborted-transaction indexes before it, and a
    /// replay of every batch after it. Anything unusable falls back to a replay from the
    /// first segment.
    pub(super) fn load_transactions(&mut self) -> Result<()> {
        self.forget_deleted_transactions()?;
        let first_base = self.first_segment_base_offset();
        let end = self.log_end_offset();
        let mut candidates: Vec<i64> = state_files(&self.dir)?
            .into_iter()
            .filter_map(|(_, file)| match file {
                StateFile::Snapshot(offset) if (first_base..=end).contains(&offset) => Some(offset),
                _ => None,
            })
            .collect();
        candidates.sort_unstable();
        let mut loaded = None;
        while let Some(offset) = candidates.pop() {
            match self.read_snapshot(offset) {
                Some(state) => {
                    loaded = self.indexes_before(offset).map(|aborted| (state, aborted));
                    if loaded.is_some() {
                        break;
                    }
                }
                None => {
                    let path = self.dir.join(snapshot::file_name(offset));
                    std::fs::remove_file(&path).map_err(io_error("delete snapshot", &path))?;
                }
            }
        }
        let (state, aborted) =
            loaded.unwrap_or_else(|| (ProducerState::new(first_base), Vec::new()));
        let from = state.end_offset();
        self.transactions = Transactions {
            producers: state,
            aborted,
            verifications: BTreeMap::new(),
        };
        self.replay_transactions(from)?;
        let flushed = self.flushed_offset;
        self.transactions.producers.on_high_watermark(flushed);
        tracing::debug!(
            dir = %self.dir.display(),
            replayed_from = from,
            producers = self.transactions.producers.producers().count(),
            "producer state loaded"
        );
        Ok(())
    }

    fn read_snapshot(&self, offset: i64) -> Option<ProducerState> {
        let path = self.dir.join(snapshot::file_name(offset));
        let len = std::fs::metadata(&path).ok()?.len();
        if len > limits::PRODUCER_SNAPSHOT_BYTES_MAX {
            tracing::warn!(path = %path.display(), len, "ignoring an oversized snapshot");
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        match snapshot::decode(&bytes, offset) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring a corrupt snapshot");
                None
            }
        }
    }

    /// The aborted transactions whose marker lies below `offset`, from the index files of the
    /// segments before it; None when one of them is unreadable.
    fn indexes_before(&self, offset: i64) -> Option<Vec<AbortedTxn>> {
        let mut out = Vec::new();
        for segment in self.segments.iter() {
            let base = segment.base_offset();
            if base >= offset {
                break;
            }
            let path = self.dir.join(txn_index::file_name(base));
            if !path.exists() {
                continue;
            }
            let entries = txn_index::read(&self.dir, base, limits::TXN_INDEX_BYTES_MAX)?;
            out.extend(
                entries
                    .into_iter()
                    .filter(|entry| entry.last_offset < offset),
            );
        }
        Some(out)
    }

    /// Applies every batch from `from` to the log end.
    fn replay_transactions(&mut self, from: i64) -> Result<()> {
        let start_idx = self
            .segments
            .partition_point(|segment| segment.base_offset() <= from)
            .saturating_sub(1);
        for segment_idx in start_idx..self.segments.len() {
            let mut position = 0;
            while let Some(segment) = self.segments.get(segment_idx) {
                let Some(header) = segment.header_at(position)? else {
                    break;
                };
                let len = header.total_len() as u64;
                if header.last_offset() >= from {
                    let bytes = if header.is_control() {
                        segment.read_bytes(position, len)?
                    } else {
                        Vec::new()
                    };
                    self.apply_to_transactions(&bytes, &header);
                }
                position += len;
            }
        }
        Ok(())
    }
}

/// A producer-state file found in a log directory.
enum StateFile {
    Snapshot(i64),
    TxnIndex(i64),
}

fn state_files(dir: &Path) -> Result<Vec<(std::path::PathBuf, StateFile)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("list log directory", dir))? {
        let entry = entry.map_err(io_error("list log directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(offset) = snapshot::parse_file_name(&name) {
            out.push((entry.path(), StateFile::Snapshot(offset)));
        } else if let Some(base) = txn_index::parse_file_name(&name) {
            out.push((entry.path(), StateFile::TxnIndex(base)));
        }
    }
    Ok(out)
}
