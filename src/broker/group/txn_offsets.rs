//! Transactional offset commits (TxnOffsetCommit, `send_offsets_to_transaction`): written as
//! a transactional batch of the producer to the group's offsets partition, kept pending per
//! producer id, and made visible (or dropped) when the transaction's COMMIT (or ABORT) marker
//! lands on that partition. Marker and commits go through the journal, so the in-memory state
//! stays a replay of the log: pending records, then their marker, in log order.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::journal::{Effect, OffsetKey, WriteFailure, WriteReply};
use super::offsets::offset_record;
use super::record::{self, CommittedOffset, Key};
use super::store::{OFFSETS_TOPIC, partition_for};
use super::{CommitPartition, GroupEntry, State, wait_stored};
use crate::broker::error::{Error, Result};
use crate::broker::idempotence::Checks;
use crate::broker::txn::MarkerSpec;
use crate::broker::{Acks, Broker, TxnError, now_ms};
use crate::storage::{self, Origin};

/// First TxnOffsetCommit version of transactions v2: the offsets partition joins the
/// transaction by itself (KIP-890).
const TRANSACTIONS_V2_VERSION: i16 = 5;
/// First TxnOffsetCommit version whose clients understand TRANSACTION_ABORTABLE.
const TRANSACTION_ABORTABLE_VERSION: i16 = 4;

/// One TxnOffsetCommit: the transaction it belongs to and the group member committing.
#[derive(Debug, Clone)]
pub(crate) struct TxnCommit {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) instance_id: Option<String>,
    pub(crate) version: i16,
}

/// Keeps a producer's transactional commits of `entry`'s group until its marker.
pub(super) fn apply_pending(
    entry: &mut GroupEntry,
    producer_id: i64,
    changes: Vec<(OffsetKey, CommittedOffset)>,
) {
    entry
        .pending_txn
        .entry(producer_id)
        .or_default()
        .extend(changes);
}

/// A producer's transaction ended on `partition`: its pending commits of every group of that
/// partition become committed offsets (COMMIT) or are dropped (ABORT).
pub(super) fn complete(
    groups: &mut BTreeMap<String, GroupEntry>,
    partition: i32,
    partitions: i32,
    producer_id: i64,
    commit: bool,
) {
    for (group_id, entry) in groups.iter_mut() {
        if partition_for(group_id, partitions) != partition {
            continue;
        }
        let Some(pending) = entry.pending_txn.remove(&producer_id) else {
            continue;
        };
        if commit {
            entry.offsets.extend(pending);
        }
    }
}

/// Rebuilding on start: a transactional offset record joins its producer's pending commits.
pub(super) fn load_pending(
    groups: &mut BTreeMap<String, GroupEntry>,
    producer_id: i64,
    stored: storage::Record,
    now: i64,
) {
    let decoded = stored
        .key
        .as_deref()
        .and_then(Key::decode)
        .and_then(|(key, format)| {
            let value = stored.value.as_deref()?;
            Some((key, record::decode_offset(value, format)?))
        });
    match decoded {
        Some((
            Key::Offset {
                group,
                topic,
                partition,
            },
            value,
        )) => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| GroupEntry::new(&group, now));
            apply_pending(entry, producer_id, vec![((topic, partition), value)]);
        }
        _ => tracing::warn!(
            producer_id,
            "skipping an unreadable transactional offsets record"
        ),
    }
}

/// Whether `key` of `entry` has a transactional commit waiting for its marker.
pub(super) fn is_unstable(entry: &GroupEntry, key: &OffsetKey) -> bool {
    entry
        .pending_txn
        .values()
        .any(|pending| pending.contains_key(key))
}

