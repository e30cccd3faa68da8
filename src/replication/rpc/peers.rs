//! The calling side of the cluster RPC: one connection per peer broker, opened on first use and
//! again after a failure, shared by every group; calls are pipelined and matched to responses
//! by correlation id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::tls::ClusterTls;
use super::wire::{self, GroupId, Method};
use crate::limits::{CLUSTER_CONNECT_TIMEOUT_MS, CLUSTER_PEER_QUEUE_MAX};

/// Why a call got no answer from its handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made, or it broke before the answer came.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// No answer within the call's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer answered with a failure (unknown group, a handler error).
    #[error("peer failed the call: {0}")]
    Remote(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Bytes, CallError>>>>>;

/// Connections to peer brokers, by node id.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
    /// The cluster's mTLS, when configured.
    tls: Option<ClusterTls>,
    /// Where discovery (gossip) last saw each node: wins over the address a caller passes,
    /// which comes from a raft membership that may predate a restart on another address.
    discovered: Mutex<HashMap<u64, String>>,
}

#[derive(Debug)]
struct Peer {
    address: String,
    queue: mpsc::Sender<(u64, Vec<Bytes>)>,
    pending: Pending,
    correlation: AtomicU64,
}

impl Peers {
    pub(crate) fn new(tls: Option<ClusterTls>) -> Arc<Peers> {
        Arc::new(Peers {
            tls,
            ..Peers::default()
        })
    }

    /// Records where discovery sees `node` now; later calls go there.
    pub(crate) fn discovered(&self, node: u64, address: String) {
        lock(&self.discovered).insert(node, address);
    }

    /// Calls `method` of `group` on node `node` at `address` (or where discovery last saw it)
    /// and waits at most `timeout`.
    pub(crate) async fn call(
        &self,
        node: u64,
        address: &str,
        method: (GroupId, Method),
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        self.call_parts(node, address, method, vec![payload], timeout)
            .await
    }

    /// [`Peers::call`] with a payload made of `parts` back to back, written without copying
    /// them into one buffer.
    pub(crate) async fn call_parts(
        &self,
        node: u64,
        address: &str,
        (group, method): (GroupId, Method),
        parts: Vec<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let discovered = lock(&self.discovered).get(&node).cloned();
        let peer = self.peer(node, discovered.as_deref().unwrap_or(address));
        let correlation = peer.correlation.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        lock(&peer.pending).insert(correlation, reply);
        // Forgotten however the wait ends: answered, timed out, or dropped by the caller (a
        // forward given up for a new leader), so a peer that never answers leaks nothing.
        let _waiting = Waiting {
            pending: &peer.pending,
            correlation,
        };
        let frame = wire::request_frame(correlation, group, method, parts);
        let outcome = tokio::time::timeout(timeout, async {
            if peer.queue.send((correlation, frame)).await.is_err() {
                return Err(CallError::Unreachable("connection task ended".to_owned()));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(CallError::Unreachable("connection closed".to_owned())))
        })
        .await;
        outcome.unwrap_or(Err(CallError::Timeout(timeout)))
    }

    /// How many calls to `node` wait for an answer.
    #[cfg(test)]
    pub(crate) fn pending_calls(&self, node: u64) -> usize {
        lock(&self.peers)
            .get(&node)
            .map_or(0, |peer| lock(&peer.pending).len())
    }

    /// The connection to `node`, replaced when its address changed.
    fn peer(&self, node: u64, address: &str) -> Arc<Peer> {
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(&node)
            && peer.address == address
            && !peer.queue.is_closed()
        {
            return Arc::clone(peer);
        }
        let (queue, frames) = mpsc::channel(CLUSTER_PEER_QUEUE_MAX);
        let peer = Arc::new(Peer {
            address: address.to_owned(),
            queue,
            pending: Pending::default(),
            correlation: AtomicU64::new(0),
        });
        tokio::spawn(run_peer(
            node,
            address.to_owned(),
            frames,
            Arc::clone(&peer.pending),
            self.tls.clone(),
        ));
        peers.insert(node, Arc::clone(&peer));
        peer
    }
}

