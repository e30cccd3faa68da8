//! The raft log of one partition, synchronously, over its `storage::Log`: one batch per entry,
//! the index map, the vote and the log start. No fsync of appends here (the flusher does it) and
//! no async: `log_store.rs` calls it from blocking tasks under its mutex.

use std::ops::Range;

use super::entry_codec;
use super::error::Error;
use super::index_map::IndexMap;
use super::persisted::{self, LogStart};
use super::tail_cache::TailCache;
use super::types::{Entry, LogId, NodeId, Payload, RecordBatch, Term, Vote, log_id, term_of};
use crate::storage::Log;

/// A partition log seen as a raft log.
#[derive(Debug)]
pub(crate) struct RaftLog {
    log: Log,
    map: IndexMap,
    start: LogStart,
    vote: Option<Vote>,
    /// This broker: the entries of a term it leads are its own proposals.
    node_id: NodeId,
    /// The newest entries as stored, read back without touching the segment files.
    tail: TailCache,
    /// Bumped by every truncation: a flush that started before one must not mark the log
    /// flushed (its end offset may now cover re-written offsets).
    truncation_count: u64,
}

impl RaftLog {
    /// Reads the vote and log start and rebuilds the index map from the batch headers.
    pub(crate) fn open(mut log: Log, node_id: NodeId) -> Result<RaftLog, Error> {
        let vote = persisted::read_vote(&log)?;
        let start = persisted::read_log_start(&log)?;
        // (The log start offset may lie inside the first raft batch: DeleteRecords moves it
        // there, and the batch stays.)
        if start.first_offset < log.first_segment_base_offset() {
            return Err(Error::NotARaftLog {
                reason: format!(
                    "raft log starts at offset {} but the partition log holds batches only from {}",
                    start.first_offset,
                    log.first_segment_base_offset()
                ),
            });
        }
        if start.purged.is_some() && start.first_offset > log.log_end_offset() {
            // A snapshot past the whole log was saved, then the install stopped before the
            // log was replaced by its segments (or emptied).
            if !log.install_prefix(start.first_offset)? {
                log.restart_at(start.first_offset)?;
            }
        } else if start.purged.is_some()
            && !start.keeps_prefix
            && log.log_start_offset() < start.first_offset
        {
            // A purge saved its new start, then stopped before the log start moved.
            log.delete_records_before(start.first_offset)?;
        }
        // A transfer that raft did not install yet is sent again.
        log.discard_incoming_prefix()?;
        let map = rebuild_map(&log, &start)?;
        Ok(RaftLog {
            log,
            map,
            start,
            vote,
            node_id,
            tail: TailCache::default(),
            truncation_count: 0,
        })
    }

    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    #[cfg(test)]
    pub(crate) fn into_log(self) -> Log {
        self.log
    }

    pub(crate) fn truncation_count(&self) -> u64 {
        self.truncation_count
    }

    pub(crate) fn vote(&self) -> Option<Vote> {
        self.vote
    }

    /// Persists `vote` (fsynced) before it becomes the vote.
    pub(crate) fn save_vote(&mut self, vote: &Vote) -> Result<(), Error> {
        persisted::write_vote(&self.log, vote)?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// The Kafka offset of the first raft entry: batches below it are no raft entries.
    pub(crate) fn first_offset(&self) -> i64 {
        self.start.first_offset
    }

    pub(crate) fn last_purged(&self) -> Option<LogId> {
        self.start.purged
    }

    /// The last entry's log id, or the last purged one when no entry is left.
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        match self.map.last() {
            Some((index, term)) => Some(log_id(term, index)),
            None => self.start.purged,
        }
    }

    /// The Kafka offset of the batch of entry `index`.
    pub(crate) fn offset_of(&self, index: u64) -> Option<i64> {
        self.map.get(index).map(|located| located.offset)
    }

    /// The Kafka offset right after entry `index`'s batch: the high watermark once `index` is
    /// committed. None when the log does not hold `index`.
    pub(crate) fn offset_after(&self, index: u64) -> Option<i64> {
        self.offset_of(index)?;
        match self.offset_of(index + 1) {
            Some(next) => Some(next),
            None => Some(self.log.log_end_offset()),
        }
    }

    /// OffsetForLeaderEpoch from the terms of the log's batches (see `IndexMap::epoch_end`).
    pub(crate) fn epoch_end(&self, requested: Term) -> Option<(Term, i64)> {
        self.map.epoch_end(requested, self.log.log_end_offset())
    }

