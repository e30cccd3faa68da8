//! The group coordinator: classic consumer-group membership and committed offsets, persisted as
//! records of the internal offsets topic and rebuilt from it on start. Kafka-agnostic: handlers
//! translate the wire; `classic.rs` is the pure state machine, this file the locking runtime.

mod admin;
mod classic;
#[cfg(test)]
mod classic_tests;
mod consumer;
mod consumer_ops;
#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod coordinator_tests;
mod join;
mod journal;
mod member;
mod offsets;
mod record;
mod record_legacy;
mod session;
mod store;
mod txn_offsets;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::{Error, Result};
use super::{Broker, now_ms};
use crate::limits::GROUP_MEMBER_METADATA_BYTES_MAX;

pub(crate) use classic::{GroupState, JoinRequest};
pub(crate) use consumer::{ConsumerGroup, Heartbeat as ConsumerHeartbeat, TopicPartition};
pub(crate) use journal::WriteFailure;
pub(crate) use member::Protocol;
pub(crate) use offsets::CommitPartition;
pub(crate) use record::CommittedOffset;
pub(super) use store::{OFFSETS_TOPIC, partition_for};
pub(crate) use txn_offsets::TxnCommit;

use classic::{Group, GroupWrite, Outcome};
use journal::Journal;
use member::Reply;

/// Group coordinator settings (Kafka's `group.*` and `offsets.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupSettings {
    /// Partitions of the internal offsets topic (`offsets.topic.num.partitions`).
    pub(crate) offsets_topic_partitions: i32,
    /// How long offsets of an empty group are kept (`offsets.retention.minutes`).
    pub(crate) offsets_retention_ms: i64,
    pub(crate) session_timeout_ms_min: i32,
    pub(crate) session_timeout_ms_max: i32,
    pub(crate) initial_rebalance_delay_ms: i32,
    /// Most members of one group (`group.max.size`).
    pub(crate) group_size_max: usize,
    /// Longest offset metadata string (`offset.metadata.max.bytes`).
    pub(crate) offset_metadata_bytes_max: usize,
    /// KIP-848 member session (`group.consumer.session.timeout.ms`).
    pub(crate) consumer_session_timeout_ms: i32,
    /// KIP-848 heartbeat interval told to members (`group.consumer.heartbeat.interval.ms`).
    pub(crate) consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            offsets_topic_partitions: 8,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            session_timeout_ms_min: 6_000,
            session_timeout_ms_max: 1_800_000,
            initial_rebalance_delay_ms: 0,
            group_size_max: usize::MAX,
            offset_metadata_bytes_max: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// One member as the leader's JoinGroup response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinedMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) metadata: Bytes,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinResponse {
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: String,
    pub(crate) member_id: String,
    /// A static member replaced in a stable group: keep the old assignment (v9 field).
    pub(crate) skip_assignment: bool,
    /// Every member with its metadata for the leader; empty for the others.
    pub(crate) members: Vec<JoinedMember>,
}

/// A successful SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncResponse {
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignment: Bytes,
}

/// A group's membership (classic or KIP-848 consumer) and its committed offsets.
#[derive(Debug)]
struct GroupEntry {
    group: Group,
    consumer: ConsumerGroup,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Transactional commits waiting for their transaction's marker, by producer id.
    pending_txn: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl GroupEntry {
    fn new(group_id: &str, now_ms: i64) -> GroupEntry {
        GroupEntry {
            group: Group::new(group_id, now_ms),
            consumer: ConsumerGroup::default(),
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
        }
    }

    /// A group with nothing to remember: no members, no offsets, never rebalanced.
    fn is_unused(&self) -> bool {
        self.offsets.is_empty()
            && self.pending_txn.is_empty()
            && self.consumer.members.is_empty()
            && self.group.members.is_empty()
            && self.group.state == GroupState::Empty
            && self.group.generation == 0
            && !self.group.has_pending_members()
    }
}

type Waiter<T> = oneshot::Sender<Result<T>>;

/// Everything the coordinator holds, behind one lock.
#[derive(Debug, Default)]
struct State {
    groups: BTreeMap<String, GroupEntry>,
    join_waiters: BTreeMap<(String, String), Waiter<JoinResponse>>,
    sync_waiters: BTreeMap<(String, String), Waiter<SyncResponse>>,
    /// Set at shutdown: nothing may wait for a rebalance any more.
    is_closed: bool,
    /// Group and offset records appended but not yet durable, with what they change.
    journal: Journal,
}

impl State {
    fn deliver(&mut self, group_id: &str, replies: Vec<Reply>) {
        for reply in replies {
            match reply {
                Reply::Join { member_id, result } => {
                    if let Some(tx) = self.join_waiters.remove(&(group_id.to_owned(), member_id)) {
                        let _ = tx.send(result);
                    }
                }
                Reply::Sync { member_id, result } => {
                    if let Some(tx) = self.sync_waiters.remove(&(group_id.to_owned(), member_id)) {
                        let _ = tx.send(result);
                    }
                }
            }
        }
    }
}

/// The coordinator's state; owned by the broker.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    /// Shared with the tasks that apply writes once durable.
    state: Arc<Mutex<State>>,
    member_seq: AtomicU64,
}

