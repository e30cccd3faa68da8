//! What brokers ask each other over the cluster RPC: a transaction coordinator has the leader
//! of a partition write its transaction markers, and a partition leader has the coordinator
//! verify a transactional produce (KIP-890). The serving side acts only on what it holds
//! itself (`*_here`), so a call is never forwarded again.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Broker;
use super::elect::Handover;
use super::error::Error;
use super::group::TopicPartition;
use super::txn::{MarkerSpec, TxnError};
use crate::replication::rpc::{Handler, HandlerFuture, Method};

const WRITE_MARKERS: Method = 1;
const VERIFY: Method = 2;
const HOLD_TOPIC: Method = 3;
const HAND_OVER: Method = 4;

/// How long a leader waits for the preferred replica to take over when asked by another
/// broker (below the cluster RPC's own call timeout).
const HAND_OVER_WAIT_MAX: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct MarkersCall {
    partitions: Vec<TopicPartition>,
    marker: MarkerSpec,
}

#[derive(Serialize, Deserialize)]
struct HoldTopicCall {
    name: String,
    topic_id: [u8; 16],
}

#[derive(Serialize, Deserialize)]
struct HandOverCall {
    topic: String,
    partition: i32,
    preferred: i32,
    timeout_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct VerifyCall {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    partition: TopicPartition,
    add: bool,
}

/// Serves this broker's side of the calls.
struct PeerService {
    broker: Weak<Broker>,
}

impl Handler for PeerService {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        let broker = self.broker.upgrade();
        Box::pin(async move {
            let broker = broker.ok_or("the broker stopped")?;
            let decode_error = |e: postcard::Error| format!("undecodable call: {e}");
            let encoded = match method {
                WRITE_MARKERS => {
                    let call: MarkersCall = postcard::from_bytes(&payload).map_err(decode_error)?;
                    let partitions: BTreeSet<TopicPartition> =
                        call.partitions.into_iter().collect();
                    let failed: Vec<(TopicPartition, String)> = broker
                        .write_txn_markers_here(&partitions, call.marker)
                        .await
                        .into_iter()
                        .map(|(tp, error)| (tp, error.to_string()))
                        .collect();
                    postcard::to_stdvec(&failed)
                }
                VERIFY => {
                    let call: VerifyCall = postcard::from_bytes(&payload).map_err(decode_error)?;
                    let verified = broker
                        .verify_transaction_here(
                            &call.transactional_id,
                            call.producer_id,
                            call.producer_epoch,
                            &call.partition,
                            call.add,
                        )
                        .await;
                    postcard::to_stdvec(&verified)
                }
                HOLD_TOPIC => {
                    let call: HoldTopicCall =
                        postcard::from_bytes(&payload).map_err(decode_error)?;
                    let held = broker
                        .hold_topic_here(&call.name, call.topic_id)
                        .await
                        .map_err(|error| error.to_string());
                    postcard::to_stdvec(&held)
                }
                HAND_OVER => {
                    let call: HandOverCall =
                        postcard::from_bytes(&payload).map_err(decode_error)?;
                    let timeout = Duration::from_millis(call.timeout_ms).min(HAND_OVER_WAIT_MAX);
                    let handover = broker
                        .hand_over_here(&call.topic, call.partition, call.preferred, timeout)
                        .await;
                    postcard::to_stdvec(&handover)
                }
                other => return Err(format!("no broker method {other}")),
            };
            encoded.map(Bytes::from).map_err(|e| e.to_string())
        })
    }
}

impl Broker {
    /// Serves other brokers' calls (cluster mode).
    pub(super) fn serve_peers(self: &Arc<Self>) {
        if let Some(link) = self.cluster.get() {
            link.node.serve_broker(Arc::new(PeerService {
                broker: Arc::downgrade(self),
            }));
        }
    }

