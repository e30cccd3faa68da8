//! The join paths of a classic group: unknown members (the v4+ member-id handshake, static
//! members taking over their old member id) and known members rejoining. Pure, like `classic.rs`.

use super::GroupSettings;
use super::JoinResponse;
use super::classic::{Group, GroupState, GroupWrite, JoinRequest, Outcome, StaticRevert};
use super::member::{Member, Reply};
use crate::broker::error::Error;

impl Group {
    pub(super) fn join_unknown(
        &mut self,
        request: JoinRequest,
        limits: &GroupSettings,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) -> Outcome<JoinResponse> {
        if let Some(instance) = request.instance_id.clone()
            && let Some(old_id) = self.static_members.get(&instance).cloned()
        {
            return self.replace_static_member(&old_id, request, now_ms, replies);
        }
        if self.members.len() + self.pending_members.len() >= limits.group_size_max {
            return Outcome::Done(Err(Error::GroupMaxSizeReached {
                group: self.group_id.clone(),
            }));
        }
        let member_id = request.new_member_id.clone();
        if request.require_known_member_id && request.instance_id.is_none() {
            let expiry = now_ms + i64::from(request.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), expiry);
            return Outcome::Done(Err(Error::MemberIdRequired {
                group: self.group_id.clone(),
                member_id,
            }));
        }
        self.add_member(member_id.clone(), request, now_ms, replies);
        Outcome::Wait { member_id }
    }

    pub(super) fn join_known(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) -> Outcome<JoinResponse> {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member(member_id.clone(), request, now_ms, replies);
            return Outcome::Wait { member_id };
        }
        if let Err(e) = self.check_member(&member_id, request.instance_id.as_deref()) {
            return Outcome::Done(Err(e));
        }
        let Some(member) = self.members.get(&member_id) else {
            return Outcome::Done(Err(self.unknown_member(&member_id)));
        };
        let is_same = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::CompletingRebalance | GroupState::Stable
                if is_same && !(self.state == GroupState::Stable && is_leader) =>
            {
                // A resent join: answer with the current generation without a new rebalance.
                let members = if is_leader {
                    self.joined_members()
                } else {
                    Vec::new()
                };
                Outcome::Done(Ok(self.join_response(&member_id, members, false)))
            }
            GroupState::Empty | GroupState::Dead => {
                Outcome::Done(Err(self.unknown_member(&member_id)))
            }
            _ => {
                self.update_member(&member_id, request, now_ms);
                if self.state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(now_ms, replies);
                }
                Outcome::Wait { member_id }
            }
        }
    }

    /// A static member rejoined without its member id: the old id is fenced, the new one
    /// takes over its place (and, in a stable group, its assignment).
    pub(super) fn replace_static_member(
        &mut self,
        old_id: &str,
        request: JoinRequest,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) -> Outcome<JoinResponse> {
        let Some(mut member) = self.members.remove(old_id) else {
            return Outcome::Done(Err(self.unknown_member(old_id)));
        };
        let old_member = member.clone();
        let old_leader = self.leader.clone();
        let fenced = || Error::FencedInstanceId {
            group: self.group_id.clone(),
            instance_id: request.instance_id.clone().unwrap_or_default(),
        };
        if member.awaiting_join {
            replies.push(Reply::join(old_id, Err(fenced())));
        }
        if member.awaiting_sync {
            replies.push(Reply::sync(old_id, Err(fenced())));
        }
        let new_id = request.new_member_id.clone();
        let is_same = member.protocols == request.protocols;
        member.member_id.clone_from(&new_id);
        member.awaiting_join = false;
        member.awaiting_sync = false;
        member.last_heartbeat_ms = now_ms;
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.is_dirty = true;
        if self.state == GroupState::Stable && is_same {
            // The new member id is stored before it is answered (and undone if that fails).
            self.pending_write = Some(GroupWrite::StaticReplacement(Box::new(StaticRevert {
                instance_id: request.instance_id.clone().unwrap_or_default(),
                new_id: new_id.clone(),
                old_member,
                old_leader,
                generation: self.generation,
            })));
            let response = self.join_response(&new_id, Vec::new(), true);
            return Outcome::Done(Ok(response));
        }
        self.update_member(&new_id, request, now_ms);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now_ms, replies);
        }
        Outcome::Wait { member_id: new_id }
    }

    /// Undoes a static member's replacement whose record was not stored: the old member id
    /// is back in the group and the new one is unknown. Nothing happens if the group moved on.
    pub(crate) fn revert_static_replacement(&mut self, revert: Box<StaticRevert>) {
        let StaticRevert {
            instance_id,
            new_id,
            old_member,
            old_leader,
            generation,
        } = *revert;
        if self.generation != generation || self.static_members.get(&instance_id) != Some(&new_id) {
            return;
        }
        self.members.remove(&new_id);
        self.static_members
            .insert(instance_id, old_member.member_id.clone());
        self.members
            .insert(old_member.member_id.clone(), old_member);
        self.leader = old_leader;
    }

    pub(super) fn add_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        let member = Member::new(member_id.clone(), &request, now_ms);
        self.members.insert(member_id.clone(), member);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now_ms, replies);
        }
        if let Some(member) = self.members.get_mut(&member_id) {
            member.awaiting_join = true;
        }
    }

    pub(super) fn update_member(&mut self, member_id: &str, request: JoinRequest, now_ms: i64) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.protocols = request.protocols;
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.client_id = request.client_id;
            member.client_host = request.client_host;
            member.awaiting_join = true;
            member.last_heartbeat_ms = now_ms;
        }
    }
}
