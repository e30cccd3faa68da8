//! An in-memory gossip network (chitchat's `ChannelTransport`) for tests and in-process
//! clusters: every node of one `MemoryNetwork` reaches the others unless a link is cut.

use std::fmt;
use std::net::SocketAddr;

use chitchat::MAX_UDP_DATAGRAM_PAYLOAD_SIZE;
use chitchat::transport::ChannelTransport;

/// Nodes started with `GossipHandle::start_in_memory` on one network see each other.
#[derive(Clone)]
pub(crate) struct MemoryNetwork {
    transport: ChannelTransport,
}

impl fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNetwork").finish_non_exhaustive()
    }
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// A network whose messages may be as large as a UDP datagram, as on a real one.
    pub(crate) fn new() -> Self {
        Self {
            transport: ChannelTransport::with_mtu(MAX_UDP_DATAGRAM_PAYLOAD_SIZE),
        }
    }

    /// Drops every message between `a` and `b`, both ways, until `heal`.
    pub(crate) async fn cut(&self, a: SocketAddr, b: SocketAddr) {
        self.transport.remove_link(a, b).await;
    }

    pub(crate) async fn heal(&self, a: SocketAddr, b: SocketAddr) {
        self.transport.add_link(a, b).await;
    }

    pub(super) fn transport(&self) -> &ChannelTransport {
        &self.transport
    }
}
