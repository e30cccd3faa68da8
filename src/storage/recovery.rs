//! Opening a partition directory: list segments, trust or rebuild indexes, scan and cut a torn
//! tail (longest valid prefix), and the small files beside segments (clean marker, log start).
//! Never serves data; it only decides what on disk is valid.

use std::fs;
use std::path::{Path, PathBuf};

use super::cleaner::CLEANING_DIR;
use super::fs::Fs;
use super::partition_metadata;
use super::segment::{self, Segment};
use super::settings::LogSettings;
use super::{Result, TMP_SUFFIX, io_error, sync_dir, write_atomically};

/// Written by a clean close; its presence lets the next open skip the CRC scan.
const CLEAN_MARKER: &str = "clean-shutdown";
/// Holds the log start offset set by delete_records, as decimal text.
const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Holds the compaction checkpoint (offsets below it were compacted), as decimal text.
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// What recovery found valid on disk.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
}

/// Opens or creates the log directory and returns its valid segments, the last one writable.
pub(crate) fn recover(
    fs: &Fs,
    dir: &Path,
    topic_id: [u8; 16],
    settings: &LogSettings,
    now_ms: i64,
) -> Result<Recovered> {
    open_dir(dir, topic_id)?;
    let cleaning_dir = dir.join(CLEANING_DIR);
    if cleaning_dir.exists() {
        tracing::warn!(dir = %dir.display(), "removing an unfinished compaction");
        fs::remove_dir_all(&cleaning_dir).map_err(io_error("delete cleaning directory", dir))?;
    }
    let is_clean = dir.join(CLEAN_MARKER).exists();
    let saved_log_start_offset = read_log_start_offset(dir);
    let bases = list_segment_bases(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    for (base_idx, &base_offset) in bases.iter().enumerate() {
        let is_last = base_idx + 1 == bases.len();
        if let Some(previous) = segments.last()
            && previous.next_offset() != base_offset
        {
            return Err(inconsistent(
                dir,
                base_offset,
                format!(
                    "it starts at offset {base_offset} but the segment before it ends at {}",
                    previous.next_offset()
                ),
            ));
        }
        let (mut segment, valid_end) =
            load_segment(fs, dir, base_offset, settings, is_last, is_clean)?;
        let size_bytes = segment.size_bytes();
        if valid_end != size_bytes {
            if !is_last {
                // A closed segment was fsynced whole when it was rolled: a bad one is damage,
                // not a torn write, and cutting it would shift or drop the newer segments.
                return Err(inconsistent(
                    dir,
                    base_offset,
                    format!("valid batches end at byte {valid_end} of {size_bytes}"),
                ));
            }
            tracing::warn!(
                path = %segment.log_path().display(),
                position = valid_end,
                size_bytes,
                "cutting torn or corrupt segment tail"
            );
            segment.truncate_file(valid_end)?;
            segment.sync()?;
        }
        segments.push(segment);
    }
    let log_end_offset = segments.last().map_or(0, Segment::next_offset);
    if let Some(saved) = saved_log_start_offset
        && (saved > log_end_offset || segments.is_empty())
    {
        // Everything left lies below the saved start (a crash lost the rest): start afresh
        // there, as Kafka does, so no offset below a deleted point is handed out again.
        if !segments.is_empty() {
            tracing::warn!(
                dir = %dir.display(),
                log_start_offset = saved,
                log_end_offset,
                "log ends before its start offset; starting an empty log at the start offset"
            );
        }
        for segment in segments.drain(..) {
            segment.remove()?;
        }
    }
    let last = match segments.last_mut() {
        Some(last) => last,
        None => {
            let base_offset = saved_log_start_offset.unwrap_or(0).max(0);
            segments.push(Segment::create(fs, dir, base_offset, settings)?);
            sync_dir(dir)?;
            segments.last_mut().expect("a segment was just pushed")
        }
    };
    if last.is_sealed() {
        last.unseal(settings)?;
    }
    last.init_rolling_timestamp(now_ms)?;
    if !is_clean {
        last.sync()?;
    }
    let first_base_offset = segments.first().map_or(0, Segment::base_offset);
    let log_start_offset = saved_log_start_offset
        .unwrap_or(first_base_offset)
        .max(first_base_offset);
    remove_clean_marker(dir)?;
    Ok(Recovered {
        segments,
        log_start_offset,
    })
}

/// Creates `dir` if needed and checks it belongs to `topic_id`: a directory of another topic
/// id is data of a deleted topic of the same name, never to be served as this one's.
fn open_dir(dir: &Path, topic_id: [u8; 16]) -> Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_error("create log directory", dir))?;
        if let Some(data_dir) = dir.parent() {
            sync_dir(data_dir)?;
        }
    }
    match partition_metadata::read(dir)? {
        Some(found) if found != topic_id => Err(super::Error::TopicIdMismatch {
            dir: dir.to_path_buf(),
            expected: partition_metadata::encode_topic_id(topic_id),
            found: partition_metadata::encode_topic_id(found),
        }),
        Some(_) => Ok(()),
        // A new directory, or one written before topic ids were recorded: adopt it.
        None => partition_metadata::write(dir, topic_id),
    }
}

