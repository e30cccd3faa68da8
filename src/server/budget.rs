//! The broker-wide request budget (Kafka's `queued.max.request.bytes`): bytes of requests read
//! but not yet answered. A frame is admitted for its claimed length before its body is buffered
//! and gives the bytes back once its response is written. No connection waits for budget while
//! it holds some, so waits never form a cycle; each connection may also keep one small request
//! outside the budget, so heartbeats and joins never queue behind bulk data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::limits;

/// Bytes of admitted requests, shared by every connection of the listener.
#[derive(Debug)]
pub(crate) struct RequestBudget {
    bytes: Arc<Semaphore>,
    bytes_max: usize,
}

impl RequestBudget {
    pub(crate) fn new(bytes_max: u64) -> RequestBudget {
        let bytes_max = usize::try_from(bytes_max)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        RequestBudget {
            bytes: Arc::new(Semaphore::new(bytes_max)),
            bytes_max,
        }
    }

    /// Bytes not held by any admitted request right now.
    #[cfg(test)]
    pub(crate) fn available_bytes(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// One connection's part of the budget: what it holds and its unbudgeted small slot.
#[derive(Debug)]
pub(super) struct ConnectionBudget {
    budget: Arc<RequestBudget>,
    /// Bytes this connection holds from the budget; admissions subtract theirs on drop.
    held_bytes: Arc<watch::Sender<usize>>,
    is_small_slot_taken: Arc<AtomicBool>,
    /// Most bytes one connection may hold while it has requests in flight
    /// (`socket.request.max.bytes`): one large request at a time, or several smaller ones.
    held_bytes_max: usize,
}

/// The right to buffer one frame; dropping it gives its bytes back.
#[derive(Debug)]
pub(super) struct Admission {
    permit: Option<OwnedSemaphorePermit>,
    held_bytes: Arc<watch::Sender<usize>>,
    small_slot: Option<Arc<AtomicBool>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let bytes = permit.num_permits();
            drop(permit);
            self.held_bytes
                .send_modify(|held| *held = held.saturating_sub(bytes));
        }
        if let Some(slot) = self.small_slot.take() {
            slot.store(false, Ordering::Release);
        }
    }
}

impl ConnectionBudget {
    pub(super) fn new(budget: Arc<RequestBudget>, held_bytes_max: usize) -> ConnectionBudget {
        ConnectionBudget {
            budget,
            held_bytes: Arc::new(watch::Sender::new(0)),
            is_small_slot_taken: Arc::new(AtomicBool::new(false)),
            held_bytes_max,
        }
    }

    /// Admits a frame of `frame_bytes`: at once into the free small slot or within this
    /// connection's share; otherwise after this connection's own requests are answered, in
    /// turn with every other waiting connection. Cancel-safe.
    pub(super) async fn admit(&self, frame_bytes: u32) -> Admission {
        let bytes = usize::try_from(frame_bytes).unwrap_or(usize::MAX);
        if bytes <= limits::REQUEST_UNBUDGETED_BYTES_MAX
            && !self.is_small_slot_taken.swap(true, Ordering::AcqRel)
        {
            return self.admission(None, Some(Arc::clone(&self.is_small_slot_taken)));
        }
        // Never more than the whole budget, or the wait would never end (config validation
        // already keeps socket.request.max.bytes within queued.max.request.bytes).
        let permits = u32::try_from(bytes.min(self.budget.bytes_max)).unwrap_or(u32::MAX);
        let held = *self.held_bytes.borrow();
        if held > 0 {
            if held.saturating_add(bytes) <= self.held_bytes_max
                && let Ok(permit) = Arc::clone(&self.budget.bytes).try_acquire_many_owned(permits)
            {
                return self.hold(permit);
            }
            // Wait for our own requests first: holding budget while waiting for more could
            // deadlock with a connection doing the same.
            let mut held = self.held_bytes.subscribe();
            // The sender lives in `self`, so the channel cannot close while we wait.
            let _ = held.wait_for(|held| *held == 0).await;
        }
        match Arc::clone(&self.budget.bytes)
            .acquire_many_owned(permits)
            .await
        {
            Ok(permit) => self.hold(permit),
            // The semaphore is never closed; should it be, admit without accounting.
            Err(_closed) => self.admission(None, None),
        }
    }

