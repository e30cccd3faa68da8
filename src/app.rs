//! Composition root: builds the broker and the Kafka listener from a validated config, and owns
//! the startup and shutdown order. No business logic lives here.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::{Broker, BrokerSettings, Endpoint, GroupSettings, TxnSettings};
use crate::cluster::{ClusterNode, ClusterSettings, GossipNetwork, InternalTopic};
use crate::config::Config;
use crate::kafka::{self, KafkaSettings};
use crate::server;

/// A started broker: its bound Kafka address and the handles needed to stop it.
#[derive(Debug)]
pub struct Running {
    kafka_addr: SocketAddr,
    broker: Arc<Broker>,
    /// This broker's cluster membership, in cluster mode (`cluster.listen` set).
    cluster: Option<Arc<ClusterNode>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Running {
    /// The address the Kafka listener is bound to (useful with port 0).
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka_addr
    }

    /// In cluster mode, the address this broker gossips at (a seed for the others).
    pub fn gossip_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(|cluster| cluster.gossip_addr())
    }

    /// Why this broker must stop, once the cluster says so (never, out of cluster mode).
    async fn fatal(&self) -> String {
        let Some(cluster) = &self.cluster else {
            return std::future::pending().await;
        };
        let mut fatal = cluster.fatal();
        match fatal.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Graceful shutdown: stop accepting, finish in-flight requests, then flush and close logs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        // Joins and syncs waiting for a rebalance would hold the drain up to its timeout.
        self.broker.stop_coordinating();
        self.broker.stop_transactions();
        self.server.await.context("kafka server task failed")?;
        if let Some(cluster) = &self.cluster {
            cluster.shutdown().await;
        }
        self.broker.shutdown().context("closing partition logs")?;
        Ok(())
    }
}

fn broker_settings(config: &Config, bound: SocketAddr) -> BrokerSettings {
    let advertised = match config.kafka_advertised() {
        Some(hp) => Endpoint {
            host: hp.host.clone(),
            port: hp.port,
        },
        None if bound.ip().is_unspecified() => Endpoint {
            host: "localhost".to_owned(),
            port: bound.port(),
        },
        None => Endpoint {
            host: bound.ip().to_string(),
            port: bound.port(),
        },
    };
    BrokerSettings {
        node_id: config.node_id(),
        cluster_id: config.cluster_id().to_owned(),
        data_dir: config.data_dir().to_path_buf(),
        advertised,
        default_partitions: config.default_partitions(),
        default_replication_factor: config.default_replication_factor(),
        auto_create_topics: config.auto_create_topics(),
        log: config.log_settings(),
        message_bytes_max: config.message_max_bytes(),
        acks_one_waits_for_fsync: config.acks_one_waits_for_fsync(),
        retention_check_interval: config.retention_check_interval(),
        groups: group_settings(config),
        transactions: transaction_settings(config),
    }
}

fn group_settings(config: &Config) -> GroupSettings {
    let groups = config.group_settings();
    GroupSettings {
        offsets_topic_partitions: groups.offsets_topic_partitions,
        offsets_retention_ms: groups.offsets_retention_ms,
        session_timeout_ms_min: groups.session_timeout_ms_min,
        session_timeout_ms_max: groups.session_timeout_ms_max,
        initial_rebalance_delay_ms: groups.initial_rebalance_delay_ms,
        ..GroupSettings::default()
    }
}

fn transaction_settings(config: &Config) -> TxnSettings {
    let txn = config.transaction_settings();
    TxnSettings {
        state_topic_partitions: txn.state_topic_partitions,
        max_timeout_ms: txn.max_timeout_ms,
        transactional_id_expiration_ms: txn.transactional_id_expiration_ms,
        abort_check_interval_ms: txn.abort_timed_out_check_interval_ms,
        producer_id_expiration_ms: txn.producer_id_expiration_ms,
        ..TxnSettings::default()
    }
}

/// Raises the soft open-files limit to the hard one (the JVM does the same for Kafka), so the
/// connection cap can be reached; at the limit the listener closes idle connections instead.
fn raise_open_files_limit(connections_max: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum
        && let Err(err) = setrlimit(Resource::Nofile, raised)
    {
        tracing::warn!(error = %err, "could not raise the open-files limit");
    }
    let open_files_max = getrlimit(Resource::Nofile).current;
    if open_files_max.is_some_and(|max| max < connections_max as u64) {
        tracing::warn!(
            open_files_max,
            connections_max,
            "the open-files limit is below max_connections; idle connections are closed when it is reached"
        );
    }
}

