//! The sweep's requests for partition operations on a single node: ElectLeaders (every
//! partition already has its only replica as leader).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey, elect_leaders_request};

use super::{ABSENT, NONE, PARTITION_COUNT, Sweep, TOPIC, exactly, topic_name};

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