impl Coordinator {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh member id: the client id and 128 bits that differ per call and per process.
    fn new_member_id(&self, client_id: &str) -> String {
        use std::hash::{BuildHasher, Hasher};
        let seq = self.member_seq.fetch_add(1, Ordering::Relaxed);
        let random = std::collections::hash_map::RandomState::new();
        let mut parts = [0u64; 2];
        for (i, part) in parts.iter_mut().enumerate() {
            let mut hasher = random.build_hasher();
            hasher.write_u64(seq);
            hasher.write_usize(i);
            hasher.write_i64(now_ms());
            *part = hasher.finish();
        }
        format!("{client_id}-{:016x}{:016x}", parts[0], parts[1])
    }
}

fn not_available(group_id: &str) -> Error {
    Error::CoordinatorNotAvailable {
        group: group_id.to_owned(),
    }
}

async fn wait_for<T>(rx: oneshot::Receiver<Result<T>>, group_id: &str) -> Result<T> {
    rx.await.unwrap_or_else(|_| Err(not_available(group_id)))
}

/// Waits until a write settled: Ok once durable and applied, else its failure as an error.
async fn wait_stored(
    rx: oneshot::Receiver<std::result::Result<(), WriteFailure>>,
    group_id: &str,
) -> Result<()> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failure)) => Err(failure.error(group_id)),
        Err(_) => Err(not_available(group_id)),
    }
}

/// A group id must be non-empty and fit a string of the offsets topic's records (i16 length).
fn check_group_id(group_id: &str) -> Result<()> {
    if group_id.is_empty() || i16::try_from(group_id.len()).is_err() {
        return Err(Error::InvalidGroupId {
            group: group_id.to_owned(),
        });
    }
    Ok(())
}

impl Broker {
    /// A valid group id that this broker coordinates (NOT_COORDINATOR otherwise, so the client
    /// looks the coordinator up again).
    pub(crate) fn check_group(&self, group_id: &str) -> Result<()> {
        check_group_id(group_id)?;
        self.check_coordinator(group_id)
    }

    /// Whether this broker coordinates `group_id`: NOT_COORDINATOR if another broker does,
    /// COORDINATOR_NOT_AVAILABLE while none is known.
    pub(crate) fn check_coordinator(&self, group_id: &str) -> Result<()> {
        match self.group_coordinator(group_id) {
            super::CoordinatorAt::Here => Ok(()),
            super::CoordinatorAt::Broker { .. } => Err(Error::NotCoordinator {
                group: group_id.to_owned(),
            }),
            super::CoordinatorAt::Unavailable => Err(not_available(group_id)),
            super::CoordinatorAt::Loading => Err(Error::CoordinatorLoadInProgress {
                group: group_id.to_owned(),
            }),
        }
    }
}

impl Broker {
    /// JoinGroup: answers at once or when the rebalance's join phase completes.
    pub(crate) async fn join_group(
        &self,
        group_id: &str,
        mut request: JoinRequest,
    ) -> Result<JoinResponse> {
        self.check_group(group_id)?;
        self.sync_offsets_before_roll(group_id).await;
        let bytes: usize = request.protocols.iter().map(|p| p.metadata.len()).sum();
        if bytes > GROUP_MEMBER_METADATA_BYTES_MAX {
            return Err(Error::MemberMetadataTooLarge {
                group: group_id.to_owned(),
                bytes,
                bytes_max: GROUP_MEMBER_METADATA_BYTES_MAX,
            });
        }
        request.new_member_id = self.groups.new_member_id(&request.client_id);
        let (waiting, stored) = {
            let mut state = self.groups.lock();
            if state.is_closed {
                return Err(not_available(group_id));
            }
            let now = now_ms();
            let entry = state
                .groups
                .entry(group_id.to_owned())
                .or_insert_with(|| GroupEntry::new(group_id, now));
            if !entry.consumer.members.is_empty() {
                return Err(Error::InconsistentGroupProtocol {
                    group: group_id.to_owned(),
                });
            }
            let (outcome, replies) = entry.group.join(request, &self.settings.groups, now);
            // A static member replacing its old id in a stable group is answered once the new
            // id is stored (Kafka reverts the replacement if that fails).
            let is_replacement = matches!(
                entry.group.pending_write,
                Some(GroupWrite::StaticReplacement(_))
            );
            let waiting = match outcome {
                Outcome::Done(result) => {
                    if result.is_err() {
                        state.remove_if_unused(group_id);
                    }
                    Err(result)
                }
                Outcome::Wait { member_id } => {
                    let (tx, rx) = oneshot::channel();
                    state
                        .join_waiters
                        .insert((group_id.to_owned(), member_id), tx);
                    Ok(rx)
                }
            };
            state.deliver(group_id, replies);
            let (tx, stored) = oneshot::channel();
            self.write_group_changes(&mut state, group_id, is_replacement.then_some(tx));
            (waiting, is_replacement.then_some(stored))
        };
        if let Some(stored) = stored {
            wait_stored(stored, group_id).await?;
        }
        match waiting {
            Ok(rx) => wait_for(rx, group_id).await,
            Err(result) => result,
        }
    }

