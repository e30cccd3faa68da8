//! Whether this broker serves yet (the admin listener's `/ready`, and the Kafka listeners'
//! first accept): a standalone broker once it opened its logs; in cluster mode once it sees a
//! controller leader, is registered and unfenced, and has made its partitions follow the
//! caught-up metadata. Reads state, changes nothing.

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
        if !*link.is_synced.borrow() {
            return Readiness::NotReady("loading partitions");
        }
        Readiness::Ready
    }

    /// Resolves once this broker may serve clients: at once standalone (`Broker::open` loaded
    /// every partition); in cluster mode once its partitions follow metadata caught up with the
    /// controller (the last step of readiness; it stays done). Kafka's broker likewise opens
    /// its listeners only after its metadata catch-up: a broker restarted from a data dir
    /// replays the controller's log first, and until then a topic missing from its state may
    /// only be not replayed yet, which it must not tell a client (UNKNOWN_TOPIC_OR_PARTITION).
    pub(crate) async fn synced(&self) {
        let Some(link) = self.cluster.get() else {
            return;
        };
        let mut synced = link.is_synced.subscribe();
        // An error means the link is gone, and with it the broker: nothing to wait for.
        let _ = synced.wait_for(|done| *done).await;
    }
}