    /// Appends `entries` (the next indexes) to the partition log; readable at once, not
    /// fsynced. Stops at the first failure, keeping what was appended before it.
    pub(crate) fn append(&mut self, entries: &[Entry], now_ms: i64) -> Result<(), Error> {
        for entry in entries {
            self.append_one(entry, now_ms)?;
        }
        Ok(())
    }

    fn append_one(&mut self, entry: &Entry, now_ms: i64) -> Result<(), Error> {
        let index = entry.log_id.index;
        let expected = self
            .map
            .next_index()
            .or_else(|| self.start.purged.map(|purged| purged.index + 1));
        if let Some(expected) = expected
            && index != expected
        {
            return Err(Error::Hole { index, expected });
        }
        let term: Term = entry.log_id.leader_id.term;
        let epoch = i32::try_from(term).map_err(|_| Error::TermTooLarge { term })?;
        if self.map.next_index().is_none() {
            self.restart_at(index)?;
        }
        // A batch already at this offset and epoch is stored as it is: this leader's own
        // proposal, stamped when proposed (through the page cache: it serves reads of it), or
        // a follower's copy of its leader's bytes (past it). Any other entry is copied to set
        // them.
        let (appended, stored) =
            match entry_codec::stored_batch(&entry.payload, self.log.log_end_offset(), epoch)? {
                Some(stored) if self.leads(term) => {
                    (self.log.append_stamped(&stored, now_ms)?, stored)
                }
                Some(stored) => (self.log.append_as_stored(&stored, now_ms)?, stored),
                None => {
                    let mut batch = entry_codec::batch_of(&entry.payload)?;
                    let appended = self.log.append(&mut batch, epoch, now_ms)?;
                    (appended, batch.freeze())
                }
            };
        self.map
            .push(index, term, appended.base_offset, appended.location);
        self.tail.push(entry, stored);
        Ok(())
    }

    /// Whether this broker is the leader of `term`: it voted for itself in it, and a vote of
    /// that term is replaced by its leader's before a follower takes an entry of it.
    fn leads(&self, term: Term) -> bool {
        self.vote.is_some_and(|vote| {
            vote.leader_id.term == term && vote.leader_id.voted_for == self.node_id
        })
    }

    /// An empty raft log takes its next entry at the log end: record that as its start.
    fn restart_at(&mut self, index: u64) -> Result<(), Error> {
        let start = LogStart {
            first_index: index,
            first_offset: self.log.log_end_offset(),
            ..self.start
        };
        if start != self.start {
            persisted::write_log_start(&self.log, &start)?;
            self.start = start;
        }
        Ok(())
    }

