//! Group and offset writes in log order. Every change is appended to its offsets partition under
//! the coordinator lock and queued here with its effect; once the append is durable the effects
//! are applied in queue (= log) order, and a failed write is undone, so the in-memory offsets
//! always equal a replay of the log and an acknowledged commit is visible and never lost.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use super::classic::StaticRevert;
use super::record::CommittedOffset;
use super::{GroupEntry, State, now_ms, txn_offsets};
use crate::broker::error::{Error, Result};
use crate::broker::{PendingProduce, ProduceOutcome};
use crate::limits::GROUP_PENDING_WRITES_MAX;

/// A (topic, partition) whose committed offset a group keeps.
pub(super) type OffsetKey = (String, i32);

/// Why a group or offset record was not stored, as Kafka's coordinator classifies the append
/// error (`appendGroupMetadataErrorToResponseError`): it becomes the error every waiting
/// request of that write is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFailure {
    /// The offsets partition is missing or the coordinator is busy: retry later.
    NotAvailable,
    /// The offsets log stopped accepting writes (a failed write or fsync).
    LogFailed,
    /// The record does not fit in one batch of the offsets topic.
    TooLarge,
}

impl WriteFailure {
    pub(super) fn of(error: &Error) -> WriteFailure {
        match error {
            Error::UnknownTopicOrPartition { .. }
            | Error::NotEnoughReplicas { .. }
            | Error::CoordinatorNotAvailable { .. } => WriteFailure::NotAvailable,
            Error::MessageTooLarge { .. } | Error::RecordListTooLarge { .. } => {
                WriteFailure::TooLarge
            }
            _ => WriteFailure::LogFailed,
        }
    }

    pub(crate) fn error(self, group: &str) -> Error {
        let group = group.to_owned();
        match self {
            WriteFailure::NotAvailable => Error::CoordinatorNotAvailable { group },
            WriteFailure::LogFailed => Error::CoordinatorLogFailed { group },
            WriteFailure::TooLarge => Error::GroupRecordTooLarge { group },
        }
    }
}

/// What a write changes in memory once durable (or undoes if it fails).
#[derive(Debug)]
pub(super) enum Effect {
    /// Committed offsets (`Some`) or their tombstones (`None`), applied to the group's offsets.
    Offsets {
        group: String,
        changes: Vec<(OffsetKey, Option<CommittedOffset>)>,
    },
    /// The leader's assignment of `generation`: the group turns Stable when it is durable and
    /// rebalances if it fails.
    Assignment { group: String, generation: i32 },
    /// A static member took over an old member id; undone if the write fails.
    StaticReplacement {
        group: String,
        revert: Box<StaticRevert>,
    },
    /// A group record with nothing to apply (an empty group, a tombstone); a failure is logged,
    /// as Kafka does: the previous record stays and members that come back rejoin.
    Record { group: String },
    /// Transactional commits of a producer, pending until its transaction's marker.
    TxnOffsets {
        group: String,
        producer_id: i64,
        changes: Vec<(OffsetKey, CommittedOffset)>,
    },
    /// A transaction marker on offsets partition `partition` (of `partitions`): the producer's
    /// pending commits there become committed offsets or are dropped.
    TxnCompletion {
        partition: i32,
        partitions: i32,
        producer_id: i64,
        commit: bool,
    },
}

impl Effect {
    fn group(&self) -> &str {
        match self {
            Effect::Offsets { group, .. }
            | Effect::Assignment { group, .. }
            | Effect::StaticReplacement { group, .. }
            | Effect::Record { group }
            | Effect::TxnOffsets { group, .. } => group,
            // A marker concerns no group in particular.
            Effect::TxnCompletion { .. } => "",
        }
    }
}

/// The answer a waiting request gets once its write settled.
pub(super) type WriteReply = oneshot::Sender<std::result::Result<(), WriteFailure>>;

#[derive(Debug)]
struct Pending {
    seq: u64,
    effect: Effect,
    reply: Option<WriteReply>,
}

