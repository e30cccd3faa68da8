//! What a parked long-poll fetch waits on: the high-watermark changes of just the partitions it
//! reads, so a flush elsewhere never wakes it (and never makes it re-read its partitions).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use tokio::sync::watch;
use tokio::sync::watch::error::RecvError;

use super::Broker;
use super::partition::Durability;

/// One partition's pending `watch::Receiver::changed`.
type ChangeWait<'a> = Pin<Box<dyn Future<Output = Result<(), RecvError>> + Send + 'a>>;

/// The change feeds of a fetch's partitions. Subscribe before the first read, call
/// [`FetchWait::mark_seen`] right before each read, then [`FetchWait::changed`]: a move between
/// the read and the wait is never missed.
#[derive(Debug)]
pub(crate) struct FetchWait {
    partitions: Vec<watch::Receiver<Durability>>,
}

impl Broker {
    /// Subscribes to the partitions (topic, index) a fetch reads; unknown ones are skipped
    /// (the fetch answers them with an error at once).
    pub(crate) fn fetch_wait<'a>(
        &self,
        partitions: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> FetchWait {
        let partitions = partitions
            .into_iter()
            .filter_map(|(topic, index)| self.partition(topic, index).ok())
            .map(|(_, partition)| partition.changes())
            .collect();
        FetchWait { partitions }
    }
}

impl FetchWait {
    /// Marks every partition's current state as seen.
    pub(crate) fn mark_seen(&mut self) {
        for partition in &mut self.partitions {
            partition.borrow_and_update();
        }
    }

    /// Waits until one of the partitions changed since [`FetchWait::mark_seen`]: its high
    /// watermark moved, flushing failed, or it was deleted or closed. A partition dropped
    /// meanwhile wakes this once and is then forgotten. Without partitions it never returns;
    /// the caller bounds it by a timeout.
    pub(crate) async fn changed(&mut self) {
        let mut closed_idx = None;
        {
            let mut waits: Vec<ChangeWait<'_>> = self
                .partitions
                .iter_mut()
                .map(|partition| Box::pin(partition.changed()) as Pin<Box<_>>)
                .collect();
            poll_fn(|cx| {
                for (idx, wait) in waits.iter_mut().enumerate() {
                    if let Poll::Ready(result) = wait.as_mut().poll(cx) {
                        closed_idx = result.is_err().then_some(idx);
                        return Poll::Ready(());
                    }
                }
                Poll::Pending
            })
            .await;
        }
        if let Some(idx) = closed_idx {
            self.partitions.swap_remove(idx);
        }
    }
}
