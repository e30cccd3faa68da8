//! Tests of `State::apply`: every command, its refusals, and leadership through fencing.

use std::collections::BTreeMap;

use super::*;

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
    }
}

fn registration(id: i32, incarnation: u8) -> BrokerRegistration {
    BrokerRegistration {
        id,
        incarnation: [incarnation; 16],
        kafka: endpoint(9000 + id as u16),
        cluster: endpoint(9100 + id as u16),
        listeners: Default::default(),
        rack: None,
        fenced: false,
    }
}

pub(super) fn create(name: &str, id: u8, partitions: i32, factor: i16) -> Command {
    Command::CreateTopic {
        name: name.into(),
        id: [id; 16],
        partitions,
        replication_factor: factor,
        assignment: None,
        configs: BTreeMap::new(),
        internal: false,
    }
}

pub(super) fn cluster(brokers: i32) -> State {
    let mut state = State::default();
    state
        .apply(&Command::Bootstrap {
            cluster_id: "c1".into(),
        })
        .unwrap();
    for id in 1..=brokers {
        state
            .apply(&Command::RegisterBroker(registration(id, id as u8)))
            .unwrap();
    }
    state
}

#[test]
fn bootstrap_is_refused_for_another_cluster_id() {
    let mut state = cluster(1);
    let again = Command::Bootstrap {
        cluster_id: "c1".into(),
    };
    assert_eq!(state.apply(&again), Ok(Outcome::Done));
    let other = Command::Bootstrap {
        cluster_id: "c2".into(),
    };
    assert!(matches!(
        state.apply(&other),
        Err(Rejection::ClusterIdMismatch { .. })
    ));
    assert_eq!(state.cluster_id.as_deref(), Some("c1"));
}

#[test]
fn a_second_data_dir_claiming_a_live_broker_id_is_refused_until_the_first_is_fenced() {
    let mut state = cluster(2);
    let impostor = Command::RegisterBroker(registration(2, 99));
    assert_eq!(
        state.apply(&impostor),
        Err(Rejection::DuplicateBrokerId { id: 2 })
    );
    // The same data dir restarting is welcome.
    assert_eq!(
        state.apply(&Command::RegisterBroker(registration(2, 2))),
        Ok(Outcome::Done)
    );
    state.apply(&Command::FenceBroker { id: 2 }).unwrap();
    assert_eq!(state.apply(&impostor), Ok(Outcome::Done));
    assert_eq!(state.brokers[&2].incarnation, [99; 16]);
}

#[test]
fn create_topic_places_partitions_and_moves_the_cursor() {
    let mut state = cluster(3);
    state.apply(&create("a", 1, 3, 1)).unwrap();
    state.apply(&create("b", 2, 1, 1)).unwrap();
    let leaders: Vec<Option<i32>> = state.topics["a"]
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect();
    assert_eq!(leaders, vec![Some(1), Some(2), Some(3)]);
    assert_eq!(state.topics["b"].partitions[0].leader, Some(1));
    assert_eq!(state.topics["a"].partitions[0].isr, vec![1]);
    assert_eq!(
        state.apply(&create("a", 3, 1, 1)),
        Err(Rejection::TopicExists { name: "a".into() })
    );
    assert_eq!(
        state.apply(&create("c", 1, 1, 1)),
        Err(Rejection::TopicIdExists)
    );
    assert!(matches!(
        state.apply(&create("d", 4, 0, 1)),
        Err(Rejection::InvalidPartitions { .. })
    ));
    assert!(matches!(
        state.apply(&create("d", 4, 1, 4)),
        Err(Rejection::InvalidReplicationFactor { .. })
    ));
}

#[test]
fn explicit_assignments_must_name_distinct_registered_brokers() {
    let mut state = cluster(2);
    let with = |assignment: Vec<Vec<i32>>| Command::CreateTopic {
        name: "t".into(),
        id: [7; 16],
        partitions: -1,
        replication_factor: -1,
        assignment: Some(assignment),
        configs: BTreeMap::new(),
        internal: false,
    };
    for bad in [
        vec![vec![1, 1]],
        vec![vec![3]],
        vec![vec![1], vec![1, 2]],
        vec![vec![]],
    ] {
        assert!(
            matches!(
                state.apply(&with(bad.clone())),
                Err(Rejection::InvalidAssignment { .. })
            ),
            "{bad:?}"
        );
    }
    state.apply(&with(vec![vec![2], vec![1]])).unwrap();
    assert_eq!(state.topics["t"].partitions[0].leader, Some(2));
}

#[test]
fn fencing_takes_leadership_away_and_unfencing_gives_it_back_with_new_epochs() {
    let mut state = cluster(2);
    state.apply(&create("t", 1, 2, 1)).unwrap();
    state.apply(&Command::FenceBroker { id: 1 }).unwrap();
    let p0 = &state.topics["t"].partitions[0];
    assert_eq!((p0.leader, p0.leader_epoch, p0.isr.len()), (None, 1, 0));
    let p1 = &state.topics["t"].partitions[1];
    assert_eq!((p1.leader, p1.leader_epoch), (Some(2), 0));
    // New partitions avoid the fenced broker.
    state.apply(&create("u", 2, 2, 1)).unwrap();
    assert!(
        state.topics["u"]
            .partitions
            .iter()
            .all(|p| p.replicas == vec![2])
    );

    state.apply(&Command::UnfenceBroker { id: 1 }).unwrap();
    let p0 = &state.topics["t"].partitions[0];
    assert_eq!((p0.leader, p0.leader_epoch), (Some(1), 2));
    assert_eq!(p0.isr, vec![1]);
}