    /// The broker leading `topic`'s `partition` when it is another one (cluster mode).
    pub(super) fn remote_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let link = self.cluster.get()?;
        let state = Arc::clone(&link.node.published().borrow().state);
        let leader = state
            .topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?
            .leader?;
        (leader != self.node_id()).then_some(leader)
    }

    /// Has broker `leader` write `marker` to `partitions`; returns what failed.
    pub(super) async fn markers_on(
        &self,
        leader: i32,
        partitions: BTreeSet<TopicPartition>,
        marker: MarkerSpec,
    ) -> Vec<(TopicPartition, Error)> {
        let call = MarkersCall {
            partitions: partitions.iter().cloned().collect(),
            marker,
        };
        let failed_all = |reason: String| {
            partitions
                .iter()
                .map(|tp| {
                    (
                        tp.clone(),
                        Error::Cluster {
                            reason: reason.clone(),
                        },
                    )
                })
                .collect()
        };
        let Some(link) = self.cluster.get() else {
            return failed_all("not in cluster mode".to_owned());
        };
        let payload = match postcard::to_stdvec(&call) {
            Ok(payload) => Bytes::from(payload),
            Err(error) => return failed_all(error.to_string()),
        };
        match link.node.call_broker(leader, WRITE_MARKERS, payload).await {
            Ok(answer) => match postcard::from_bytes::<Vec<(TopicPartition, String)>>(&answer) {
                Ok(failed) => failed
                    .into_iter()
                    .map(|(tp, reason)| (tp, Error::Cluster { reason }))
                    .collect(),
                Err(error) => failed_all(format!("undecodable answer: {error}")),
            },
            Err(reason) => failed_all(reason),
        }
    }

    /// Has every other leader of `name`'s partitions hold the topic (created locally), so a
    /// client told the topic exists finds it at every leader.
    pub(super) async fn leaders_hold_topic(&self, name: &str, topic_id: [u8; 16]) {
        let Some(link) = self.cluster.get() else {
            return;
        };
        let leaders: BTreeSet<i32> = {
            let published = link.node.published();
            let state = &published.borrow().state;
            state
                .topics
                .get(name)
                .map(|t| t.partitions.iter().filter_map(|p| p.leader).collect())
                .unwrap_or_default()
        };
        let call = HoldTopicCall {
            name: name.to_owned(),
            topic_id,
        };
        let Ok(payload) = postcard::to_stdvec(&call).map(Bytes::from) else {
            return;
        };
        for leader in leaders.into_iter().filter(|&l| l != self.node_id()) {
            let held = link
                .node
                .call_broker(leader, HOLD_TOPIC, payload.clone())
                .await
                .and_then(|answer| {
                    postcard::from_bytes::<Result<(), String>>(&answer)
                        .map_err(|e| e.to_string())
                        .and_then(|held| held)
                });
            if let Err(reason) = held {
                tracing::warn!(topic = name, leader, %reason, "a leader did not confirm the new topic");
            }
        }
    }

    /// Has coordinator `coordinator` verify a transactional produce.
    pub(super) async fn verify_on(
        &self,
        coordinator: i32,
        (transactional_id, producer_id, producer_epoch, partition, add): (
            &str,
            i64,
            i16,
            &TopicPartition,
            bool,
        ),
    ) -> Result<(), TxnError> {
        let Some(link) = self.cluster.get() else {
            return Err(TxnError::CoordinatorNotAvailable);
        };
        let call = VerifyCall {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch,
            partition: partition.clone(),
            add,
        };
        let payload = postcard::to_stdvec(&call)
            .map(Bytes::from)
            .map_err(|_| TxnError::CoordinatorNotAvailable)?;
        match link.node.call_broker(coordinator, VERIFY, payload).await {
            Ok(answer) => postcard::from_bytes::<Result<(), TxnError>>(&answer)
                .unwrap_or(Err(TxnError::CoordinatorNotAvailable)),
            Err(reason) => {
                tracing::debug!(coordinator, %reason, "transaction verification call failed");
                Err(TxnError::NotCoordinator)
            }
        }
    }
}

/// Asks broker `leader` to hand `topic`'s `partition` over to `preferred` (ElectLeaders).
pub(super) async fn hand_over_on(
    broker: &Broker,
    leader: i32,
    (topic, partition): (&str, i32),
    preferred: i32,
    timeout: Duration,
) -> Handover {
    let Some(link) = broker.cluster.get() else {
        return Handover::NotAvailable("not in cluster mode".to_owned());
    };
    let call = HandOverCall {
        topic: topic.to_owned(),
        partition,
        preferred,
        timeout_ms: u64::try_from(timeout.min(HAND_OVER_WAIT_MAX).as_millis()).unwrap_or(u64::MAX),
    };
    let payload = match postcard::to_stdvec(&call) {
        Ok(payload) => Bytes::from(payload),
        Err(error) => return Handover::NotAvailable(error.to_string()),
    };
    match link.node.call_broker(leader, HAND_OVER, payload).await {
        Ok(answer) => postcard::from_bytes::<Handover>(&answer)
            .unwrap_or_else(|e| Handover::NotAvailable(format!("undecodable answer: {e}"))),
        Err(reason) => Handover::NotAvailable(reason),
    }
}
