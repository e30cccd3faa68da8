//! The transactional run's producer side: one transaction per commit interval, and how long each
//! commit took (flush of the transaction's records plus EndTxn and its markers).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::producer::{Producer, ThreadedProducer};

use crate::delivery::DeliveryTracker;
use crate::latency::{Latency, latency_summary};

/// Time allowed for init_transactions and for each commit (it flushes the transaction first).
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the transactional run measured beyond its produce row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxnStats {
    pub(crate) commit_count: u64,
    pub(crate) commit_interval: Duration,
    /// commit_transaction() call to its return.
    pub(crate) commit: Latency,
}

/// The open transaction of a transactional producer and the commit timings so far.
pub(crate) struct TxnClock {
    interval: Duration,
    started: Instant,
    commit_us: Vec<u32>,
}

impl TxnClock {
    /// Initialises the producer's transactions (InitProducerId) and begins the first one.
    pub(crate) fn start(
        producer: &ThreadedProducer<DeliveryTracker>,
        interval: Duration,
    ) -> Result<Self> {
        producer
            .init_transactions(TXN_TIMEOUT)
            .context("init_transactions")?;
        producer.begin_transaction().context("begin_transaction")?;
        Ok(Self {
            interval,
            started: Instant::now(),
            commit_us: Vec::new(),
        })
    }

    /// Commits the warm-up's transaction without timing it and begins the first timed one.
    pub(crate) fn restart(&mut self, producer: &ThreadedProducer<DeliveryTracker>) -> Result<()> {
        self.commit(producer)?;
        self.commit_us.clear();
        Ok(())
    }

    /// Commits and begins the next transaction once the open one is `interval` old.
    pub(crate) fn tick(&mut self, producer: &ThreadedProducer<DeliveryTracker>) -> Result<()> {
        if self.started.elapsed() >= self.interval {
            self.commit(producer)?;
        }
        Ok(())
    }

    /// Commits the last transaction and summarises the commits.
    pub(crate) fn finish(
        mut self,
        producer: &ThreadedProducer<DeliveryTracker>,
    ) -> Result<TxnStats> {
        let commit_started = Instant::now();
        producer
            .commit_transaction(TXN_TIMEOUT)
            .context("commit_transaction (the last one)")?;
        self.commit_us.push(micros(commit_started.elapsed()));
        Ok(TxnStats {
            commit_count: self.commit_us.len() as u64,
            commit_interval: self.interval,
            commit: latency_summary(&mut self.commit_us),
        })
    }

    fn commit(&mut self, producer: &ThreadedProducer<DeliveryTracker>) -> Result<()> {
        let commit_started = Instant::now();
        producer
            .commit_transaction(TXN_TIMEOUT)
            .with_context(|| format!("commit_transaction {}", self.commit_us.len() + 1))?;
        self.commit_us.push(micros(commit_started.elapsed()));
        producer.begin_transaction().context("begin_transaction")?;
        self.started = Instant::now();
        Ok(())
    }
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}