impl Broker {
    /// TxnOffsetCommit: one result per partition, in order. The offsets partition must be in
    /// the producer's transaction (verified with the coordinator; added from v5 on), the member
    /// is checked as Kafka does for transactional commits (an empty member id and generation -1
    /// are accepted), and the commits stay pending until the transaction's marker.
    pub(crate) async fn commit_txn_offsets(
        &self,
        commit: TxnCommit,
        partitions: Vec<CommitPartition>,
    ) -> Result<Vec<Result<()>>> {
        self.check_group(&commit.group_id)?;
        let group_id = commit.group_id.as_str();
        let offsets_partition = partition_for(group_id, self.offsets_partitions());
        let guard = self
            .verify_offsets_partition(&commit, offsets_partition)
            .await?;
        self.sync_offsets_before_roll(group_id).await;
        let now = now_ms();
        let mut results: Vec<Result<()>> = Vec::with_capacity(partitions.len());
        let mut accepted = Vec::new();
        let stored = {
            let mut state = self.groups.lock();
            if let Some(entry) = state.groups.get(group_id) {
                check_member(entry, &commit)?;
            }
            let metadata_max = self.settings.groups.offset_metadata_bytes_max;
            let mut records = Vec::new();
            let mut changes = Vec::new();
            for p in partitions {
                let check = if p.metadata.as_ref().is_some_and(|m| m.len() > metadata_max) {
                    Err(Error::OffsetMetadataTooLarge {
                        group: group_id.to_owned(),
                        bytes_max: metadata_max,
                    })
                } else {
                    self.partition_exists(&p.topic, p.partition)
                };
                if check.is_ok() {
                    let value = CommittedOffset {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        metadata: p.metadata.clone(),
                        commit_timestamp_ms: now,
                        expire_timestamp_ms: -1,
                    };
                    records.push(offset_record(group_id, &p.topic, p.partition, Some(&value)));
                    accepted.push(results.len());
                    changes.push(((p.topic, p.partition), value));
                }
                results.push(check);
            }
            if records.is_empty() {
                return Ok(results);
            }
            let (reply, stored) = oneshot::channel();
            let producer = storage::Producer {
                producer_id: commit.producer_id,
                producer_epoch: commit.producer_epoch,
                // Kafka's coordinator writes sequence 0: only the epoch is checked.
                base_sequence: 0,
                is_transactional: true,
                is_control: false,
            };
            let batch = storage::build_with(&records, now, producer);
            let checks = Checks {
                origin: Origin::Coordinator,
                guard,
            };
            let appended = if state.journal.is_full() {
                Err(Error::CoordinatorNotAvailable {
                    group: group_id.to_owned(),
                })
            } else {
                self.append_checked(
                    OFFSETS_TOPIC,
                    offsets_partition,
                    Bytes::from(batch),
                    Acks::All,
                    checks,
                )
            };
            let effect = Effect::TxnOffsets {
                group: group_id.to_owned(),
                producer_id: commit.producer_id,
                changes,
            };
            self.enqueue_or_fail(&mut state, offsets_partition, appended, effect, Some(reply));
            stored
        };
        if let Err(error) = wait_stored(stored, group_id).await {
            tracing::warn!(group = group_id, %error, "transactional offset commit failed");
            let failure = WriteFailure::of(&error);
            for index in accepted {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Err(failure.error(group_id));
                }
            }
        }
        Ok(results)
    }

    /// KIP-890 for the offsets partition: verified (v0-v4) or added (v5+) unless the producer's
    /// transaction is already open there; returns the verification guard.
    async fn verify_offsets_partition(
        &self,
        commit: &TxnCommit,
        partition: i32,
    ) -> Result<Option<u64>> {
        let (_, target) = self.partition(OFFSETS_TOPIC, partition)?;
        let add = commit.version >= TRANSACTIONS_V2_VERSION;
        let guard = target.with_leader_state(|log| {
            Ok(log.start_transaction_verification(
                commit.producer_id,
                commit.producer_epoch,
                0,
                add,
                now_ms(),
            ))
        })?;
        if guard.is_some() {
            let tp = (OFFSETS_TOPIC.to_owned(), partition);
            self.verify_transaction(
                &commit.transactional_id,
                commit.producer_id,
                commit.producer_epoch,
                &tp,
                add,
            )
            .await
            .map_err(|error| Error::Transaction {
                transactional_id: commit.transactional_id.clone(),
                error: match error {
                    TxnError::TransactionAbortable
                        if commit.version < TRANSACTION_ABORTABLE_VERSION =>
                    {
                        TxnError::InvalidTxnState
                    }
                    other => other,
                },
            })?;
        }
        Ok(guard)
    }

    /// Appends a transaction marker to an offsets partition through the journal: pending
    /// commits of the producer become visible (or vanish) in log order once it is durable.
    pub(crate) fn write_offsets_marker(
        &self,
        partition: i32,
        marker: MarkerSpec,
    ) -> impl Future<Output = Result<()>> + use<> {
        let partitions = self.offsets_partitions();
        let stored = {
            let mut state = self.groups.lock();
            let appended = self.append_marker(OFFSETS_TOPIC, partition, marker);
            let (reply, stored) = oneshot::channel();
            let effect = Effect::TxnCompletion {
                partition,
                partitions,
                producer_id: marker.producer_id,
                commit: marker.commit,
            };
            self.enqueue_or_fail(&mut state, partition, appended, effect, Some(reply));
            stored
        };
        async move { wait_stored(stored, OFFSETS_TOPIC).await }
    }

    /// Queues `effect` behind a successful append, or fails it at once.
    fn enqueue_or_fail(
        &self,
        state: &mut State,
        partition: i32,
        appended: Result<crate::broker::PendingProduce>,
        effect: Effect,
        reply: Option<WriteReply>,
    ) {
        match appended {
            Ok(pending) => state.enqueue(&self.groups.state, partition, pending, effect, reply),
            Err(error) => {
                tracing::error!(partition, %error, "appending to the offsets topic failed");
                state.fail(effect, reply, WriteFailure::of(&error));
            }
        }
    }

    /// Whether OffsetFetch with `require_stable` must answer UNSTABLE_OFFSET_COMMIT for `key`.
    pub(crate) fn is_offset_unstable(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let state = self.groups.lock();
        let key = (topic.to_owned(), partition);
        state
            .groups
            .get(group_id)
            .is_some_and(|entry| is_unstable(entry, &key))
    }
}

/// Kafka's member checks of a transactional commit (GroupCoordinator.doTxnCommitOffsets): a
/// fenced static instance, a member id that is given but unknown, a generation that is given but
/// not the group's.
fn check_member(entry: &GroupEntry, commit: &TxnCommit) -> Result<()> {
    let group = &entry.group;
    if !entry.consumer.members.is_empty() {
        if commit.member_id.is_empty() && commit.generation < 0 {
            return Ok(());
        }
        return entry
            .consumer
            .check_commit(&commit.group_id, &commit.member_id, commit.generation);
    }
    if commit.instance_id.is_some() || !commit.member_id.is_empty() {
        group.check_member(&commit.member_id, commit.instance_id.as_deref())?;
    }
    if commit.generation >= 0 && commit.generation != group.generation {
        return Err(group.illegal_generation(commit.generation));
    }
    Ok(())
}
