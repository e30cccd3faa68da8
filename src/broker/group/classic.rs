//! The classic group membership state machine, as Kafka's GroupCoordinator has it: Empty,
//! PreparingRebalance, CompletingRebalance, Stable (Dead groups are dropped by the caller).
//! Pure: fed requests and `now_ms`, it returns replies for waiting members; it does no I/O.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::member::{Member, Protocol, Reply, select_protocol};
use super::{GroupSettings, JoinResponse, JoinedMember};
use crate::broker::error::{Error, Result};

/// Where a classic group is in its rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup request, as the state machine sees it.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    /// v4+: an unknown member first gets a member id back (MEMBER_ID_REQUIRED).
    pub(crate) require_known_member_id: bool,
    /// The id given to a new member (made by the caller, so this stays pure).
    pub(crate) new_member_id: String,
}

/// A JoinGroup or SyncGroup call either answers now or waits for the rebalance.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    Done(Result<T>),
    /// The reply arrives later as a `Reply` for this member id.
    Wait {
        member_id: String,
    },
}

/// A group record the state machine asks the runtime to write before it goes on.
#[derive(Debug, Clone)]
pub(crate) enum GroupWrite {
    /// The leader's assignment of this generation: the group stays CompletingRebalance until
    /// the record is durable ([`Group::complete_assignment`], [`Group::fail_assignment`]).
    Assignment(i32),
    /// A static member's new member id in a stable group, undone if the record fails.
    StaticReplacement(Box<StaticRevert>),
}

/// What undoes a static member's replacement when its record is not stored (Kafka reverts it).
#[derive(Debug, Clone)]
pub(crate) struct StaticRevert {
    pub(super) instance_id: String,
    pub(super) new_id: String,
    pub(super) old_member: Member,
    pub(super) old_leader: Option<String>,
    pub(super) generation: i32,
}

/// One classic group's membership; offsets live beside it in `GroupEntry`.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group.instance.id -> member id of the static member holding it.
    pub(crate) static_members: BTreeMap<String, String>,
    /// v4 member ids handed out but not yet used to join, with their expiry time.
    pub(super) pending_members: BTreeMap<String, i64>,
    pub(super) rebalance_deadline_ms: i64,
    join_not_before_ms: i64,
    /// group.initial.rebalance.delay.ms, applied when an empty group starts its first rebalance.
    initial_delay_ms: i64,
    pub(crate) state_since_ms: i64,
    /// Set when something persisted (generation, leader, assignments) changed.
    pub(crate) is_dirty: bool,
    /// The leader's assignment waits for its record to be durable (CompletingRebalance).
    pub(super) is_assignment_pending: bool,
    /// A record to write before the change it describes takes effect; taken by the runtime.
    pub(crate) pending_write: Option<GroupWrite>,
}