    /// SyncGroup: the leader's call carries the assignments; everyone waits for it.
    pub(crate) async fn sync_group(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<SyncResponse> {
        self.check_group(group_id)?;
        self.sync_offsets_before_roll(group_id).await;
        let rx = {
            let mut state = self.groups.lock();
            if state.is_closed {
                return Err(not_available(group_id));
            }
            let Some(entry) = state.groups.get_mut(group_id) else {
                return Err(Error::UnknownMemberId {
                    group: group_id.to_owned(),
                    member_id: member_id.to_owned(),
                });
            };
            let (outcome, replies) =
                entry
                    .group
                    .sync(member_id, instance_id, generation, assignments, now_ms());
            let rx = match outcome {
                Outcome::Done(result) => {
                    state.deliver(group_id, replies);
                    return result;
                }
                Outcome::Wait { member_id } => {
                    let (tx, rx) = oneshot::channel();
                    state
                        .sync_waiters
                        .insert((group_id.to_owned(), member_id), tx);
                    rx
                }
            };
            state.deliver(group_id, replies);
            // The leader's assignment: every waiting member is answered once it is durable.
            self.write_group_changes(&mut state, group_id, None);
            rx
        };
        wait_for(rx, group_id).await
    }

    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<()> {
        self.check_group(group_id)?;
        let mut state = self.groups.lock();
        let entry = state
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::UnknownMemberId {
                group: group_id.to_owned(),
                member_id: member_id.to_owned(),
            })?;
        entry
            .group
            .heartbeat(member_id, instance_id, generation, now_ms())
    }

    /// LeaveGroup for each `(member_id, instance_id)`; one result per member, in order. As in
    /// Kafka, the answer does not wait for the record of a group left empty.
    pub(crate) fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        self.check_group(group_id)?;
        let mut state = self.groups.lock();
        let Some(entry) = state.groups.get_mut(group_id) else {
            let unknown = |id: &String| {
                Err(Error::UnknownMemberId {
                    group: group_id.to_owned(),
                    member_id: id.clone(),
                })
            };
            return Ok(members.iter().map(|(id, _)| unknown(id)).collect());
        };
        let now = now_ms();
        let mut replies = Vec::new();
        let results = members
            .iter()
            .map(|(id, instance)| {
                entry
                    .group
                    .leave(id, instance.as_deref(), now, &mut replies)
            })
            .collect();
        state.deliver(group_id, replies);
        self.write_group_changes(&mut state, group_id, None);
        Ok(results)
    }

    /// Shutdown: answers every JoinGroup and SyncGroup waiting for a rebalance with
    /// COORDINATOR_NOT_AVAILABLE (clients look for the coordinator again) and refuses new
    /// waits, so draining connections never waits for a rebalance timeout.
    pub(crate) fn stop_coordinating(&self) {
        let mut state = self.groups.lock();
        state.is_closed = true;
        for ((group_id, _), tx) in std::mem::take(&mut state.join_waiters) {
            let _ = tx.send(Err(not_available(&group_id)));
        }
        for ((group_id, _), tx) in std::mem::take(&mut state.sync_waiters) {
            let _ = tx.send(Err(not_available(&group_id)));
        }
    }

    /// One round of every group's timers; run by the coordinator's timer task. Records of
    /// timer-driven changes are not awaited: nobody waits for an answer.
    fn tick_groups(&self, now: i64) {
        let mut state = self.groups.lock();
        let ids: Vec<String> = state.groups.keys().cloned().collect();
        for group_id in ids {
            self.tick_group(&mut state, &group_id, now);
        }
    }

    /// One round of one group's timers. Also run before a request that depends on whether
    /// sessions have expired, so a session is over at its deadline as in Kafka (whose
    /// heartbeat timers fire at the deadline), not up to one timer tick later.
    fn tick_group(&self, state: &mut State, group_id: &str, now: i64) {
        let Some(entry) = state.groups.get_mut(group_id) else {
            return;
        };
        let replies = entry.group.tick(now);
        let session_ms = i64::from(self.settings.groups.consumer_session_timeout_ms);
        for member_id in entry.consumer.expired(session_ms, now) {
            tracing::info!(group = %group_id, member = %member_id, "consumer session expired, member removed");
            entry.consumer.remove(&member_id);
        }
        state.deliver(group_id, replies);
        self.write_group_changes(state, group_id, None);
        state.remove_if_unused(group_id);
    }
}
