//! The membership view gossip publishes: brokers considered live and brokers seen live that are
//! now considered dead, each with its typed broker info. Advisory only: the controller decides.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::BrokerInfo;

/// One broker as gossip knows it: its newest generation only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) node_id: i32,
    pub(crate) generation: u64,
    /// Where it gossips.
    pub(crate) gossip_addr: SocketAddr,
    pub(crate) info: BrokerInfo,
}

/// A member that stopped sending heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadMember {
    pub(crate) member: Member,
    /// When this node's view first saw it dead.
    pub(crate) dead_since: Instant,
}

impl DeadMember {
    pub(crate) fn dead_for(&self) -> Duration {
        self.dead_since.elapsed()
    }
}

/// The cluster as this node's gossip sees it.
///
/// - At most one entry per (node id, incarnation): a broker that restarted with a higher
///   generation replaces its previous run at once, which is never reported again.
/// - A node is never both live and dead; `dead` holds only members this node saw live, until
///   the dead-node grace period makes gossip forget them.
/// - Two live entries with one node id and different incarnations are two brokers claiming one
///   id: reported as they are, for the controller to refuse the newcomer.
/// - This node itself is in `live`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    /// Sorted by node id, then incarnation.
    pub(crate) live: Vec<Member>,
    /// Sorted by node id, then incarnation.
    pub(crate) dead: Vec<DeadMember>,
}

impl Membership {
    /// Live members claiming `node_id` (more than one is a conflict).
    pub(crate) fn live_claims(&self, node_id: i32) -> impl Iterator<Item = &Member> {
        self.live.iter().filter(move |m| m.node_id == node_id)
    }

    pub(crate) fn is_live(&self, node_id: i32) -> bool {
        self.live_claims(node_id).next().is_some()
    }

    /// Node ids with more than one live incarnation.
    pub(crate) fn conflicting_node_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .live
            .windows(2)
            .filter(|pair| pair[0].node_id == pair[1].node_id)
            .map(|pair| pair[0].node_id)
            .collect();
        ids.dedup();
        ids
    }
}
