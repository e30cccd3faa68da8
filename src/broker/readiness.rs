//! Whether this broker serves yet (the admin listener's `/ready`): a standalone broker once it
//! opened its logs; in cluster mode once it sees a controller leader, is registered and unfenced,
//! and has made its partitions follow the caught-up metadata. Reads state, changes nothing.

use std::sync::atomic::Ordering;

use super::Broker;

/// The broker's readiness, with the first reason it is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    NotReady(&'static str),
}

impl Broker {
    /// Whether clients can be served here now (Kubernetes' readiness probe).
    pub(crate) fn readiness(&self) -> Readiness {
        if *self.shutdown.borrow() {
            return Readiness::NotReady("shutting down");
        }
        let Some(link) = self.cluster.get() else {
            // Standalone: `Broker::open` loaded every partition before returning.
            return Readiness::Ready;
        };
        let node = &link.node;
        if !node.caught_up() {
            return Readiness::NotReady("replaying the cluster metadata");
        }
        let view = node.view();
        if view.controller.is_none() {
            return Readiness::NotReady("no controller leader");
        }
        if !view.brokers.iter().any(|b| b.id == self.node_id()) {
            return Readiness::NotReady("not registered, or fenced, by the controller");
        }
        if !link.is_synced.load(Ordering::Acquire) {
            return Readiness::NotReady("loading partitions");
        }
        Readiness::Ready
    }
}