/// Starts this broker's cluster membership when `cluster.listen` is configured.
async fn start_cluster(
    config: &Config,
    broker: &Broker,
) -> anyhow::Result<Option<Arc<ClusterNode>>> {
    let Some(cluster) = config.cluster() else {
        return Ok(None);
    };
    let gossip_advertise = match &cluster.advertised {
        Some(advertised) => {
            let target = (advertised.host.as_str(), cluster.gossip_listen.port());
            let resolved = tokio::net::lookup_host(target)
                .await
                .with_context(|| format!("resolving cluster.advertised host {}", advertised.host))?
                .next();
            Some(resolved.with_context(|| {
                format!("cluster.advertised host {} has no address", advertised.host)
            })?)
        }
        None => None,
    };
    let identity = broker.identity();
    let settings = ClusterSettings {
        node_id: config.node_id(),
        data_dir: config.data_dir().to_path_buf(),
        directory_id: identity.directory_id,
        stored_cluster_id: identity.cluster_id.clone(),
        rpc_listen: cluster.listen,
        rpc_advertised: cluster
            .advertised
            .as_ref()
            .map(|advertised| (advertised.host.clone(), advertised.port)),
        kafka_host: broker.advertised().host.clone(),
        kafka_port: broker.advertised().port,
        gossip_listen: cluster.gossip_listen,
        gossip_advertise,
        seeds: cluster.seeds.iter().map(ToString::to_string).collect(),
        name: cluster.name.clone(),
        gossip_interval: cluster.gossip_interval,
        bootstrap_expect: cluster.bootstrap_expect as usize,
        controller_voters: cluster.controller_voters as usize,
        rack: cluster.rack.clone(),
        controller_heartbeat: cluster.controller_heartbeat,
        controller_election_timeout: cluster.controller_election_timeout,
        broker_session_timeout: cluster.broker_session_timeout,
        request_timeout: CONTROLLER_REQUEST_TIMEOUT,
        internal_topics: internal_topics(config),
    };
    let node = ClusterNode::start(settings, GossipNetwork::Udp)
        .await
        .context("starting the cluster member")?;
    Ok(Some(node))
}

/// The internal topics as this broker's config sizes them (the controller leader's config
/// decides for the cluster).
fn internal_topics(config: &Config) -> Vec<InternalTopic> {
    let compacted =
        || std::collections::BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    vec![
        InternalTopic {
            name: "__consumer_offsets".to_owned(),
            partitions: config.group_settings().offsets_topic_partitions,
            replication_factor: config.default_replication_factor(),
            configs: compacted(),
        },
        InternalTopic {
            name: "__transaction_state".to_owned(),
            partitions: config.transaction_settings().state_topic_partitions,
            replication_factor: config.default_replication_factor(),
            configs: compacted(),
        },
    ]
}

/// How long a metadata change may wait for the controller (Kafka's default request timeout).
const CONTROLLER_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the broker and starts serving Kafka clients.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    raise_open_files_limit(config.connection_limits().connections_max);
    let listener = TcpListener::bind(config.kafka_bind())
        .await
        .with_context(|| format!("binding the Kafka listener to {}", config.kafka_bind()))?;
    let kafka_addr = listener
        .local_addr()
        .context("reading the bound Kafka address")?;
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("creating data dir {}", config.data_dir().display()))?;
    let broker = Broker::open(broker_settings(config, kafka_addr)).context("opening the broker")?;
    let cluster = match start_cluster(config, &broker).await {
        Ok(cluster) => {
            if let Some(node) = &cluster {
                broker.attach_cluster(Arc::clone(node));
            }
            cluster
        }
        Err(error) => {
            broker.stop_coordinating();
            broker.stop_transactions();
            if let Err(close) = broker.shutdown() {
                tracing::warn!(error = %close, "closing partition logs after a failed start");
            }
            return Err(error);
        }
    };
    let limits = config.connection_limits();
    let settings = Arc::new(KafkaSettings {
        request_bytes_max: config.socket_request_max_bytes(),
        fetch_bytes_max: limits.fetch_bytes_max,
    });
    let (stop, mut stopped) = watch::channel(false);
    let shared = Arc::clone(&broker);
    let member = cluster.clone();
    let make_context = move |peer| {
        kafka::Context::new(Arc::clone(&shared), Arc::clone(&settings), peer)
            .with_cluster(member.clone())
    };
    let shutdown = async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let server = tokio::spawn(server::serve(
        listener,
        server::ServerSettings {
            connections_max: limits.connections_max,
            idle_timeout: limits.idle_timeout,
            queued_request_bytes_max: limits.queued_request_bytes_max,
            ..server::ServerSettings::default()
        },
        make_context,
        shutdown,
    ));
    tracing::info!(addr = %kafka_addr, advertised = %format!("{}:{}", broker.advertised().host, broker.advertised().port), "listening");
    Ok(Running {
        kafka_addr,
        broker,
        cluster,
        stop,
        server,
    })
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before the listener is announced, so a SIGTERM right after start is graceful.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let running = start(&config).await?;
    let signalled = tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT"),
        _ = term.recv() => Ok(()),
        reason = running.fatal() => Err(anyhow::anyhow!("left the cluster: {reason}")),
    };
    tracing::info!("shutting down");
    let stopped = running.shutdown().await;
    signalled.and(stopped)
}
