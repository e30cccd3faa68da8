//! Background maintenance: rolls segments by age and enforces retention on every partition,
//! at the configured interval, until shutdown.

use std::sync::{Arc, Weak};

use super::{Broker, now_ms};

/// Starts the maintenance task; it holds only a weak reference so it never keeps a broker alive.
pub(super) fn spawn(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let mut shutdown = broker.shutdown.subscribe();
    let interval = broker.settings.retention_check_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticker.tick() => {}
            }
            if !run_once(&weak) {
                return;
            }
        }
    });
}

/// One pass over every partition; false once the broker is gone.
fn run_once(weak: &Weak<Broker>) -> bool {
    let Some(broker) = weak.upgrade() else {
        return false;
    };
    let now = now_ms();
    let topics: Vec<_> = broker.topics_read().values().cloned().collect();
    for topic in topics {
        for partition in &topic.partitions {
            let result = partition.with_log(|log| {
                if log.roll_if_due(now)? {
                    partition.request_flush();
                }
                log.enforce_retention(now)
            });
            match result {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(topic = %topic.name, partition = partition.index, deleted, "retention deleted segments")
                }
                Err(err) => {
                    tracing::warn!(topic = %topic.name, partition = partition.index, error = %err, "maintenance failed")
                }
            }
        }
    }
    true
}
