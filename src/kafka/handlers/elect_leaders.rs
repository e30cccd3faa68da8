//! ElectLeaders (key 43), v0–v2: preferred-leader election per partition (v1+ also names the
//! election type; UNCLEAN is answered without electing, raft never elects unclean). A null
//! partition list means every partition, and then, as in Kafka, partitions that need no
//! election are left out of the answer.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::{self, ElectionType};
use crate::kafka::Context;
use crate::kafka::error_code;

/// How many partitions' elections run at once.
const ELECTIONS_CONCURRENT_MAX: usize = 16;

/// One partition's answer: (topic, partition), its error, and the error's message.
type Elected = ((String, i32), Result<(), ResponseError>, Option<StrBytes>);

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ElectLeadersRequest,
) -> messages::ElectLeadersResponse {
    // v0 has no top-level error: every partition gets it.
    if !ctx.allowed_on_cluster(Operation::Alter) {
        return denied(version, request);
    }
    let election = match (version, request.election_type) {
        (0, _) | (_, 0) => Some(ElectionType::Preferred),
        (_, 1) => Some(ElectionType::Unclean),
        _ => None,
    };
    let every_partition = request.topic_partitions.is_none();
    let wanted: Vec<(String, i32)> = match &request.topic_partitions {
        None => ctx.broker.all_partitions(),
        Some(topics) => {
            // A partition named twice is elected (and answered) once.
            let mut seen = BTreeSet::new();
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.to_string(), p)))
                .filter(|tp| seen.insert(tp.clone()))
                .collect()
        }
    };
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let outcomes: Vec<Elected> = futures_util::stream::iter(wanted)
        .map(|(topic, partition)| async move {
            let outcome = match election {
                None => Err((
                    ResponseError::InvalidRequest,
                    Some(StrBytes::from_static_str("unknown election type")),
                )),
                Some(election) => ctx
                    .broker
                    .elect_leader(&topic, partition, election, timeout)
                    .await
                    .map_err(|err: broker::Error| {
                        (
                            error_code::for_broker_error(&err),
                            error_code::message(&err),
                        )
                    }),
            };
            match outcome {
                Ok(()) => ((topic, partition), Ok(()), None),
                Err((error, message)) => ((topic, partition), Err(error), message),
            }
        })
        .buffered(ELECTIONS_CONCURRENT_MAX)
        .collect()
        .await;
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), outcome, message) in outcomes {
        if every_partition && outcome == Err(ResponseError::ElectionNotNeeded) {
            continue;
        }
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(outcome.err().map_or(error_code::NONE, |e| e.code()))
            .with_error_message(message);
        match results.last_mut() {
            Some(last) if last.topic.as_str() == topic => last.partition_result.push(result),
            _ => results.push(
                ReplicaElectionResult::default()
                    .with_topic(messages::TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    messages::ElectLeadersResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(error_code::NONE)
        .with_replica_election_results(results)
}

/// CLUSTER_AUTHORIZATION_FAILED, top-level from v1, per partition in v0.
fn denied(version: i16, request: messages::ElectLeadersRequest) -> messages::ElectLeadersResponse {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let response = messages::ElectLeadersResponse::default();
    if version >= 1 {
        return response.with_error_code(code);
    }
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|topic| {
            ReplicaElectionResult::default()
                .with_topic(topic.topic)
                .with_partition_result(
                    topic
                        .partitions
                        .into_iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    response.with_replica_election_results(results)
}
