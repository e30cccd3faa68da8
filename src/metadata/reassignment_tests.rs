//! Tests of partition reassignment in `State::apply`: start, replace, cancel, complete, and
//! their refusals.

use super::apply_tests::{cluster, create};
use super::*;

fn reassign(topic: &str, replicas: Option<&[i32]>) -> Command {
    Command::ReassignPartition {
        topic: topic.into(),
        partition: 0,
        replicas: replicas.map(<[i32]>::to_vec),
    }
}

fn complete(topic: &str, replicas: &[i32]) -> Command {
    Command::CompleteReassignment {
        topic: topic.into(),
        partition: 0,
        replicas: replicas.to_vec(),
    }
}

/// A four-broker cluster with topic "t": one partition on brokers 1, 2, 3, led by 1.
fn placed() -> State {
    let mut state = cluster(4);
    state
        .apply(&Command::CreateTopic {
            name: "t".into(),
            id: [7; 16],
            partitions: 1,
            replication_factor: 3,
            assignment: Some(vec![vec![1, 2, 3]]),
            configs: Default::default(),
            internal: false,
        })
        .unwrap();
    state
        .apply(&Command::SetPartitionLeader {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 1,
        })
        .unwrap();
    state
}

/// (replicas, adding, removing) of partition 0 of "t".
fn moving(state: &State) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let p = state.partition("t", 0).expect("partition 0 of t");
    (
        p.replicas.clone(),
        p.adding_replicas.clone(),
        p.removing_replicas.clone(),
    )
}

#[test]
fn a_reassignment_lists_the_target_then_the_removed_and_completion_leaves_the_target() {
    let mut state = placed();
    assert_eq!(
        state.apply(&reassign("t", Some(&[4, 2, 3]))),
        Ok(Outcome::Done)
    );
    assert_eq!(moving(&state), (vec![4, 2, 3, 1], vec![4], vec![1]));
    let p = state.partition("t", 0).expect("partition");
    assert!(p.is_reassigning());
    assert_eq!(p.target_replicas(), [4, 2, 3]);
    // The old leader still leads until raft moves.
    assert_eq!(p.leader, Some(1));

    // Only the target in progress completes it.
    assert!(matches!(
        state.apply(&complete("t", &[2, 3, 4])),
        Err(Rejection::ReassignmentMismatch { .. })
    ));
    assert_eq!(state.apply(&complete("t", &[4, 2, 3])), Ok(Outcome::Done));
    assert_eq!(moving(&state), (vec![4, 2, 3], vec![], vec![]));
    let p = state.partition("t", 0).expect("partition");
    assert!(!p.is_reassigning());
    assert_eq!(p.leader, None, "the removed leader no longer leads");
    assert!(p.isr.iter().all(|r| [4, 2, 3].contains(r)), "{:?}", p.isr);
    // Completing twice is refused, and the broker that left may be unregistered.
    assert!(state.apply(&complete("t", &[4, 2, 3])).is_err());
    assert_eq!(
        state.apply(&Command::UnregisterBroker { id: 1 }),
        Ok(Outcome::Done)
    );
}

#[test]
fn a_broker_being_removed_still_holds_its_replica_until_the_reassignment_completes() {
    let mut state = placed();
    state.apply(&reassign("t", Some(&[2, 3, 4]))).unwrap();
    assert_eq!(
        state.apply(&Command::UnregisterBroker { id: 1 }),
        Err(Rejection::BrokerHoldsReplicas { id: 1 })
    );
}

#[test]
fn a_new_order_of_the_same_replicas_is_not_a_reassignment() {
    let mut state = placed();
    state.apply(&reassign("t", Some(&[3, 1, 2]))).unwrap();
    assert_eq!(moving(&state), (vec![3, 1, 2], vec![], vec![]));
    assert!(matches!(
        state.apply(&complete("t", &[3, 1, 2])),
        Err(Rejection::ReassignmentMismatch { .. })
    ));
}

#[test]
fn cancelling_moves_back_to_the_original_replicas_through_the_leader() {
    let mut state = placed();
    assert_eq!(
        state.apply(&reassign("t", None)),
        Err(Rejection::NoReassignmentInProgress {
            topic: "t".into(),
            partition: 0
        })
    );
    state.apply(&reassign("t", Some(&[4, 2, 3]))).unwrap();
    state.apply(&reassign("t", None)).unwrap();
    // Broker 4 may already be in the raft group: it is removed, nothing is added (the
    // original replicas keep the order they had in the list, as in Kafka).
    assert_eq!(moving(&state), (vec![2, 3, 1, 4], vec![], vec![4]));
    state.apply(&complete("t", &[2, 3, 1])).unwrap();
    assert_eq!(moving(&state), (vec![2, 3, 1], vec![], vec![]));
}

#[test]
fn a_new_target_replaces_the_one_in_progress_and_keeps_every_possible_member_listed() {
    let mut state = placed();
    state.apply(&reassign("t", Some(&[4, 2, 3]))).unwrap();
    // 4 was being added, 1 removed; now 1 stays and 4 goes: 4 is removed, still listed.
    state.apply(&reassign("t", Some(&[1, 2]))).unwrap();
    assert_eq!(moving(&state), (vec![1, 2, 4, 3], vec![], vec![4, 3]));
    assert_eq!(
        state.partition("t", 0).map(|p| p.target_replicas()),
        Some(vec![1, 2])
    );
}

#[test]
fn invalid_targets_are_refused_and_change_nothing() {
    let mut state = placed();
    let before = state.clone();
    for target in [&[1][..], &[1, 1, 2], &[1, 2, 9], &[]] {
        assert!(
            matches!(
                state.apply(&reassign("t", Some(target))),
                Err(Rejection::InvalidAssignment { .. })
            ),
            "{target:?}"
        );
    }
    assert!(matches!(
        state.apply(&reassign("absent", Some(&[1, 2]))),
        Err(Rejection::UnknownPartition { .. })
    ));
    // A partition with one replica has no raft group to move.
    state.apply(&create("single", 8, 1, 1)).unwrap();
    assert!(matches!(
        state.apply(&reassign("single", Some(&[1, 2]))),
        Err(Rejection::InvalidAssignment { .. })
    ));
    state
        .apply(&Command::DeleteTopic {
            name: "single".into(),
        })
        .unwrap();
    assert_eq!(state.topics, before.topics);
}