/// Writes appended but not yet durable, per offsets partition, in log order.
#[derive(Debug, Default)]
pub(super) struct Journal {
    queues: BTreeMap<i32, VecDeque<Pending>>,
    next_seq: u64,
    len: usize,
}

impl Journal {
    pub(super) fn is_full(&self) -> bool {
        self.len >= GROUP_PENDING_WRITES_MAX
    }

    /// Queues a write just appended to `partition`; returns its sequence number.
    fn push(&mut self, partition: i32, effect: Effect, reply: Option<WriteReply>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        self.queues
            .entry(partition)
            .or_default()
            .push_back(Pending { seq, effect, reply });
        seq
    }

    /// Takes every write of `partition` up to and including `seq`: all are durable once `seq`
    /// is, since durability covers a prefix of the log.
    fn take_durable(&mut self, partition: i32, seq: u64) -> Vec<Pending> {
        let Some(queue) = self.queues.get_mut(&partition) else {
            return Vec::new();
        };
        let count = queue.iter().take_while(|p| p.seq <= seq).count();
        let taken: Vec<Pending> = queue.drain(..count).collect();
        self.len -= taken.len();
        taken
    }

    /// Takes the write `seq` of `partition` if it is still queued.
    fn take_failed(&mut self, partition: i32, seq: u64) -> Option<Pending> {
        let queue = self.queues.get_mut(&partition)?;
        let position = queue.iter().position(|p| p.seq == seq)?;
        let taken = queue.remove(position)?;
        self.len -= 1;
        Some(taken)
    }

    /// Whether a write of `group` is waiting to become durable.
    pub(super) fn has_pending(&self, group: &str) -> bool {
        self.queues
            .values()
            .flatten()
            .any(|p| p.effect.group() == group)
    }

    /// The offsets of `group` that writes not yet durable commit or delete.
    pub(super) fn pending_offset_keys(&self, group: &str) -> Vec<OffsetKey> {
        self.queues
            .values()
            .flatten()
            .filter_map(|p| match &p.effect {
                Effect::Offsets { group: g, changes } if g == group => Some(changes),
                _ => None,
            })
            .flatten()
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// Applies one durable offset change, exactly as a replay of the log does.
pub(super) fn apply_offset(entry: &mut GroupEntry, key: OffsetKey, value: Option<CommittedOffset>) {
    match value {
        Some(value) => {
            entry.offsets.insert(key, value);
        }
        None => {
            entry.offsets.remove(&key);
        }
    }
}

impl State {
    /// Queues `effect` behind the append `pending` to `partition` and spawns the task that
    /// settles it once the append is durable or failed.
    pub(super) fn enqueue(
        &mut self,
        shared: &std::sync::Arc<Mutex<State>>,
        partition: i32,
        pending: PendingProduce,
        effect: Effect,
        reply: Option<WriteReply>,
    ) {
        let seq = self.journal.push(partition, effect, reply);
        let shared = std::sync::Arc::clone(shared);
        tokio::spawn(async move {
            let result = pending.wait().await;
            settle(&shared, partition, seq, result);
        });
    }

    /// Applies a durable write's effect and answers its waiter.
    fn apply(&mut self, effect: Effect, reply: Option<WriteReply>) {
        match effect {
            Effect::Offsets { group, changes } => {
                let now = now_ms();
                let entry = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| GroupEntry::new(&group, now));
                for (key, value) in changes {
                    apply_offset(entry, key, value);
                }
                self.remove_if_unused(&group);
            }
            Effect::Assignment { group, generation } => {
                if let Some(entry) = self.groups.get_mut(&group) {
                    let replies = entry.group.complete_assignment(generation, now_ms());
                    self.deliver(&group, replies);
                }
            }
            Effect::TxnOffsets {
                group,
                producer_id,
                changes,
            } => {
                let now = now_ms();
                let entry = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| GroupEntry::new(&group, now));
                txn_offsets::apply_pending(entry, producer_id, changes);
            }
            Effect::TxnCompletion {
                partition,
                partitions,
                producer_id,
                commit,
            } => {
                txn_offsets::complete(&mut self.groups, partition, partitions, producer_id, commit);
            }
            Effect::StaticReplacement { .. } | Effect::Record { .. } => {}
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(()));
        }
    }

    /// Undoes a failed write's effect and answers its waiter with the failure.
    pub(super) fn fail(
        &mut self,
        effect: Effect,
        reply: Option<WriteReply>,
        failure: WriteFailure,
    ) {
        let group = effect.group().to_owned();
        match effect {
            Effect::Offsets { .. } => {
                tracing::warn!(%group, ?failure, "offset records were not stored");
            }
            Effect::Assignment { generation, .. } => {
                tracing::error!(%group, generation, ?failure,
                    "the group's assignment was not stored; its members rejoin");
                if let Some(entry) = self.groups.get_mut(&group) {
                    let replies =
                        entry
                            .group
                            .fail_assignment(generation, || failure.error(&group), now_ms());
                    self.deliver(&group, replies);
                }
            }
            Effect::StaticReplacement { revert, .. } => {
                tracing::warn!(%group, ?failure,
                    "a static member's new member id was not stored; the old one stays");
                if let Some(entry) = self.groups.get_mut(&group) {
                    entry.group.revert_static_replacement(revert);
                }
            }
            Effect::Record { .. } => {
                tracing::warn!(%group, ?failure, "group record was not stored");
            }
            Effect::TxnOffsets { .. } => {
                tracing::warn!(%group, ?failure, "transactional offset records were not stored");
            }
            Effect::TxnCompletion { partition, .. } => {
                tracing::warn!(partition, ?failure, "a transaction marker was not stored");
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(Err(failure));
        }
    }

    /// Drops a group left with nothing to remember and no write in flight.
    pub(super) fn remove_if_unused(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(GroupEntry::is_unused)
            && !self.journal.has_pending(group)
        {
            self.groups.remove(group);
        }
    }
}

