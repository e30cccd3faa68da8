//! openraft's `RaftLogStorage` and `RaftLogReader` over a partition's segment log: storage work
//! runs on the blocking pool under one mutex per partition, append fsyncs go through the group
//! commit flusher. The log IS the partition log (DESIGN.md decision 1).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, Range, RangeBounds};
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use tokio::sync::{mpsc, watch};
#[cfg(test)]
use tokio::task::JoinHandle;

use super::error::Error;
use super::flusher::{self, AppendedBatches, Shared};
use super::persisted::{self, PartitionSnapshot};
use super::raft_log::RaftLog;
use super::types::{Entry, LogId, NodeId, TypeConfig, Vote};
use crate::limits;
use crate::storage::Log;

/// The raft log store of one partition. Dropping it (and its readers) stops its flusher; the
/// partition log is then left to recovery at its next open (openraft owns the store until it
/// drops it), or closed cleanly by [`LogStore::close`] in tests.
#[derive(Debug)]
pub(crate) struct LogStore {
    shared: Arc<Shared>,
    flush_queue: mpsc::Sender<IOFlushed<TypeConfig>>,
    /// The flusher task, awaited by [`LogStore::close`]; elsewhere it ends on its own once
    /// `flush_queue` is dropped.
    #[cfg(test)]
    flusher: JoinHandle<()>,
}

/// A reader of the same log, for openraft's replication tasks.
#[derive(Clone, Debug)]
pub(crate) struct LogReader {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Takes over an opened partition log of broker `node_id` (its vote, raft log start and
    /// index map are read or rebuilt here, on the blocking pool) and starts its flusher. Needs
    /// a tokio runtime.
    pub(crate) async fn open(log: Log, node_id: NodeId) -> Result<LogStore, Error> {
        let raft_log = tokio::task::spawn_blocking(move || RaftLog::open(log, node_id))
            .await
            .map_err(Error::BlockingTask)??;
        let shared = Shared::new(raft_log);
        let (flush_queue, flusher) = flusher::spawn(Arc::clone(&shared));
        #[cfg(not(test))]
        drop(flusher);
        Ok(LogStore {
            shared,
            flush_queue,
            #[cfg(test)]
            flusher,
        })
    }

    /// Stops the flusher (after it completed every queued callback) and closes the partition
    /// log cleanly (fsync, clean marker). Fails if a reader is still alive.
    #[cfg(test)]
    pub(crate) async fn close(self) -> Result<(), Error> {
        let LogStore {
            shared,
            flush_queue,
            flusher,
        } = self;
        drop(flush_queue);
        flusher.await.map_err(Error::BlockingTask)?;
        let shared = Arc::into_inner(shared).ok_or(Error::ReadersAlive)?;
        let raft_log = shared.into_inner();
        blocking(move || Ok(raft_log.into_log().close()?)).await
    }

    /// A reader of this log (it shares the log, and keeps it from closing while alive).
    pub(crate) fn reader(&self) -> LogReader {
        LogReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Runs `step` with the raft log locked, on the blocking pool.
async fn locked<T: Send + 'static>(
    shared: &Arc<Shared>,
    step: impl FnOnce(&mut RaftLog) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let shared = Arc::clone(shared);
    blocking(move || step(&mut shared.lock())).await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::BlockingTask)?
}

/// The half-open index range of `range`.
fn index_range(range: &impl RangeBounds<u64>) -> Range<u64> {
    let start = match range.start_bound() {
        Bound::Included(&start) => start,
        Bound::Excluded(&start) => start.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&end) => end.saturating_add(1),
        Bound::Excluded(&end) => end,
        Bound::Unbounded => u64::MAX,
    };
    start..end
}

impl LogReader {
    /// Runs `read` on the partition log under its lock; keep it short (appends wait).
    pub(crate) fn with_log<T>(&self, read: impl FnOnce(&Log) -> T) -> T {
        read(self.shared.lock().log())
    }

    /// Runs `change` on the partition log under its lock: in-memory state only (the raft log
    /// itself changes through raft).
    pub(crate) fn with_log_mut<T>(&self, change: impl FnOnce(&mut Log) -> T) -> T {
        change(self.shared.lock().log_mut())
    }

    /// The Kafka offset of the first raft entry; the batches below are no raft entries.
    pub(crate) fn raft_start_offset(&self) -> i64 {
        self.shared.lock().first_offset()
    }

