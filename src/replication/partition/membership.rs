//! Membership changes of a partition's raft group (reassignment): who the voters and learners
//! are, adding a learner, how far a member lags, promoting learners and removing members.
//! Run on the group's leader; openraft's joint consensus makes each voter change safe.

use std::collections::BTreeSet;

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;

use super::{PartitionGroup, ProposeError};
use crate::replication::types::RaftNode;

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
        self.raft
            .add_learner(id, RaftNode { rpc_addr }, false)
            .await
            .map(drop)
            .map_err(|e| ProposeError::Raft(e.to_string()))
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
        self.raft
            .change_membership(change, false)
            .await
            .map(drop)
            .map_err(|e| ProposeError::Raft(e.to_string()))
    }
}
