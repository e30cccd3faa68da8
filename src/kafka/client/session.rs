//! A client session with a cluster: bootstrap, the broker list from Metadata, one connection per
//! broker opened on first use, and calls retried on retriable errors until a deadline.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::Request;
use kafka_protocol::protocol::StrBytes;

use super::connection::Connection;
use super::error::ClientError;
use super::sasl::SaslSettings;
use super::tls::{TlsConnector, TlsFiles};

/// Metadata v12: topic ids and names, no deprecated cluster-authorized-operations field.
pub(crate) const METADATA_VERSION: i16 = 12;
/// FindCoordinator v3: one key per request (v4 batches them).
const FIND_COORDINATOR_VERSION: i16 = 3;
/// FindCoordinator key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// Kafka's LEADER_NOT_AVAILABLE (retriable).
const LEADER_NOT_AVAILABLE: i16 = 5;
/// First pause between retries; doubled up to `RETRY_BACKOFF_MAX`.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    /// HOST:PORT of one or more brokers.
    pub(crate) bootstrap: Vec<String>,
    /// TLS files, for an `SSL` or `SASL_SSL` listener.
    pub(crate) tls: Option<TlsFiles>,
    /// SASL credentials, for a `SASL_PLAINTEXT` or `SASL_SSL` listener.
    pub(crate) sasl: Option<SaslSettings>,
    /// How long one operation (with its retries) may take.
    pub(crate) timeout: Duration,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any broker (the first one reachable).
    Any,
    /// The broker with this node id.
    Broker(i32),
}

/// A session; not shared between threads.
#[derive(Debug)]
pub(crate) struct Client {
    settings: ClientSettings,
    tls: Option<TlsConnector>,
    /// Node id -> HOST:PORT from the latest Metadata.
    brokers: BTreeMap<i32, String>,
    connections: HashMap<String, Connection>,
    /// (topic, partition) -> leader, forgotten after a retriable failure.
    leaders: HashMap<(String, i32), i32>,
    /// Group id -> coordinator, forgotten after a retriable failure.
    coordinators: HashMap<String, i32>,
}

impl Client {
    /// Connects to the first reachable bootstrap broker and learns the broker list.
    pub(crate) fn connect(settings: ClientSettings) -> Result<Client, ClientError> {
        if settings.bootstrap.is_empty() {
            return Err(ClientError::Invalid("no bootstrap broker given".to_owned()));
        }
        let tls = settings.tls.as_ref().map(TlsConnector::new).transpose()?;
        let mut client = Client {
            settings,
            tls,
            brokers: BTreeMap::new(),
            connections: HashMap::new(),
            leaders: HashMap::new(),
            coordinators: HashMap::new(),
        };
        client.retry("reaching the cluster", |client| {
            client.metadata(Some(Vec::new())).map(drop)
        })?;
        Ok(client)
    }

    /// How long one operation may take, as a request's `timeout_ms`.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.settings.timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// The known brokers: node id -> HOST:PORT.
    pub(crate) fn brokers(&self) -> &BTreeMap<i32, String> {
        &self.brokers
    }

    /// Metadata for `topics` (`None`: every topic), which also refreshes the broker list.
    pub(crate) fn metadata(
        &mut self,
        topics: Option<Vec<MetadataRequestTopic>>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let response = self.call(Target::Any, &request, METADATA_VERSION)?;
        let brokers: BTreeMap<i32, String> = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        if !brokers.is_empty() {
            self.brokers = brokers;
        }
        Ok(response)
    }

    /// The leader of `partition` of `topic` (cached until a retriable failure).
    pub(crate) fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        let key = (topic.to_owned(), partition);
        if let Some(&leader) = self.leaders.get(&key) {
            return Ok(leader);
        }
        let request =
            MetadataRequestTopic::default().with_name(Some(super::metadata::topic_name(topic)));
        let response = self.metadata(Some(vec![request]))?;
        let mut exists = false;
        for t in response
            .topics
            .iter()
            .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        {
            ClientError::check(t.error_code, format!("topic {topic}"))?;
            for p in &t.partitions {
                exists |= p.partition_index == partition;
                if p.leader_id.0 >= 0 {
                    self.leaders
                        .insert((topic.to_owned(), p.partition_index), p.leader_id.0);
                }
            }
        }
        if !exists {
            return Err(ClientError::Invalid(format!(
                "topic {topic} has no partition {partition}"
            )));
        }
        match self.leaders.get(&key) {
            Some(&leader) => Ok(leader),
            None => Err(ClientError::kafka(
                LEADER_NOT_AVAILABLE,
                format!("partition {topic}-{partition}"),
            )),
        }
    }

    /// The coordinator of consumer group `group` (cached until a retriable failure).
    pub(crate) fn coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        if let Some(&id) = self.coordinators.get(group) {
            return Ok(id);
        }
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_owned()))
            .with_key_type(KEY_TYPE_GROUP);
        let response = self.call(Target::Any, &request, FIND_COORDINATOR_VERSION)?;
        ClientError::check_with(
            response.error_code,
            format!("the coordinator of group {group}"),
            response.error_message.as_deref(),
        )?;
        let id = response.node_id.0;
        self.brokers
            .entry(id)
            .or_insert_with(|| format!("{}:{}", response.host, response.port));
        self.coordinators.insert(group.to_owned(), id);
        Ok(id)
    }

    /// Sends `request` at `version` to `target`; a connection that failed is dropped, so the
    /// next call dials again.
    pub(crate) fn call<R: Request>(
        &mut self,
        target: Target,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let address = self.connect_to(target)?;
        let Some(connection) = self.connections.get_mut(&address) else {
            return Err(ClientError::protocol(format!("no connection to {address}")));
        };
        let result = connection.call(request, version);
        if matches!(result, Err(ClientError::Io { .. })) {
            self.connections.remove(&address);
        }
        result
    }

    /// The address of an open connection to `target`, dialling it if needed.
    fn connect_to(&mut self, target: Target) -> Result<String, ClientError> {
        let candidates: Vec<String> = match target {
            Target::Broker(id) => {
                vec![
                    self.brokers
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| ClientError::Io {
                            what: format!("broker {id}"),
                            source: std::io::Error::other("not in the cluster's broker list"),
                        })?,
                ]
            }
            Target::Any => {
                let open = self.connections.keys().next().cloned();
                open.into_iter()
                    .chain(self.settings.bootstrap.iter().cloned())
                    .chain(self.brokers.values().cloned())
                    .collect()
            }
        };
        let mut last = None;
        for address in candidates {
            if self.connections.contains_key(&address) {
                return Ok(address);
            }
            match Connection::open(
                &address,
                self.tls.as_ref(),
                self.settings.sasl.as_ref(),
                self.settings.timeout,
            ) {
                Ok(connection) => {
                    self.connections.insert(address.clone(), connection);
                    return Ok(address);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid("no broker to ask".to_owned())))
    }

    /// Runs `op` until it succeeds, fails for good, or the operation deadline passes; a
    /// retriable failure refreshes the broker list (leaders and coordinators move) and backs off.
    pub(crate) fn retry<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let deadline = started + self.settings.timeout;
        let mut backoff = RETRY_BACKOFF;
        loop {
            match op(self) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retriable() => {
                    if Instant::now() + backoff >= deadline {
                        return Err(ClientError::Timeout {
                            waited: started.elapsed(),
                            last: format!("{what}: {e}"),
                        });
                    }
                    tracing::debug!(error = %e, what, "retrying");
                    self.leaders.clear();
                    self.coordinators.clear();
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