#[test]
fn replicated_partitions_take_leaders_from_raft_only_with_newer_epochs() {
    let mut state = cluster(3);
    state.apply(&create("t", 1, 1, 3)).unwrap();
    let p = &state.topics["t"].partitions[0];
    assert_eq!((p.leader, p.leader_epoch, p.isr.len()), (None, 0, 3));
    let report = |leader: i32, leader_epoch: i32| Command::SetPartitionLeader {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
    };
    state.apply(&report(2, 1)).unwrap();
    // Fencing the leader only takes it out of the in-sync replicas: raft elects the next one.
    state.apply(&Command::FenceBroker { id: 2 }).unwrap();
    let p = &state.topics["t"].partitions[0];
    assert_eq!((p.leader, p.leader_epoch), (Some(2), 1));
    assert!(!p.isr.contains(&2));
    assert_eq!(
        state.apply(&report(3, 1)),
        Err(Rejection::StaleLeaderEpoch {
            proposed: 1,
            current: 1
        })
    );
    assert_eq!(
        state.apply(&report(4, 2)),
        Err(Rejection::NotAReplica { leader: 4 })
    );
    assert!(matches!(
        state.apply(&Command::SetPartitionLeader {
            topic: "t".into(),
            partition: 1,
            leader: 3,
            leader_epoch: 2,
        }),
        Err(Rejection::UnknownPartition { .. })
    ));
    state.apply(&report(3, 2)).unwrap();
    // Back, it is in sync only once the leader says so, for the leader's epoch.
    state.apply(&Command::UnfenceBroker { id: 2 }).unwrap();
    let p = &state.topics["t"].partitions[0];
    assert_eq!((p.leader, p.leader_epoch), (Some(3), 2));
    assert!(!p.isr.contains(&2));
    let isr = |leader_epoch: i32, isr: Vec<i32>| Command::SetPartitionIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch,
        isr,
    };
    assert!(matches!(
        state.apply(&isr(1, vec![3, 2])),
        Err(Rejection::InvalidIsr { .. })
    ));
    assert!(matches!(
        state.apply(&isr(2, vec![2])),
        Err(Rejection::InvalidIsr { .. })
    ));
    assert!(matches!(
        state.apply(&isr(2, vec![3, 7])),
        Err(Rejection::InvalidIsr { .. })
    ));
    state.apply(&isr(2, vec![2, 3])).unwrap();
    let p = &state.topics["t"].partitions[0];
    assert_eq!(p.isr, vec![2, 3], "in replica order");
}

#[test]
fn create_partitions_grows_a_topic_only() {
    let mut state = cluster(2);
    state.apply(&create("t", 1, 1, 1)).unwrap();
    let grow = |total| Command::CreatePartitions {
        name: "t".into(),
        total,
        assignment: None,
    };
    assert!(matches!(
        state.apply(&grow(1)),
        Err(Rejection::InvalidPartitions { .. })
    ));
    state.apply(&grow(3)).unwrap();
    assert_eq!(state.topics["t"].partitions.len(), 3);
    assert_eq!(
        state.apply(&Command::CreatePartitions {
            name: "nope".into(),
            total: 2,
            assignment: None
        }),
        Err(Rejection::UnknownTopic {
            name: "nope".into()
        })
    );
}

#[test]
fn delete_and_configs_need_an_existing_topic() {
    let mut state = cluster(1);
    state.apply(&create("t", 1, 1, 1)).unwrap();
    let configs = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
    state
        .apply(&Command::SetTopicConfigs {
            name: "t".into(),
            configs: configs.clone(),
        })
        .unwrap();
    assert_eq!(state.topics["t"].configs, configs);
    state
        .apply(&Command::DeleteTopic { name: "t".into() })
        .unwrap();
    assert!(matches!(
        state.apply(&Command::DeleteTopic { name: "t".into() }),
        Err(Rejection::UnknownTopic { .. })
    ));
}

#[test]
fn producer_id_blocks_never_overlap_and_respect_ids_already_used() {
    let mut state = cluster(2);
    let allocate = |broker, at_least| Command::AllocateProducerIds {
        broker,
        count: 1000,
        at_least,
    };
    assert_eq!(
        state.apply(&allocate(1, 0)),
        Ok(Outcome::ProducerIds {
            first: 0,
            count: 1000
        })
    );
    assert_eq!(
        state.apply(&allocate(2, 5000)),
        Ok(Outcome::ProducerIds {
            first: 5000,
            count: 1000
        })
    );
    assert_eq!(
        state.apply(&allocate(1, 0)),
        Ok(Outcome::ProducerIds {
            first: 6000,
            count: 1000
        })
    );
    assert!(state.apply(&allocate(9, 0)).is_err());
    state.next_producer_id = i64::MAX - 10;
    assert!(matches!(
        state.apply(&allocate(1, 0)),
        Err(Rejection::InvalidProducerIdRequest { .. })
    ));
}

