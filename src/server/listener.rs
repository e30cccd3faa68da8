//! The accept loop (mini-redis style): takes the already-bound Kafka listeners (plaintext or
//! TLS), caps concurrent connections over all of them, and on shutdown stops accepting and
//! drains connections. A new client is always served: at the cap, or out of file descriptors,
//! the connection idle the longest is closed. A TLS handshake runs in the connection's task,
//! holding its slot, bounded by the handshake timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::budget::RequestBudget;
use super::connection::{self, ConnectionSettings};
use super::registry::Registry;
use super::tls::Tls;
use crate::kafka;
use crate::limits;

/// Listener settings, built by app from the validated config.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    /// Concurrent connections (`max_connections`); at the cap the connection idle the longest is
    /// closed for a new client, and if none is idle the new client waits.
    pub(crate) connections_max: usize,
    /// A connection that moves no byte for this long is closed (`connections.max.idle.ms`).
    pub(crate) idle_timeout: Duration,
    /// Bytes of requests read but not yet answered, over all connections
    /// (`queued.max.request.bytes`).
    pub(crate) queued_request_bytes_max: u64,
    /// How long shutdown waits for connections to finish their in-flight requests.
    pub(crate) drain_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            connections_max: limits::CONNECTIONS_MAX_DEFAULT,
            idle_timeout: Duration::from_millis(limits::CONNECTION_IDLE_MS_DEFAULT),
            queued_request_bytes_max: limits::QUEUED_REQUEST_BYTES_MAX_DEFAULT,
            drain_timeout: Duration::from_millis(limits::SHUTDOWN_DRAIN_MS),
        }
    }
}

/// One bound Kafka listener: its name and, for an `SSL` listener, its TLS.
#[derive(Debug)]
pub(crate) struct KafkaListener {
    pub(crate) listener: TcpListener,
    pub(crate) name: Arc<str>,
    pub(crate) tls: Option<Tls>,
}

/// Serves Kafka clients on `listeners` from when `serving` resolves until `shutdown` resolves,
/// then stops accepting, lets every connection finish the requests it already read (at most
/// `drain_timeout`), and returns once all connection tasks ended. Before `serving`, clients
/// wait in the listeners' (bounded) backlogs, as at a Kafka broker still catching up with its
/// metadata. `make_context` builds the handler context of each new connection from its peer
/// address and its listener's name.
pub(crate) async fn serve(
    listeners: Vec<KafkaListener>,
    settings: ServerSettings,
    make_context: impl Fn(SocketAddr, &str) -> kafka::Context,
    serving: impl Future<Output = ()>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    tokio::select! {
        biased;
        () = &mut shutdown => {
            tracing::info!("stopped before serving clients");
            return;
        }
        () = serving => {}
    }
    for listener in &listeners {
        let local = listener.listener.local_addr().ok();
        tracing::info!(address = ?local, listener = %listener.name, tls = listener.tls.is_some(), connections_max = settings.connections_max, "serving clients");
    }
    let (stop_sender, stop) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(settings.connections_max.max(1)));
    let registry = Arc::new(Registry::new());
    let connection_settings = ConnectionSettings {
        budget: Arc::new(RequestBudget::new(settings.queued_request_bytes_max)),
        idle_timeout: settings.idle_timeout,
    };
    let mut connections = JoinSet::new();
    loop {
        let (socket, peer, listener) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept_any(&listeners, &registry) => accepted,
        };
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = take_slot(&slots, &registry) => slot,
        };
        let ctx = make_context(peer, &listener.name);
        let tls = listener.tls.clone();
        let stop = stop.clone();
        let registration = registry.register();
        let settings = connection_settings.clone();
        let span = tracing::info_span!("connection", %peer, listener = %listener.name, principal = tracing::field::Empty);
        connections.spawn(
            async move {
                let _open = crate::telemetry::metrics::connection_opened();
                let activity = Arc::clone(&registration.activity);
                match tls {
                    None => connection::run(socket, ctx, settings, activity, stop).await,
                    // A connection still in its handshake is as idle as it gets: at the cap
                    // it is the first closed for a new client.
                    Some(tls) => match tokio::select! {
                        biased;
                        () = activity.evicted() => None,
                        accepted = tls.accept(socket) => Some(accepted),
                    } {
                        None => tracing::debug!(
                            "closed during its TLS handshake to make room for a new connection"
                        ),
                        Some(Ok((stream, principal))) => {
                            tracing::Span::current()
                                .record("principal", tracing::field::display(&principal));
                            tracing::debug!(%principal, "TLS handshake done");
                            let ctx = ctx.with_principal(principal);
                            connection::run_tls(stream, ctx, settings, activity, stop).await;
                        }
                        Some(Err(error)) => {
                            crate::telemetry::metrics::authentication_failed("TLS");
                            tracing::info!(
                                error = %super::tls::chain(&error),
                                "TLS handshake refused; connection closed"
                            );
                        }
                    },
                }
                drop(registration);
                drop(slot);
            }
            .instrument(span),
        );
        while let Some(ended) = connections.try_join_next() {
            report(ended);
        }
    }
    drop(listeners);
    tracing::info!(
        connections = connections.len(),
        "stopped accepting; draining connections"
    );
    stop_sender.send_replace(true);
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while let Some(ended) = connections.join_next().await {
            report(ended);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            drain_timeout_ms = settings.drain_timeout.as_millis(),
            "connections still busy after the drain timeout; closing them"
        );
        connections.abort_all();
        while let Some(ended) = connections.join_next().await {
            report(ended);
        }
    }
    tracing::info!("listener closed");
}

