//! A partition's raft group on this broker: openraft over the partition's own segment log
//! (`LogStore`, DESIGN.md decision 1) with a state machine that only moves the high watermark.
//! The leader proposes record batches (checked against the log first, under one proposal lock,
//! so producer checks see every earlier proposal); a proposal is answered once committed
//! (fsynced on a majority) and applied, with the Kafka offsets its batch got.

mod membership;
mod pacemaker;
mod state_machine;

#[cfg(test)]
mod proposal_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardReason, InitializeError, RaftError};
use tokio::sync::{Mutex, watch};
use tracing::Instrument as _;

use super::entry_codec;
use super::log_store::{LogReader, LogStore};
use super::network::{self, GroupNetworkFactory, RaftHandler};
use super::persisted::PartitionSnapshot;
use super::rpc::{GroupId, Handler, HandlerFuture, Method, Peers, Registry};
use super::snapshot_files::SnapshotFiles;
use super::types::{self, RaftNode, RecordBatch, TypeConfig};
use crate::{storage, telemetry};
use pacemaker::Paced;
pub(crate) use pacemaker::{PACEMAKER_GROUP, Pacemaker, PacemakerSettings};
use state_machine::PartitionMachine;

/// How often one proposal renews a lapsed leader lease before answering NOT_LEADER.
const LEASE_RENEWALS_MAX: u32 = 2;

/// How a partition group runs.
#[derive(Debug, Clone)]
pub(crate) struct PartitionGroupSettings {
    /// This broker's id.
    pub(crate) node_id: u64,
    /// The group's id on the cluster RPC (unique per partition in the cluster).
    pub(crate) group: GroupId,
    /// The broker's heartbeats and election timers (openraft's own tick is off).
    pub(crate) pacemaker: Arc<Pacemaker>,
    /// How long a proposal may wait for its commit.
    pub(crate) commit_timeout: Duration,
}

/// Why a proposal was not committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProposeError<R> {
    /// This broker is not the leader; the leader it knows of, if any.
    #[error("not the leader of the partition (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The check against the log refused the batch (nothing was proposed).
    #[error("refused before proposing")]
    Refused(R),
    /// Proposed, but not known committed within the commit timeout (it may still commit).
    #[error("not committed within {0:?}")]
    Timeout(Duration),
    /// Raft failed or stopped.
    #[error("partition raft: {0}")]
    Raft(String),
}

/// Where a committed batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    /// The raft index of its entry.
    pub(crate) index: u64,
    /// The Kafka offset of its first record.
    pub(crate) base_offset: i64,
    /// The Kafka offset after its last record.
    pub(crate) end_offset: i64,
}

/// A batch handed to raft, in the leader's log; not yet known committed.
pub(crate) struct Proposal {
    done: WriteAnswer,
    log: LogReader,
    deadline: tokio::time::Instant,
    commit_timeout: Duration,
    /// Where the batch landed in the leader's log, when known at once.
    appended: Option<(i64, i64)>,
    /// Raft answered before the batch was seen in the log (it lost the lead).
    early: Option<Result<ClientWriteResult, RecvError>>,
    /// The `raft` span of this proposal, from its submission to its commit.
    span: tracing::Span,
}

type ClientWriteResult =
    Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<TypeConfig>>;
