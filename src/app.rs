//! Composition root: builds the broker, the Kafka listeners (plaintext and TLS) and the admin
//! HTTP listener from a validated config, and owns the startup and shutdown order. No business
//! logic lives here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::sasl::Secret;
use crate::broker::{Broker, BrokerSettings, Endpoint, GroupSettings, Readiness, TxnSettings};
use crate::cluster::{ClusterNode, ClusterSettings, GossipNetwork, InternalTopic};
use crate::config::{self, Config, SecurityProtocol};
use crate::kafka::{self, KafkaSettings, ListenerEndpoint};
use crate::server;
use crate::telemetry;

/// A started broker: its bound Kafka addresses and the handles needed to stop it.
#[derive(Debug)]
pub struct Running {
    kafka_addr: SocketAddr,
    /// Every listener's name and bound address, the default one first.
    listener_addrs: Vec<(String, SocketAddr)>,
    broker: Arc<Broker>,
    /// This broker's cluster membership, in cluster mode (`cluster.listen` set).
    cluster: Option<Arc<ClusterNode>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// The admin HTTP listener, when `admin.listen` is set.
    admin: Option<Admin>,
}

/// A running admin HTTP listener; dropping it (a failed start) stops it too.
#[derive(Debug)]
struct Admin {
    addr: SocketAddr,
    /// What `/ready` looks at: the broker once it serves, and whether it is stopping.
    ready: Arc<ReadySource>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What `/ready` answers from: nothing until the Kafka listeners serve, then the broker.
#[derive(Debug, Default)]
struct ReadySource {
    broker: OnceLock<Arc<Broker>>,
    is_stopping: AtomicBool,
    /// Set while the bootstrap users are not all created yet (cluster mode creates them once
    /// the controller takes the change): SASL clients could not log in as them.
    users_pending: AtomicBool,
}

impl ReadySource {
    fn check(&self) -> Result<(), String> {
        if self.is_stopping.load(Ordering::Acquire) {
            return Err("shutting down".to_owned());
        }
        match self.broker.get().map(|broker| broker.readiness()) {
            None => Err("starting".to_owned()),
            Some(Readiness::Ready) if self.users_pending.load(Ordering::Acquire) => {
                Err("creating the bootstrap users".to_owned())
            }
            Some(Readiness::Ready) => Ok(()),
            Some(Readiness::NotReady(reason)) => Err(reason.to_owned()),
        }
    }
}

impl Running {
    /// The address the Kafka listener is bound to (useful with port 0).
    pub fn kafka_addr(&self) -> SocketAddr {
        self.kafka_addr
    }

    /// The address listener `name` is bound to (`kafka` is the default listener).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listener_addrs
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, addr)| *addr)
    }

    /// The address the admin HTTP listener is bound to, when `admin.listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|admin| admin.addr)
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
        if let Some(admin) = &self.admin {
            admin.ready.is_stopping.store(true, Ordering::Release);
        }
        self.stop.send_replace(true);
        // Joins and syncs waiting for a rebalance would hold the drain up to its timeout.
        self.broker.stop_coordinating();
        self.broker.stop_transactions();
        self.server.await.context("kafka server task failed")?;
        if let Some(cluster) = &self.cluster {
            cluster.shutdown().await;
        }
        self.broker.shutdown().context("closing partition logs")?;
        // Last, so probes see "shutting down" (503) rather than a refused connection meanwhile.
        if let Some(admin) = self.admin {
            admin.stop.send_replace(true);
            admin.task.await.context("admin listener task failed")?;
        }
        Ok(())
    }
}