/// Opens one segment; the last one after a crash gets a full CRC scan. Returns it with the
/// end of its valid prefix (its size when intact); cutting a bad tail is the caller's call.
fn load_segment(
    fs: &Fs,
    dir: &Path,
    base_offset: i64,
    settings: &LogSettings,
    is_last: bool,
    is_clean: bool,
) -> Result<(Segment, u64)> {
    let (mut segment, are_indexes_sane) = Segment::open(fs, dir, base_offset, settings, !is_last)?;
    let size_bytes = segment.size_bytes();
    let is_full_scan = is_last && !is_clean;
    let mut valid_end = if is_full_scan {
        segment.rebuild(true, settings)?
    } else if !are_indexes_sane {
        tracing::warn!(path = %segment.log_path().display(), "rebuilding missing or corrupt index");
        segment.rebuild(false, settings)?
    } else {
        let end = segment.scan_tail()?;
        if segment.are_indexes_within_data() {
            end
        } else {
            tracing::warn!(path = %segment.log_path().display(), "rebuilding index past the data");
            segment.rebuild(false, settings)?
        }
    };
    if valid_end != size_bytes && !is_full_scan {
        valid_end = segment.rebuild(true, settings)?;
    }
    if !is_last && valid_end == size_bytes && !segment.is_sealed() {
        segment.seal()?;
    }
    Ok((segment, valid_end))
}

fn inconsistent(dir: &Path, base_offset: i64, reason: String) -> super::Error {
    super::Error::InconsistentLog {
        dir: dir.to_path_buf(),
        base_offset,
        reason,
    }
}

/// Opens a closed segment that was just written whole (an installed compaction): trusts its
/// indexes after a tail check, rebuilding them if they are missing or wrong.
pub(crate) fn open_closed_segment(
    fs: &Fs,
    dir: &Path,
    base_offset: i64,
    settings: &LogSettings,
) -> Result<Segment> {
    let (segment, valid_end) = load_segment(fs, dir, base_offset, settings, false, true)?;
    if valid_end != segment.size_bytes() {
        return Err(super::Error::CorruptSegment {
            path: segment.log_path().to_path_buf(),
            position: valid_end,
        });
    }
    Ok(segment)
}

/// Sorted base offsets of the `.log` files; removes orphan index files and temp files.
fn list_segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut others: Vec<(PathBuf, String)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list log directory", dir))? {
        let entry = entry.map_err(io_error("list log directory", dir))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        match segment::parse_log_file_name(&file_name) {
            Some(base_offset) => bases.push(base_offset),
            None => others.push((entry.path(), file_name)),
        }
    }
    bases.sort_unstable();
    for (path, file_name) in others {
        let stem = file_name
            .strip_suffix(".index")
            .or_else(|| file_name.strip_suffix(".timeindex"));
        let is_orphan_index = stem.is_some_and(|stem| {
            stem.parse::<i64>()
                .is_ok_and(|base| bases.binary_search(&base).is_err())
        });
        if is_orphan_index || file_name.ends_with(TMP_SUFFIX) {
            fs::remove_file(&path).map_err(io_error("delete stray file", &path))?;
        }
    }
    Ok(bases)
}

/// The saved log start offset; a missing or unreadable file means none (warned).
fn read_log_start_offset(dir: &Path) -> Option<i64> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let text = fs::read_to_string(&path).ok()?;
    let parsed = text.trim().parse::<i64>().ok();
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "ignoring unreadable log start offset file");
    }
    parsed
}

/// Persists the log start offset atomically: temp file, fsync, rename, fsync directory.
pub(crate) fn write_log_start_offset(dir: &Path, log_start_offset: i64) -> Result<()> {
    write_atomically(
        dir,
        LOG_START_OFFSET_FILE,
        format!("{log_start_offset}\n").as_bytes(),
    )
}

/// The compaction checkpoint; missing or unreadable means nothing was compacted yet.
pub(crate) fn read_cleaner_checkpoint(dir: &Path) -> Option<i64> {
    let text = fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).ok()?;
    text.trim().parse::<i64>().ok()
}

/// Persists the compaction checkpoint atomically.
pub(crate) fn write_cleaner_checkpoint(dir: &Path, offset: i64) -> Result<()> {
    write_atomically(
        dir,
        CLEANER_CHECKPOINT_FILE,
        format!("{offset}\n").as_bytes(),
    )
}

pub(crate) fn write_clean_marker(dir: &Path) -> Result<()> {
    write_atomically(dir, CLEAN_MARKER, b"")
}

fn remove_clean_marker(dir: &Path) -> Result<()> {
    let path = dir.join(CLEAN_MARKER);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("delete clean marker", &path)(error)),
    }
}
