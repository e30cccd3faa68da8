//! Unit tests of the classic group state machine: joins, syncs, heartbeats, leaves and timers
//! driven with explicit `now_ms` values.

use bytes::Bytes;

use super::classic::{Group, GroupState, GroupWrite, JoinRequest, Outcome};
use super::member::{Protocol, Reply};
use super::{GroupSettings, JoinResponse};
use crate::broker::error::Error;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn request(member_id: &str, new_member_id: &str, instance_id: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: instance_id.map(str::to_owned),
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        protocol_type: "consumer".to_owned(),
        protocols: vec![Protocol {
            name: "range".to_owned(),
            metadata: Bytes::from_static(b"meta"),
        }],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        require_known_member_id: false,
        new_member_id: new_member_id.to_owned(),
    }
}

fn settings() -> GroupSettings {
    GroupSettings {
        session_timeout_ms_min: 1_000,
        ..GroupSettings::default()
    }
}

/// The join replies in `replies`, by member id.
fn joined(replies: &[Reply]) -> Vec<(String, JoinResponse)> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::Join {
                member_id,
                result: Ok(response),
            } => Some((member_id.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

/// A stable group of `ids` (the first leads), generation 1 or later.
fn stable(ids: &[&str], now: i64) -> Group {
    let mut group = Group::new("g", now);
    for id in ids {
        let (outcome, _) = group.join(request("", id, None), &settings(), now);
        assert!(matches!(outcome, Outcome::Wait { .. }), "{outcome:?}");
    }
    // Members that joined before the others must rejoin; in one call each they all have.
    for id in ids {
        let _ = group.join(request(id, "unused", None), &settings(), now);
    }
    let leader = group.leader.clone().expect("a leader");
    let _ = group.sync(&leader, None, group.generation, Vec::new(), now);
    for id in ids {
        let _ = group.sync(id, None, group.generation, Vec::new(), now);
    }
    stored(&mut group, now);
    assert_eq!(group.state, GroupState::Stable);
    group
}

/// The runtime's part once the record the group asked for is durable.
fn stored(group: &mut Group, now: i64) -> Vec<Reply> {
    match group.pending_write.take() {
        Some(GroupWrite::Assignment(generation)) => group.complete_assignment(generation, now),
        Some(GroupWrite::StaticReplacement(_)) | None => Vec::new(),
    }
}

#[test]
fn join_with_required_member_id_hands_out_an_id_first() {
    let mut group = Group::new("g", 0);
    let mut first = request("", "m-1", None);
    first.require_known_member_id = true;
    let (outcome, _) = group.join(first, &settings(), 0);
    assert!(matches!(
        outcome,
        Outcome::Done(Err(Error::MemberIdRequired { ref member_id, .. })) if member_id == "m-1"
    ));
    let (outcome, replies) = group.join(request("m-1", "unused", None), &settings(), 1);
    assert!(matches!(outcome, Outcome::Wait { ref member_id } if member_id == "m-1"));
    let replies = joined(&replies);
    assert_eq!(replies.len(), 1);
    let (member, response) = &replies[0];
    assert_eq!((member.as_str(), response.generation), ("m-1", 1));
    assert_eq!(response.leader, "m-1");
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    assert_eq!(response.members.len(), 1, "the leader sees every member");
    assert_eq!(group.state, GroupState::CompletingRebalance);
}

#[test]
fn leader_sync_makes_group_stable_and_answers_waiting_followers() {
    let mut group = Group::new("g", 0);
    let _ = group.join(request("", "a", None), &settings(), 0);
    let _ = group.join(request("", "b", None), &settings(), 0);
    let (_, replies) = group.join(request("a", "unused", None), &settings(), 0);
    assert_eq!(joined(&replies).len(), 2, "both joined: both answered");
    let leader = group.leader.clone().expect("leader");
    let follower = if leader == "a" { "b" } else { "a" };
    let generation = group.generation;
    let (outcome, replies) = group.sync(follower, None, generation, Vec::new(), 0);
    assert!(matches!(outcome, Outcome::Wait { .. }));
    assert!(replies.is_empty());
    let assignments = vec![(follower.to_owned(), Bytes::from_static(b"p0"))];
    let (_, replies) = group.sync(&leader, None, generation, assignments, 0);
    assert!(
        replies.is_empty(),
        "nobody is answered before the assignment is stored"
    );
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let replies = stored(&mut group, 0);
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(replies.len(), 2, "the leader and the follower are answered");
    let follower_reply = replies.iter().find_map(|r| match r {
        Reply::Sync {
            member_id,
            result: Ok(sync),
        } if member_id == follower => Some(sync.assignment.clone()),
        _ => None,
    });
    assert_eq!(follower_reply, Some(Bytes::from_static(b"p0")));
}

#[test]
fn heartbeat_with_wrong_generation_or_member_is_fenced() {
    let mut group = stable(&["a"], 0);
    let generation = group.generation;
    assert!(group.heartbeat("a", None, generation, 1).is_ok());
    assert!(matches!(
        group.heartbeat("a", None, generation + 1, 1),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        group.heartbeat("x", None, generation, 1),
        Err(Error::UnknownMemberId { .. })
    ));
    // A new member starts a rebalance: the old member's heartbeat says so.
    let _ = group.join(request("", "b", None), &settings(), 2);
    assert!(matches!(
        group.heartbeat("a", None, generation, 3),
        Err(Error::RebalanceInProgress { .. })
    ));
}

#[test]
fn silent_member_expires_after_session_timeout() {
    let mut group = stable(&["a"], 0);
    assert!(group.tick(i64::from(SESSION_MS)).is_empty());
    assert_eq!(group.members.len(), 1);
    let _ = group.tick(i64::from(SESSION_MS) + 1);
    assert!(group.members.is_empty());
    assert_eq!(group.state, GroupState::Empty);
    // As in Kafka, an emptied group keeps its protocol type (not a simple group).
    assert_eq!(group.protocol_type.as_deref(), Some("consumer"));
}

#[test]
fn member_not_rejoining_before_rebalance_timeout_is_removed() {
    let mut group = stable(&["a", "b"], 0);
    let generation = group.generation;
    let _ = group.join(request("a", "unused", None), &settings(), 1);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let replies = group.tick(1 + i64::from(REBALANCE_MS));
    assert!(group.members.contains_key("a") && !group.members.contains_key("b"));
    assert_eq!(group.generation, generation + 1);
    assert_eq!(joined(&replies).len(), 1);
}

#[test]
fn static_member_rejoining_fences_its_old_member_id() {
    let mut group = Group::new("g", 0);
    let _ = group.join(request("", "old", Some("i-1")), &settings(), 0);
    let _ = group.sync("old", None, 1, vec![("old".to_owned(), Bytes::new())], 0);
    stored(&mut group, 0);
    assert_eq!(group.state, GroupState::Stable);
    let (outcome, _) = group.join(request("", "new", Some("i-1")), &settings(), 1);
    assert!(matches!(
        outcome,
        Outcome::Done(Ok(JoinResponse { ref member_id, .. })) if member_id == "new"
    ));
    assert!(matches!(
        group.pending_write,
        Some(GroupWrite::StaticReplacement(_))
    ));
    assert!(matches!(
        group.heartbeat("old", Some("i-1"), 1, 2),
        Err(Error::FencedInstanceId { .. })
    ));
    assert!(group.heartbeat("new", Some("i-1"), 1, 2).is_ok());
}

#[test]
fn commit_rules_follow_kafka() {
    let mut group = Group::new("g", 0);
    assert!(
        group.check_commit("", None, -1, 0).is_ok(),
        "simple commit to an empty group"
    );
    let mut group = stable(&["a"], 0);
    let generation = group.generation;
    assert!(group.check_commit("a", None, generation, 0).is_ok());
    assert!(matches!(
        group.check_commit("", None, -1, 0),
        Err(Error::UnknownMemberId { .. })
    ));
    assert!(matches!(
        group.check_commit("a", None, generation + 1, 0),
        Err(Error::IllegalGeneration { .. })
    ));
}

/// Kafka's handleCommitOffsets reschedules the member's heartbeat expiry on an accepted commit
/// (Stable or PreparingRebalance); librdkafka sends no heartbeat while it revokes partitions
/// but keeps committing, so a commit must keep its session alive.
#[test]
fn commit_during_rebalance_without_heartbeats_keeps_the_member() {
    let session = i64::from(SESSION_MS);
    let mut group = stable(&["a", "b"], 0);
    let generation = group.generation;
    // "b" joins again with fewer owned partitions (a cooperative member after revoking some):
    // the group prepares a rebalance.
    let mut rejoin = request("b", "unused", None);
    rejoin.protocols[0].metadata = Bytes::from_static(b"meta, one partition revoked");
    let _ = group.join(rejoin, &settings(), 1);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    // "a" commits but sends no heartbeat for longer than its session, in two steps.
    for now in [session - 100, 2 * session - 200] {
        assert!(group.check_commit("a", None, generation, now).is_ok());
        let _ = group.tick(now + 50);
        assert!(group.members.contains_key("a"), "evicted at {now}");
    }
    // In a stable group too.
    let mut group = stable(&["a", "b"], 0);
    assert!(
        group
            .check_commit("a", None, generation, session - 100)
            .is_ok()
    );
    assert!(
        group
            .heartbeat("b", None, generation, session - 100)
            .is_ok()
    );
    let _ = group.tick(session + 50);
    assert!(group.members.contains_key("a"));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn leave_of_last_member_empties_the_group() {
    let mut group = stable(&["a"], 0);
    let mut replies = Vec::new();
    assert!(group.leave("a", None, 1, &mut replies).is_ok());
    assert_eq!(group.state, GroupState::Empty);
    assert!(matches!(
        group.leave("a", None, 2, &mut replies),
        Err(Error::UnknownMemberId { .. })
    ));
}

#[test]
fn failed_assignment_record_answers_waiting_syncs_with_the_error_and_rebalances() {
    let mut group = Group::new("g", 0);
    let _ = group.join(request("", "a", None), &settings(), 0);
    let _ = group.join(request("", "b", None), &settings(), 0);
    let _ = group.join(request("a", "unused", None), &settings(), 0);
    let leader = group.leader.clone().expect("leader");
    let follower = if leader == "a" { "b" } else { "a" };
    let generation = group.generation;
    let _ = group.sync(follower, None, generation, Vec::new(), 0);
    let _ = group.sync(&leader, None, generation, Vec::new(), 0);
    let write = group.pending_write.take();
    assert!(matches!(write, Some(GroupWrite::Assignment(g)) if g == generation));
    let failed = || Error::CoordinatorLogFailed {
        group: "g".to_owned(),
    };
    let replies = group.fail_assignment(generation, failed, 1);
    let errors: Vec<&str> = replies
        .iter()
        .filter_map(|r| match r {
            Reply::Sync {
                member_id,
                result: Err(Error::CoordinatorLogFailed { .. }),
            } => Some(member_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors.len(),
        2,
        "both waiting members get the error: {replies:?}"
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(group.members.values().all(|m| m.assignment.is_empty()));
    // A late success of the same write changes nothing; the members rejoin.
    assert!(group.complete_assignment(generation, 2).is_empty());
    let _ = group.join(request("a", "unused", None), &settings(), 3);
    let (_, replies) = group.join(request("b", "unused", None), &settings(), 3);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.generation, generation + 1);
    assert!(!joined(&replies).is_empty());
}

#[test]
fn failed_static_replacement_record_gives_the_old_member_id_back() {
    let mut group = Group::new("g", 0);
    let _ = group.join(request("", "old", Some("i-1")), &settings(), 0);
    let _ = group.sync("old", None, 1, vec![("old".to_owned(), Bytes::new())], 0);
    stored(&mut group, 0);
    let _ = group.join(request("", "new", Some("i-1")), &settings(), 1);
    let Some(GroupWrite::StaticReplacement(revert)) = group.pending_write.take() else {
        panic!("a static replacement asks for its record");
    };
    group.revert_static_replacement(revert);
    assert!(group.heartbeat("old", Some("i-1"), 1, 2).is_ok());
    assert!(matches!(
        group.heartbeat("new", Some("i-1"), 1, 2),
        Err(Error::FencedInstanceId { .. })
    ));
    assert_eq!(group.leader.as_deref(), Some("old"));
}
