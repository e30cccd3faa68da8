//! Membership changes of a partition's raft group (reassignment): who the voters and learners
//! are, adding a learner, how far a member lags, promoting learners and removing members.
//! Run on the group's leader; openraft's joint consensus makes each voter change safe.

use std::collections::BTreeSet;

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardReason, RaftError};
use openraft::raft::ClientWriteResponse;

use super::{LEASE_RENEWALS_MAX, PartitionGroup, ProposeError};
use crate::replication::types::{RaftNode, TypeConfig};

/// What openraft answers a membership change.
type Changed =
    Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>;

/// The group's members as this replica's latest membership says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Members {
    pub(crate) voters: BTreeSet<u64>,
    /// Members that receive the log but do not vote.
    pub(crate) learners: BTreeSet<u64>,
    /// A voter change is half done (joint consensus of the old and the new voters).
    pub(crate) is_joint: bool,
}

impl PartitionGroup {
    /// The voters and learners of the group's latest membership.
    pub(crate) fn members(&self) -> Members {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners = membership
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| !voters.contains(id))
            .collect();
        Members {
            voters,
            learners,
            is_joint: membership.get_joint_config().len() > 1,
        }
    }

    /// On the leader: adds broker `id` (its cluster RPC address `rpc_addr`) as a learner; raft
    /// replicates the log to it from then on. Answers once the membership entry is committed.
    pub(crate) async fn add_learner(
        &self,
        id: u64,
        rpc_addr: String,
    ) -> Result<(), ProposeError<()>> {
        let node = RaftNode { rpc_addr };
        self.renewing_lease(|| self.raft.add_learner(id, node.clone(), false))
            .await
    }

    /// On the leader: how many entries member `id`'s log lacks of the leader's; `None`
    /// elsewhere or before its first match.
    pub(crate) fn lag_of(&self, id: u64) -> Option<u64> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.current_leader != Some(self.settings.node_id) {
            return None;
        }
        if id == self.settings.node_id {
            return Some(0);
        }
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|replication| replication.get(&id).cloned().flatten())?;
        Some(
            metrics
                .last_log_index
                .unwrap_or(0)
                .saturating_sub(matched.index),
        )
    }

    /// On the leader: makes learners `ids` voters (joint consensus, then the new voters).
    pub(crate) async fn promote(&self, ids: BTreeSet<u64>) -> Result<(), ProposeError<()>> {
        self.change(ChangeMembers::AddVoterIds(ids)).await
    }

    /// On the leader: removes `ids` from the group, voters (through joint consensus) and
    /// learners alike; they receive nothing more.
    pub(crate) async fn remove_members(&self, ids: BTreeSet<u64>) -> Result<(), ProposeError<()>> {
        let members = self.members();
        let voters: BTreeSet<u64> = ids.intersection(&members.voters).copied().collect();
        if !voters.is_empty() {
            self.change(ChangeMembers::RemoveVoters(voters)).await?;
        }
        let learners: BTreeSet<u64> = ids
            .intersection(&self.members().learners)
            .copied()
            .collect();
        if !learners.is_empty() {
            self.change(ChangeMembers::RemoveNodes(learners)).await?;
        }
        Ok(())
    }

    /// Ends a voter change left half done (a leader change during joint consensus) by
    /// proposing the voters of its newest configuration.
    pub(crate) async fn finish_joint(&self) -> Result<(), ProposeError<()>> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let newest = metrics
            .membership_config
            .membership()
            .get_joint_config()
            .last()
            .cloned()
            .unwrap_or_default();
        self.change(ChangeMembers::ReplaceAllVoters(newest)).await
    }

    async fn change(&self, change: ChangeMembers<u64, RaftNode>) -> Result<(), ProposeError<()>> {
        // Removed voters do not stay as learners.
        self.renewing_lease(|| self.raft.change_membership(change.clone(), false))
            .await
    }

    /// Proposes the membership change `propose` makes. An idle leader's lease (a quorum's
    /// answer within the lease) lapses between the pacemaker's rare raft heartbeats, and
    /// openraft then refuses the change without writing it: the lease is renewed with a
    /// heartbeat round and the change proposed again (as a batch's `submit` does), instead of
    /// each step of a reassignment waiting for the next heartbeat round. Proposing a voter
    /// change again after its joint half was committed only completes it. Each proposal waits
    /// at most the commit timeout (it may still commit; the reassignment's next look sees it),
    /// so a step that cannot commit does not hold the reassignment up for good.
    async fn renewing_lease<F: Future<Output = Changed>>(
        &self,
        mut propose: impl FnMut() -> F,
    ) -> Result<(), ProposeError<()>> {
        let mut renewals = 0;
        loop {
            let timeout = self.settings.commit_timeout;
            let Ok(answer) = tokio::time::timeout(timeout, propose()).await else {
                return Err(ProposeError::Timeout(timeout));
            };
            if renewals < LEASE_RENEWALS_MAX && is_refused_for_lease(&answer) {
                renewals += 1;
                let deadline = tokio::time::Instant::now() + self.settings.commit_timeout;
                self.renew_lease(deadline).await;
                continue;
            }
            return answer
                .map(drop)
                .map_err(|e| ProposeError::Raft(e.to_string()));
        }
    }
}

/// Whether raft refused a membership change (without writing it) because this leader's lease
/// lapsed.
fn is_refused_for_lease(answer: &Changed) -> bool {
    matches!(
        answer,
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))
            if forward.reason == ForwardReason::LeaseExpired
    )
}
