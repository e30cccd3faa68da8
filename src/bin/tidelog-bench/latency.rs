//! Delivery latency: the percentile summary and the optional per-record CSV.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::delivery::Delivery;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

/// Appends `run,partition,enqueue_ms,latency_ms` rows (enqueue time since the run's start).
pub(crate) fn append_latency_csv(
    path: &Path,
    run: &str,
    started_ns: u64,
    deliveries: &[Delivery],
) -> Result<()> {
    let is_new = !path.exists();
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    if is_new {
        writeln!(out, "run,partition,enqueue_ms,latency_ms")?;
    }
    for delivery in deliveries {
        #[allow(clippy::cast_precision_loss)] // nanoseconds of a run stay far below 2^52
        let enqueue_ms = delivery.enqueued_ns.saturating_sub(started_ns) as f64 / 1e6;
        writeln!(
            out,
            "{run},{},{enqueue_ms:.3},{:.3}",
            delivery.partition,
            f64::from(delivery.latency_us) / 1000.0
        )?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn latency_summary(latencies_us: &mut [u32]) -> Latency {
    latencies_us.sort_unstable();
    let at = |per_mille: usize| -> f64 {
        let last = latencies_us.len().saturating_sub(1);
        let value_us = latencies_us
            .get(last * per_mille / 1000)
            .copied()
            .unwrap_or(0);
        f64::from(value_us) / 1000.0
    };
    Latency {
        p50_ms: at(500),
        p99_ms: at(990),
        p999_ms: at(999),
        max_ms: at(1000),
    }
}