#[test]
fn scram_credentials_are_set_replaced_and_deleted_per_mechanism() {
    let mut state = cluster(1);
    let credential = |iterations| crate::metadata::ScramCredentialMeta {
        salt: vec![1],
        iterations,
        stored_key: vec![2],
        server_key: vec![3],
    };
    let set = |mechanism, iterations| Command::SetScramCredential {
        user: "alice".into(),
        mechanism,
        credential: credential(iterations),
    };
    let delete = |mechanism| Command::DeleteScramCredential {
        user: "alice".into(),
        mechanism,
    };
    state.apply(&set(1, 4096)).unwrap();
    state.apply(&set(2, 4096)).unwrap();
    state.apply(&set(1, 8192)).unwrap();
    assert_eq!(state.users["alice"][&1].iterations, 8192);
    state.apply(&delete(1)).unwrap();
    assert!(matches!(
        state.apply(&delete(1)),
        Err(Rejection::UnknownScramCredential { .. })
    ));
    state.apply(&delete(2)).unwrap();
    assert!(state.users.is_empty(), "a user without credentials is gone");
}

#[test]
fn a_broker_with_replicas_cannot_be_unregistered() {
    let mut state = cluster(2);
    state
        .apply(&Command::CreateTopic {
            name: "t".into(),
            id: [1; 16],
            partitions: 1,
            replication_factor: 1,
            assignment: Some(vec![vec![1]]),
            configs: BTreeMap::new(),
            internal: false,
        })
        .unwrap();
    assert_eq!(
        state.apply(&Command::UnregisterBroker { id: 1 }),
        Err(Rejection::BrokerHoldsReplicas { id: 1 })
    );
    assert_eq!(
        state.apply(&Command::UnregisterBroker { id: 2 }),
        Ok(Outcome::Done)
    );
}

#[test]
fn state_round_trips_through_a_snapshot_encoding() {
    let mut state = cluster(3);
    state.apply(&create("t", 1, 3, 2)).unwrap();
    // Users, ACLs and quotas too (a quota entity is a list: JSON keys must be strings).
    state
        .apply(&Command::SetScramCredential {
            user: "alice".into(),
            mechanism: 1,
            credential: crate::metadata::ScramCredentialMeta {
                salt: vec![1],
                iterations: 4096,
                stored_key: vec![2],
                server_key: vec![3],
            },
        })
        .unwrap();
    state
        .apply(&Command::CreateAcls {
            acls: vec![crate::metadata::AclMeta {
                resource_type: 2,
                resource_name: "t".into(),
                pattern_type: 3,
                principal: "User:alice".into(),
                host: "*".into(),
                operation: 3,
                permission: 3,
            }],
        })
        .unwrap();
    state
        .apply(&Command::AlterClientQuota {
            entity: vec![
                ("user".into(), Some("alice".into())),
                ("client-id".into(), None),
            ],
            set: vec![("producer_byte_rate".into(), 1024f64.to_bits())],
            remove: Vec::new(),
        })
        .unwrap();
    state
        .apply(&broker_configs(
            "",
            &[("sasl.kerberos.min.time.before.relogin", "58000")],
        ))
        .unwrap();
    let json = serde_json::to_vec(&state).unwrap();
    let back: State = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, state);
}

fn broker_configs(scope: &str, configs: &[(&str, &str)]) -> Command {
    Command::SetBrokerConfigs {
        scope: scope.into(),
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn broker_configs_replace_a_scope_and_empty_removes_it() {
    let mut state = cluster(1);
    let set = broker_configs("1", &[("a.b", "1"), ("c.d", "2")]);
    assert_eq!(state.apply(&set), Ok(Outcome::Done));
    let default = broker_configs("", &[("a.b", "3")]);
    assert_eq!(state.apply(&default), Ok(Outcome::Done));
    assert_eq!(state.broker_configs["1"].len(), 2);
    assert_eq!(
        state.apply(&broker_configs("1", &[("c.d", "4")])),
        Ok(Outcome::Done)
    );
    let node: Vec<_> = state.broker_configs["1"].iter().collect();
    assert_eq!(node, [(&"c.d".to_string(), &"4".to_string())]);
    assert_eq!(state.apply(&broker_configs("1", &[])), Ok(Outcome::Done));
    assert!(!state.broker_configs.contains_key("1"));
    assert_eq!(state.broker_configs[""]["a.b"], "3");
}

#[test]
fn broker_config_scopes_other_than_empty_or_a_node_id_are_refused() {
    let mut state = cluster(1);
    for scope in ["x", "01", " 1", "1.0"] {
        let before = state.clone();
        assert_eq!(
            state.apply(&broker_configs(scope, &[("a.b", "1")])),
            Err(Rejection::InvalidBrokerConfigScope {
                scope: scope.into()
            })
        );
        assert_eq!(state, before);
    }
}