type WriteAnswer = tokio::sync::oneshot::Receiver<ClientWriteResult>;
type RecvError = tokio::sync::oneshot::error::RecvError;

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposal")
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl Proposal {
    /// Whether raft refused the batch (without appending it) because this leader's lease
    /// lapsed.
    fn is_refused_for_lease(&self) -> bool {
        matches!(
            &self.early,
            Some(Ok(Err(ClientWriteError::ForwardToLeader(forward))))
                if forward.reason == ForwardReason::LeaseExpired
        )
    }

    /// What the proposal lock remembers of this proposal of `term`: that raft refused the
    /// batch without appending it (this broker no longer leads, is handing the leadership
    /// over, or its lease lapsed), and the leader raft named (see `submit_in`).
    fn refused_in(&self, term: u64) -> Option<RefusedIn> {
        match &self.early {
            Some(Ok(Err(ClientWriteError::ForwardToLeader(forward)))) => Some(RefusedIn {
                term,
                leader: forward.leader_id,
            }),
            _ => None,
        }
    }

    /// The Kafka offsets (first, after last) the batch got in the leader's log, if known
    /// before the commit (what acks=1 answers).
    pub(crate) fn appended(&self) -> Option<(i64, i64)> {
        self.appended
    }

    /// Waits until the batch is committed and applied (at most the commit timeout from its
    /// submission) and answers where it is.
    pub(crate) async fn committed(
        self,
    ) -> Result<Committed, ProposeError<std::convert::Infallible>> {
        let span = self.span.clone();
        self.wait_committed().instrument(span).await
    }

    async fn wait_committed(self) -> Result<Committed, ProposeError<std::convert::Infallible>> {
        let answer = match self.early {
            Some(answer) => answer,
            None => match tokio::time::timeout_at(self.deadline, self.done).await {
                Err(_) => return Err(ProposeError::Timeout(self.commit_timeout)),
                Ok(answer) => answer,
            },
        };
        let response =
            answer.map_err(|_| ProposeError::Raft("raft dropped the proposal".into()))?;
        let index = match response {
            Ok(response) => response.log_id.index,
            Err(ClientWriteError::ForwardToLeader(forward)) => {
                return Err(ProposeError::NotLeader {
                    leader: forward.leader_id,
                });
            }
            Err(error) => return Err(ProposeError::Raft(error.to_string())),
        };
        let (Some(base_offset), Some(end_offset)) =
            (self.log.offset_of(index), self.log.offset_after(index))
        else {
            return Err(ProposeError::Raft(format!(
                "committed entry {index} is not in the log"
            )));
        };
        // Submitted one commit timeout before the deadline.
        let submitted = self.deadline.checked_sub(self.commit_timeout);
        if let Some(submitted) = submitted {
            crate::telemetry::metrics::raft_committed(submitted.elapsed());
        }
        Ok(Committed {
            index,
            base_offset,
            end_offset,
        })
    }
}

/// Who leads the group, as this broker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leadership {
    pub(crate) leader: Option<u64>,
    /// The current raft term: the leader epoch of the batches its leader writes.
    pub(crate) term: u64,
}

/// This broker's replica of one partition's raft group.
pub(crate) struct PartitionGroup {
    settings: PartitionGroupSettings,
    raft: Raft<TypeConfig, PartitionMachine>,
    log: LogReader,
    high_watermark: watch::Receiver<i64>,
    /// The log start applied DeleteRecords entries asked for.
    log_start_requests: watch::Receiver<i64>,
    /// Held from a proposal's check until its entry is in the log or raft refused it (past
    /// the proposal's answer when that times out first); holds the term (and the leader raft
    /// named) in which raft last refused a proposal without appending it, until a later one is
    /// appended (see `submit_in`).
    proposing: Arc<Mutex<Option<RefusedIn>>>,
    /// The group's election timer and liveness messages (which a stalled leadership transfer
    /// stops).
    paced: Arc<Paced>,
    registry: Arc<Registry>,
    /// The snapshot `purge_below` asks raft to take next.
    requested: state_machine::Requested,
    /// Set by the first `shutdown`: a later one (the replica's task ending after the group
    /// was stopped for a removal) must not unregister a new group of the same id.
    stopped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PartitionGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionGroup")
            .field("node_id", &self.settings.node_id)
            .field("group", &self.settings.group)
            .finish()
    }
}

/// The term in which raft refused a proposal of this leader without appending it, and the
/// leader it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RefusedIn {
    term: u64,
    leader: Option<u64>,
}

/// A voter and the index its log matches the leader's to (None: not matched yet).
pub(crate) type VoterMatch = (u64, Option<u64>);