/// How often histogram samples are folded into their buckets between scrapes.
const METRICS_UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds and starts the admin HTTP listener when `admin.listen` is set; `/ready` answers
/// "starting" until `ReadySource::broker` is set.
async fn start_admin(config: &Config) -> anyhow::Result<Option<Admin>> {
    let Some(listen) = config.admin_listen() else {
        return Ok(None);
    };
    let socket = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin listener to {listen}"))?;
    let addr = socket
        .local_addr()
        .context("reading the bound admin address")?;
    telemetry::metrics::prometheus().context("installing the Prometheus metrics recorder")?;
    let ready = Arc::new(ReadySource::default());
    let source = Arc::clone(&ready);
    let gauges = Arc::clone(&ready);
    let handlers = server::AdminHandlers {
        ready: Box::new(move || source.check()),
        metrics: Some(Box::new(move || {
            if let Some(broker) = gauges.broker.get() {
                let (partitions, group_lags) = broker.metric_gauges();
                telemetry::metrics::set_state(&partitions, &group_lags);
            }
            telemetry::metrics::render()
        })),
    };
    let (stop, stopped) = watch::channel(false);
    // An error means the sender is gone (a failed start), which also means stop.
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let upkeep = {
        let stopped = until_stopped(stopped.clone());
        async move {
            tokio::pin!(stopped);
            let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = &mut stopped => break,
                    _ = tick.tick() => telemetry::metrics::run_upkeep(),
                }
            }
        }
    };
    let serve = server::serve_admin(socket, handlers, until_stopped(stopped));
    let task = tokio::spawn(async move {
        tokio::join!(serve, upkeep);
    });
    // Not "listening": harnesses take the first `listening addr=` line as the Kafka address.
    tracing::info!(addr = %addr, "admin HTTP serving /health, /ready and /metrics");
    Ok(Some(Admin {
        addr,
        ready,
        stop,
        task,
    }))
}

/// What clients of a listener are told to connect to: its `advertised`, else the bound address.
fn advertised_endpoint(advertised: Option<&config::HostPort>, bound: SocketAddr) -> Endpoint {
    match advertised {
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
    }
}