/// A call's entry among its peer's pending calls, removed when the call stops waiting.
struct Waiting<'a> {
    pending: &'a Pending,
    correlation: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.correlation);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fail(pending: &Pending, correlation: u64, error: &CallError) {
    if let Some(reply) = lock(pending).remove(&correlation) {
        let _ = reply.send(Err(error.clone()));
    }
}

fn fail_all(pending: &Pending, error: &CallError) {
    for (_, reply) in lock(pending).drain() {
        let _ = reply.send(Err(error.clone()));
    }
}

/// Writes the queued frames of one peer, connecting when needed; ends when the `Peer` is
/// dropped (its queue closes).
async fn run_peer(
    node: u64,
    address: String,
    mut frames: mpsc::Receiver<(u64, Vec<Bytes>)>,
    pending: Pending,
    tls: Option<ClusterTls>,
) {
    let mut writer: Option<Connection> = None;
    while let Some((correlation, frame)) = frames.recv().await {
        if writer
            .as_ref()
            .is_some_and(|c| !c.alive.load(Ordering::Acquire))
        {
            writer = None;
        }
        if writer.is_none() {
            match connect(&address, &pending, tls.as_ref()).await {
                Ok(connected) => writer = Some(connected),
                Err(error) => {
                    tracing::debug!(node, %address, %error, "cluster peer unreachable");
                    fail(
                        &pending,
                        correlation,
                        &CallError::Unreachable(error.to_string()),
                    );
                    continue;
                }
            }
        }
        let Some(Connection { writer: out, .. }) = writer.as_mut() else {
            continue;
        };
        let written = async {
            write_frame(out, &frame).await?;
            while let Ok((_, frame)) = frames.try_recv() {
                write_frame(out, &frame).await?;
            }
            out.flush().await
        }
        .await;
        if let Err(error) = written {
            tracing::debug!(node, %address, %error, "cluster peer connection lost");
            fail_all(&pending, &CallError::Unreachable(error.to_string()));
            writer = None;
        }
    }
}

/// Writes the parts of one frame: small ones gather in the writer's buffer, one at least as
/// large as the buffer goes to the connection directly.
async fn write_frame(
    out: &mut BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    frame: &[Bytes],
) -> std::io::Result<()> {
    for part in frame {
        out.write_all(part).await?;
    }
    Ok(())
}

/// The writing half of a peer connection; `alive` turns false when its reading half ends.
struct Connection {
    writer: BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    alive: Arc<AtomicBool>,
}

/// Opens a connection (with the cluster's mTLS when configured) and starts the task that routes
/// its responses to the waiting calls.
async fn connect(
    address: &str,
    pending: &Pending,
    tls: Option<&ClusterTls>,
) -> std::io::Result<Connection> {
    let timeout = Duration::from_millis(CLUSTER_CONNECT_TIMEOUT_MS);
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let (mut reader, writer) = super::tls::client(tls, stream, host).await?;
    let pending = Arc::clone(pending);
    let alive = Arc::new(AtomicBool::new(true));
    let reading = Arc::clone(&alive);
    tokio::spawn(async move {
        let error = loop {
            match wire::read_response(&mut reader).await {
                Ok(Some(response)) => {
                    if let Some(reply) = lock(&pending).remove(&response.correlation) {
                        let _ = reply.send(response.result.map_err(CallError::Remote));
                    }
                }
                Ok(None) => break "closed by the peer".to_owned(),
                Err(error) => break error.to_string(),
            }
        };
        reading.store(false, Ordering::Release);
        fail_all(&pending, &CallError::Unreachable(error));
    });
    Ok(Connection {
        writer: BufWriter::new(writer),
        alive,
    })
}