    /// Removes every entry after `last` (every entry when None) through the partition log's
    /// suffix truncation, which also rebuilds its producer state.
    pub(crate) fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), Error> {
        let (Some(first), Some(next)) = (self.map.first_index(), self.map.next_index()) else {
            return Ok(());
        };
        let from = last.map_or(first, |last| (last.index + 1).max(first));
        if from >= next {
            return Ok(());
        }
        let offset = self.offset_of(from).ok_or(Error::Missing {
            index: from,
            first,
            last: next - 1,
        })?;
        self.truncation_count += 1;
        self.tail.truncate_from(from);
        self.log.truncate_suffix(offset)?;
        self.map.truncate_from(from);
        Ok(())
    }

    /// The last entry whose batch starts below Kafka offset `offset`, if the log holds one
    /// (entries' offsets grow with their index).
    pub(crate) fn last_entry_before(&self, offset: i64) -> Option<LogId> {
        let (first, next) = (self.map.first_index()?, self.map.next_index()?);
        let (mut low, mut high) = (first, next);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.map.get(middle)?.offset < offset {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let last = low.checked_sub(1).filter(|last| *last >= first)?;
        Some(log_id(self.map.get(last)?.term, last))
    }

    /// Installs a snapshot that ends at `purged`, after which the log goes on at Kafka offset
    /// `next_offset`. A log that holds `purged` (or purged it already) keeps its entries (raft
    /// purges up to it next); any other is replaced by the snapshot's segments, staged when it
    /// arrived (a compacted log's prefix), or emptied when it brought none (retention deleted
    /// the prefix), and goes on at `next_offset`, its next entry `purged.index + 1`, so its
    /// offsets stay the leader's.
    pub(crate) fn install_snapshot(
        &mut self,
        purged: LogId,
        next_offset: i64,
    ) -> Result<(), Error> {
        let holds = self
            .map
            .get(purged.index)
            .is_some_and(|located| located.term == term_of(&purged));
        if holds || self.start.purged.is_some_and(|done| done >= purged) {
            return Ok(());
        }
        let start = LogStart {
            purged: Some(purged),
            first_index: purged.index + 1,
            first_offset: next_offset,
            keeps_prefix: true,
        };
        // Saved first: a crash before the log is replaced finishes it at the next open.
        persisted::write_log_start(&self.log, &start)?;
        self.truncation_count += 1;
        if !self.log.install_prefix(next_offset)? {
            self.log.restart_at(next_offset)?;
        }
        self.start = start;
        self.map = IndexMap::default();
        self.tail.clear();
        Ok(())
    }

    /// Forgets every entry up to `upto`: the log start (persisted first) moves past it, then
    /// whole segments below the new Kafka log start are deleted; a compacted log keeps them
    /// (compaction cleans what raft no longer holds).
    pub(crate) fn purge(&mut self, upto: LogId) -> Result<(), Error> {
        if self.start.purged.is_some_and(|purged| purged >= upto) {
            return Ok(());
        }
        let first_index = upto.index + 1;
        let first_offset = self
            .offset_of(first_index)
            .unwrap_or_else(|| self.log.log_end_offset());
        let keeps_prefix = self.log.is_compacted();
        let start = LogStart {
            purged: Some(upto),
            first_index,
            first_offset,
            keeps_prefix,
        };
        persisted::write_log_start(&self.log, &start)?;
        self.start = start;
        self.map.purge_through(upto.index);
        self.tail.purge_through(upto.index);
        if !keeps_prefix {
            self.log.delete_records_before(first_offset)?;
        }
        Ok(())
    }

    /// The entries of `range` the log holds (a range reaching past either end is cut), in
    /// order, stopping after `bytes_max` bytes of batches but never before the first; the
    /// newest come from the tail cache, the others from the segments.
    pub(crate) fn read(&self, range: Range<u64>, bytes_max: usize) -> Result<Vec<Entry>, Error> {
        let (Some(first), Some(next)) = (self.map.first_index(), self.map.next_index()) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        let mut bytes_read = 0usize;
        for index in range.start.max(first)..range.end.min(next) {
            if bytes_read >= bytes_max && !entries.is_empty() {
                break;
            }
            if let Some(entry) = self.tail.get(index) {
                bytes_read = bytes_read.saturating_add(stored_len(entry));
                entries.push(entry.clone());
                continue;
            }
            let located = self.map.get(index).ok_or(Error::Missing {
                index,
                first,
                last: next - 1,
            })?;
            let batch = self.log.read_batch_at(located.location, located.offset)?;
            bytes_read = bytes_read.saturating_add(batch.len());
            entries.push(entry_codec::entry_of(log_id(located.term, index), batch)?);
        }
        Ok(entries)
    }
}

/// The bytes a read of `entry` counts: a normal entry's batch (raft's own entries are small).
fn stored_len(entry: &Entry) -> usize {
    match &entry.payload {
        Payload::Normal(RecordBatch(batch)) => batch.len(),
        _ => 0,
    }
}

fn rebuild_map(log: &Log, start: &LogStart) -> Result<IndexMap, Error> {
    let mut map = IndexMap::default();
    let mut index = start.first_index;
    let mut last_term = 0;
    let mut failure = None;
    log.for_each_batch_header(start.first_offset, |location, header| {
        let term = u64::try_from(header.partition_leader_epoch).ok();
        let reason = match term {
            _ if map.next_index().is_none() && header.base_offset != start.first_offset => {
                Some(format!(
                    "the first raft batch is at offset {}, not at the raft log start {}",
                    header.base_offset, start.first_offset
                ))
            }
            None => Some(format!(
                "the batch at offset {} has leader epoch {}",
                header.base_offset, header.partition_leader_epoch
            )),
            Some(term) if term < last_term => Some(format!(
                "the leader epoch goes back from {last_term} to {term} at offset {}",
                header.base_offset
            )),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            failure.get_or_insert(reason);
            return Ok(());
        }
        let term = term.unwrap_or(last_term);
        if failure.is_none() {
            map.push(index, term, header.base_offset, location);
            index += 1;
            last_term = term;
        }
        Ok(())
    })?;
    match failure {
        Some(reason) => Err(Error::NotARaftLog { reason }),
        None => Ok(map),
    }
}
