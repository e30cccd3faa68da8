//! Chitchat's transport over UDP, ours rather than chitchat's `UdpTransport`: it binds before
//! chitchat starts (so port 0 works), authenticates every datagram when a cluster key is set,
//! counts what it sends and drops, and logs drops at most once per interval.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport};
use chitchat::{ChitchatEnvelope, MAX_UDP_DATAGRAM_PAYLOAD_SIZE};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::auth::{Authenticator, OVERHEAD_BYTES};
use crate::limits;

// Chitchat fills envelopes up to its payload limit; sealing must still fit one UDP datagram.
const _: () =
    assert!(MAX_UDP_DATAGRAM_PAYLOAD_SIZE + OVERHEAD_BYTES <= limits::GOSSIP_DATAGRAM_BYTES_MAX);

const DROP_LOG_INTERVAL: Duration = Duration::from_millis(limits::GOSSIP_DROP_LOG_INTERVAL_MS);

/// Datagram counts of one gossip socket since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GossipStats {
    pub(crate) datagrams_sent: u64,
    /// Received and handed to chitchat.
    pub(crate) datagrams_accepted: u64,
    /// Dropped because they were not authentic, fresh and first seen (cluster key set).
    pub(crate) datagrams_unauthenticated: u64,
    /// Dropped because chitchat could not decode them.
    pub(crate) datagrams_malformed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    sent: AtomicU64,
    accepted: AtomicU64,
    unauthenticated: AtomicU64,
    malformed: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> GossipStats {
        GossipStats {
            datagrams_sent: self.sent.load(Ordering::Relaxed),
            datagrams_accepted: self.accepted.load(Ordering::Relaxed),
            datagrams_unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            datagrams_malformed: self.malformed.load(Ordering::Relaxed),
        }
    }
}

/// Hands chitchat the socket bound by `GossipHandle::start`, exactly once.
pub(super) struct UdpTransport {
    socket: Mutex<Option<(tokio::net::UdpSocket, Option<Authenticator>)>>,
    counters: Arc<Counters>,
}

impl UdpTransport {
    pub(super) fn new(
        socket: tokio::net::UdpSocket,
        authenticator: Option<Authenticator>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            socket: Mutex::new(Some((socket, authenticator))),
            counters,
        }
    }
}

#[async_trait::async_trait]
impl Transport for UdpTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let taken = self
            .socket
            .lock()
            .map_err(|_| anyhow::anyhow!("gossip transport lock poisoned"))?
            .take();
        let (socket, authenticator) =
            taken.with_context(|| format!("gossip socket for {listen_addr} already opened"))?;
        Ok(Box::new(UdpSocket {
            socket,
            authenticator,
            envelope: Vec::with_capacity(MAX_UDP_DATAGRAM_PAYLOAD_SIZE),
            datagram: Vec::with_capacity(limits::GOSSIP_DATAGRAM_BYTES_MAX),
            // One byte more than any accepted datagram, so a truncated one is noticed.
            received: vec![0; limits::GOSSIP_DATAGRAM_BYTES_MAX + 1].into_boxed_slice(),
            counters: Arc::clone(&self.counters),
            drop_log: DropLog::default(),
        }))
    }
}

struct UdpSocket {
    socket: tokio::net::UdpSocket,
    authenticator: Option<Authenticator>,
    envelope: Vec<u8>,
    datagram: Vec<u8>,
    received: Box<[u8]>,
    counters: Arc<Counters>,
    drop_log: DropLog,
}

#[async_trait::async_trait]
impl Socket for UdpSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.socket
            .local_addr()
            .context("gossip socket has no local address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        self.envelope.clear();
        envelope.serialize(&mut self.envelope);
        let bytes = match &mut self.authenticator {
            Some(authenticator) => {
                authenticator.seal(&self.envelope, now_ms(), &mut self.datagram);
                &self.datagram
            }
            None => &self.envelope,
        };
        let num_bytes_sent = self
            .socket
            .send_to(bytes, to)
            .await
            .with_context(|| format!("cannot send a gossip datagram to {to}"))?;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(SendOutcome { num_bytes_sent })
    }

    /// Cancel safe: nothing is awaited after a datagram was taken off the socket.
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            let (len, from_addr) = match self.socket.recv_from(&mut self.received).await {
                Ok(received) => received,
                Err(error) if is_transient(&error) => {
                    debug!(%error, "transient gossip receive error");
                    continue;
                }
                Err(error) => return Err(error).context("gossip socket receive failed"),
            };
            if len > limits::GOSSIP_DATAGRAM_BYTES_MAX {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                self.drop_log
                    .record(from_addr, "larger than a gossip datagram");
                continue;
            }
            let datagram = &self.received[..len];
            let envelope_bytes = match &mut self.authenticator {
                Some(authenticator) => match authenticator.open(datagram, now_ms()) {
                    Ok(envelope_bytes) => envelope_bytes,
                    Err(rejection) => {
                        self.counters
                            .unauthenticated
                            .fetch_add(1, Ordering::Relaxed);
                        self.drop_log.record(from_addr, rejection.reason());
                        continue;
                    }
                },
                None => datagram,
            };
            match ChitchatEnvelope::deserialize(&mut &envelope_bytes[..]) {
                Ok(envelope) => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    return Ok(RecvOutcome {
                        from_addr,
                        envelope,
                        num_bytes_received: len,
                    });
                }
                Err(_) => {
                    self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    self.drop_log.record(from_addr, "not a chitchat message");
                }
            }
        }
    }
}

/// Errors after which the socket still works (what chitchat's own UDP transport tolerates).
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::OutOfMemory | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One warning per `DROP_LOG_INTERVAL` at most, counting the drops it did not log.
#[derive(Debug, Default)]
struct DropLog {
    last_logged: Option<Instant>,
    unlogged_count: u64,
}

impl DropLog {
    fn record(&mut self, peer: SocketAddr, reason: &'static str) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|last| now.duration_since(last) < DROP_LOG_INTERVAL)
        {
            self.unlogged_count += 1;
            return;
        }
        warn!(
            %peer,
            reason,
            dropped_since_last_log = self.unlogged_count,
            "dropped a gossip datagram"
        );
        self.last_logged = Some(now);
        self.unlogged_count = 0;
    }
}
