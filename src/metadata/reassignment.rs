//! Partition reassignment in the metadata state (KIP-455): a reassignment records its target
//! as `replicas` = target followed by the replicas being removed, with `adding_replicas` and
//! `removing_replicas`; the partition's raft leader changes the group's membership and reports
//! completion, which leaves exactly the target. Deterministic, like all of `State::apply`.

use std::collections::BTreeSet;

use super::command::{Outcome, Rejection};
use super::model::State;

impl State {
    /// Starts (or replaces, or with `None` cancels) the reassignment of a partition.
    pub(super) fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<Outcome, Rejection> {
        if let Some(target) = target {
            self.check_target(target)?;
        }
        let meta = self.partition_mut(topic, partition)?;
        let original: Vec<i32> = meta
            .replicas
            .iter()
            .copied()
            .filter(|r| !meta.adding_replicas.contains(r))
            .collect();
        let target = match target {
            Some(target) => target.to_vec(),
            // Cancelling moves back to the replicas the partition had before.
            None if meta.is_reassigning() => original.clone(),
            None => {
                return Err(Rejection::NoReassignmentInProgress {
                    topic: topic.to_owned(),
                    partition,
                });
            }
        };
        if !meta.is_replicated() {
            return Err(Rejection::InvalidAssignment {
                reason: "a partition with one replica has no raft group to move".to_owned(),
            });
        }
        // Every broker that may still be a member of the raft group stays listed until the
        // leader reports the group is exactly the target.
        let removing: Vec<i32> = meta
            .replicas
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        let adding: Vec<i32> = target
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect();
        // Nothing added or removed (the same brokers in a new order, no reassignment in
        // progress): not reassigning, and the new first replica is the preferred leader.
        meta.replicas = target.iter().chain(&removing).copied().collect();
        meta.adding_replicas = adding;
        meta.removing_replicas = removing;
        Ok(Outcome::Done)
    }

    /// A reassignment target: at least two distinct registered brokers (a replicated
    /// partition keeps a raft group).
    fn check_target(&self, target: &[i32]) -> Result<(), Rejection> {
        let invalid = |reason: String| Err(Rejection::InvalidAssignment { reason });
        if target.len() < 2 {
            return invalid(format!(
                "{} replicas: a replicated partition keeps at least two",
                target.len()
            ));
        }
        let distinct: BTreeSet<&i32> = target.iter().collect();
        if distinct.len() != target.len() {
            return invalid("the target repeats a broker".to_owned());
        }
        if let Some(unknown) = target.iter().find(|id| !self.brokers.contains_key(id)) {
            return invalid(format!("broker {unknown} is not registered"));
        }
        Ok(())
    }

    /// The partition's raft leader reports that its group's members are exactly the target.
    pub(super) fn complete_reassignment(
        &mut self,
        topic: &str,
        partition: i32,
        replicas: &[i32],
    ) -> Result<Outcome, Rejection> {
        let meta = self.partition_mut(topic, partition)?;
        if !meta.is_reassigning() || meta.target_replicas() != replicas {
            return Err(Rejection::ReassignmentMismatch {
                topic: topic.to_owned(),
                partition,
                replicas: replicas.to_vec(),
            });
        }
        meta.replicas = replicas.to_vec();
        meta.adding_replicas.clear();
        meta.removing_replicas.clear();
        meta.isr.retain(|r| replicas.contains(r));
        if meta
            .leader
            .is_some_and(|leader| !replicas.contains(&leader))
        {
            // Raft elects among the target; the new leader reports itself with a newer epoch.
            meta.leader = None;
        }
        Ok(Outcome::Done)
    }
}
