//! Producer-id allocation: ids come from blocks reserved in the durable counter
//! (`storage::ProducerIdStore`), so an id is never handed out twice, even across a crash.
//! A cluster will reserve blocks through the controller instead; callers do not change.

use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::error::{Error, Result};
use crate::storage;

/// Ids reserved per block (Kafka's `ProducerIdsBlock` size).
const BLOCK_SIZE: i64 = 1000;

/// Hands out producer ids from durable blocks.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: storage::ProducerIdStore,
    /// What is left of the current block.
    block: Range<i64>,
}

impl ProducerIds {
    /// Opens the counter in `data_dir`; the first id comes from a new block.
    pub(crate) fn open(data_dir: &Path) -> Result<ProducerIds> {
        let store =
            storage::ProducerIdStore::open(data_dir).map_err(|source| Error::Catalog { source })?;
        Ok(ProducerIds {
            inner: Mutex::new(Inner { store, block: 0..0 }),
        })
    }

    /// A producer id never handed out before.
    pub(crate) fn next(&self) -> Result<i64> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
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
