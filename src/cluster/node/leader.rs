//! The controller leader's duties, one round at a time: naming a new cluster, registering,
//! fencing and unfencing the brokers gossip finds or loses (a newcomer first passes an mTLS
//! probe when the cluster RPC uses TLS), growing and shrinking the controller group, and
//! creating the internal topics.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::time::{Duration, Instant};

use super::super::duties::{self, Duty, Seen};
use super::super::settings::ClusterSettings;
use super::{BROKER_SERVICE, ClusterNode};
use crate::metadata::{BrokerRegistration, Command, State};
use crate::replication::RaftNode;
use crate::replication::rpc::{CallError, Method};
use crate::storage;

/// The method of the probe call: the broker service serves none of that number, so once the
/// connection (and its mTLS handshake) succeeded it answers with a remote error.
const PROBE_METHOD: Method = 0;
/// How long the duties of the controller leader wait for that handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `registration`'s cluster listener completes an mTLS handshake with this broker.
async fn passes_mtls(node: &ClusterNode, registration: &BrokerRegistration) -> bool {
    let address = format!(
        "{}:{}",
        registration.cluster.host, registration.cluster.port
    );
    let Ok(id) = u64::try_from(registration.id) else {
        return false;
    };
    let probe = node
        .peers
        .call(
            id,
            &address,
            (BROKER_SERVICE, PROBE_METHOD),
            Bytes::new(),
            PROBE_TIMEOUT,
        )
        .await;
    matches!(probe, Ok(_) | Err(CallError::Remote(_)))
}

/// One round of the leader's duties; the first failure ends the round.
pub(super) async fn lead(
    node: &ClusterNode,
    settings: &ClusterSettings,
    state: &State,
    absent_since: &mut BTreeMap<i32, Instant>,
) -> Result<(), String> {
    if state.cluster_id.is_none() {
        let cluster_id = match &settings.stored_cluster_id {
            Some(stored) => stored.clone(),
            None => new_cluster_id()?,
        };
        tracing::info!(%cluster_id, "naming the new cluster");
        return propose(node, Command::Bootstrap { cluster_id }).await;
    }
    let view = node.membership.borrow().clone();
    let now = Instant::now();
    absent_since.retain(|id, _| state.brokers.contains_key(id));
    for &id in state.brokers.keys() {
        if view.is_live(id) {
            absent_since.remove(&id);
        } else {
            absent_since.entry(id).or_insert(now);
        }
    }
    let absent_for = absent_since
        .iter()
        .map(|(&id, since)| (id, now.duration_since(*since)))
        .collect();
    let (voters, learners) = node.controller.members();
    let addresses = node.controller.addresses();
    let duties = duties::plan(&Seen {
        leader: settings.node_id,
        state,
        view: &view,
        voters: &voters,
        learners: &learners,
        addresses: &addresses,
        absent_for: &absent_for,
        session_timeout: settings.broker_session_timeout,
        controller_voters: settings.controller_voters,
        bootstrap_expect: settings.bootstrap_expect,
        internal_topics: &settings.internal_topics,
    });
    for duty in duties {
        match duty {
            Duty::Register(registration) => {
                // Gossip carries no certificate: with mTLS the newcomer must first pass a
                // handshake on its cluster listener, so a broker without a certificate of the
                // cluster CA never joins.
                if settings.rpc_tls.is_some() && !passes_mtls(node, &registration).await {
                    tracing::warn!(
                        broker = registration.id,
                        "not registering a broker gossip found: its cluster listener failed the \
                         mTLS handshake (no certificate of the cluster CA?)"
                    );
                    continue;
                }
                tracing::info!(
                    broker = registration.id,
                    "registering a broker gossip found"
                );
                propose(node, Command::RegisterBroker(registration)).await?;
            }
            Duty::Fence(id) => {
                tracing::warn!(broker = id, timeout = ?settings.broker_session_timeout, "fencing a broker gossip lost");
                propose(node, Command::FenceBroker { id }).await?;
            }
            Duty::Unfence(id) => {
                tracing::info!(broker = id, "unfencing a broker that is back");
                propose(node, Command::UnfenceBroker { id }).await?;
            }
            Duty::AddLearner { id, rpc_addr } => {
                tracing::info!(broker = id, %rpc_addr, "adding a broker to the controller group as a learner");
                node.controller
                    .add_learner(id as u64, RaftNode { rpc_addr })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Duty::SetAddress { id, rpc_addr } => {
                tracing::info!(broker = id, %rpc_addr, "a controller member moved: updating its address");
                node.controller
                    .set_address(id as u64, RaftNode { rpc_addr })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Duty::CreateInternalTopic(topic) => {
                // Replicated like any topic: its partitions' leaders coordinate, and another
                // replica takes over (with every committed group and transaction) when one fails.
                let replication_factor = topic.replication_factor.unwrap_or_else(|| {
                    let serving = state.brokers.values().filter(|b| !b.fenced).count();
                    serving.clamp(1, 3) as i16
                });
                tracing::info!(topic = %topic.name, partitions = topic.partitions, replication_factor, "creating an internal topic");
                let command = Command::CreateTopic {
                    name: topic.name.clone(),
                    id: new_topic_id()?,
                    partitions: topic.partitions,
                    replication_factor,
                    assignment: None,
                    configs: topic.configs.clone(),
                    internal: true,
                };
                propose(node, command).await?;
            }
            Duty::SetVoters(voters) => {
                tracing::info!(?voters, "changing the controller voters");
                node.controller
                    .set_voters(voters)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Duty::RemoveMember(id) => {
                tracing::info!(
                    broker = id,
                    "removing an unregistered broker from the controller group"
                );
                node.controller
                    .remove_member(id)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

async fn propose(node: &ClusterNode, command: Command) -> Result<(), String> {
    match node.controller.propose(&command).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(rejection)) => Err(format!("{command:?} refused: {rejection}")),
        Err(error) => Err(format!("{command:?}: {error}")),
    }
}

fn new_cluster_id() -> Result<String, String> {
    Ok(storage::encode_uuid(new_topic_id()?))
}

/// A random v4 UUID (never all zeros) for a cluster or topic id.
fn new_topic_id() -> Result<[u8; 16], String> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| format!("drawing a random id: {e}"))?;
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id)
}
