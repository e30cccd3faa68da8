//! The controller: the raft group (group 0) that orders metadata commands. Every broker runs
//! one; the first `controller_voters` brokers vote, the others follow as learners, and each
//! applies the committed commands to its own `metadata::State` (`state_machine.rs`).
//! A command proposed on any broker is forwarded to the leader and answered once applied.

mod state_machine;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, Raft};
use tokio::sync::watch;
use tracing::Instrument as _;

use super::log_store::{LogStore, now_ms};
use super::network::{GroupNetworkFactory, RaftHandler};
use super::rpc::{CallError, GroupId, Handler, HandlerFuture, Method, Peers, Registry};
use super::types::{RaftNode, TypeConfig};
use crate::metadata::Command;
use crate::storage;
pub(crate) use state_machine::{Answer, Published};
use state_machine::{Answers, StateMachine};

/// The controller's raft group id on the cluster RPC.
pub(crate) const CONTROLLER_GROUP: GroupId = 0;
/// The topic id of the metadata log (`__cluster_metadata`), all zeros but the last byte.
const METADATA_TOPIC_ID: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// The RPC method that forwards a command to the leader.
const PROPOSE: Method = 16;

/// How a controller runs.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSettings {
    pub(crate) node_id: u64,
    /// Holds the metadata log and the state machine's snapshot.
    pub(crate) dir: PathBuf,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) election_timeout_ms: u64,
    /// How long a proposal may wait for a leader and its commit.
    pub(crate) request_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("controller could not start: {0}")]
    Start(String),
    #[error("no controller leader within {0:?}")]
    NoLeader(Duration),
    #[error("controller raft: {0}")]
    Raft(String),
    #[error("the answer of metadata entry {0} was not kept")]
    AnswerLost(u64),
    #[error("a controller membership change not committed within {0:?} (it may still be)")]
    MembershipTimeout(Duration),
}

/// This broker's member of the controller group.
pub(crate) struct Controller {
    node_id: u64,
    raft: Raft<TypeConfig, StateMachine>,
    answers: Arc<Answers>,
    published: watch::Receiver<Published>,
    peers: Arc<Peers>,
    registry: Arc<Registry>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl Controller {
    /// Opens the metadata log and state machine in `settings.dir` and starts raft; serves the
    /// group's calls through `registry` from then on.
    pub(crate) async fn start(
        settings: ControllerSettings,
        peers: Arc<Peers>,
        registry: Arc<Registry>,
    ) -> Result<Arc<Controller>, Error> {
        let start = |error: &dyn std::fmt::Display| Error::Start(error.to_string());
        let dir = settings.dir.clone();
        let log = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(dir.join("log")).map_err(|e| e.to_string())?;
            storage::Log::open_on(
                storage::Fs::default(),
                &dir.join("log"),
                METADATA_TOPIC_ID,
                storage::LogSettings::default(),
                now_ms(),
            )
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| start(&e))?
        .map_err(|e| start(&e))?;
        let store = LogStore::open(log, settings.node_id)
            .await
            .map_err(|e| start(&e))?;
        let answers = Arc::new(Answers::default());
        let (publish, published) = watch::channel(Published::default());
        let machine = StateMachine::open(settings.dir.clone(), Arc::clone(&answers), publish)
            .map_err(|e| start(&e))?;
        let config = openraft::Config {
            cluster_name: "tidelog-controller".to_owned(),
            heartbeat_interval: settings.heartbeat_interval_ms,
            election_timeout_min: settings.election_timeout_ms,
            election_timeout_max: settings.election_timeout_ms * 2,
            enable_pre_vote: Some(true),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
            max_in_snapshot_log_to_keep: 100,
            // A restarted leader holds an election (see the partition groups' config).
            enable_leader_restore: Some(false),
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| start(&e))?;
        let network =
            GroupNetworkFactory::new(settings.node_id, CONTROLLER_GROUP, Arc::clone(&peers));
        let raft = Raft::new(settings.node_id, Arc::new(config), network, store, machine)
            .await
            .map_err(|e| start(&e))?;
        super::leader_changes::count_leader_changes(&raft, "controller");
        let controller = Arc::new(Controller {
            node_id: settings.node_id,
            raft: raft.clone(),
            answers,
            published,
            peers,
            registry: Arc::clone(&registry),
            request_timeout: settings.request_timeout,
        });
        registry.insert(
            CONTROLLER_GROUP,
            Arc::new(ControllerHandler {
                raft: RaftHandler::new(raft, CONTROLLER_GROUP, settings.node_id),
                controller: Arc::downgrade(&controller),
            }),
        );
        Ok(controller)
    }

