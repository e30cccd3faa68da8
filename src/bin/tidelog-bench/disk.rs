//! The block device under the brokers' data dirs (`/proc/diskstats`): bytes written and time
//! busy during a produce, so a run shows when the disk, not the brokers, bounds it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// `/proc/diskstats` counts sectors of this many bytes, whatever the device's own sector size.
const DISKSTATS_SECTOR_BYTES: u64 = 512;

/// A block device, by the major and minor numbers `/proc/diskstats` lists it under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Disk {
    major: u64,
    minor: u64,
}

/// A device's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DiskCounters {
    at: Instant,
    written_bytes: u64,
    busy_ms: u64,
}

/// What a device did between two samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DiskUse {
    pub(crate) written_bytes: u64,
    pub(crate) busy: Duration,
    /// The time between the two samples.
    pub(crate) over: Duration,
}

impl Disk {
    /// The device holding `path`; `None` on a file system without one (tmpfs, overlay).
    pub(crate) fn of(path: &Path) -> Option<Disk> {
        let dev = fs::metadata(path).ok()?.dev();
        let disk = Disk {
            major: rustix::fs::major(dev).into(),
            minor: rustix::fs::minor(dev).into(),
        };
        disk.sample().map(|_| disk)
    }

    /// The device's counters now (fields 10 and 13 of its `/proc/diskstats` line).
    pub(crate) fn sample(self) -> Option<DiskCounters> {
        let stats = fs::read_to_string("/proc/diskstats").ok()?;
        stats.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |at: usize| fields.get(at)?.parse::<u64>().ok();
            if number(0)? != self.major || number(1)? != self.minor {
                return None;
            }
            Some(DiskCounters {
                at: Instant::now(),
                written_bytes: number(9)?.saturating_mul(DISKSTATS_SECTOR_BYTES),
                busy_ms: number(12)?,
            })
        })
    }
}

impl DiskCounters {
    /// What the device did from `self` to `later`.
    pub(crate) fn until(self, later: DiskCounters) -> DiskUse {
        DiskUse {
            written_bytes: later.written_bytes.saturating_sub(self.written_bytes),
            busy: Duration::from_millis(later.busy_ms.saturating_sub(self.busy_ms)),
            over: later.at.saturating_duration_since(self.at),
        }
    }
}

impl DiskUse {
    /// "N MB written at R MB/s, busy P%" over the time between the samples.
    pub(crate) fn describe(self) -> String {
        let secs = self.over.as_secs_f64().max(f64::EPSILON);
        #[allow(clippy::cast_precision_loss)] // byte counts stay far below 2^52
        let mb = self.written_bytes as f64 / 1e6;
        format!(
            "{mb:.0} MB written at {:.0} MB/s, busy {:.0}%",
            mb / secs,
            (self.busy.as_secs_f64() / secs * 100.0).min(100.0)
        )
    }
}
