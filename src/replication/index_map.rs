//! The dense raft index -> (term, Kafka offset, segment position) map of one partition log, one
//! run per segment so purging whole segments drops whole runs. In memory; rebuilt from batch
//! headers when the log opens. Pure data structure, no I/O.

use std::collections::VecDeque;

use super::types::Term;
use crate::storage::BatchLocation;

/// Where the batch of one raft entry is and which term wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) term: Term,
    pub(crate) offset: i64,
    pub(crate) location: BatchLocation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    term: Term,
    offset: i64,
    position: u64,
}

/// The entries stored in one segment, consecutive from `first_index`.
#[derive(Debug)]
struct Run {
    segment_base_offset: i64,
    first_index: u64,
    slots: Vec<Slot>,
}

impl Run {
    fn next_index(&self) -> u64 {
        self.first_index + self.slots.len() as u64
    }
}

/// Raft index to batch, for the entries the log holds (none purged, none truncated).
#[derive(Debug, Default)]
pub(crate) struct IndexMap {
    /// Oldest first; no run is empty.
    runs: VecDeque<Run>,
}

impl IndexMap {
    pub(crate) fn first_index(&self) -> Option<u64> {
        self.runs.front().map(|run| run.first_index)
    }

    /// The index the next entry must have; None when the map is empty.
    pub(crate) fn next_index(&self) -> Option<u64> {
        self.runs.back().map(Run::next_index)
    }

    /// The last entry's index and term.
    pub(crate) fn last(&self) -> Option<(u64, Term)> {
        let run = self.runs.back()?;
        let slot = run.slots.last()?;
        Some((run.next_index() - 1, slot.term))
    }

    /// Records the entry `index` (the next one, or any when empty) stored at `location`.
    pub(crate) fn push(&mut self, index: u64, term: Term, offset: i64, location: BatchLocation) {
        if let Some(next) = self.next_index() {
            assert_eq!(index, next, "raft indexes in the map stay dense");
        }
        let slot = Slot {
            term,
            offset,
            position: location.position,
        };
        match self.runs.back_mut() {
            Some(run) if run.segment_base_offset == location.segment_base_offset => {
                run.slots.push(slot);
            }
            _ => self.runs.push_back(Run {
                segment_base_offset: location.segment_base_offset,
                first_index: index,
                slots: vec![slot],
            }),
        }
    }

    pub(crate) fn get(&self, index: u64) -> Option<Located> {
        let run_idx = self
            .runs
            .partition_point(|run| run.first_index <= index)
            .checked_sub(1)?;
        let run = self.runs.get(run_idx)?;
        let slot_idx = usize::try_from(index - run.first_index).ok()?;
        let slot = run.slots.get(slot_idx)?;
        Some(Located {
            term: slot.term,
            offset: slot.offset,
            location: BatchLocation {
                segment_base_offset: run.segment_base_offset,
                position: slot.position,
            },
        })
    }

    /// Forgets every entry at `index` or after.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        while let Some(run) = self.runs.back_mut() {
            if run.first_index >= index {
                self.runs.pop_back();
                continue;
            }
            let keep = usize::try_from(index - run.first_index).unwrap_or(usize::MAX);
            run.slots.truncate(keep);
            break;
        }
    }

    /// Forgets every entry at `index` or before.
    pub(crate) fn purge_through(&mut self, index: u64) {
        while let Some(run) = self.runs.front_mut() {
            if run.next_index() <= index + 1 {
                self.runs.pop_front();
                continue;
            }
            if run.first_index <= index {
                let drop_count = usize::try_from(index + 1 - run.first_index).unwrap_or(0);
                run.slots.drain(..drop_count);
                run.first_index = index + 1;
            }
            break;
        }
    }

    /// Kafka's OffsetForLeaderEpoch over the terms of the entries (the leader epochs of their
    /// batches): the largest term at or below `requested` and the offset where the next term
    /// starts (`log_end` when `requested` is the last term); `requested` itself when every
    /// held term is above it; None when `requested` is above the last term or nothing is held.
    /// A scan of the map: it answers the rare epoch validations of clients after a leader
    /// change, not a hot path.
    pub(crate) fn epoch_end(&self, requested: Term, log_end: i64) -> Option<(Term, i64)> {
        let slots = self.runs.iter().flat_map(|run| &run.slots);
        let (_, last_term) = self.last()?;
        if requested > last_term {
            return None;
        }
        if requested == last_term {
            return Some((requested, log_end));
        }
        let mut floor = None;
        for slot in slots {
            if slot.term > requested {
                return Some((floor.unwrap_or(requested), slot.offset));
            }
            floor = Some(slot.term);
        }
        None
    }

    /// How many entries the map holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(|run| run.slots.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segment_base_offset: i64, position: u64) -> BatchLocation {
        BatchLocation {
            segment_base_offset,
            position,
        }
    }

    /// Entries 5..=14, two per segment: segment bases 0, 10, 20, ..., offsets 2 per entry.
    fn filled() -> IndexMap {
        let mut map = IndexMap::default();
        for index in 5..15u64 {
            let n = (index - 5) as i64;
            map.push(
                index,
                1 + n as u64 / 4,
                n * 2,
                at(n / 2 * 10, (n % 2) as u64 * 100),
            );
        }
        map
    }

    #[test]
    fn lookups_find_each_entry_and_nothing_outside() {
        let map = filled();
        assert_eq!((map.first_index(), map.next_index()), (Some(5), Some(15)));
        assert_eq!(map.last(), Some((14, 3)));
        let found = map.get(8).expect("entry 8");
        assert_eq!(
            (found.term, found.offset, found.location),
            (1, 6, at(10, 100))
        );
        assert_eq!(map.get(4), None);
        assert_eq!(map.get(15), None);
    }

    #[test]
    fn epoch_ends_are_where_the_next_term_starts() {
        // Terms 1 (offsets 0..8), 2 (8..16), 3 (16..20); the log ends at 21.
        let map = filled();
        assert_eq!(map.epoch_end(1, 21), Some((1, 8)));
        assert_eq!(map.epoch_end(2, 21), Some((2, 16)));
        assert_eq!(map.epoch_end(3, 21), Some((3, 21)));
        assert_eq!(map.epoch_end(4, 21), None);
        assert_eq!(map.epoch_end(0, 21), Some((0, 0)));
        let mut gap = IndexMap::default();
        gap.push(0, 2, 0, at(0, 0));
        gap.push(1, 5, 1, at(0, 100));
        assert_eq!(gap.epoch_end(3, 9), Some((2, 1)));
        assert_eq!(IndexMap::default().epoch_end(1, 0), None);
    }

    #[test]
    fn truncate_and_purge_keep_the_rest_addressable() {
        let mut map = filled();
        map.truncate_from(12);
        assert_eq!((map.next_index(), map.len()), (Some(12), 7));
        map.purge_through(6);
        assert_eq!((map.first_index(), map.len()), (Some(7), 5));
        assert_eq!(map.get(7).expect("7").location, at(10, 0));
        map.purge_through(7);
        assert_eq!(map.get(8).expect("8").location, at(10, 100));
        map.push(12, 9, 14, at(30, 0));
        assert_eq!(map.last(), Some((12, 9)));
        map.purge_through(40);
        assert_eq!((map.first_index(), map.last()), (None, None));
        map.push(41, 9, 100, at(90, 0));
        assert_eq!(map.get(41).expect("41").offset, 100);
        map.truncate_from(0);
        assert_eq!(map.len(), 0);
    }
}
