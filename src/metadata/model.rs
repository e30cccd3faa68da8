//! The replicated metadata state: registered brokers, topics with their partitions, the next
//! free producer id, users' SCRAM credentials, ACLs, client quotas and dynamic broker configs.
//! Plain data, serializable for raft snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Kafka topic id (a UUID) as its 16 bytes.
pub(crate) type TopicId = [u8; 16];

/// A host and port a broker is reachable at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// A broker as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BrokerRegistration {
    /// Kafka's `node.id`.
    pub(crate) id: i32,
    /// Identifies one data directory (`directory.id` of meta.properties): a broker that restarts
    /// with its data keeps it, a second broker claiming the same id has another one.
    pub(crate) incarnation: [u8; 16],
    /// Where Kafka clients reach the broker (its advertised listener).
    pub(crate) kafka: Endpoint,
    /// Where other brokers reach it for raft and broker-to-broker calls.
    pub(crate) cluster: Endpoint,
    /// Its other Kafka listeners by name (`listeners.<name>`; the default one is `kafka`).
    /// Absent in what brokers without named listeners registered.
    #[serde(default)]
    pub(crate) listeners: BTreeMap<String, Endpoint>,
    pub(crate) rack: Option<String>,
    /// A fenced broker leads nothing and receives no new replicas.
    pub(crate) fenced: bool,
}

impl BrokerRegistration {
    /// The `host:port` the cluster RPC reaches the broker at.
    pub(crate) fn cluster_rpc_addr(&self) -> String {
        format!("{}:{}", self.cluster.host, self.cluster.port)
    }
}

/// One partition's placement and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartitionMeta {
    /// Brokers holding a replica, the preferred leader first.
    pub(crate) replicas: Vec<i32>,
    /// The broker serving the partition, or none while every replica is fenced.
    pub(crate) leader: Option<i32>,
    /// Grows by one on every leadership change, never goes back (KIP-232, KIP-320).
    pub(crate) leader_epoch: i32,
    /// Replicas in sync with the leader.
    pub(crate) isr: Vec<i32>,
    /// While a reassignment moves the partition (KIP-455): the target replicas not in the
    /// original set. `replicas` is then the target followed by the replicas being removed.
    #[serde(default)]
    pub(crate) adding_replicas: Vec<i32>,
    /// While a reassignment moves the partition: the replicas not in the target.
    #[serde(default)]
    pub(crate) removing_replicas: Vec<i32>,
}

impl PartitionMeta {
    /// Whether the partition has a raft group (more than one replica), whose elections decide
    /// its leader.
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicas.len() > 1
    }

    /// Whether a reassignment is moving the partition.
    pub(crate) fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition ends with: `replicas` without those being removed.
    pub(crate) fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }
}

/// A topic: its id, partitions (index = partition number) and topic-level configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicMeta {
    pub(crate) id: TopicId,
    pub(crate) partitions: Vec<PartitionMeta>,
    pub(crate) configs: BTreeMap<String, String>,
    /// `__consumer_offsets` and `__transaction_state`.
    pub(crate) internal: bool,
}

/// The whole replicated metadata state.
/// One user's SCRAM credential for one hash (Kafka's `ScramMechanism` code: 1 = SHA-256,
/// 2 = SHA-512): what the server needs to verify a password, never the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScramCredentialMeta {
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

/// One ACL, with Kafka's wire codes (resource type, pattern type, operation, permission).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct AclMeta {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: i8,
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

impl std::fmt::Debug for ScramCredentialMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialMeta")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Set once, by the first command of a new cluster.
    pub(crate) cluster_id: Option<String>,
    pub(crate) brokers: BTreeMap<i32, BrokerRegistration>,
    pub(crate) topics: BTreeMap<String, TopicMeta>,
    /// The first producer id not yet handed out in a block.
    pub(crate) next_producer_id: i64,
    /// Where placement starts for the next new partition, so the first partitions of successive
    /// topics (and the coordinators of internal topics) land on different brokers.
    pub(crate) placement_cursor: u64,
    /// SCRAM credentials by user name, then by mechanism code.
    #[serde(default)]
    pub(crate) users: BTreeMap<String, BTreeMap<i8, ScramCredentialMeta>>,
    /// Every ACL (validated by the proposer).
    #[serde(default)]
    pub(crate) acls: std::collections::BTreeSet<AclMeta>,
    /// Client quotas by entity, then by key (`producer_byte_rate`, ...), values as `f64` bits.
    #[serde(default, with = "quota_pairs")]
    pub(crate) quotas: QuotaTable,
    /// Dynamic broker configs by scope (`""`: the cluster-wide default, else a node id in
    /// decimal), then by Kafka key (validated by the proposer).
    #[serde(default)]
    pub(crate) broker_configs: BTreeMap<String, BTreeMap<String, String>>,
}

/// Client quotas by entity, then by key, values as `f64` bits.
pub(crate) type QuotaTable = BTreeMap<QuotaEntity, BTreeMap<String, u64>>;

/// A quota table as a list of (entity, values) pairs: JSON object keys must be strings.
pub(crate) mod quota_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{QuotaEntity, QuotaTable};

    pub(crate) fn serialize<S: Serializer>(table: &QuotaTable, to: S) -> Result<S::Ok, S::Error> {
        table.iter().collect::<Vec<_>>().serialize(to)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<QuotaTable, D::Error> {
        let pairs: Vec<(QuotaEntity, std::collections::BTreeMap<String, u64>)> =
            Vec::deserialize(from)?;
        Ok(pairs.into_iter().collect())
    }
}

/// A client-quota entity: `(type, name)` pairs sorted by type (`client-id`, `user`); a name of
/// `None` is that type's default.
pub(crate) type QuotaEntity = Vec<(String, Option<String>)>;

impl State {
    /// The topic with this id, with its name.
    pub(crate) fn topic_by_id(&self, id: &TopicId) -> Option<(&str, &TopicMeta)> {
        self.topics
            .iter()
            .find(|(_, topic)| &topic.id == id)
            .map(|(name, topic)| (name.as_str(), topic))
    }

    /// Partition `partition` of topic `topic`, if both exist.
    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    /// Brokers that may lead partitions and receive new replicas.
    pub(crate) fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether `broker` is registered and not fenced.
    pub(crate) fn is_unfenced(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }
}
