//! The read side: fetch stored batches up to the high watermark, locate offsets by position or
//! time, move the log start offset, and describe the data directory.

#[cfg(test)]
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::error::{Error, Result};
use super::{Broker, LEADER_EPOCH};
use crate::storage;

/// How often a replicated partition's leader tries its log start move again while raft has
/// not purged the entries below it yet.
const LOG_START_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Stored batches of one partition and the watermarks reported with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedPartition {
    pub(crate) records: Bytes,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    /// read_committed: the aborted transactions the records overlap (producer id, first offset).
    pub(crate) aborted_transactions: Option<Vec<(i64, i64)>>,
}

/// Which records a reader may see (Kafka's isolation level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Everything below the last stable offset, with the aborted transactions to skip.
    ReadCommitted,
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetSpec {
    Earliest,
    Latest,
    MaxTimestamp,
    Timestamp(i64),
}

/// The answer to a ListOffsets query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListedOffset {
    /// An exact offset; timestamp -1 for earliest and latest.
    Exact { offset: i64, timestamp: i64 },
    /// The record sought is inside this stored batch; the caller decodes its records.
    InBatch { batch: Bytes },
    /// No record matches: offset -1 and timestamp -1 on the wire.
    NotFound,
}

/// One partition's directory in DescribeLogDirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionDirInfo {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) size_bytes: u64,
}

/// The data directory in DescribeLogDirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogDirInfo {
    pub(crate) path: String,
    pub(crate) partitions: Vec<PartitionDirInfo>,
}

impl Broker {
    /// How many fetch reads the partition served so far (tests count wake-ups with it).
    #[cfg(test)]
    pub(crate) fn fetch_read_count(&self, topic: &str, partition: i32) -> usize {
        self.partition(topic, partition)
            .map_or(0, |(_, p)| p.fetch_read_count.load(Ordering::Relaxed))
    }

    /// Whole stored batches from the one containing `offset`, below the high watermark.
    pub(crate) fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<FetchedPartition> {
        self.fetch_isolated(
            topic,
            partition,
            offset,
            max_bytes,
            min_one,
            Isolation::ReadUncommitted,
        )
    }

    /// [`Broker::fetch`] at an isolation level: read_committed stops at the last stable
    /// offset and reports the aborted transactions of what it returns. The partition lock is
    /// held only to plan the read (index lookup, positions); the bytes are read without it,
    /// so a slow read never holds up appends, flushes or other reads of the partition.
    /// Blocking I/O: async callers run it on the blocking pool.
    pub(crate) fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: Isolation,
    ) -> Result<FetchedPartition> {
        let (_, target) = self.partition(topic, partition)?;
        #[cfg(test)]
        target.fetch_read_count.fetch_add(1, Ordering::Relaxed);
        let high_watermark = target.high_watermark();
        let mut read_offset = offset;
        let (records, planned) = loop {
            let planned = target
                .read_log(|log| {
                    let read = (read_offset, max_bytes, min_one);
                    plan_fetch(log, offset, read, high_watermark, isolation)
                })
                .map_err(out_of_range)?;
            let records = planned
                .plan
                .read()
                .map_err(|source| target.storage_error(source))?;
            // Compaction's header-only batches alone are no answer: read on past them.
            match storage::past_header_only_batches(&records) {
                Some(next) if next < planned.visible_end && next < planned.log_end_offset => {
                    read_offset = next;
                }
                _ => break (records, planned),
            }
        };
        let aborted_transactions = match isolation {
            Isolation::ReadUncommitted => None,
            Isolation::ReadCommitted => {
                let upper = end_of_batches(&records).unwrap_or(offset);
                let aborted = target.read_log(|log| Ok(log.aborted_transactions(offset, upper)))?;
                Some(
                    aborted
                        .into_iter()
                        .map(|aborted| (aborted.producer_id, aborted.first_offset))
                        .collect(),
                )
            }
        };
        Ok(FetchedPartition {
            records,
            high_watermark,
            last_stable_offset: planned.last_stable_offset,
            log_start_offset: planned.log_start_offset,
            aborted_transactions,
        })
    }

    /// Resolves a ListOffsets query against the visible part of the log.
    pub(crate) fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset> {
        self.list_offset_isolated(topic, partition, spec, Isolation::ReadUncommitted)
    }

    /// [`Broker::list_offset`] at an isolation level: read_committed sees up to the last stable
    /// offset (what Kafka answers ListOffsets with isolation_level=1).
    pub(crate) fn list_offset_isolated(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<ListedOffset> {
        let (_, target) = self.partition(topic, partition)?;
        let high_watermark = target.high_watermark();
        target.read_log(|log| {
            let high_watermark = match isolation {
                Isolation::ReadUncommitted => high_watermark,
                Isolation::ReadCommitted => log.last_stable_offset(high_watermark),
            };
            Ok(match spec {
                OffsetSpec::Earliest => ListedOffset::Exact {
                    offset: log.log_start_offset(),
                    timestamp: -1,
                },
                OffsetSpec::Latest => ListedOffset::Exact {
                    offset: high_watermark,
                    timestamp: -1,
                },
                OffsetSpec::MaxTimestamp => log
                    .max_timestamp(high_watermark)?
                    .map_or(ListedOffset::NotFound, |hit| ListedOffset::InBatch {
                        batch: hit.batch,
                    }),
                OffsetSpec::Timestamp(ts) => log
                    .find_timestamp(ts, high_watermark)?
                    .map_or(ListedOffset::NotFound, |hit| ListedOffset::InBatch {
                        batch: hit.batch,
                    }),
            })
        })
    }

    /// The end offset of `leader_epoch`: the largest epoch <= it and where that epoch ends.
    /// Until replication there is one epoch, so older or newer epochs are undefined (-1, -1).
    pub(crate) fn leader_epoch_end_offset(
        &self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
    ) -> Result<(i32, i64)> {
        let (_, target) = self.partition(topic, partition)?;
        if let Some(group) = target.raft() {
            let requested = u64::try_from(leader_epoch).unwrap_or(0);
            return Ok(group
                .epoch_end(requested)
                .and_then(|(term, end)| Some((i32::try_from(term).ok()?, end)))
                .filter(|_| leader_epoch >= 0)
                .unwrap_or((-1, -1)));
        }
        if leader_epoch != LEADER_EPOCH {
            return Ok((-1, -1));
        }
        target.with_log(|log| Ok((LEADER_EPOCH, log.log_end_offset())))
    }

    /// Deletes records below `before_offset` (-1 = the high watermark); returns the new log
    /// start offset. A replicated partition's leader proposes the move to every replica and
    /// answers once its own log start moved (within `timeout`).
    pub(crate) async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        before_offset: i64,
        timeout: std::time::Duration,
    ) -> Result<i64> {
        let (_, target) = self.partition(topic, partition)?;
        let high_watermark = target.high_watermark();
        let before = if before_offset == -1 {
            high_watermark
        } else {
            before_offset
        };
        if let Some(group) = target.raft() {
            let log_start = group.with_log(storage::Log::log_start_offset);
            if before < 0 || before > high_watermark {
                return Err(Error::OffsetOutOfRange {
                    offset: before,
                    log_start_offset: log_start,
                    log_end_offset: high_watermark,
                });
            }
            if before <= log_start {
                return Ok(log_start);
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let proposed = tokio::time::timeout_at(deadline, group.propose_log_start(before));
            match proposed.await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    return Err(super::produce::proposal_failed(topic, partition, error));
                }
                Err(_) => {
                    return Err(Error::Cluster {
                        reason: format!("{topic}-{partition}: DeleteRecords not committed in time"),
                    });
                }
            }
            // Every replica moves its own log start once it applied the entry (the leader's
            // purge may wait for a replication still reading the entries).
            while !group.advance_log_start(before).await {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::Cluster {
                        reason: format!("{topic}-{partition}: the log start did not move in time"),
                    });
                }
                tokio::time::sleep(LOG_START_RETRY).await;
            }
            return Ok(group.with_log(storage::Log::log_start_offset));
        }
        target
            .with_log(|log| {
                if before < 0 || before > high_watermark {
                    return Err(storage::Error::OffsetOutOfRange {
                        offset: before,
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: high_watermark,
                    });
                }
                if before > log.log_start_offset() {
                    log.delete_records_before(before)?;
                }
                Ok(log.log_start_offset())
            })
            .map_err(out_of_range)
    }

    /// Sizes of every partition in the data directory.
    pub(crate) fn log_dirs(&self) -> LogDirInfo {
        let mut partitions = Vec::new();
        for topic in self.topics_read().values() {
            for partition in &topic.partitions {
                if let Ok(size_bytes) = partition.read_log(|log| Ok(log.size_bytes())) {
                    partitions.push(PartitionDirInfo {
                        topic: topic.name.clone(),
                        partition: partition.index,
                        size_bytes,
                    });
                }
            }
        }
        let path = std::path::absolute(&self.settings.data_dir)
            .unwrap_or_else(|_| self.settings.data_dir.clone());
        LogDirInfo {
            path: path.display().to_string(),
            partitions,
        }
    }
}

