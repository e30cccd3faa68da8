//! Unit tests of KIP-848 consumer groups: assignors, reconciliation (revoke before grant) and
//! epoch fencing.

use super::consumer::{ConsumerGroup, Heartbeat, HeartbeatResponse, TopicPartition};
use crate::broker::error::{Error, Result};

fn six_partitions(topic: &str) -> Option<i32> {
    (topic == "t").then_some(6)
}

fn beat(
    group: &mut ConsumerGroup,
    member: &str,
    epoch: i32,
    owned: Option<Vec<TopicPartition>>,
) -> Result<HeartbeatResponse> {
    let request = Heartbeat {
        member_id: member.to_owned(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        client_id: "c".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        subscribed_topics: (epoch == 0).then(|| vec!["t".to_owned()]),
        server_assignor: None,
        owned,
    };
    group.heartbeat("g", request, &six_partitions, 0)
}

fn partitions(response: &HeartbeatResponse) -> Vec<i32> {
    response
        .assignment
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn first_member_gets_every_partition_at_the_new_epoch() {
    let mut group = ConsumerGroup::default();
    let joined = beat(&mut group, "a", 0, Some(Vec::new())).expect("join");
    assert_eq!(partitions(&joined), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(joined.member_epoch, group.group_epoch);
    assert_eq!(group.state_name(), "Stable");
    // Nothing changed: no assignment is sent again.
    let again = beat(&mut group, "a", joined.member_epoch, None).expect("heartbeat");
    assert_eq!(again.assignment, None);
}

#[test]
fn partitions_move_to_a_new_member_only_after_revocation() {
    let mut group = ConsumerGroup::default();
    let a = beat(&mut group, "a", 0, Some(Vec::new())).expect("join a");
    let b = beat(&mut group, "b", 0, Some(Vec::new())).expect("join b");
    assert_eq!(partitions(&b), Vec::<i32>::new(), "a still owns everything");
    assert_eq!(group.state_name(), "Reconciling");
    // a is told to keep only its half and stays at its epoch until it confirms.
    let revoke = beat(&mut group, "a", a.member_epoch, None).expect("a heartbeat");
    let kept = partitions(&revoke);
    assert_eq!(kept.len(), 3);
    assert_eq!(revoke.member_epoch, a.member_epoch);
    let owned: Vec<TopicPartition> = kept.iter().map(|p| ("t".to_owned(), *p)).collect();
    let confirmed = beat(&mut group, "a", a.member_epoch, Some(owned)).expect("a confirms");
    assert_eq!(confirmed.member_epoch, group.group_epoch);
    let granted = beat(&mut group, "b", b.member_epoch, None).expect("b heartbeat");
    let mut all: Vec<i32> = kept.into_iter().chain(partitions(&granted)).collect();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(group.state_name(), "Stable");
}

#[test]
fn wrong_epoch_is_fenced_and_unknown_member_is_rejected() {
    let mut group = ConsumerGroup::default();
    let a = beat(&mut group, "a", 0, Some(Vec::new())).expect("join");
    assert!(matches!(
        beat(&mut group, "a", a.member_epoch + 5, None),
        Err(Error::FencedMemberEpoch { .. })
    ));
    assert!(matches!(
        beat(&mut group, "x", 3, None),
        Err(Error::UnknownMemberId { .. })
    ));
    assert!(group.check_commit("g", "a", a.member_epoch).is_ok());
    assert!(matches!(
        group.check_commit("g", "a", a.member_epoch + 1),
        Err(Error::FencedMemberEpoch { .. })
    ));
}

#[test]
fn leaving_member_frees_its_partitions_for_the_rest() {
    let mut group = ConsumerGroup::default();
    let a = beat(&mut group, "a", 0, Some(Vec::new())).expect("join a");
    let b = beat(&mut group, "b", 0, Some(Vec::new())).expect("join b");
    let _ = beat(&mut group, "a", a.member_epoch, None);
    let left = beat(&mut group, "a", -1, None).expect("leave");
    assert_eq!(left.member_epoch, -1);
    let granted = beat(&mut group, "b", b.member_epoch, None).expect("b heartbeat");
    assert_eq!(partitions(&granted), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn range_assignor_gives_contiguous_runs() {
    let mut group = ConsumerGroup::default();
    for member in ["a", "b"] {
        let request = Heartbeat {
            member_id: member.to_owned(),
            member_epoch: 0,
            instance_id: None,
            rack_id: None,
            client_id: "c".to_owned(),
            client_host: "h".to_owned(),
            subscribed_topics: Some(vec!["t".to_owned()]),
            server_assignor: Some("range".to_owned()),
            owned: Some(Vec::new()),
        };
        group
            .heartbeat("g", request, &six_partitions, 0)
            .expect("join");
    }
    let target: Vec<Vec<i32>> = group
        .target
        .values()
        .map(|parts| parts.iter().map(|(_, p)| *p).collect())
        .collect();
    assert_eq!(target, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    let mut unknown = Heartbeat {
        member_id: "c".to_owned(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        client_id: "c".to_owned(),
        client_host: "h".to_owned(),
        subscribed_topics: Some(vec!["t".to_owned()]),
        server_assignor: Some("sticky-ish".to_owned()),
        owned: None,
    };
    assert!(matches!(
        group.heartbeat("g", unknown.clone(), &six_partitions, 0),
        Err(Error::UnsupportedAssignor { .. })
    ));
    unknown.subscribed_topics = None;
    unknown.server_assignor = None;
    assert!(matches!(
        group.heartbeat("g", unknown, &six_partitions, 0),
        Err(Error::InvalidGroupRequest { .. })
    ));
}
