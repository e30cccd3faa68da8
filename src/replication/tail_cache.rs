//! The newest entries of a raft log kept in memory as stored, so that replicating them to
//! followers and applying them read no segment file; bounded per log and across the process.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::types::{Entry, Payload, RecordBatch};
use crate::limits;

/// Batch bytes held by every tail cache of this process.
static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A contiguous run of a raft log's last entries (`first..first + len`), each as a reader of
/// the log would get it back: a normal entry with the bytes the segment holds (base offset and
/// leader epoch set), blank and membership entries as raft gave them.
#[derive(Debug, Default)]
pub(crate) struct TailCache {
    first: u64,
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl TailCache {
    /// Records `entry`, just appended as `stored` (its batch bytes in the segment), after the
    /// cached run. An entry that does not follow the run starts a new one; one that does not
    /// fit the budgets leaves the cache empty (a gap would break the run).
    pub(crate) fn push(&mut self, entry: &Entry, stored: bytes::Bytes) {
        let index = entry.log_id.index;
        if self.entries.is_empty() || index != self.next() {
            self.clear();
            self.first = index;
        }
        let len = stored.len();
        if len > limits::RAFT_TAIL_CACHE_BYTES_PER_LOG {
            self.clear();
            return;
        }
        let payload = match &entry.payload {
            Payload::Normal(_) => Payload::Normal(RecordBatch(stored)),
            other => other.clone(),
        };
        while self.bytes + len > limits::RAFT_TAIL_CACHE_BYTES_PER_LOG && self.pop_front() {}
        while !reserve(len) {
            if !self.pop_front() {
                self.clear();
                return;
            }
        }
        if self.entries.is_empty() {
            self.first = index;
        }
        self.bytes += len;
        self.entries.push_back((
            Entry {
                log_id: entry.log_id,
                payload,
            },
            len,
        ));
    }

    /// The cached entry `index`, if the run holds it.
    pub(crate) fn get(&self, index: u64) -> Option<&Entry> {
        let position = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.entries.get(position).map(|(entry, _)| entry)
    }

    /// Forgets the entries from `index` on (a truncated suffix).
    pub(crate) fn truncate_from(&mut self, index: u64) {
        if index <= self.first {
            self.clear();
            return;
        }
        while self.next() > index && self.pop_back() {}
    }

    /// Forgets the entries up to `index` (a purged prefix).
    pub(crate) fn purge_through(&mut self, index: u64) {
        while self.first <= index && self.pop_front() {}
    }

    pub(crate) fn clear(&mut self) {
        release(self.bytes);
        self.entries.clear();
        self.bytes = 0;
    }

    fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn pop_front(&mut self) -> bool {
        let Some((_, len)) = self.entries.pop_front() else {
            return false;
        };
        self.first += 1;
        self.bytes -= len;
        release(len);
        true
    }

    fn pop_back(&mut self) -> bool {
        let Some((_, len)) = self.entries.pop_back() else {
            return false;
        };
        self.bytes -= len;
        release(len);
        true
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Takes `len` bytes of the process budget, if that many are left.
fn reserve(len: usize) -> bool {
    CACHED_BYTES
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(len)
                .filter(|total| *total <= limits::RAFT_TAIL_CACHE_BYTES_TOTAL)
        })
        .is_ok()
}

fn release(len: usize) {
    CACHED_BYTES.fetch_sub(len, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::replication::types::log_id;

    fn normal(index: u64, len: usize) -> (Entry, Bytes) {
        let bytes = Bytes::from(vec![index as u8; len]);
        let entry = Entry {
            log_id: log_id(1, index),
            payload: Payload::Normal(RecordBatch(Bytes::new())),
        };
        (entry, bytes)
    }

    fn cached(cache: &TailCache) -> Vec<u64> {
        (0..64)
            .filter(|index| cache.get(*index).is_some())
            .collect()
    }

    #[test]
    fn holds_a_contiguous_run_of_the_stored_bytes_and_follows_truncation_and_purge() {
        let mut cache = TailCache::default();
        for index in 5..10 {
            let (entry, bytes) = normal(index, 10);
            cache.push(&entry, bytes);
        }
        assert_eq!(cached(&cache), vec![5, 6, 7, 8, 9]);
        let Some(Entry {
            payload: Payload::Normal(RecordBatch(bytes)),
            ..
        }) = cache.get(7)
        else {
            panic!("entry 7 is cached as a normal entry");
        };
        assert_eq!(bytes.as_ref(), &[7u8; 10]);
        cache.truncate_from(8);
        assert_eq!(cached(&cache), vec![5, 6, 7]);
        cache.purge_through(5);
        assert_eq!(cached(&cache), vec![6, 7]);
        // Not the next index: a new run.
        let (entry, bytes) = normal(20, 10);
        cache.push(&entry, bytes);
        assert_eq!(cached(&cache), vec![20]);
        cache.truncate_from(3);
        assert_eq!(cached(&cache), Vec::<u64>::new());
        let (entry, bytes) = normal(21, 10);
        cache.push(&entry, bytes);
        assert_eq!(cached(&cache), vec![21]);
        cache.purge_through(40);
        assert_eq!(cached(&cache), Vec::<u64>::new());
    }

    #[test]
    fn keeps_within_its_byte_bound() {
        let mut cache = TailCache::default();
        let len = limits::RAFT_TAIL_CACHE_BYTES_PER_LOG / 3 + 1;
        for index in 0..5 {
            let (entry, bytes) = normal(index, len);
            cache.push(&entry, bytes);
            assert!(cache.bytes <= limits::RAFT_TAIL_CACHE_BYTES_PER_LOG);
        }
        assert_eq!(cached(&cache), vec![3, 4]);
        // An entry larger than the bound is not kept, and leaves no gap.
        let (entry, bytes) = normal(5, limits::RAFT_TAIL_CACHE_BYTES_PER_LOG + 1);
        cache.push(&entry, bytes);
        assert_eq!(cached(&cache), Vec::<u64>::new());
        let (entry, bytes) = normal(6, 10);
        cache.push(&entry, bytes);
        assert_eq!(cached(&cache), vec![6]);
    }
}
