//! Partition directories of a data directory as a whole: deleting one (renamed aside to
//! `<name>.<topic id>-delete` first, as Kafka does, so a crash never leaves a half-deleted
//! directory under a live name) and sweeping, at start, the directories no catalog topic owns.

use std::fs;
use std::path::{Path, PathBuf};

use super::catalog::TopicRecord;
use super::partition_metadata::{self, PARTITION_METADATA_FILE};
use super::{Result, io_error, sync_dir};

/// Suffix of a partition directory renamed aside to be deleted.
const DELETE_SUFFIX: &str = "-delete";

/// Deletes a partition directory: renames it aside (durably), then removes it. A directory
/// that is already gone is fine.
pub(crate) fn delete(dir: &Path) -> Result<()> {
    let Some(aside) = aside_path(dir)? else {
        return Ok(());
    };
    match fs::rename(dir, &aside) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("rename partition directory aside", dir)(error)),
    }
    if let Some(data_dir) = dir.parent() {
        sync_dir(data_dir)?;
    }
    remove_aside(&aside)
}

/// `<dir>.<topic id or "unknown">-delete`, None when `dir` does not exist.
fn aside_path(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.exists() {
        return Ok(None);
    }
    let id = match partition_metadata::read(dir) {
        Ok(Some(topic_id)) => topic_id.iter().map(|b| format!("{b:02x}")).collect(),
        Ok(None) | Err(_) => "unknown".to_owned(),
    };
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{id}{DELETE_SUFFIX}"));
    Ok(Some(dir.with_file_name(name)))
}

fn remove_aside(aside: &Path) -> Result<()> {
    // A compaction pass still building may add a file mid-removal; it fails on its next write
    // once the directory is gone, so a short retry suffices.
    let mut attempts_left = 3;
    loop {
        match fs::remove_dir_all(aside) {
            Err(error)
                if error.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempts_left > 0 =>
            {
                attempts_left -= 1;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            result => return result.map_err(io_error("delete partition directory", aside)),
        }
    }
}

/// Removes what no topic of `topics` owns: directories renamed aside by an unfinished delete,
/// and partition directories (`<topic>-<n>` holding partition data) of topics that are not in
/// the catalog or of partitions past their topic's count, left by a crash during a delete.
/// Returns the directories it removed. Anything else in the data directory is left alone.
pub(crate) fn sweep_orphans(data_dir: &Path, topics: &[TopicRecord]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(data_dir).map_err(io_error("list data directory", data_dir))? {
        let entry = entry.map_err(io_error("list data directory", data_dir))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(DELETE_SUFFIX) {
            tracing::info!(dir = %path.display(), "finishing the delete of a partition directory");
            remove_aside(&path)?;
            removed.push(path);
            continue;
        }
        let Some((topic, partition)) = parse_partition_dir_name(&name) else {
            continue;
        };
        let is_owned = topics
            .iter()
            .any(|record| record.name == topic && partition < record.partition_count);
        if is_owned || !holds_partition_data(&path)? {
            continue;
        }
        tracing::warn!(dir = %path.display(), "removing the data of a deleted topic or partition");
        delete(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// `(topic, partition)` of a name `<topic>-<partition>`.
fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?))
}

/// Whether `dir` looks like a partition log: a metadata file or a segment file in it.
fn holds_partition_data(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).map_err(io_error("list partition directory", dir))? {
        let name = entry
            .map_err(io_error("list partition directory", dir))?
            .file_name();
        let name = name.to_string_lossy();
        if name == PARTITION_METADATA_FILE || name.ends_with(".log") {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn topic(name: &str, partition_count: i32) -> TopicRecord {
        TopicRecord {
            name: name.to_owned(),
            topic_id: [1; 16],
            partition_count,
            configs: BTreeMap::new(),
        }
    }

    fn partition_dir(data_dir: &Path, name: &str) -> PathBuf {
        let dir = data_dir.join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("00000000000000000000.log"), b"").expect("segment");
        dir
    }

    #[test]
    fn sweep_removes_only_unowned_partition_data() {
        let data = tempfile::TempDir::new().expect("tempdir");
        let owned = partition_dir(data.path(), "orders-1");
        let dashed = partition_dir(data.path(), "my-topic-0");
        let deleted_topic = partition_dir(data.path(), "gone-0");
        let past_count = partition_dir(data.path(), "orders-2");
        let aside = partition_dir(data.path(), "orders-0.0101-delete");
        let unrelated = data.path().join("backups-0");
        fs::create_dir_all(&unrelated).expect("mkdir");
        fs::write(data.path().join("notes-0"), b"a file").expect("file");
        let mut removed =
            sweep_orphans(data.path(), &[topic("orders", 2), topic("my-topic", 1)]).expect("sweep");
        removed.sort();
        let mut expected = vec![deleted_topic.clone(), past_count.clone(), aside.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        for gone in [&deleted_topic, &past_count, &aside] {
            assert!(!gone.exists(), "{} is removed", gone.display());
        }
        for kept in [&owned, &dashed, &unrelated] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }
        assert_eq!(
            fs::read_dir(data.path()).expect("list").count(),
            4,
            "no -delete directory is left behind"
        );
    }

    #[test]
    fn delete_renames_aside_then_removes() {
        let data = tempfile::TempDir::new().expect("tempdir");
        let dir = partition_dir(data.path(), "t-0");
        partition_metadata::write(&dir, [0xab; 16]).expect("metadata");
        delete(&dir).expect("delete");
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(data.path()).expect("list").count(), 0);
        delete(&dir).expect("deleting a missing directory is fine");
    }
}
