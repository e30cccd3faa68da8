//! The serving side of the cluster RPC: accepts peer connections and hands each request to the
//! handler registered for its group, answering on the same connection in completion order.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use super::tls::ClusterTls;
use super::wire::{self, GroupId, Method, Response};
use crate::limits::{CLUSTER_CONNECTION_IN_FLIGHT_MAX, CLUSTER_CONNECTIONS_MAX};

/// What a handler returns: the response payload, or a failure sent back as text.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// Serves the calls of one group.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture;
}

/// The groups this broker serves, by id.
#[derive(Default)]
pub(crate) struct Registry {
    groups: RwLock<HashMap<GroupId, Arc<dyn Handler>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups = self.groups.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Registry")
            .field("groups", &groups.len())
            .finish()
    }
}

impl Registry {
    pub(crate) fn insert(&self, group: GroupId, handler: Arc<dyn Handler>) {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        groups.insert(group, handler);
    }

    pub(crate) fn remove(&self, group: GroupId) {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        groups.remove(&group);
    }

    fn get(&self, group: GroupId) -> Option<Arc<dyn Handler>> {
        let groups = self.groups.read().unwrap_or_else(PoisonError::into_inner);
        groups.get(&group).cloned()
    }
}

/// Accepts peer connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<ClusterTls>,
) {
    let connections = Arc::new(Semaphore::new(CLUSTER_CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cluster listener accept failed");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%peer, "cluster connection refused: too many connections");
            continue;
        };
        let registry = Arc::clone(&registry);
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(stream, registry, shutdown, tls.as_ref()).await {
                tracing::debug!(%peer, %error, "cluster connection closed");
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<&ClusterTls>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    // With mTLS a peer without a certificate of the cluster CA ends here.
    let (mut reader, writer) = super::tls::server(tls, stream).await.inspect_err(|error| {
        tracing::info!(%error, "cluster connection refused: TLS handshake failed");
    })?;
    let (responses, mut outgoing) = mpsc::channel::<Bytes>(CLUSTER_CONNECTION_IN_FLIGHT_MAX);
    let write = tokio::spawn(async move {
        let mut writer = BufWriter::new(writer);
        while let Some(frame) = outgoing.recv().await {
            writer.write_all(&frame).await?;
            while let Ok(frame) = outgoing.try_recv() {
                writer.write_all(&frame).await?;
            }
            writer.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let in_flight = Arc::new(Semaphore::new(CLUSTER_CONNECTION_IN_FLIGHT_MAX));
    let result = loop {
        let request = tokio::select! {
            request = wire::read_request(&mut reader) => request,
            _ = shutdown.wait_for(|stop| *stop) => break Ok(()),
        };
        let request = match request {
            Ok(Some(request)) => request,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break Ok(());
        };
        let handler = registry.get(request.group);
        let responses = responses.clone();
        tokio::spawn(async move {
            let result = match handler {
                Some(handler) => handler.handle(request.method, request.payload).await,
                None => Err(format!("group {} is not served here", request.group)),
            };
            let response = Response {
                correlation: request.correlation,
                result,
            };
            // A closed writer means the connection is gone; the caller times out or retries.
            let _ = responses.send(response.encode()).await;
            drop(permit);
        });
    };
    // The writer ends once every handler still running has answered (or the peer is gone).
    drop(responses);
    drop(write);
    result
}
