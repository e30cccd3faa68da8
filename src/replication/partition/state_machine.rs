//! The state machine of a partition's raft group. The partition's state is its log (records,
//! producer state, transaction index: all written at append, on every replica alike), so
//! applying a committed entry only moves the high watermark: the Kafka offset right after the
//! last applied entry's batch. A snapshot is where retention or compaction cut the raft log: it
//! covers the entries below a Kafka offset and its data is only that offset
//! (`PartitionSnapshot`); raft then purges them, and a follower that lacks them installs the
//! snapshot with the leader's segments below that offset, streamed before it
//! (`snapshot_files.rs`; none after retention: the follower starts its log there).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, Snapshot};
use tokio::sync::watch;

use crate::replication::entry_codec;
use crate::replication::log_store::LogReader;
use crate::replication::persisted::PartitionSnapshot;
use crate::replication::types::{RecordBatch, TypeConfig};

/// The snapshot a replica asked raft to take next (see `PartitionGroup::purge_below`).
pub(crate) type Requested = Arc<Mutex<Option<PartitionSnapshot>>>;

/// A partition group's state machine: the high watermark of applied entries.
#[derive(Debug)]
pub(crate) struct PartitionMachine {
    log: LogReader,
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    high_watermark: watch::Sender<i64>,
    /// The log start the applied DeleteRecords entries asked for (the largest).
    log_start: watch::Sender<i64>,
    requested: Requested,
}

impl PartitionMachine {
    /// A machine that has applied nothing yet; raft installs the saved snapshot and applies
    /// the committed entries after it again after a restart, which only republishes the high
    /// watermark.
    pub(crate) fn new(
        log: LogReader,
        high_watermark: watch::Sender<i64>,
        log_start: watch::Sender<i64>,
        requested: Requested,
    ) -> PartitionMachine {
        PartitionMachine {
            log,
            last_applied: None,
            membership: StoredMembershipOf::<TypeConfig>::default(),
            high_watermark,
            log_start,
            requested,
        }
    }

    fn publish(&self, end: i64) {
        // A high watermark never moves back.
        self.high_watermark.send_if_modified(|hw| {
            let moved = end > *hw;
            *hw = (*hw).max(end);
            moved
        });
    }
}

fn snapshot_of(saved: PartitionSnapshot) -> SnapshotOf<TypeConfig, Bytes> {
    Snapshot {
        snapshot: saved.data(),
        meta: saved.meta,
    }
}

impl RaftStateMachine<TypeConfig> for PartitionMachine {
    type SnapshotData = Bytes;
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            self.last_applied = Some(entry.log_id);
            match &entry.payload {
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembershipOf::<TypeConfig>::new(
                        Some(entry.log_id),
                        membership.clone(),
                    );
                }
                // The replica's task moves its log start (a purge, then a cut: see
                // `PartitionGroup::advance_log_start`); nothing is done here in apply.
                EntryPayload::Normal(RecordBatch(batch)) => {
                    if let Some(offset) = entry_codec::log_start_of(batch) {
                        self.log_start.send_if_modified(|wanted| {
                            let moved = offset > *wanted;
                            *wanted = (*wanted).max(offset);
                            moved
                        });
                    }
                }
                EntryPayload::Blank => {}
            }
            // Committed entries are in the local log (raft applies only what it holds), so
            // their end offset is known.
            if let Some(end) = self.log.offset_after(entry.log_id.index) {
                self.publish(end);
            }
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        let requested = self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Builder {
            log: self.log.clone(),
            requested,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Bytes,
    ) -> Result<(), io::Error> {
        let next_offset = PartitionSnapshot::next_offset_of(&snapshot)?;
        let saved = PartitionSnapshot {
            meta: meta.clone(),
            next_offset,
        };
        self.log.install_snapshot(saved).await?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish(next_offset);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Bytes>>, io::Error> {
        Ok(self.log.read_snapshot()?.map(snapshot_of))
    }
}

/// Takes the snapshot a replica asked for (saved before raft purges what it covers); without
/// one, hands back the snapshot raft already has, so nothing more is purged.
#[derive(Debug)]
pub(crate) struct Builder {
    log: LogReader,
    requested: Option<PartitionSnapshot>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = Bytes;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Bytes>, io::Error> {
        if let Some(requested) = self.requested.take() {
            self.log.save_snapshot(requested.clone()).await?;
            return Ok(snapshot_of(requested));
        }
        Ok(match self.log.read_snapshot()? {
            Some(saved) => snapshot_of(saved),
            None => Snapshot {
                meta: SnapshotMetaOf::<TypeConfig>::default(),
                snapshot: Bytes::new(),
            },
        })
    }
}