/// Settles write `seq` of `partition`: applies it and every earlier write of the partition
/// once durable, in order; undoes it alone if it failed (later writes fail on their own).
fn settle(shared: &Mutex<State>, partition: i32, seq: u64, result: Result<ProduceOutcome>) {
    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(_) => {
            for pending in state.journal.take_durable(partition, seq) {
                state.apply(pending.effect, pending.reply);
            }
        }
        Err(error) => {
            tracing::error!(partition, %error, "offsets partition write failed");
            if let Some(pending) = state.journal.take_failed(partition, seq) {
                state.fail(pending.effect, pending.reply, WriteFailure::of(&error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(group: &str, partition: i32) -> Effect {
        Effect::Offsets {
            group: group.to_owned(),
            changes: vec![(("t".to_owned(), partition), None)],
        }
    }

    #[test]
    fn durable_writes_come_out_in_log_order_up_to_the_settled_one() {
        let mut journal = Journal::default();
        let a = journal.push(0, offsets("g", 0), None);
        let b = journal.push(0, offsets("g", 1), None);
        let other = journal.push(1, offsets("h", 0), None);
        let c = journal.push(0, offsets("g", 2), None);
        assert!(journal.has_pending("h"));
        let taken: Vec<u64> = journal.take_durable(0, b).iter().map(|p| p.seq).collect();
        assert_eq!(taken, vec![a, b]);
        assert_eq!(journal.pending_offset_keys("g"), vec![("t".to_owned(), 2)]);
        assert!(journal.take_durable(0, b).is_empty(), "already applied");
        assert!(journal.take_failed(0, c).is_some());
        assert!(journal.take_failed(0, c).is_none());
        assert_eq!(journal.take_durable(1, other).len(), 1);
        assert_eq!(journal.len, 0);
        assert!(!journal.has_pending("g"));
    }
}
