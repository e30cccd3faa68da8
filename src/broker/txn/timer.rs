//! The coordinator's timer task: aborts transactions open longer than their
//! `transaction.timeout.ms`, finishes prepared transactions whose markers failed, and expires
//! transactional ids unused for `transactional.id.expiration.ms`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::decide;
use super::metadata::TRANSACTIONS_V2;
use super::state::TxnState;
use crate::broker::{Broker, now_ms};

/// Starts the timer; it holds only a weak reference to the broker.
pub(super) fn spawn(broker: &Arc<Broker>) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let mut shutdown = broker.shutdown.subscribe();
    let settings = &broker.settings.transactions;
    let abort_every = Duration::from_millis(settings.abort_check_interval_ms.max(1));
    let expire_every = Duration::from_millis(settings.expiration_check_interval_ms.max(1));
    tokio::spawn(async move {
        let mut abort_ticker = tokio::time::interval(abort_every);
        let mut expire_ticker = tokio::time::interval(expire_every);
        for ticker in [&mut abort_ticker, &mut expire_ticker] {
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        abort_ticker.tick().await;
        expire_ticker.tick().await;
        loop {
            let is_abort_tick = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = abort_ticker.tick() => true,
                _ = expire_ticker.tick() => false,
            };
            let Some(broker) = weak.upgrade() else {
                return;
            };
            if is_abort_tick {
                abort_timed_out(&broker, now_ms());
            } else {
                expire_transactional_ids(&broker, now_ms());
            }
        }
    });
}

/// Fences and aborts every transaction open past its timeout (Kafka's
/// abortTimedOutTransactions); re-drives prepared transactions whose completion failed.
fn abort_timed_out(broker: &Arc<Broker>, now: i64) {
    let mut aborts = Vec::new();
    let mut unfinished = Vec::new();
    {
        let mut state = broker.transactions.lock();
        if !state.is_active {
            return;
        }
        for meta in state.txns.values_mut() {
            if meta.pending.is_some() {
                continue;
            }
            match meta.state {
                TxnState::Ongoing
                    if meta.start_ms.saturating_add(i64::from(meta.timeout_ms)) < now =>
                {
                    let Ok(fence) = meta.prepare_fence_producer_epoch() else {
                        continue;
                    };
                    let decision = decide::end_txn(
                        meta,
                        fence.producer_id,
                        fence.producer_epoch,
                        false,
                        false,
                        TRANSACTIONS_V2,
                        &mut || broker.next_producer_id(),
                        now,
                    );
                    match decision {
                        Ok(decision) => aborts.push((meta.transactional_id.clone(), decision)),
                        Err(error) => {
                            meta.abandon_pending();
                            tracing::warn!(transactional_id = %meta.transactional_id, %error, "aborting a timed-out transaction failed");
                        }
                    }
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    unfinished.push(meta.transactional_id.clone());
                }
                _ => {}
            }
        }
    }
    for (transactional_id, decision) in aborts {
        tracing::info!(%transactional_id, "aborting a transaction open past its timeout");
        let broker = Arc::clone(broker);
        tokio::spawn(async move {
            if let Err(error) = broker.end_decided(&transactional_id, decision).await {
                tracing::warn!(%transactional_id, %error, "aborting a timed-out transaction failed");
            }
        });
    }
    for transactional_id in unfinished {
        let broker = Arc::clone(broker);
        tokio::spawn(async move {
            if let Err(error) = broker.complete_transaction(&transactional_id).await {
                tracing::warn!(%transactional_id, %error, "completing a transaction failed");
            }
        });
    }
}

/// Removes transactional ids unused for `transactional.id.expiration.ms` (a tombstone each).
fn expire_transactional_ids(broker: &Arc<Broker>, now: i64) {
    let expiration_ms = broker.settings.transactions.transactional_id_expiration_ms;
    let mut expired = Vec::new();
    {
        let mut state = broker.transactions.lock();
        if !state.is_active {
            return;
        }
        for meta in state.txns.values_mut() {
            let is_expired = meta.state.is_expiration_allowed()
                && meta.pending.is_none()
                && meta.last_update_ms.saturating_add(expiration_ms) <= now;
            if is_expired && let Ok(transit) = meta.prepare_dead() {
                expired.push((meta.transactional_id.clone(), transit));
            }
        }
    }
    for (transactional_id, transit) in expired {
        let broker = Arc::clone(broker);
        tokio::spawn(async move {
            match broker.write_and_complete(&transactional_id, &transit).await {
                Ok(()) => tracing::info!(%transactional_id, "expired an unused transactional id"),
                Err(error) => {
                    tracing::warn!(%transactional_id, %error, "expiring a transactional id failed")
                }
            }
        });
    }
}
