//! The classic group state machine after the join phase: SyncGroup, Heartbeat, LeaveGroup,
//! the offset-commit membership check and the timers (session and rebalance timeouts).
//! Pure like `classic.rs`: fed requests and `now_ms`, it returns replies and does no I/O.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::SyncResponse;
use super::classic::{Group, GroupState, GroupWrite, Outcome};
use super::member::Reply;
use crate::broker::error::{Error, Result};

impl Group {
    pub(crate) fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> (Outcome<SyncResponse>, Vec<Reply>) {
        let replies = Vec::new();
        let done = |r| (Outcome::Done(r), Vec::new());
        if let Err(e) = self.check_member(member_id, instance_id) {
            return done(Err(e));
        }
        if generation != self.generation {
            return done(Err(self.illegal_generation(generation)));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => done(Err(self.unknown_member(member_id))),
            GroupState::PreparingRebalance => done(Err(self.rebalance_in_progress())),
            GroupState::Stable => done(Ok(self.sync_response(member_id))),
            GroupState::CompletingRebalance => {
                if let Some(member) = self.members.get_mut(member_id) {
                    member.awaiting_sync = true;
                    member.last_heartbeat_ms = now_ms;
                }
                // As Kafka: the leader's assignment is stored first; the group turns Stable and
                // every member gets its assignment once the record is durable.
                if self.leader.as_deref() == Some(member_id) && !self.is_assignment_pending {
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment = given.remove(&member.member_id).unwrap_or_default();
                    }
                    self.is_dirty = true;
                    self.is_assignment_pending = true;
                    self.pending_write = Some(GroupWrite::Assignment(self.generation));
                }
                (
                    Outcome::Wait {
                        member_id: member_id.to_owned(),
                    },
                    replies,
                )
            }
        }
    }

    /// The leader's assignment of `generation` is durable: the group turns Stable and every
    /// member waiting in SyncGroup gets its assignment. Stale calls change nothing.
    pub(crate) fn complete_assignment(&mut self, generation: i32, now_ms: i64) -> Vec<Reply> {
        let mut replies = Vec::new();
        if !self.is_assignment_pending_for(generation) {
            return replies;
        }
        self.is_assignment_pending = false;
        self.transition(GroupState::Stable, now_ms);
        let waiting: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_sync)
            .map(|m| m.member_id.clone())
            .collect();
        for id in waiting {
            replies.push(Reply::sync(&id, Ok(self.sync_response(&id))));
            if let Some(member) = self.members.get_mut(&id) {
                member.awaiting_sync = false;
                member.last_heartbeat_ms = now_ms;
            }
        }
        replies
    }

    /// The leader's assignment of `generation` was not stored: as Kafka, every member waiting
    /// in SyncGroup gets `error` and the group rebalances, so the members rejoin.
    pub(crate) fn fail_assignment(
        &mut self,
        generation: i32,
        error: impl Fn() -> Error,
        now_ms: i64,
    ) -> Vec<Reply> {
        let mut replies = Vec::new();
        if !self.is_assignment_pending_for(generation) {
            return replies;
        }
        self.is_assignment_pending = false;
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if std::mem::take(&mut member.awaiting_sync) {
                replies.push(Reply::sync(&member.member_id, Err(error())));
                member.last_heartbeat_ms = now_ms;
            }
        }
        self.prepare_rebalance(now_ms, &mut replies);
        self.try_complete_join(now_ms, &mut replies);
        replies
    }

    fn is_assignment_pending_for(&self, generation: i32) -> bool {
        self.is_assignment_pending
            && self.state == GroupState::CompletingRebalance
            && self.generation == generation
    }

    fn sync_response(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<()> {
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(self.illegal_generation(generation));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(self.unknown_member(member_id)),
            state => {
                if let Some(member) = self.members.get_mut(member_id) {
                    member.last_heartbeat_ms = now_ms;
                }
                if state == GroupState::PreparingRebalance {
                    Err(self.rebalance_in_progress())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id for static members).
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let target = match instance_id {
            Some(instance) => {
                let owner = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .ok_or_else(|| self.unknown_member(member_id))?;
                if !member_id.is_empty() && owner != member_id {
                    return Err(Error::FencedInstanceId {
                        group: self.group_id.clone(),
                        instance_id: instance.to_owned(),
                    });
                }
                owner
            }
            None if self.pending_members.contains_key(member_id) => member_id.to_owned(),
            None => {
                self.check_member(member_id, None)?;
                member_id.to_owned()
            }
        };
        tracing::info!(group = %self.group_id, member = %target, "member left");
        self.evict(&target, now_ms, replies);
        Ok(())
    }

    /// Offset commits are allowed from current members of the current generation, and from
    /// anyone (generation -1, no member id) while the group has no members. As in Kafka, an
    /// accepted commit of a member also counts as its heartbeat (librdkafka sends none while
    /// it revokes partitions, yet may still commit).
    pub(crate) fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<()> {
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.check_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(self.illegal_generation(generation));
            }
            if self.state == GroupState::CompletingRebalance {
                return Err(self.rebalance_in_progress());
            }
            if let Some(member) = self.members.get_mut(member_id) {
                member.last_heartbeat_ms = now_ms;
            }
            Ok(())
        } else if self.state != GroupState::Empty {
            Err(self.unknown_member(member_id))
        } else {
            Ok(())
        }
    }

    /// Timers: expired sessions, pending member ids, rebalance and sync timeouts.
    pub(crate) fn tick(&mut self, now_ms: i64) -> Vec<Reply> {
        let mut replies = Vec::new();
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync)
            .filter(|m| now_ms - m.last_heartbeat_ms > i64::from(m.session_timeout_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "session expired, member evicted");
            self.evict(&member_id, now_ms, &mut replies);
        }
        let stale: BTreeSet<String> = self
            .pending_members
            .iter()
            .filter(|(_, expiry)| now_ms > **expiry)
            .map(|(id, _)| id.clone())
            .collect();
        for member_id in stale {
            self.evict(&member_id, now_ms, &mut replies);
        }
        if self.state == GroupState::CompletingRebalance && now_ms >= self.rebalance_deadline_ms {
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| !m.awaiting_sync)
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in unsynced {
                self.remove_member(&member_id, &mut replies);
            }
            self.prepare_rebalance(now_ms, &mut replies);
        }
        self.try_complete_join(now_ms, &mut replies);
        replies
    }
}
