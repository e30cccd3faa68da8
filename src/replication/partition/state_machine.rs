//! The state machine of a partition's raft group. The partition's state is its log (records,
//! producer state, transaction index: all written at append, on every replica alike), so
//! applying a committed entry only moves the high watermark: the Kafka offset right after the
//! last applied entry's batch. Snapshots carry no data, and none is ever needed: the group
//! keeps every entry (no automatic snapshot or purge), so a follower always catches up from
//! the log.

use std::io;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, Snapshot, SnapshotMeta};
use tokio::sync::watch;

use crate::replication::log_store::LogReader;
use crate::replication::types::TypeConfig;

/// A partition group's state machine: the high watermark of applied entries.
#[derive(Debug)]
pub(crate) struct PartitionMachine {
    log: LogReader,
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    high_watermark: watch::Sender<i64>,
}

impl PartitionMachine {
    /// A machine that has applied nothing yet; raft applies the committed entries again after
    /// a restart, which only republishes the high watermark.
    pub(crate) fn new(log: LogReader, high_watermark: watch::Sender<i64>) -> PartitionMachine {
        PartitionMachine {
            log,
            last_applied: None,
            membership: StoredMembershipOf::<TypeConfig>::default(),
            high_watermark,
        }
    }

    fn meta(&self) -> SnapshotMetaOf<TypeConfig> {
        SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
        }
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
            if let EntryPayload::Membership(membership) = &entry.payload {
                self.membership =
                    StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership.clone());
            }
            // Committed entries are in the local log (raft applies only what it holds), so
            // their end offset is known; a high watermark never moves back.
            if let Some(end) = self.log.offset_after(entry.log_id.index) {
                self.high_watermark.send_if_modified(|hw| {
                    let moved = end > *hw;
                    *hw = (*hw).max(end);
                    moved
                });
            }
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder { meta: self.meta() }
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMetaOf<TypeConfig>,
        _snapshot: Bytes,
    ) -> Result<(), io::Error> {
        // Leaders never purge their log, so they never send one; a peer that does is wrong.
        Err(io::Error::other(
            "partition groups do not install snapshots (every follower catches up from the log)",
        ))
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Bytes>>, io::Error> {
        Ok(None)
    }
}

/// Builds the data-less snapshot of the applied position (openraft asks for one only when a
/// snapshot policy says so; partition groups set none).
#[derive(Debug)]
pub(crate) struct Builder {
    meta: SnapshotMetaOf<TypeConfig>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = Bytes;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Bytes>, io::Error> {
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Bytes::new(),
        })
    }
}
