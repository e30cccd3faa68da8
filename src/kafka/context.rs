//! What every handler receives: the shared broker, the protocol settings, the peer address, the
//! listener it came in on (whose endpoints it is told) and its principal. Plain data plus the
//! topic-id <-> wire Uuid conversions; no I/O and no Kafka error mapping.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use uuid::Uuid;

use super::session::{SaslPolicy, Session};
use crate::auth::Principal;
use crate::broker::{Broker, PartitionInfo};
use crate::cluster::{ClusterNode, ClusterView};
use crate::limits;

/// Protocol-layer settings, built by app from the validated config.
#[derive(Debug, Clone)]
pub(crate) struct KafkaSettings {
    /// Largest request frame accepted (`socket.request.max.bytes`); a bigger length prefix closes
    /// the connection before anything is allocated.
    pub(crate) request_bytes_max: u32,
    /// Largest fetch response summed over partitions (`fetch.max.bytes`); a request's own
    /// `max_bytes` can only lower it.
    pub(crate) fetch_bytes_max: u32,
    /// ACL enforcement; `None` when `authorization.enabled` is off.
    pub(crate) authorization: Option<super::authz::AuthorizationPolicy>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            request_bytes_max: limits::REQUEST_BYTES_MAX_DEFAULT,
            fetch_bytes_max: limits::FETCH_BYTES_MAX_DEFAULT,
            authorization: None,
        }
    }
}

/// The cluster as a Metadata or DescribeCluster response shows it.
#[derive(Debug, Clone)]
pub(crate) struct ClientView {
    /// Empty while a cluster member has not joined a cluster yet.
    pub(crate) cluster_id: String,
    /// The controller leader, or -1 while there is none.
    pub(crate) controller_id: i32,
    pub(crate) brokers: Vec<BrokerAddress>,
}

/// One broker as clients reach it.
#[derive(Debug, Clone)]
pub(crate) struct BrokerAddress {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) rack: Option<String>,
}

/// A Kafka listener as this broker advertises it: clients that came in on it are told the
/// endpoints of this listener (of every broker that has one of that name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerEndpoint {
    /// `kafka` (the default listener) or the listener's configured name.
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The default listener, whose endpoints are the brokers' registered Kafka endpoints.
    pub(crate) is_default: bool,
}

/// The name of the default listener (`listeners.kafka`).
pub(crate) const DEFAULT_LISTENER: &str = "kafka";

/// Per-connection handler context; cheap to clone (`Arc`s and an address).
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) broker: Arc<Broker>,
    pub(crate) settings: Arc<KafkaSettings>,
    pub(crate) peer: SocketAddr,
    /// This broker's cluster membership, in cluster mode.
    pub(crate) cluster: Option<Arc<ClusterNode>>,
    /// The request header's client id; set only for the APIs that record it (JoinGroup) and,
    /// while request quotas exist, for every request.
    pub(crate) client_id: String,
    /// How long this request's answer is held back for the client's `request_percentage`
    /// quota (0 unless a request quota applies; `request_quota.rs`).
    pub(crate) request_throttle_ms: u64,
    /// The listener the connection came in on.
    pub(crate) listener: Arc<ListenerEndpoint>,
    /// Who the client authenticated as by TLS (`User:ANONYMOUS` without); see `principal()`.
    pub(crate) principal: Arc<Principal>,
    /// The connection's SASL session (a SASL listener's connections authenticate through it).
    pub(crate) session: Arc<Session>,
}

impl Context {
    /// A context on the default listener, as the broker advertises it, for an anonymous client.
    pub(crate) fn new(broker: Arc<Broker>, settings: Arc<KafkaSettings>, peer: SocketAddr) -> Self {
        let listener = Arc::new(ListenerEndpoint {
            name: DEFAULT_LISTENER.to_owned(),
            host: broker.advertised().host.clone(),
            port: broker.advertised().port,
            is_default: true,
        });
        Context {
            broker,
            settings,
            peer,
            cluster: None,
            client_id: String::new(),
            request_throttle_ms: 0,
            listener,
            principal: Arc::new(Principal::anonymous()),
            session: Arc::new(Session::new(None)),
        }
    }

    /// This context for a connection on `listener`.
    pub(crate) fn with_listener(mut self, listener: Arc<ListenerEndpoint>) -> Self {
        self.listener = listener;
        self
    }