fn broker_settings(config: &Config, bound: SocketAddr) -> BrokerSettings {
    let advertised = advertised_endpoint(config.kafka_advertised(), bound);
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
    listeners: &[Arc<ListenerEndpoint>],
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
        kafka_security_protocol: config
            .listeners()
            .first()
            .map_or("PLAINTEXT", |l| l.security_protocol.as_str())
            .to_owned(),
        listeners: listeners
            .iter()
            .filter(|listener| !listener.is_default)
            .map(|listener| {
                let protocol = config
                    .listeners()
                    .iter()
                    .find(|l| l.name == listener.name)
                    .map_or("PLAINTEXT", |l| l.security_protocol.as_str());
                (
                    listener.name.clone(),
                    listener.host.clone(),
                    listener.port,
                    protocol.to_owned(),
                )
            })
            .collect(),
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
        rpc_tls: match &cluster.tls {
            Some((cert, key, ca)) => {
                let (server, client) = server::cluster_mtls(cert, key, ca)
                    .context("setting up the cluster listener's mTLS (cluster.tls)")?;
                Some(crate::replication::rpc::ClusterTls::new(server, client))
            }
            None => None,
        },
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

/// The TLS of `SSL` listeners, loaded once here (a missing or bad file stops the start).
fn tls(config: &Config) -> anyhow::Result<Option<server::Tls>> {
    let Some(tls) = config.tls() else {
        return Ok(None);
    };
    if !config
        .listeners()
        .iter()
        .any(|l| l.security_protocol.is_tls())
    {
        return Ok(None);
    }
    let settings = server::TlsSettings {
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        ca_file: tls.ca_file.clone(),
        client_auth: match tls.client_auth {
            config::ClientAuth::None => server::ClientAuth::None,
            config::ClientAuth::Requested => server::ClientAuth::Requested,
            config::ClientAuth::Required => server::ClientAuth::Required,
        },
        principal_mapping_rules: crate::auth::MappingRules::parse(&tls.principal_mapping_rules)
            .context("tls.principal_mapping_rules")?,
        handshake_timeout: tls.handshake_timeout,
    };
    server::Tls::new(settings)
        .map(Some)
        .context("setting up TLS (the tls section)")
}

/// Binds every Kafka listener (TLS on SSL and SASL_SSL listeners).
async fn bind_listeners(
    config: &Config,
) -> anyhow::Result<(Vec<server::KafkaListener>, Vec<Arc<ListenerEndpoint>>)> {
    let tls = tls(config)?;
    let mut bound = Vec::new();
    let mut endpoints = Vec::new();
    for (idx, listener) in config.listeners().iter().enumerate() {
        let socket = TcpListener::bind(listener.bind).await.with_context(|| {
            format!(
                "binding the Kafka listener {} to {}",
                listener.name, listener.bind
            )
        })?;
        let addr = socket
            .local_addr()
            .with_context(|| format!("reading the bound address of listener {}", listener.name))?;
        let advertised = advertised_endpoint(listener.advertised.as_ref(), addr);
        endpoints.push(Arc::new(ListenerEndpoint {
            name: listener.name.clone(),
            host: advertised.host,
            port: advertised.port,
            is_default: idx == 0,
        }));
        bound.push(server::KafkaListener {
            listener: socket,
            name: Arc::from(listener.name.as_str()),
            tls: listener
                .security_protocol
                .is_tls()
                .then(|| tls.clone())
                .flatten(),
        });
    }
    Ok((bound, endpoints))
}

/// The SASL policy of each SASL listener, by name.
fn sasl_policies(config: &Config) -> std::collections::BTreeMap<String, kafka::SaslPolicy> {
    let sasl = config.sasl();
    config
        .listeners()
        .iter()
        .filter(|l| {
            matches!(
                l.security_protocol,
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            )
        })
        .map(|l| {
            let policy = kafka::SaslPolicy {
                mechanisms: sasl.mechanisms.clone(),
                max_reauth: sasl.max_reauth,
                failed_delay: sasl.failed_authentication_delay,
                authentication_timeout: sasl.authentication_timeout,
            };
            (l.name.clone(), policy)
        })
        .collect()
}

/// Reads every bootstrap user's password file (at start, so a missing file fails the start).
fn bootstrap_passwords(config: &Config) -> anyhow::Result<Vec<(String, Secret<Vec<u8>>)>> {
    config
        .authorization()
        .bootstrap_users
        .iter()
        .map(|user| {
            let mut password = std::fs::read(&user.password_file).with_context(|| {
                format!(
                    "reading the password file of bootstrap user {} ({})",
                    user.name,
                    user.password_file.display()
                )
            })?;
            if password.last() == Some(&b'\n') {
                password.pop();
                if password.last() == Some(&b'\r') {
                    password.pop();
                }
            }
            anyhow::ensure!(
                !password.is_empty(),
                "the password file of bootstrap user {} is empty",
                user.name
            );
            Ok((user.name.clone(), Secret(password)))
        })
        .collect()
}

/// Creates the bootstrap users that do not exist yet; in cluster mode retries until the
/// controller takes the change (or shutdown). Returns whether all exist.
async fn create_bootstrap_users(
    broker: Arc<Broker>,
    users: Vec<(String, Secret<Vec<u8>>)>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    for (name, password) in users {
        loop {
            match broker
                .create_bootstrap_user(&name, &password, crate::auth::sasl::ITERATIONS_MIN)
                .await
            {
                Ok(true) => {
                    tracing::info!(user = %name, "bootstrap user created");
                    break;
                }
                Ok(false) => {
                    tracing::info!(user = %name, "bootstrap user already exists");
                    break;
                }
                Err(error) => {
                    tracing::warn!(user = %name, %error, "could not create the bootstrap user yet; retrying");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return false,
                () = tokio::time::sleep(BOOTSTRAP_USER_RETRY) => {}
            }
        }
    }
    true
}

/// How often creating a bootstrap user is retried while the controller is not reachable.
const BOOTSTRAP_USER_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the broker and starts serving Kafka clients.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    raise_open_files_limit(config.connection_limits().connections_max);
    // First, so /health answers while the partitions load.
    let admin = start_admin(config).await?;
    let (listeners, endpoints) = bind_listeners(config).await?;
    let listener_addrs = listeners
        .iter()
        .map(|l| {
            let addr = l
                .listener
                .local_addr()
                .context("reading a bound Kafka address")?;
            Ok((l.name.to_string(), addr))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kafka_addr = listener_addrs
        .first()
        .map(|(_, addr)| *addr)
        .context("no Kafka listener")?;
    let bootstrap_users = bootstrap_passwords(config)?;
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("creating data dir {}", config.data_dir().display()))?;
    let broker = Broker::open(broker_settings(config, kafka_addr)).context("opening the broker")?;
    let cluster = match start_cluster(config, &broker, &endpoints).await {
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
    let authorization = config.authorization();
    let settings = Arc::new(KafkaSettings {
        request_bytes_max: config.socket_request_max_bytes(),
        fetch_bytes_max: limits.fetch_bytes_max,
        authorization: authorization.enabled.then(|| kafka::AuthorizationPolicy {
            super_users: authorization.super_users.clone(),
            allow_everyone_if_no_acl_found: authorization.allow_everyone_if_no_acl_found,
        }),
    });
    let (stop, mut stopped) = watch::channel(false);
    let shared = Arc::clone(&broker);
    let member = cluster.clone();
    let by_name: std::collections::BTreeMap<String, Arc<ListenerEndpoint>> = endpoints
        .iter()
        .map(|endpoint| (endpoint.name.clone(), Arc::clone(endpoint)))
        .collect();
    let sasl = sasl_policies(config);
    let make_context = move |peer, listener: &str| {
        let ctx = kafka::Context::new(Arc::clone(&shared), Arc::clone(&settings), peer)
            .with_cluster(member.clone())
            .with_sasl(sasl.get(listener).cloned());
        match by_name.get(listener) {
            Some(endpoint) => ctx.with_listener(Arc::clone(endpoint)),
            None => ctx,
        }
    };
    if cluster.is_none() {
        // A single node writes them to its own files: done before any client can log in.
        create_bootstrap_users(Arc::clone(&broker), bootstrap_users, stop.subscribe()).await;
    } else if !bootstrap_users.is_empty() {
        // The controller must take them: `/ready` waits for it.
        let pending = admin.as_ref().map(|admin| Arc::clone(&admin.ready));
        if let Some(ready) = &pending {
            ready.users_pending.store(true, Ordering::Release);
        }
        let creating =
            create_bootstrap_users(Arc::clone(&broker), bootstrap_users, stop.subscribe());
        tokio::spawn(async move {
            if creating.await
                && let Some(ready) = pending
            {
                ready.users_pending.store(false, Ordering::Release);
            }
        });
    }
    let shutdown = async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let synced = Arc::clone(&broker);
    let server = tokio::spawn(server::serve(
        listeners,
        server::ServerSettings {
            connections_max: limits.connections_max,
            idle_timeout: limits.idle_timeout,
            queued_request_bytes_max: limits.queued_request_bytes_max,
            ..server::ServerSettings::default()
        },
        make_context,
        async move { synced.synced().await },
        shutdown,
    ));
    for ((name, addr), endpoint) in listener_addrs.iter().zip(&endpoints) {
        let protocol = config
            .listeners()
            .iter()
            .find(|l| &l.name == name)
            .map_or("PLAINTEXT", |l| l.security_protocol.as_str());
        tracing::info!(addr = %addr, listener = %name, advertised = %format!("{}:{}", endpoint.host, endpoint.port), security_protocol = protocol, "listening");
    }
    if let Some(admin) = &admin {
        // Already set only if this were a second start of the same admin listener: never.
        let _ = admin.ready.broker.set(Arc::clone(&broker));
    }
    Ok(Running {
        kafka_addr,
        listener_addrs,
        broker,
        cluster,
        stop,
        server,
        admin,
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
