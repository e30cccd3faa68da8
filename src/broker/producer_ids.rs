//! Producer-id allocation: ids come from blocks reserved in the durable counter
//! (`storage::ProducerIdStore`), so an id is never handed out twice, even across a crash.
//! In cluster mode blocks come from the controller instead (`AllocateProducerIds`, refilled
//! ahead of need by `cluster_link`), so no two brokers hand out one id; callers do not change.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use super::error::{Error, Result};
use crate::storage;

/// Ids reserved per block (Kafka's `ProducerIdsBlock` size).
pub(super) const BLOCK_SIZE: i64 = 1000;

/// Hands out producer ids from durable blocks.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    inner: Mutex<Inner>,
    /// Woken when cluster mode wants another block.
    low: Notify,
}

#[derive(Debug)]
struct Inner {
    store: storage::ProducerIdStore,
    /// What is left of the current block.
    block: Range<i64>,
    /// Cluster mode: blocks from the controller, fetched ahead of need.
    from_controller: Option<VecDeque<Range<i64>>>,
}

impl ProducerIds {
    /// Opens the counter in `data_dir`; the first id comes from a new block.
    pub(crate) fn open(data_dir: &Path) -> Result<ProducerIds> {
        let store =
            storage::ProducerIdStore::open(data_dir).map_err(|source| Error::Catalog { source })?;
        Ok(ProducerIds {
            inner: Mutex::new(Inner {
                store,
                block: 0..0,
                from_controller: None,
            }),
            low: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Switches to blocks from the controller; returns the lowest id the controller may hand
    /// out (above every id this data dir ever reserved).
    pub(super) fn use_controller_blocks(&self) -> Result<i64> {
        let mut inner = self.lock();
        let reserved = inner
            .store
            .reserve_block(1)
            .map_err(|source| Error::Catalog { source })?;
        inner.block = 0..0;
        inner.from_controller = Some(VecDeque::new());
        self.low.notify_one();
        Ok(reserved.end)
    }

    /// Whether cluster mode holds less than half a block.
    pub(super) fn wants_block(&self) -> bool {
        let inner = self.lock();
        let queued: i64 = inner
            .from_controller
            .iter()
            .flatten()
            .map(|r| r.end - r.start)
            .sum();
        inner.from_controller.is_some()
            && (inner.block.end - inner.block.start) + queued < BLOCK_SIZE / 2
    }

    /// A block the controller allocated to this broker.
    pub(super) fn add_block(&self, block: Range<i64>) {
        if let Some(queue) = self.lock().from_controller.as_mut() {
            queue.push_back(block);
        }
    }

    /// Resolves when cluster mode may want another block.
    pub(super) async fn running_low(&self) {
        self.low.notified().await;
    }

    /// A producer id never handed out before.
    pub(crate) fn next(&self) -> Result<i64> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(queue) = inner.from_controller.as_mut() {
            if inner.block.is_empty() {
                let Some(block) = queue.pop_front() else {
                    self.low.notify_one();
                    return Err(Error::CoordinatorNotAvailable {
                        group: "producer ids (waiting for a block from the controller)".to_owned(),
                    });
                };
                inner.block = block;
            }
            let id = inner.block.start;
            inner.block.start += 1;
            if inner.block.end - inner.block.start < BLOCK_SIZE / 2 {
                self.low.notify_one();
            }
            return Ok(id);
        }
        if inner.block.is_empty() {
            inner.block = inner
                .store
                .reserve_block(BLOCK_SIZE)
                .map_err(|source| Error::Catalog { source })?;
            tracing::debug!(
                start = inner.block.start,
                end = inner.block.end,
                "reserved producer ids"
            );
        }
        let id = inner.block.start;
        inner.block.start += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_cluster_mode_ids_come_only_from_controller_blocks_above_the_local_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        assert_eq!(ids.next().expect("local id"), 0);
        let at_least = ids.use_controller_blocks().expect("switch");
        assert!(at_least > 0, "above the ids this data dir handed out");
        assert!(ids.wants_block());
        assert!(
            matches!(ids.next(), Err(Error::CoordinatorNotAvailable { .. })),
            "no block yet: retriable"
        );
        ids.add_block(5000..5000 + BLOCK_SIZE);
        assert!(!ids.wants_block());
        let taken: Vec<i64> = (0..BLOCK_SIZE / 2 + 1)
            .map(|_| ids.next().expect("id"))
            .collect();
        assert_eq!(taken[0], 5000);
        assert_eq!(*taken.last().expect("taken"), 5000 + BLOCK_SIZE / 2);
        assert!(ids.wants_block(), "below half a block: ask for the next");
    }

    #[test]
    fn ids_are_unique_across_reopens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| ids.next().expect("id")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        assert_eq!(
            ids.next().expect("id"),
            BLOCK_SIZE,
            "a restart skips the rest of the block"
        );
    }
}