/// A connection slot for a client already accepted. At the cap, the connection idle the longest
/// is told to close and its slot is taken; if every connection is busy, waits for one to end.
async fn take_slot(slots: &Arc<Semaphore>, registry: &Registry) -> OwnedSemaphorePermit {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return slot;
    }
    match registry.evict_idlest() {
        Some(idle) => tracing::debug!(
            idle_ms = idle.as_millis(),
            "at the connection cap: closing the connection idle the longest"
        ),
        None => tracing::warn!(
            connections = registry.len(),
            "at the connection cap and every connection is busy; the new client waits"
        ),
    }
    Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed")
}

/// Accepts the next connection on any of `listeners`.
async fn accept_any<'a>(
    listeners: &'a [KafkaListener],
    registry: &Registry,
) -> (TcpStream, SocketAddr, &'a KafkaListener) {
    if let [only] = listeners {
        let (socket, peer) = accept(&only.listener, registry).await;
        return (socket, peer, only);
    }
    let accepts = listeners.iter().map(|listener| {
        Box::pin(async move {
            let (socket, peer) = accept(&listener.listener, registry).await;
            (socket, peer, listener)
        })
    });
    let (accepted, _, _) = futures_util::future::select_all(accepts).await;
    accepted
}

/// Accepts the next connection, backing off (and logging) while accepting fails. Out of file
/// descriptors, the connection idle the longest is closed to free one.
async fn accept(listener: &TcpListener, registry: &Registry) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(limits::ACCEPT_BACKOFF_MS_MIN);
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                if let Err(err) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
                }
                return (socket, peer);
            }
            Err(err) => {
                let evicted = is_out_of_descriptors(&err)
                    .then(|| registry.evict_idlest())
                    .flatten();
                tracing::warn!(
                    error = %err,
                    backoff_ms = backoff.as_millis(),
                    closed_idle_connection = evicted.is_some(),
                    "accept failed"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(limits::ACCEPT_BACKOFF_MS_MAX));
            }
        }
    }
}

/// EMFILE or ENFILE: the process or the system is out of file descriptors.
fn is_out_of_descriptors(err: &std::io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE))
}

fn report(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended
        && err.is_panic()
    {
        tracing::error!(error = %err, "connection task panicked");
    }
}