    /// The Kafka offset of the batch of raft entry `index`, if the log holds it.
    pub(crate) fn offset_of(&self, index: u64) -> Option<i64> {
        self.shared.lock().offset_of(index)
    }

    /// The Kafka offset right after raft entry `index`'s batch, if the log holds `index`.
    pub(crate) fn offset_after(&self, index: u64) -> Option<i64> {
        self.shared.lock().offset_after(index)
    }

    /// OffsetForLeaderEpoch: the largest term at or below `requested` and where the next
    /// term starts (see `IndexMap::epoch_end`).
    pub(crate) fn epoch_end(&self, requested: u64) -> Option<(u64, i64)> {
        self.shared.lock().epoch_end(requested)
    }

    /// The Kafka offset of the raft entry whose batch holds offset `offset`, if the raft log
    /// holds one.
    pub(crate) fn batch_start_of(&self, offset: i64) -> Option<i64> {
        let raft_log = self.shared.lock();
        let holding = raft_log.last_entry_before(offset.checked_add(1)?)?;
        raft_log.offset_of(holding.index)
    }

    /// The last entry whose batch starts below Kafka offset `offset`, if the log holds one.
    pub(crate) fn last_entry_before(&self, offset: i64) -> Option<LogId> {
        self.shared.lock().last_entry_before(offset)
    }

    /// The last snapshot saved beside the log.
    pub(crate) fn read_snapshot(&self) -> Result<Option<PartitionSnapshot>, Error> {
        persisted::read_snapshot(self.shared.lock().log())
    }

    /// Saves `snapshot` (durably) and, unless the log holds the entry it ends at, empties the
    /// log to go on where the snapshot does (see `RaftLog::install_snapshot`).
    pub(crate) async fn install_snapshot(&self, snapshot: PartitionSnapshot) -> Result<(), Error> {
        locked(&self.shared, move |raft_log| {
            if let Some(purged) = snapshot.meta.last_log_id {
                raft_log.install_snapshot(purged, snapshot.next_offset)?;
            }
            persisted::write_snapshot(raft_log.log(), &snapshot)
        })
        .await
    }

    /// Saves `snapshot` (durably) as the one raft knows, before raft purges what it covers.
    pub(crate) async fn save_snapshot(&self, snapshot: PartitionSnapshot) -> Result<(), Error> {
        locked(&self.shared, move |raft_log| {
            persisted::write_snapshot(raft_log.log(), &snapshot)
        })
        .await
    }

    /// The record batches (normal entries) appended since the log opened, counted once
    /// readable, and their changes.
    pub(crate) fn appended_batches(&self) -> watch::Receiver<AppendedBatches> {
        self.shared.appended_batches()
    }

    async fn read(&self, range: Range<u64>, bytes_max: usize) -> Result<Vec<Entry>, io::Error> {
        Ok(locked(&self.shared, move |raft_log| {
            raft_log.read(range, bytes_max)
        })
        .await?)
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.read(index_range(&range), usize::MAX).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.lock().vote())
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        self.read(start..end, limits::RAFT_LOG_READ_BYTES_MAX).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.reader().try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.lock().vote())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let raft_log = self.shared.lock();
        Ok(LogState {
            last_purged_log_id: raft_log.last_purged(),
            last_log_id: raft_log.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        Ok(locked(&self.shared, move |raft_log| raft_log.save_vote(&vote)).await?)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let now_ms = now_ms();
        let normal = |entry: &&Entry| matches!(entry.payload, openraft::EntryPayload::Normal(_));
        let batches = entries.iter().filter(normal).count() as u64;
        let last_batch = entries.iter().rfind(normal).map(|entry| entry.log_id.index);
        let last = locked(&self.shared, move |raft_log| {
            raft_log.append(&entries, now_ms)?;
            Ok(last_batch.and_then(|index| {
                Some((raft_log.offset_of(index)?, raft_log.offset_after(index)?))
            }))
        })
        .await?;
        self.shared.count_appended_batches(batches, last);
        self.flush_queue
            .send(callback)
            .await
            .map_err(|_| Error::FlusherStopped)?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(locked(&self.shared, move |raft_log| {
            raft_log.truncate_after(last_log_id)
        })
        .await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(locked(&self.shared, move |raft_log| raft_log.purge(log_id)).await?)
    }
}

/// Wall-clock milliseconds: segment roll ages, and the timestamp of a controller command's batch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
