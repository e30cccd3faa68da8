//! A self-test of the whole run (`--sabotage`): while a broker is down after kill -9, cut the
//! newest half of the batches of one of its partition logs, destroying acknowledged records.
//! A run with it must end with anomalies; if it does not, the run cannot see data loss.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::checker::{ReplicaLog, parse_segment};
use crate::system::Target;

/// Truncates the newest segment of the first partition of `targets` found in `data_dir` to drop
/// the second half of its batches; returns a description of what was cut.
pub(crate) fn cut_tail(data_dir: &Path, targets: &[Target]) -> anyhow::Result<String> {
    for target in targets {
        for partition in 0..target.partitions {
            let dir = data_dir.join(format!("{}-{partition}", target.topic));
            let Some(segment) = newest_segment(&dir)? else {
                continue;
            };
            let bytes =
                std::fs::read(&segment).with_context(|| format!("read {}", segment.display()))?;
            let mut log = ReplicaLog::default();
            parse_segment("segment", &bytes, &mut log);
            let keep = log.batches.len() / 2;
            if keep == 0 {
                continue;
            }
            let kept_bytes: usize = log.batches[..keep].iter().map(|b| b.bytes.len()).sum();
            let first_cut = log.batches[keep].base_offset;
            let last_cut = log.batches[log.batches.len() - 1].last_offset;
            OpenOptions::new()
                .write(true)
                .open(&segment)
                .and_then(|file| file.set_len(kept_bytes as u64))
                .with_context(|| format!("truncate {}", segment.display()))?;
            return Ok(format!(
                "cut offsets {first_cut}..={last_cut} ({} batches) from {}",
                log.batches.len() - keep,
                segment.display()
            ));
        }
    }
    anyhow::bail!(
        "no partition log with two batches in {}",
        data_dir.display()
    )
}

fn newest_segment(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut newest: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry.context("directory entry")?.path();
        let base = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".log"))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(base) = base
            && newest.as_ref().is_none_or(|(b, _)| base > *b)
        {
            newest = Some((base, path));
        }
    }
    Ok(newest.map(|(_, path)| path))
}
