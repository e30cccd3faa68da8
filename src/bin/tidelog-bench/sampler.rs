//! /proc sampling: a process's peak RSS on a background thread, and process CPU time.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often the RSS sampler reads /proc/<pid>/status.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Linux reports process CPU time in clock ticks of this many per second (USER_HZ).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Samples a process's VmRSS every 100 ms on its own thread and keeps the peak.
#[derive(Debug)]
pub(crate) struct ProcSampler {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    should_stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl ProcSampler {
    pub(crate) fn start(pid: u32) -> ProcSampler {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let should_stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let peak_kb = Arc::clone(&peak_kb);
            let should_stop = Arc::clone(&should_stop);
            thread::spawn(move || {
                while !should_stop.load(Ordering::Relaxed) {
                    if let Some(rss_kb) = read_status_kb(pid, "VmRSS:") {
                        peak_kb.fetch_max(rss_kb, Ordering::Relaxed);
                    }
                    thread::sleep(RSS_SAMPLE_INTERVAL);
                }
            })
        };
        ProcSampler {
            pid,
            peak_kb,
            should_stop,
            handle,
        }
    }

    /// Starts a new peak from the current RSS.
    pub(crate) fn reset_peak(&self) {
        let now_kb = read_status_kb(self.pid, "VmRSS:").unwrap_or(0);
        self.peak_kb.store(now_kb, Ordering::Relaxed);
    }

    pub(crate) fn peak_kb(&self) -> u64 {
        let now_kb = read_status_kb(self.pid, "VmRSS:").unwrap_or(0);
        self.peak_kb
            .fetch_max(now_kb, Ordering::Relaxed)
            .max(now_kb)
    }

    pub(crate) fn cpu_secs(&self) -> Option<f64> {
        read_cpu_secs(&format!("/proc/{}/stat", self.pid))
    }

    pub(crate) fn stop(self) {
        self.should_stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

/// Reads a `Key:   N kB` line of /proc/<pid>/status.
pub(crate) fn read_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// User + system CPU seconds from a /proc/<pid>/stat file.
fn read_cpu_secs(stat_path: &str) -> Option<f64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // fields after the parenthesised command name: state(3) ... utime(14) stime(15)
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)] // tick counts stay far below 2^52
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SEC)
}

pub(crate) fn self_cpu_secs() -> Option<f64> {
    read_cpu_secs("/proc/self/stat")
}
