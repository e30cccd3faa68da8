//! Partition operations on a cluster of broker processes, driven with raw Kafka frames:
//! ElectLeaders hands a replicated partition back to its preferred replica.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use crate::cluster::{form_three, leaders};
use crate::harness::wait_until;
use crate::raw::{RawConn, topic_name};
use crate::replication::{create_replicated, isr_of, partition_zero};

const LEADER_DEADLINE: Duration = Duration::from_secs(60);
const ERROR_UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ERROR_PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const ERROR_ELECTION_NOT_NEEDED: i16 = 84;

/// ElectLeaders v2 of `partitions` of `topic` at `addr`: (partition, error code) per partition.
fn elect(addr: SocketAddr, election_type: i8, topic: &str, partitions: &[i32]) -> Vec<(i32, i16)> {
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(5_000)
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions.to_vec()),
        ]));
    let response: ElectLeadersResponse = RawConn::connect(addr).roundtrip(&request, 2);
    assert_eq!(response.error_code, 0, "{response:?}");
    response
        .replica_election_results
        .iter()
        .filter(|r| r.topic.as_str() == topic)
        .flat_map(|r| {
            r.partition_result
                .iter()
                .map(|p| (p.partition_id, p.error_code))
        })
        .collect()
}

/// The replicas of partition 0 of `topic`, as the broker at `bootstrap` reports them.
pub(crate) fn replicas_of(bootstrap: &str, topic: &str) -> Vec<i32> {
    partition_zero(bootstrap, topic).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_hands_a_partition_back_to_its_preferred_replica() {
    let (mut brokers, _dirs) = form_three();
    let bootstraps: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    create_replicated(&bootstraps[0], "elect", 1).await;
    let preferred = replicas_of(&bootstraps[0], "elect")[0];
    wait_until(LEADER_DEADLINE, "the preferred replica leads", || {
        let seen: BTreeSet<Option<i32>> = bootstraps
            .iter()
            .map(|b| leaders(b, "elect").get(&0).copied())
            .collect();
        seen == BTreeSet::from([Some(preferred)])
    });
    let other = brokers
        .iter()
        .position(|b| b.addr() != brokers[preferred as usize - 1].addr())
        .expect("another broker");
    let other_addr = brokers[other].addr();
    assert_eq!(
        elect(other_addr, 0, "elect", &[0, 5]),
        [
            (0, ERROR_ELECTION_NOT_NEEDED),
            (5, ERROR_UNKNOWN_TOPIC_OR_PARTITION)
        ],
        "the preferred replica already leads; partition 5 does not exist"
    );

    // The preferred replica killed: another replica leads, and the preferred one cannot.
    brokers[preferred as usize - 1].kill9();
    wait_until(LEADER_DEADLINE, "another replica leads", || {
        leaders(&bootstraps[other], "elect")
            .get(&0)
            .is_some_and(|&l| l > 0 && l != preferred)
    });
    assert_eq!(
        elect(other_addr, 0, "elect", &[0]),
        [(0, ERROR_PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    // An unclean election is never needed while a replica leads.
    assert_eq!(
        elect(other_addr, 1, "elect", &[0]),
        [(0, ERROR_ELECTION_NOT_NEEDED)]
    );

    // Back and caught up, it is elected at once (or the leader's periodic balancing beat the
    // request to it, and no election is needed): either way it leads when the answer comes.
    brokers[preferred as usize - 1].restart_on_same_port();
    // (in sync by its leader's report, and unfenced by the controller: two separate steps)
    wait_until(
        LEADER_DEADLINE,
        "the preferred replica back in sync",
        || {
            isr_of(&bootstraps[other], "elect").contains(&preferred)
                && crate::cluster::view(other_addr).2.contains(&preferred)
        },
    );
    let elected = elect(other_addr, 0, "elect", &[0]);
    assert!(
        elected == [(0, 0)] || elected == [(0, ERROR_ELECTION_NOT_NEEDED)],
        "{elected:?}"
    );
    assert_eq!(
        leaders(&bootstraps[other], "elect").get(&0),
        Some(&preferred),
        "Metadata names the preferred replica once ElectLeaders answered ({elected:?})"
    );
    let led = brokers[preferred as usize - 1].log();
    assert!(
        led.lines().any(|l| l.contains("leading the partition")),
        "{led}"
    );
}
