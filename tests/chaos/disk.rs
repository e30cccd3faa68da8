//! Reads each replica's log of a partition from a stopped broker's data directory:
//! `<data dir>/<topic>-<partition>/<20-digit base offset>.log`, in offset order.

use std::path::Path;

use anyhow::Context;

use crate::checker::{ReplicaLog, Tp, parse_segment};

/// The replica of `tp` in `data_dir`, or None if the broker holds no directory for it.
pub(crate) fn read_replica(
    broker: &str,
    data_dir: &Path,
    tp: &Tp,
) -> anyhow::Result<Option<ReplicaLog>> {
    let dir = data_dir.join(format!("{}-{}", tp.topic, tp.partition));
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut segments: Vec<(u64, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry.context("read a directory entry")?.path();
        let base = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".log"))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(base) = base {
            segments.push((base, path));
        }
    }
    segments.sort();
    let mut log = ReplicaLog {
        broker: broker.to_owned(),
        ..ReplicaLog::default()
    };
    for (_, path) in segments {
        let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        parse_segment(&name, &bytes, &mut log);
        if log.problem.is_some() {
            break;
        }
    }
    Ok(Some(log))
}