impl Group {
    pub(crate) fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            rebalance_deadline_ms: 0,
            join_not_before_ms: 0,
            initial_delay_ms: 0,
            state_since_ms: now_ms,
            is_dirty: false,
            is_assignment_pending: false,
            pending_write: None,
        }
    }

    /// A group rebuilt from its persisted record: Stable with its members if it had any.
    pub(crate) fn restored(mut group: Group, now_ms: i64) -> Group {
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        for member in group.members.values_mut() {
            member.last_heartbeat_ms = now_ms;
        }
        group.static_members = group
            .members
            .values()
            .filter_map(|m| Some((m.instance_id.clone()?, m.member_id.clone())))
            .collect();
        group.state_since_ms = now_ms;
        group
    }

    pub(crate) fn has_pending_members(&self) -> bool {
        !self.pending_members.is_empty()
    }

    pub(super) fn transition(&mut self, state: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.group_id, from = self.state.name(), to = state.name(), "group state");
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// Checks that `member_id` (and `instance_id`, if given) is a current member.
    pub(crate) fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<()> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(owner) if owner != member_id => {
                    return Err(Error::FencedInstanceId {
                        group: self.group_id.clone(),
                        instance_id: instance.to_owned(),
                    });
                }
                _ => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(self.unknown_member(member_id))
        }
    }

    pub(crate) fn unknown_member(&self, member_id: &str) -> Error {
        Error::UnknownMemberId {
            group: self.group_id.clone(),
            member_id: member_id.to_owned(),
        }
    }

    pub(super) fn illegal_generation(&self, generation: i32) -> Error {
        Error::IllegalGeneration {
            group: self.group_id.clone(),
            generation,
            current: self.generation,
        }
    }

    pub(super) fn rebalance_in_progress(&self) -> Error {
        Error::RebalanceInProgress {
            group: self.group_id.clone(),
        }
    }

    /// Protocols every member supports (all of the request's if the group is empty).
    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    pub(crate) fn join(
        &mut self,
        request: JoinRequest,
        limits: &GroupSettings,
        now_ms: i64,
    ) -> (Outcome<JoinResponse>, Vec<Reply>) {
        let mut replies = Vec::new();
        let done = |e| (Outcome::Done(Err(e)), Vec::new());
        self.initial_delay_ms = i64::from(limits.initial_rebalance_delay_ms);
        let timeout = request.session_timeout_ms;
        if timeout < limits.session_timeout_ms_min || timeout > limits.session_timeout_ms_max {
            return done(Error::InvalidSessionTimeout {
                session_timeout_ms: timeout,
            });
        }
        if !self.supports(&request.protocol_type, &request.protocols) {
            return done(Error::InconsistentGroupProtocol {
                group: self.group_id.clone(),
            });
        }
        let outcome = if request.member_id.is_empty() {
            self.join_unknown(request, limits, now_ms, &mut replies)
        } else {
            self.join_known(request, now_ms, &mut replies)
        };
        self.try_complete_join(now_ms, &mut replies);
        (outcome, replies)
    }

    /// Starts a rebalance: members waiting in sync are told to rejoin.
    pub(crate) fn prepare_rebalance(&mut self, now_ms: i64, replies: &mut Vec<Reply>) {
        self.is_assignment_pending = false;
        if matches!(self.pending_write, Some(GroupWrite::Assignment(_))) {
            self.pending_write = None;
        }
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if std::mem::take(&mut member.awaiting_sync) {
                    let error = Error::RebalanceInProgress {
                        group: self.group_id.clone(),
                    };
                    replies.push(Reply::sync(&member.member_id, Err(error)));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.join_not_before_ms = if self.state == GroupState::Empty {
            now_ms + self.initial_delay_ms
        } else {
            now_ms
        };
        self.rebalance_deadline_ms = now_ms + timeout;
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    /// Completes the join phase once every member rejoined (or the rebalance timed out).
    pub(super) fn try_complete_join(&mut self, now_ms: i64, replies: &mut Vec<Reply>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join)
            && self.pending_members.is_empty()
            && now_ms >= self.join_not_before_ms;
        if !all_joined && now_ms < self.rebalance_deadline_ms {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in gone {
            self.remove_member(&member_id, replies);
        }
        self.pending_members.clear();
        self.generation += 1;
        self.is_dirty = true;
        if self.members.is_empty() {
            // Kafka keeps the protocol type of an emptied group (ListGroups still says
            // "consumer", which clients tell apart from a simple, offsets-only group).
            self.protocol_name = None;
            self.leader = None;
            self.transition(GroupState::Empty, now_ms);
            return;
        }
        self.protocol_name = select_protocol(&self.members);
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.rebalance_deadline_ms = now_ms
            + self
                .members
                .values()
                .map(|m| i64::from(m.rebalance_timeout_ms))
                .max()
                .unwrap_or(0);
        self.transition(GroupState::CompletingRebalance, now_ms);
        let everyone = self.joined_members();
        let waiting: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in waiting {
            let is_leader = self.leader.as_deref() == Some(member_id.as_str());
            let members = if is_leader {
                everyone.clone()
            } else {
                Vec::new()
            };
            let response = self.join_response(&member_id, members, false);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.awaiting_join = false;
                member.last_heartbeat_ms = now_ms;
            }
            replies.push(Reply::join(&member_id, Ok(response)));
        }
    }

    pub(super) fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    pub(super) fn join_response(
        &self,
        member_id: &str,
        members: Vec<JoinedMember>,
        skip_assignment: bool,
    ) -> JoinResponse {
        JoinResponse {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            skip_assignment,
            members,
        }
    }

    /// Removes a member; replies to its waiting requests with UNKNOWN_MEMBER_ID.
    pub(super) fn remove_member(&mut self, member_id: &str, replies: &mut Vec<Reply>) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        if member.awaiting_join {
            replies.push(Reply::join(member_id, Err(self.unknown_member(member_id))));
        }
        if member.awaiting_sync {
            replies.push(Reply::sync(member_id, Err(self.unknown_member(member_id))));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// A member left or expired: the rest of the group rebalances.
    pub(crate) fn evict(&mut self, member_id: &str, now_ms: i64, replies: &mut Vec<Reply>) {
        if self.pending_members.remove(member_id).is_some() {
            self.try_complete_join(now_ms, replies);
            return;
        }
        self.remove_member(member_id, replies);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms, replies);
            }
            _ => {}
        }
        self.try_complete_join(now_ms, replies);
    }
}