    /// This context for a client authenticated as `principal`.
    pub(crate) fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = Arc::new(principal);
        self
    }

    /// This context for a new connection of a listener with (`Some`) or without SASL.
    pub(crate) fn with_sasl(mut self, policy: Option<SaslPolicy>) -> Self {
        self.session = Arc::new(Session::new(policy));
        self
    }

    /// Who the client is: its SASL user once authenticated, else its TLS principal (or
    /// `User:ANONYMOUS`).
    pub(crate) fn principal(&self) -> Principal {
        self.session
            .principal()
            .unwrap_or_else(|| (*self.principal).clone())
    }

    /// The host and port of this broker on the connection's listener.
    pub(crate) fn advertised(&self) -> (String, u16) {
        (self.listener.host.clone(), self.listener.port)
    }

    /// This context in cluster mode.
    pub(crate) fn with_cluster(mut self, cluster: Option<Arc<ClusterNode>>) -> Self {
        self.cluster = cluster;
        self
    }

    /// KIP-951: the leader (id, leader epoch) of a partition this broker does not lead, for a
    /// NOT_LEADER_OR_FOLLOWER answer; `None` when this broker leads it or none does.
    pub(crate) fn leader_hint(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let info = self.broker.topic(topic)?;
        let ours = info.partitions.iter().find(|p| p.partition == partition)?;
        self.hint_for(ours)
    }

    /// [`Context::leader_hint`] of a partition already looked up.
    pub(crate) fn hint_for(&self, partition: &PartitionInfo) -> Option<(i32, i32)> {
        let leader = partition.leader?;
        (leader != self.broker.node_id()).then_some((leader, partition.leader_epoch))
    }

    /// The endpoints of the brokers `ids` (KIP-951's `node_endpoints`), as the cluster view has
    /// them.
    pub(crate) fn endpoints_of(&self, ids: &std::collections::BTreeSet<i32>) -> Vec<BrokerAddress> {
        if ids.is_empty() {
            return Vec::new();
        }
        self.cluster_view()
            .brokers
            .into_iter()
            .filter(|b| ids.contains(&b.id))
            .collect()
    }

    /// The cluster as clients see it: the cluster id, the controller and the brokers. Out of
    /// cluster mode (or before the cluster has formed), this broker alone.
    pub(crate) fn cluster_view(&self) -> ClientView {
        let this = || BrokerAddress {
            id: self.broker.node_id(),
            host: self.listener.host.clone(),
            port: self.listener.port,
            rack: None,
        };
        let view = self.cluster.as_ref().map(|cluster| cluster.view());
        match view {
            Some(ClusterView {
                cluster_id: Some(cluster_id),
                controller,
                brokers,
            }) if !brokers.is_empty() => ClientView {
                cluster_id,
                controller_id: controller.unwrap_or(-1),
                // A broker without a listener of this name is left out (Kafka does the same).
                brokers: brokers
                    .into_iter()
                    .filter_map(|b| {
                        let endpoint = if self.listener.is_default {
                            b.kafka
                        } else {
                            b.listeners.get(&self.listener.name)?.clone()
                        };
                        Some(BrokerAddress {
                            id: b.id,
                            host: endpoint.host,
                            port: endpoint.port,
                            rack: b.rack,
                        })
                    })
                    .collect(),
            },
            // Not formed yet: the cluster id this data dir joined before, if any (never the
            // standalone id, which clients would see change); no controller.
            Some(_) => ClientView {
                cluster_id: self
                    .broker
                    .identity()
                    .cluster_id
                    .clone()
                    .unwrap_or_default(),
                controller_id: -1,
                brokers: vec![this()],
            },
            None => ClientView {
                cluster_id: self.broker.cluster_id().to_owned(),
                controller_id: self.broker.node_id(),
                brokers: vec![this()],
            },
        }
    }

    /// The ids of the brokers the cluster view names on the default listener (every live,
    /// registered broker): a leader among them but absent from this listener's view lacks
    /// the listener.
    pub(crate) fn live_broker_ids(&self) -> std::collections::BTreeSet<i32> {
        let on_default = Context {
            listener: Arc::new(ListenerEndpoint {
                name: DEFAULT_LISTENER.to_owned(),
                host: self.broker.advertised().host.clone(),
                port: self.broker.advertised().port,
                is_default: true,
            }),
            ..self.clone()
        };
        on_default
            .cluster_view()
            .brokers
            .iter()
            .map(|b| b.id)
            .collect()
    }

    /// This context for one request of the client `client_id`.
    pub(crate) fn for_client(&self, client_id: &str) -> Context {
        Context {
            cluster: self.cluster.clone(),
            client_id: client_id.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("peer", &self.peer)
            .field("listener", &self.listener.name)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// The wire form of a topic id.
pub(crate) fn topic_id_to_uuid(topic_id: [u8; 16]) -> Uuid {
    Uuid::from_bytes(topic_id)
}

/// The broker form of a wire topic id.
pub(crate) fn uuid_to_topic_id(uuid: Uuid) -> [u8; 16] {
    uuid.into_bytes()
}