/// What a fetch takes from the log under the partition lock: where to read, and the offsets
/// reported with the records.
struct PlannedFetch {
    plan: storage::ReadPlan,
    visible_end: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    log_end_offset: i64,
}

/// Checks that `offset` (where the fetch asked to start) is in the log and plans the read of
/// `(read_offset, max_bytes, min_one)` up to what `isolation` lets the reader see.
fn plan_fetch(
    log: &storage::Log,
    offset: i64,
    (read_offset, max_bytes, min_one): (i64, usize, bool),
    high_watermark: i64,
    isolation: Isolation,
) -> storage::Result<PlannedFetch> {
    let log_start_offset = log.log_start_offset();
    let log_end_offset = log.log_end_offset();
    if offset < log_start_offset || offset > log_end_offset {
        return Err(storage::Error::OffsetOutOfRange {
            offset,
            log_start_offset,
            log_end_offset,
        });
    }
    debug_assert!(
        read_offset >= offset,
        "a fetch only reads on past header-only batches"
    );
    let last_stable_offset = log.last_stable_offset(high_watermark);
    let visible_end = match isolation {
        Isolation::ReadUncommitted => high_watermark,
        Isolation::ReadCommitted => last_stable_offset,
    };
    Ok(PlannedFetch {
        plan: log.plan_read(read_offset, visible_end, max_bytes, min_one)?,
        visible_end,
        last_stable_offset,
        log_start_offset,
        log_end_offset,
    })
}

/// Lifts a storage out-of-range error to the broker's own variant.
fn out_of_range(err: Error) -> Error {
    match err {
        Error::Storage {
            source:
                storage::Error::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    log_end_offset,
                },
            ..
        } => Error::OffsetOutOfRange {
            offset,
            log_start_offset,
            log_end_offset,
        },
        other => other,
    }
}

/// The offset after the last whole batch in `records`, if any.
fn end_of_batches(records: &[u8]) -> Option<i64> {
    let mut rest = records;
    let mut end = None;
    while let Ok(header) = storage::BatchHeader::parse(rest) {
        end = Some(header.last_offset() + 1);
        rest = rest.get(header.total_len()..).unwrap_or_default();
    }
    end
}