    fn hold(&self, permit: OwnedSemaphorePermit) -> Admission {
        let bytes = permit.num_permits();
        self.held_bytes.send_modify(|held| *held += bytes);
        self.admission(Some(permit), None)
    }

    fn admission(
        &self,
        permit: Option<OwnedSemaphorePermit>,
        small_slot: Option<Arc<AtomicBool>>,
    ) -> Admission {
        Admission {
            permit,
            held_bytes: Arc::clone(&self.held_bytes),
            small_slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KIB: u32 = 1024;

    fn connection(budget: &Arc<RequestBudget>, held_max: usize) -> ConnectionBudget {
        ConnectionBudget::new(Arc::clone(budget), held_max)
    }

    /// Whether `admit` completes without waiting.
    async fn admits_now(conn: &ConnectionBudget, bytes: u32) -> Option<Admission> {
        tokio::time::timeout(Duration::from_millis(1), conn.admit(bytes))
            .await
            .ok()
    }

    #[tokio::test(start_paused = true)]
    async fn frames_take_their_length_until_their_admission_drops() {
        let budget = Arc::new(RequestBudget::new(100 * u64::from(KIB)));
        let conn = connection(&budget, usize::MAX);
        let first = admits_now(&conn, 60 * KIB).await.expect("fits");
        assert_eq!(budget.available_bytes(), 40 * 1024);
        let second = admits_now(&conn, 30 * KIB)
            .await
            .expect("fits beside the first");
        assert_eq!(budget.available_bytes(), 10 * 1024);
        drop(first);
        drop(second);
        assert_eq!(budget.available_bytes(), 100 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn one_small_frame_per_connection_bypasses_the_budget() {
        let budget = Arc::new(RequestBudget::new(u64::from(64 * KIB)));
        let big = connection(&budget, usize::MAX);
        let _all = admits_now(&big, 64 * KIB).await.expect("the whole budget");
        let other = connection(&budget, usize::MAX);
        let small = admits_now(&other, 100).await.expect("small slot");
        assert!(
            admits_now(&other, 100).await.is_none(),
            "a second small frame needs budget"
        );
        drop(small);
        assert!(
            admits_now(&other, 100).await.is_some(),
            "the slot is free again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_holding_budget_waits_for_its_own_before_queueing() {
        let budget = Arc::new(RequestBudget::new(u64::from(100 * KIB)));
        let a = connection(&budget, 100 * 1024);
        let b = connection(&budget, 100 * 1024);
        let a_first = admits_now(&a, 50 * KIB).await.expect("fits");
        let b_first = admits_now(&b, 40 * KIB).await.expect("fits");
        // A wants 30 KiB more: only 10 KiB are free, so A must not hold 50 while it waits.
        let mut a_second = Box::pin(a.admit(30 * KIB));
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut a_second)
                .await
                .is_err()
        );
        drop(b_first);
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut a_second)
                .await
                .is_err(),
            "enough budget is free, but A still holds its first frame"
        );
        drop(a_first);
        let _a_second = tokio::time::timeout(Duration::from_millis(1), a_second)
            .await
            .expect("A's own frame was answered");
    }

    #[tokio::test(start_paused = true)]
    async fn per_connection_share_limits_pipelined_frames() {
        let budget = Arc::new(RequestBudget::new(u64::from(1024 * KIB)));
        let conn = connection(&budget, 100 * 1024);
        let _first = admits_now(&conn, 60 * KIB).await.expect("fits");
        assert!(
            admits_now(&conn, 60 * KIB).await.is_none(),
            "two would pass the 100 KiB share"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn frame_larger_than_the_budget_is_admitted_alone() {
        let budget = Arc::new(RequestBudget::new(u64::from(10 * KIB)));
        let conn = connection(&budget, usize::MAX);
        let whole = admits_now(&conn, 50 * KIB)
            .await
            .expect("clamped to the budget");
        assert_eq!(budget.available_bytes(), 0);
        drop(whole);
        assert_eq!(budget.available_bytes(), 10 * 1024);
    }
}