    /// Makes `voters` the first membership of a new metadata log. Does nothing when the log
    /// already has a membership (a restart, or another broker initialized it).
    pub(crate) async fn initialize(&self, voters: BTreeMap<u64, RaftNode>) -> Result<(), Error> {
        match self.raft.initialize(voters).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(error) => Err(Error::Raft(error.to_string())),
        }
    }

    /// The metadata state as applied on this broker, and its changes.
    pub(crate) fn published(&self) -> watch::Receiver<Published> {
        self.published.clone()
    }

    /// The current leader of the controller group, as this broker knows it.
    pub(crate) fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// Whether this broker has applied everything a leader of the group reported committed:
    /// its state then reflects every change made before this process started.
    pub(crate) fn caught_up(&self) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let applied = metrics.last_applied.map(|id| id.index);
        metrics.current_leader.is_some()
            && metrics
                .cluster_committed
                .is_some_and(|committed| applied.is_some_and(|a| a >= committed.index))
    }

    /// The voters and learners of the controller group.
    pub(crate) fn members(&self) -> (BTreeSet<u64>, BTreeSet<u64>) {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners = membership.learner_ids().collect();
        (voters, learners)
    }

    /// Proposes `command` (through the leader, wherever it is) and waits for its answer.
    pub(crate) async fn propose(&self, command: &Command) -> Result<Answer, Error> {
        let entry = state_machine::entry_of(command, now_ms())
            .map_err(|e| Error::Raft(format!("encode command: {e}")))?;
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        // One receiver for the whole wait: a fresh one per round would report a change at once
        // (it starts at the version raft's own handle saw) and the round would spin.
        let mut metrics = self.raft.metrics();
        loop {
            metrics.borrow_and_update();
            let attempt = match self.leader() {
                Some(leader) if leader == self.node_id => self.propose_locally(entry.clone()).await,
                Some(leader) => self.forward(leader, &entry.0, deadline).await,
                None => Err(Retry::NoLeader),
            };
            match attempt {
                Ok(answer) => return Ok(answer),
                Err(Retry::Fatal(error)) => return Err(error),
                Err(Retry::NoLeader) => {
                    match tokio::time::timeout_at(deadline, metrics.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err(Error::Raft("raft stopped".to_owned())),
                        Err(_) => return Err(Error::NoLeader(self.request_timeout)),
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NoLeader(self.request_timeout));
            }
        }
    }

    async fn propose_locally(&self, entry: super::types::RecordBatch) -> Result<Answer, Retry> {
        let term = self.raft.metrics().borrow_watched().current_term;
        let span = crate::telemetry::raft_span(CONTROLLER_GROUP, self.node_id, term);
        match self.raft.client_write(entry).instrument(span).await {
            Ok(response) => self
                .answers
                .take(response.log_id.index)
                .ok_or(Retry::Fatal(Error::AnswerLost(response.log_id.index))),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(Retry::NoLeader),
            Err(error) => Err(Retry::Fatal(Error::Raft(error.to_string()))),
        }
    }

    async fn forward(
        &self,
        leader: u64,
        entry: &Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, Retry> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let Some(node) = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()
        else {
            return Err(Retry::NoLeader);
        };
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        let call = self.peers.call(
            leader,
            &node.rpc_addr,
            (CONTROLLER_GROUP, PROPOSE),
            entry.clone(),
            timeout,
        );
        // A paused or cut-off leader never answers: once the group has another leader (or
        // none), propose again rather than wait out the whole timeout.
        let answer = tokio::select! {
            answer = call => answer,
            () = self.leader_other_than(leader) => return Err(Retry::NoLeader),
        };
        match answer {
            Ok(bytes) => {
                let answer: Result<Answer, String> = postcard::from_bytes(&bytes)
                    .map_err(|e| Retry::Fatal(Error::Raft(format!("forwarded answer: {e}"))))?;
                // The leader changed under the forwarded proposal: try again.
                answer.map_err(|_| Retry::NoLeader)
            }
            Err(CallError::Remote(_) | CallError::Unreachable(_)) => {
                // Leader gone or not (yet) serving: wait for the next leader.
                tokio::time::sleep(Duration::from_millis(50).min(timeout)).await;
                Err(Retry::NoLeader)
            }
            Err(CallError::Timeout(_)) => Err(Retry::NoLeader),
        }
    }

    /// Resolves once the group's leader, as this member sees it, is no longer `leader`.
    async fn leader_other_than(&self, leader: u64) {
        let mut metrics = self.raft.metrics();
        while metrics.borrow_watched().current_leader == Some(leader) {
            if metrics.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The cluster RPC address of every member of the controller group.
    pub(crate) fn addresses(&self) -> BTreeMap<u64, String> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.rpc_addr.clone()))
            .collect()
    }

    /// Changes the address the group reaches member `id` at (it restarted elsewhere).
    pub(crate) async fn set_address(&self, id: u64, node: RaftNode) -> Result<(), Error> {
        let change = ChangeMembers::SetNodes(BTreeMap::from([(id, node)]));
        self.membership_change(self.raft.change_membership(change, true))
            .await
    }

    /// Adds `id` as a learner (it receives the metadata log, votes in nothing).
    pub(crate) async fn add_learner(&self, id: u64, node: RaftNode) -> Result<(), Error> {
        self.membership_change(self.raft.add_learner(id, node, false))
            .await
    }

    /// Makes `voters` the voting members (each must be a member already).
    pub(crate) async fn set_voters(&self, voters: BTreeSet<u64>) -> Result<(), Error> {
        let change = ChangeMembers::ReplaceAllVoters(voters);
        self.membership_change(self.raft.change_membership(change, true))
            .await
    }

    /// Removes member `id` from the group, as a voter (through joint consensus) or a learner.
    pub(crate) async fn remove_member(&self, id: u64) -> Result<(), Error> {
        let (voters, _) = self.members();
        let change = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.membership_change(self.raft.change_membership(change, false))
            .await
    }

    /// Waits at most the request timeout for a membership change raft was handed: the leader's
    /// duties come one at a time, and one that cannot commit (no quorum, a member unreachable)
    /// must not hold up the others for good. A change that times out may still commit; the next
    /// round of duties sees whether it did.
    async fn membership_change<T, E: std::fmt::Display>(
        &self,
        change: impl Future<Output = Result<T, E>>,
    ) -> Result<(), Error> {
        match tokio::time::timeout(self.request_timeout, change).await {
            Ok(changed) => changed.map(drop).map_err(|e| Error::Raft(e.to_string())),
            Err(_) => Err(Error::MembershipTimeout(self.request_timeout)),
        }
    }

    /// Stops raft and stops serving the group.
    pub(crate) async fn shutdown(&self) {
        self.registry.remove(CONTROLLER_GROUP);
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "controller raft did not stop cleanly");
        }
    }
}

/// A proposal attempt that may be retried.
enum Retry {
    NoLeader,
    Fatal(Error),
}

/// Serves the controller group: raft's messages, and commands forwarded by other brokers.
struct ControllerHandler {
    raft: RaftHandler<TypeConfig, StateMachine>,
    controller: Weak<Controller>,
}

impl Handler for ControllerHandler {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        if method != PROPOSE {
            return self.raft.handle(method, payload);
        }
        let controller = self.controller.upgrade();
        Box::pin(async move {
            let controller = controller.ok_or("controller stopped")?;
            let entry = super::types::RecordBatch(payload);
            let answer = match controller.propose_locally(entry).await {
                Ok(answer) => Ok(answer),
                Err(Retry::NoLeader) => Err("not the leader".to_owned()),
                Err(Retry::Fatal(error)) => Err(error.to_string()),
            };
            postcard::to_stdvec(&answer)
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        })
    }
}