impl PartitionGroup {
    /// Takes over an opened partition log and starts raft on it; serves the group's calls
    /// through `registry` from then on. The high watermark starts where the raft log starts
    /// (its tail may never have been committed) and moves as raft applies committed entries.
    pub(crate) async fn start(
        settings: PartitionGroupSettings,
        log: storage::Log,
        peers: Arc<Peers>,
        registry: Arc<Registry>,
    ) -> Result<Arc<PartitionGroup>, ProposeError<()>> {
        let start = |error: &dyn std::fmt::Display| ProposeError::Raft(error.to_string());
        let log_start = log.log_start_offset();
        let store = LogStore::open(log, settings.node_id)
            .await
            .map_err(|e| start(&e))?;
        let reader = store.reader();
        // Below the raft log's start every batch is committed (purged entries, or a single
        // node's records from before the cluster); raft moves it from there as it applies.
        let committed = log_start.max(reader.raft_start_offset());
        let (publish, high_watermark) = watch::channel(committed);
        let (ask_log_start, log_start_requests) = watch::channel(log_start);
        let requested = state_machine::Requested::default();
        let machine = PartitionMachine::new(
            reader.clone(),
            publish,
            ask_log_start,
            Arc::clone(&requested),
        );
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let timing = settings.pacemaker.settings();
        let lease_ms = millis(timing.election_timeout) / 2;
        let config = openraft::Config {
            cluster_name: format!("tidelog-partition-{}", settings.group),
            // The pacemaker sends heartbeats and starts elections (openraft's tick is off);
            // this interval only bounds a replication call.
            heartbeat_interval: millis(timing.liveness_interval),
            // The leader lease (a vote refused while it holds) is the max: half the
            // pacemaker's election timeout, so a follower that campaigns never finds its own
            // lease still running.
            election_timeout_min: lease_ms,
            election_timeout_max: lease_ms + 1,
            enable_tick: false,
            enable_pre_vote: Some(true),
            // A leader restarted after kill -9 must never resume its old term without a vote
            // (openraft's default): it may have lost entries it had already sent, which the
            // followers committed, and would then write other entries under the same log ids.
            // Found by `scripts/chaos --compacted`: a record acknowledged twice.
            enable_leader_restore: Some(false),
            // The log is the data: snapshots are taken only where retention cuts it
            // (`purge_below`), and raft purges exactly what one covers.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            // A snapshot of a compacted partition streams its segments, chunk by chunk, and
            // the receiver checks them whole: the bound of each call and of the install.
            install_snapshot_timeout: millis(settings.commit_timeout).max(10_000),
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| start(&e))?;
        let files: Arc<dyn SnapshotFiles> = Arc::new(reader.clone());
        let network = GroupNetworkFactory::new(settings.node_id, settings.group, peers)
            .with_snapshot_files(Arc::clone(&files));
        let raft = Raft::new(settings.node_id, Arc::new(config), network, store, machine)
            .await
            .map_err(|e| start(&e))?;
        super::leader_changes::count_leader_changes(&raft, "partition");
        let paced = settings.pacemaker.add(settings.group, raft.clone());
        let handler = PartitionHandler {
            raft: RaftHandler::new(raft.clone(), settings.group, settings.node_id)
                .with_snapshot_files(files),
            paced: Arc::clone(&paced),
        };
        registry.insert(settings.group, Arc::new(handler));
        Ok(Arc::new(PartitionGroup {
            settings,
            raft,
            log: reader,
            high_watermark,
            log_start_requests,
            proposing: Arc::new(Mutex::new(None)),
            paced,
            registry,
            requested,
            stopped: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Retention on this replica: takes a snapshot covering every committed entry whose batch
    /// lies wholly below Kafka offset `offset` (a segment boundary), so raft purges them and
    /// their segments go; a follower that lacks them later starts its log where the snapshot
    /// ends. Whether a new snapshot was taken. Nothing happens when no such entry is committed
    /// yet, or when the membership changed after it (a snapshot carries the membership of the
    /// entry it ends at).
    pub(crate) async fn purge_below(&self, offset: i64) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let Some(last) = self.log.last_entry_before(offset) else {
            return false;
        };
        let committed = metrics.last_applied.is_some_and(|applied| applied >= last);
        let membership = metrics.membership_config.clone();
        let membership_before = membership.log_id().is_none_or(|at| at <= last);
        let newer = metrics.snapshot.is_none_or(|taken| taken < last);
        if !committed || !membership_before || !newer {
            return false;
        }
        let Some(next_offset) = self.log.offset_after(last.index) else {
            return false;
        };
        let snapshot = PartitionSnapshot {
            meta: openraft::SnapshotMeta {
                last_log_id: Some(last),
                last_membership: (*membership).clone(),
            },
            next_offset,
        };
        *self
            .requested
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot);
        if self.raft.trigger().snapshot().await.is_err() {
            return false;
        }
        // Done once raft reports the snapshot (it then purges what it covers).
        let mut metrics = self.raft.metrics();
        let taken = tokio::time::timeout(self.settings.commit_timeout, async {
            loop {
                if metrics.borrow_watched().snapshot >= Some(last) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        taken.unwrap_or(false)
    }

    /// The log start offset the applied DeleteRecords entries asked for, and its changes.
    pub(crate) fn requested_log_start(&self) -> watch::Receiver<i64> {
        self.log_start_requests.clone()
    }

    /// DeleteRecords: proposes the entry that moves every replica's log start to `offset`
    /// (each moves it once it applied the entry: [`PartitionGroup::advance_log_start`]).
    pub(crate) async fn propose_log_start(
        &self,
        offset: i64,
    ) -> Result<Committed, ProposeError<()>> {
        self.propose(|_| Ok(entry_codec::log_start_batch(offset)))
            .await
    }

    /// Moves this replica's log start to `offset` (at most its high watermark): raft first
    /// purges every entry before the one whose batch holds `offset` (a snapshot), then the
    /// log start moves and whole segments below it go; those hold no raft entry any more.
    /// Whether the log start is at `offset` now; false while the purge waits (a leader purges
    /// once no replication reads the entries), to be tried again.
    pub(crate) async fn advance_log_start(&self, offset: i64) -> bool {
        if self.log.with_log(storage::Log::log_start_offset) >= offset {
            return true;
        }
        if let Some(holding) = self.log.batch_start_of(offset) {
            self.purge_below(holding).await;
            if self.log.raft_start_offset() < holding {
                return false;
            }
        }
        let log = self.log.clone();
        let cut = tokio::task::spawn_blocking(move || {
            log.with_log_mut(|log| log.delete_records_before(offset))
        })
        .await;
        match cut {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(group = self.settings.group, offset, %error, "moving the log start failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Makes `voters` the first membership of a new group. Does nothing when the log already
    /// has a membership (a restart, or another replica initialized it).
    pub(crate) async fn initialize(
        &self,
        voters: BTreeMap<u64, RaftNode>,
    ) -> Result<(), ProposeError<()>> {
        match self.raft.initialize(voters).await {
            // The pacemaker has the initializing replica (the only one with a membership yet)
            // campaign after an election timeout, once the other replicas started their group.
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(error) => Err(ProposeError::Raft(error.to_string())),
        }
    }

    /// Proposes the batch `prepare` returns from a look at the log (the producer checks; it
    /// sees every batch proposed before it on this leader). Answered once the batch is
    /// committed and applied.
    pub(crate) async fn propose<R>(
        &self,
        prepare: impl FnOnce(&storage::Log) -> Result<Bytes, R>,
    ) -> Result<Committed, ProposeError<R>> {
        let proposal = self.submit(prepare).await?;
        proposal.committed().await.map_err(|error| match error {
            ProposeError::NotLeader { leader } => ProposeError::NotLeader { leader },
            ProposeError::Timeout(timeout) => ProposeError::Timeout(timeout),
            ProposeError::Raft(reason) => ProposeError::Raft(reason),
            ProposeError::Refused(never) => match never {},
        })
    }

    /// [`PartitionGroup::propose`] up to the moment the batch is in the leader's log (readable
    /// there, where acks=1 is answered); [`Proposal::committed`] waits for the commit.
    pub(crate) async fn submit<R>(
        &self,
        prepare: impl FnOnce(&storage::Log) -> Result<Bytes, R>,
    ) -> Result<Proposal, ProposeError<R>> {
        let leadership = self.leadership();
        let span =
            telemetry::raft_span(self.settings.group, self.settings.node_id, leadership.term);
        self.submit_in(prepare, span.clone()).instrument(span).await
    }

    /// [`PartitionGroup::submit`] under the proposal's `raft` span.
    async fn submit_in<R>(
        &self,
        prepare: impl FnOnce(&storage::Log) -> Result<Bytes, R>,
        span: tracing::Span,
    ) -> Result<Proposal, ProposeError<R>> {
        let deadline = tokio::time::Instant::now() + self.settings.commit_timeout;
        // The lock is held past a deadline only by a batch raft has not appended or refused
        // yet (below): this one is then not proposed at all, so it is answered as not written.
        let proposing = Arc::clone(&self.proposing).lock_owned();
        let Ok(mut refused) = tokio::time::timeout_at(deadline, proposing).await else {
            return Err(ProposeError::NotLeader {
                leader: self.leadership().leader,
            });
        };
        let leadership = self.leadership();
        if leadership.leader != Some(self.settings.node_id) {
            return Err(ProposeError::NotLeader {
                leader: leadership.leader,
            });
        }
        // After raft refused a batch of this term unappended (a leadership transfer, a lapsed
        // lease, a newer leader not yet in the metrics), the check may see a gap where that
        // batch is missing: the same producer's next batch would be refused as out of order
        // (a fatal error for a librdkafka producer if it is the oldest one in flight) where
        // Kafka answers NOT_LEADER_OR_FOLLOWER. A refusal then becomes that answer, until a
        // batch is appended again.
        let refused_now = refused.filter(|r| r.term == leadership.term);
        let batch = match self.log.with_log(|log| {
            let next = log.log_end_offset();
            prepare(log).map(|batch| entry_codec::stamped(batch, next, leadership.term))
        }) {
            Ok(batch) => batch,
            Err(_) if refused_now.is_some() => {
                return Err(ProposeError::NotLeader {
                    leader: refused_now.and_then(|r| r.leader),
                });
            }
            Err(refusal) => return Err(ProposeError::Refused(refusal)),
        };
        let mut appended = self.log.appended_batches();
        let mut renewals = 0;
        loop {
            let before = appended.borrow_and_update().count;
            let (responder, done) = openraft::impls::ProgressResponder::complete_only();
            self.raft
                .client_write_ff(RecordBatch(batch.clone()), Some(responder))
                .await
                .map_err(|e| ProposeError::Raft(e.to_string()))?;
            // Keep the lock until the batch is in the log, so the next check sees it: while
            // this broker leads, the next batch appended is this one (proposals are serialized
            // here); if it lost the lead, raft answers the proposal instead.
            let mut proposal = Proposal {
                done,
                log: self.log.clone(),
                deadline,
                commit_timeout: self.settings.commit_timeout,
                appended: None,
                early: None,
                span: span.clone(),
            };
            let timed_out = tokio::select! {
                in_log = appended.wait_for(|a| a.count > before) => match in_log {
                    Ok(now) if now.count == before + 1 => {
                        proposal.appended = now.last;
                        false
                    }
                    Ok(_) => false,
                    Err(_) => return Err(ProposeError::Raft("the log store stopped".into())),
                },
                answer = &mut proposal.done => {
                    proposal.early = Some(answer);
                    false
                }
                () = tokio::time::sleep_until(deadline) => true,
            };
            if timed_out {
                // Raft may still append the batch (its core loop was busy elsewhere): until
                // it does or refuses it, no later check may run, or a retry of this batch
                // would pass the producer checks and be written twice.
                tokio::spawn(async move {
                    tokio::select! {
                        _ = appended.wait_for(|a| a.count > before) => *refused = None,
                        answer = &mut proposal.done => {
                            proposal.early = Some(answer);
                            *refused = proposal.refused_in(leadership.term);
                        }
                    }
                });
                return Err(ProposeError::Timeout(self.settings.commit_timeout));
            }
            // An idle leader's lease (a quorum's answer within the lease) lapses between the
            // pacemaker's rare raft heartbeats, and openraft then refuses writes without
            // appending them: renew it with a heartbeat round and submit the batch again.
            if renewals < LEASE_RENEWALS_MAX && proposal.is_refused_for_lease() {
                renewals += 1;
                self.renew_lease(deadline).await;
                continue;
            }
            *refused = proposal.refused_in(leadership.term);
            return Ok(proposal);
        }
    }

    /// Sends a heartbeat round and waits (at most an election timeout, and not past
    /// `deadline`) until a quorum answered it, which renews the leader lease.
    async fn renew_lease(&self, deadline: tokio::time::Instant) {
        let mut data = self.raft.data_metrics();
        let before = data.borrow_watched().last_quorum_acked;
        if self.raft.trigger().heartbeat().await.is_err() {
            return;
        }
        let renewed = async {
            while data.borrow_watched().last_quorum_acked == before {
                if data.changed().await.is_err() {
                    return;
                }
            }
        };
        let wait = self.settings.pacemaker.settings().election_timeout;
        let until = deadline.min(tokio::time::Instant::now() + wait);
        let _ = tokio::time::timeout_at(until, renewed).await;
    }

    /// The Kafka offset where the raft log starts: the batches below it are no raft entries
    /// (purged ones a compacted log keeps), so compaction may rewrite them.
    pub(crate) fn raft_start_offset(&self) -> i64 {
        self.log.raft_start_offset()
    }

    /// The Kafka offset below which every record is committed, and its changes.
    pub(crate) fn high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.clone()
    }

    /// Runs `read` on the partition log under its lock (fetch planning, offset lookups).
    pub(crate) fn with_log<T>(&self, read: impl FnOnce(&storage::Log) -> T) -> T {
        self.log.with_log(read)
    }

    /// Runs `change` on the partition log under its lock, for in-memory leader state only
    /// (transaction verification guards), a roll by age, and compaction below
    /// [`PartitionGroup::raft_start_offset`]: any other write to the log goes through raft.
    pub(crate) fn with_log_mut<T>(&self, change: impl FnOnce(&mut storage::Log) -> T) -> T {
        self.log.with_log_mut(change)
    }

    /// OffsetForLeaderEpoch: the largest leader epoch (term) at or below `requested` and the
    /// offset where the next one starts; None when undefined.
    pub(crate) fn epoch_end(&self, requested: u64) -> Option<(u64, i64)> {
        self.log.epoch_end(requested)
    }

    /// Waits until the leadership this broker sees differs from `seen` (at once if it already
    /// does), or raft stops. Wakes only on raft's server metrics (vote, leader, membership),
    /// and on applied entries while this broker is a leader that has not yet named itself,
    /// never on heartbeats or replication progress.
    pub(crate) async fn leadership_changed(&self, seen: &Leadership) {
        let mut server = self.raft.server_metrics();
        let mut data = self.raft.data_metrics();
        loop {
            let now = self.leadership();
            if now != *seen {
                return;
            }
            let is_taking_over = server.borrow_watched().current_leader
                == Some(self.settings.node_id)
                && now.leader.is_none();
            tokio::select! {
                changed = server.changed() => if changed.is_err() { return },
                changed = data.changed(), if is_taking_over => if changed.is_err() { return },
            }
        }
    }

    /// How long a proposal may wait for its commit.
    pub(crate) fn commit_timeout(&self) -> Duration {
        self.settings.commit_timeout
    }

    /// How many replicas vote in the group (a commit needs a majority of them).
    pub(crate) fn voter_count(&self) -> i32 {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let voters = metrics.membership_config.membership().voter_ids().count();
        i32::try_from(voters).unwrap_or(i32::MAX)
    }

    /// When this broker leads and `preferred` is a voter whose log matches the leader's to the
    /// last entry and that answers now, hands leadership to it (raft's leadership transfer: no
    /// entry is lost, and the group is without a leader for one election at most). Answers
    /// whether it did.
    pub(crate) async fn transfer_to(&self, preferred: u64) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.current_leader != Some(self.settings.node_id)
            || preferred == self.settings.node_id
        {
            return false;
        }
        let caught_up = metrics
            .replication
            .as_ref()
            .and_then(|replication| replication.get(&preferred).cloned().flatten())
            .is_some_and(|matched| Some(matched.index) == metrics.last_log_index);
        let is_voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == preferred);
        // The replication metrics may describe a replica that restarted since and does not
        // serve the group yet: a transfer to it would stall (see the pacemaker).
        if !caught_up || !is_voter || !self.answers_now(preferred).await {
            return false;
        }
        self.start_transfer(metrics.current_term, preferred).await
    }

    /// Raft's leadership transfer to `to`, which the pacemaker watches from now on.
    async fn start_transfer(&self, term: u64, to: u64) -> bool {
        if self.raft.trigger().transfer_leader(to).await.is_err() {
            return false;
        }
        self.paced.transfer_started(term, to);
        true
    }

    /// Whether `voter` acknowledges a heartbeat round this leader sends now within an election
    /// timeout.
    async fn answers_now(&self, voter: u64) -> bool {
        let acked = |metrics: &openraft::RaftMetrics<TypeConfig>| {
            metrics
                .heartbeat
                .as_ref()
                .and_then(|heartbeats| heartbeats.get(&voter).cloned().flatten())
                .map(openraft::metrics::SerdeInstant::into_inner)
        };
        let mut metrics = self.raft.metrics();
        let sent =
            <openraft::type_config::alias::InstantOf<TypeConfig> as openraft::Instant>::now();
        if self.raft.trigger().heartbeat().await.is_err() {
            return false;
        }
        let answered = async {
            loop {
                if acked(&metrics.borrow_watched()).is_some_and(|at| at >= sent) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        };
        let wait = self.settings.pacemaker.settings().election_timeout;
        tokio::time::timeout(wait, answered).await.unwrap_or(false)
    }

    /// While this broker leads: the index of its last entry, and how far each voter's log
    /// matches it (the leader itself to its last entry; None for a voter not matched yet).
    /// None elsewhere.
    pub(crate) fn voter_progress(&self) -> Option<(u64, Vec<VoterMatch>)> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.current_leader != Some(self.settings.node_id) {
            return None;
        }
        let last = metrics.last_log_index?;
        let matched = |id: u64| {
            if id == self.settings.node_id {
                return Some(last);
            }
            metrics
                .replication
                .as_ref()
                .and_then(|replication| replication.get(&id).cloned().flatten())
                .map(|matched| matched.index)
        };
        let voters = metrics
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| (id, matched(id)))
            .collect();
        Some((last, voters))
    }

    /// The leader and term as this broker knows them. This broker names itself leader only
    /// once it has applied an entry of its own term (the blank entry every new leader
    /// commits first): before that its high watermark may still lag what earlier leaders
    /// committed, so it must not answer reads, offsets or writes yet.
    pub(crate) fn leadership(&self) -> Leadership {
        let (mut leader, term) = {
            let server = self.raft.server_metrics();
            let server = server.borrow_watched();
            (server.current_leader, server.vote.leader_id.term)
        };
        if leader == Some(self.settings.node_id) {
            let data = self.raft.data_metrics();
            let applied_term = data
                .borrow_watched()
                .last_applied
                .as_ref()
                .map(types::term_of);
            if applied_term != Some(term) {
                leader = None;
            }
        }
        Leadership { leader, term }
    }

    /// Stops raft and stops serving the group. The log is left to recovery at its next open.
    pub(crate) async fn shutdown(&self) {
        if self.stopped.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        self.registry.remove(self.settings.group);
        self.settings.pacemaker.remove(self.settings.group);
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(group = self.settings.group, %error, "partition raft did not stop cleanly");
        }
    }
}

/// Serves a partition group's raft calls, restarting its election timer at each message of a
/// leader.
struct PartitionHandler {
    raft: RaftHandler<TypeConfig, PartitionMachine>,
    paced: Arc<Paced>,
}

impl Handler for PartitionHandler {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        if method == network::APPEND_ENTRIES {
            self.paced.heard();
        }
        self.raft.handle(method, payload)
    }
}
