//! The sweep's requests for partition operations on a single node: ElectLeaders (every
//! partition already has its only replica as leader), partition reassignment (nothing can
//! move off the only broker) and UnregisterBroker (the only broker runs).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey, BrokerId, elect_leaders_request};

use super::{ABSENT, NODE_ID, NONE, PARTITION_COUNT, Sweep, TOPIC, exactly, topic_name};

pub(super) async fn elect_leaders(sweep: &mut Sweep, version: i16) {
    let at = format!("ElectLeaders v{version}");
    let not_needed = ResponseError::ElectionNotNeeded.code();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    // v1+ names the election type: 0 preferred, 1 unclean; both find a leader in place.
    for election_type in if version == 0 { vec![0] } else { vec![0, 1] } {
        let request = messages::ElectLeadersRequest::default()
            .with_election_type(election_type)
            .with_timeout_ms(5_000)
            .with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic_name(TOPIC))
                    .with_partitions(vec![0, PARTITION_COUNT]),
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic_name(ABSENT))
                    .with_partitions(vec![0]),
            ]));
        let response: messages::ElectLeadersResponse =
            sweep.call(ApiKey::ElectLeaders, version, &request).await;
        assert_eq!(response.error_code, NONE, "{at}");
        let [topic, absent] = exactly(&response.replica_election_results, &at);
        assert_eq!(topic.topic.as_str(), TOPIC, "{at}");
        let [led, missing] = exactly(&topic.partition_result, &at);
        assert_eq!((led.partition_id, led.error_code), (0, not_needed), "{at}");
        assert_eq!(
            (missing.partition_id, missing.error_code),
            (PARTITION_COUNT, unknown),
            "{at}"
        );
        assert_eq!(absent.topic.as_str(), ABSENT, "{at}");
        let [absent_partition] = exactly(&absent.partition_result, &at);
        assert_eq!(absent_partition.error_code, unknown, "{at}");
    }
    // Every partition: those that need no election are left out, as in Kafka.
    let request = messages::ElectLeadersRequest::default()
        .with_timeout_ms(5_000)
        .with_topic_partitions(None);
    let response: messages::ElectLeadersResponse =
        sweep.call(ApiKey::ElectLeaders, version, &request).await;
    assert_eq!(response.error_code, NONE, "{at}");
    assert!(
        response.replica_election_results.is_empty(),
        "{at}: {response:?}"
    );
}

pub(super) async fn alter_partition_reassignments(sweep: &mut Sweep, version: i16) {
    use messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    let at = format!("AlterPartitionReassignments v{version}");
    let target = |partition: i32, replicas: Option<Vec<i32>>| {
        ReassignablePartition::default()
            .with_partition_index(partition)
            .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
    };
    let request = messages::AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![
                    // Where it already is: nothing to move.
                    target(0, Some(vec![NODE_ID])),
                    target(1, Some(vec![NODE_ID, NODE_ID + 1])),
                    target(1, None),
                    target(PARTITION_COUNT, Some(vec![NODE_ID])),
                ]),
            ReassignableTopic::default()
                .with_name(topic_name(ABSENT))
                .with_partitions(vec![target(0, Some(vec![NODE_ID]))]),
        ]);
    let response: messages::AlterPartitionReassignmentsResponse = sweep
        .call(ApiKey::AlterPartitionReassignments, version, &request)
        .await;
    assert_eq!(response.error_code, NONE, "{at}");
    let [topic, absent] = exactly(&response.responses, &at);
    let codes: Vec<(i32, i16)> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            (0, NONE),
            (1, ResponseError::InvalidReplicaAssignment.code()),
            (1, ResponseError::NoReassignmentInProgress.code()),
            (
                PARTITION_COUNT,
                ResponseError::UnknownTopicOrPartition.code()
            ),
        ],
        "{at}"
    );
    let [absent_partition] = exactly(&absent.partitions, &at);
    assert_eq!(
        absent_partition.error_code,
        ResponseError::UnknownTopicOrPartition.code(),
        "{at}"
    );
}

pub(super) async fn list_partition_reassignments(sweep: &mut Sweep, version: i16) {
    use messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    let at = format!("ListPartitionReassignments v{version}");
    // Nothing moves on a single node: every partition, or the named ones, list nothing.
    for topics in [
        None,
        Some(vec![
            ListPartitionReassignmentsTopics::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1]),
        ]),
    ] {
        let request = messages::ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(topics);
        let response: messages::ListPartitionReassignmentsResponse = sweep
            .call(ApiKey::ListPartitionReassignments, version, &request)
            .await;
        assert_eq!(response.error_code, NONE, "{at}");
        assert!(response.topics.is_empty(), "{at}: {response:?}");
    }
}

pub(super) async fn unregister_broker(sweep: &mut Sweep, version: i16) {
    let at = format!("UnregisterBroker v{version}");
    for (id, expected) in [
        (NODE_ID, ResponseError::InvalidRequest.code()),
        (NODE_ID + 7, ResponseError::BrokerIdNotRegistered.code()),
    ] {
        let request = messages::UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
        let response: messages::UnregisterBrokerResponse = sweep
            .call(ApiKey::UnregisterBroker, version, &request)
            .await;
        assert_eq!(response.error_code, expected, "{at}: broker {id}");
        assert!(response.error_message.is_some(), "{at}: broker {id}");
    }
}
