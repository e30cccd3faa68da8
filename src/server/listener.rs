//! The accept loop (mini-redis style): takes an already-bound listener, caps concurrent
//! connections with a semaphore, and on shutdown stops accepting and drains connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::connection;
use crate::kafka;
use crate::limits;

/// Longest pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);

/// Listener settings, built by app from the validated config.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    /// Concurrent connections; further clients wait in the kernel's accept backlog.
    pub(crate) connections_max: usize,
    /// How long shutdown waits for connections to finish their in-flight requests.
    pub(crate) drain_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            connections_max: limits::CONNECTIONS_MAX,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves Kafka clients on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish the requests it already read (at most `drain_timeout`), and returns once all
/// connection tasks ended. `make_context` builds the handler context of each new connection.
pub(crate) async fn serve(
    listener: TcpListener,
    settings: ServerSettings,
    make_context: impl Fn(SocketAddr) -> kafka::Context,
    shutdown: impl Future<Output = ()>,
) {
    let local = listener.local_addr().ok();
    tracing::debug!(address = ?local, connections_max = settings.connections_max, "accepting connections");
    let (stop_sender, stop) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(settings.connections_max.max(1)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Take a slot first: at the cap, clients wait in the backlog instead of being accepted.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => break,
            },
        };
        let (socket, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let ctx = make_context(peer);
        let stop = stop.clone();
        let span = tracing::info_span!("connection", %peer);
        connections.spawn(
            async move {
                connection::run(socket, ctx, stop).await;
                drop(slot);
            }
            .instrument(span),
        );
        while let Some(ended) = connections.try_join_next() {
            report(ended);
        }
    }
    drop(listener);
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

/// Accepts the next connection, backing off (and logging) while accepting fails.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                if let Err(err) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
                }
                return (socket, peer);
            }
            Err(err) => {
                tracing::warn!(error = %err, backoff_ms = backoff.as_millis(), "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

fn report(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended
        && err.is_panic()
    {
        tracing::error!(error = %err, "connection task panicked");
    }
}
