//! What the listener knows of its open connections: when each last moved a byte and whether it
//! has responses pending, so that at the connection cap (or out of file descriptors) the one
//! idle the longest can be closed to admit a new client. No sockets here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Liveness of one connection, shared by its reader, its writer and the listener.
#[derive(Debug)]
pub(super) struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch` at which a byte was last read or written.
    last_active_ms: AtomicU64,
    /// Responses queued or being computed and not yet written.
    pending_responses: AtomicUsize,
    /// The writer is waiting for a response to be computed (the broker's turn, not idleness).
    is_computing: AtomicBool,
    is_evicted: AtomicBool,
    evict: Notify,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            last_active_ms: AtomicU64::new(0),
            pending_responses: AtomicUsize::new(0),
            is_computing: AtomicBool::new(false),
            is_evicted: AtomicBool::new(false),
            evict: Notify::new(),
        };
        activity.touch();
        activity
    }

    fn ms_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes moved now.
    pub(super) fn touch(&self) {
        let now = self.ms_since_epoch(Instant::now());
        self.last_active_ms.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn last_active(&self) -> Instant {
        self.epoch + std::time::Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
    }

    pub(super) fn response_queued(&self) {
        self.pending_responses.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn response_written(&self) {
        self.pending_responses.fetch_sub(1, Ordering::AcqRel);
    }

    pub(super) fn set_computing(&self, is_computing: bool) {
        self.is_computing.store(is_computing, Ordering::Release);
    }

    pub(super) fn is_computing(&self) -> bool {
        self.is_computing.load(Ordering::Acquire)
    }

    /// Resolves once the listener chose this connection to make room.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// Every open connection of one listener.
#[derive(Debug)]
pub(super) struct Registry {
    epoch: Instant,
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// Keeps a connection registered; removes it on drop.
#[derive(Debug)]
pub(super) struct Registration {
    registry: Arc<Registry>,
    id: u64,
    pub(super) activity: Arc<Activity>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    pub(super) fn new() -> Registry {
        Registry {
            epoch: Instant::now(),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        self.lock().insert(id, Arc::clone(&activity));
        Registration {
            registry: Arc::clone(self),
            id,
            activity,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Tells the connection idle the longest (no response pending, not already told) to close.
    /// Returns its idle time, or `None` if every connection is busy.
    pub(super) fn evict_idlest(&self) -> Option<std::time::Duration> {
        let connections = self.lock();
        let victim = connections
            .values()
            .filter(|a| a.pending_responses.load(Ordering::Acquire) == 0)
            .filter(|a| !a.is_evicted.load(Ordering::Acquire))
            .min_by_key(|a| a.last_active_ms.load(Ordering::Relaxed))?;
        victim.is_evicted.store(true, Ordering::Release);
        victim.evict.notify_one();
        Some(Instant::now().saturating_duration_since(victim.last_active()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn eviction_picks_the_longest_idle_connection_without_pending_responses() {
        let registry = Arc::new(Registry::new());
        let oldest_busy = registry.register();
        oldest_busy.activity.response_queued();
        tokio::time::advance(Duration::from_secs(1)).await;
        let idle = registry.register();
        tokio::time::advance(Duration::from_secs(1)).await;
        let recent = registry.register();
        tokio::time::advance(Duration::from_secs(1)).await;

        assert_eq!(registry.evict_idlest(), Some(Duration::from_secs(2)));
        tokio::time::timeout(Duration::from_millis(1), idle.activity.evicted())
            .await
            .expect("the idle connection was told");
        assert_eq!(
            registry.evict_idlest(),
            Some(Duration::from_secs(1)),
            "then the next one, never twice the same"
        );
        recent.activity.touch();
        assert!(
            registry.evict_idlest().is_none(),
            "only the busy one is left"
        );
        drop(idle);
        assert_eq!(registry.len(), 2);
    }
}
