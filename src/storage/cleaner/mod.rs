//! Log compaction's long half, run without the partition lock: map each key of the dirty
//! segments to its latest offset, then write cleaned copies of the cleanable segments into a
//! temp directory. The log plans and installs (`log/compact.rs`); this never touches live files.

mod policy;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BATCH_HEADER_LEN, BatchHeader};
use super::fs::{DataFile, Fs, FsFile};
use super::records::{self, DecodedBatch};
use super::segment::{Segment, Write};
use super::settings::{CompactionSettings, LogSettings};
use super::{Error, Result, io_error};
use crate::limits;

pub(crate) use policy::{SegmentSummary, cleanable_count};

/// Directory inside a log directory where cleaned segments are built; recovery removes it.
pub(crate) const CLEANING_DIR: &str = "cleaning";
/// Largest `last_offset_delta` of one header-only batch standing for emptied batches.
const EMPTY_RUN_DELTA_MAX: i64 = i32::MAX as i64;
/// Kafka's "no timestamp".
const NO_TIMESTAMP: i64 = -1;

/// A closed segment chosen for a pass, identified by its open file.
#[derive(Debug)]
pub(crate) struct PlannedSegment {
    pub(in crate::storage) base_offset: i64,
    pub(in crate::storage) next_offset: i64,
    pub(in crate::storage) size_bytes: u64,
    pub(in crate::storage) file: Arc<FsFile>,
}

/// One compaction pass, planned under the partition lock and built without it.
#[derive(Debug)]
pub(crate) struct CompactionPlan {
    pub(in crate::storage) fs: Fs,
    pub(in crate::storage) dir: PathBuf,
    pub(in crate::storage) settings: LogSettings,
    pub(in crate::storage) compaction: CompactionSettings,
    pub(in crate::storage) now_ms: i64,
    /// Offsets below this were compacted by an earlier pass.
    pub(in crate::storage) first_dirty_offset: i64,
    /// Oldest first; never the active segment.
    pub(in crate::storage) segments: Vec<PlannedSegment>,
}

/// The built result of a plan, waiting in the cleaning directory to be installed.
#[derive(Debug)]
pub(crate) struct Cleaned {
    pub(in crate::storage) dir: PathBuf,
    /// Segments whose cleaned copy differs from the original.
    pub(in crate::storage) replaced: Vec<PlannedSegment>,
    /// The new cleaner checkpoint: every offset below it has been compacted.
    pub(in crate::storage) cleaned_end_offset: i64,
    pub(crate) records_removed: u64,
}

/// A key's fingerprint: two independent 64-bit SipHashes, so collisions are negligible.
fn fingerprint(key: &[u8]) -> u128 {
    let mut first = std::hash::DefaultHasher::new();
    key.hash(&mut first);
    let mut second = std::hash::DefaultHasher::new();
    0x5eed_u32.hash(&mut second);
    key.hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// Calls `visit` with every whole batch of a sealed segment file, in order.
fn for_each_batch(
    planned: &PlannedSegment,
    path: &Path,
    mut visit: impl FnMut(&[u8], &BatchHeader) -> Result<()>,
) -> Result<()> {
    let mut position = 0u64;
    let mut header_bytes = [0u8; BATCH_HEADER_LEN];
    while position < planned.size_bytes {
        let corrupt = || Error::CorruptSegment {
            path: path.to_path_buf(),
            position,
        };
        planned
            .file
            .read_exact_at(&mut header_bytes, position)
            .map_err(io_error("read segment for compaction", path))?;
        let header = BatchHeader::parse(&header_bytes).map_err(|_| corrupt())?;
        let len = header.total_len() as u64;
        if position + len > planned.size_bytes {
            return Err(corrupt());
        }
        let mut batch = vec![0u8; header.total_len()];
        planned
            .file
            .read_exact_at(&mut batch, position)
            .map_err(io_error("read segment for compaction", path))?;
        visit(&batch, &header)?;
        position += len;
    }
    Ok(())
}

impl CompactionPlan {
    fn segment_path(&self, base_offset: i64) -> PathBuf {
        self.dir
            .join(format!("{}.log", super::segment::file_stem(base_offset)))
    }

    fn decoded_bytes_max(&self) -> usize {
        usize::try_from(self.settings.segment_bytes_max).unwrap_or(usize::MAX)
    }

    /// Maps each key in the dirty segments to its latest offset. Returns the map and how many
    /// of the planned segments are fully covered (a full map ends the pass early).
    fn build_key_map(&self) -> Result<(HashMap<u128, i64>, usize)> {
        let mut latest: HashMap<u128, i64> = HashMap::new();
        for (segment_idx, planned) in self.segments.iter().enumerate() {
            if planned.next_offset <= self.first_dirty_offset {
                continue;
            }
            let mut is_full = false;
            let path = self.segment_path(planned.base_offset);
            for_each_batch(planned, &path, |batch, header| {
                if header.is_control() || is_full {
                    return Ok(());
                }
                let decoded = records::decode(batch, self.decoded_bytes_max())?;
                for record in &decoded.records {
                    let Some(key) = decoded.key(record) else {
                        continue;
                    };
                    let key = fingerprint(key);
                    if latest.len() >= limits::COMPACTION_KEYS_MAX && !latest.contains_key(&key) {
                        is_full = true;
                        return Ok(());
                    }
                    latest.insert(key, decoded.offset(record));
                }
                Ok(())
            })?;
            if is_full {
                tracing::warn!(dir = %self.dir.display(), base_offset = planned.base_offset,
                    "compaction key map is full; cleaning the segments before this one");
                return Ok((latest, segment_idx));
            }
        }
        Ok((latest, self.segments.len()))
    }

    /// Builds the cleaned copies. Runs without the partition lock; reads only the planned
    /// (sealed, immutable) files and writes only inside the cleaning directory.
    pub(crate) fn build(self) -> Result<Cleaned> {
        let cleaning_dir = self.dir.join(CLEANING_DIR);
        if cleaning_dir.exists() {
            std::fs::remove_dir_all(&cleaning_dir)
                .map_err(io_error("clear cleaning directory", &cleaning_dir))?;
        }
        std::fs::create_dir(&cleaning_dir)
            .map_err(io_error("create cleaning directory", &cleaning_dir))?;
        let (latest, covered_count) = self.build_key_map()?;
        let mut replaced = Vec::new();
        let mut records_removed = 0;
        let mut cleaned_end_offset = self.first_dirty_offset;
        let mut segments = self.segments.into_iter();
        let plan = CompactionPlanView {
            fs: &self.fs,
            settings: &self.settings,
            compaction: &self.compaction,
            now_ms: self.now_ms,
            first_dirty_offset: self.first_dirty_offset,
            latest: &latest,
            cleaning_dir: &cleaning_dir,
            decoded_bytes_max: usize::try_from(self.settings.segment_bytes_max)
                .unwrap_or(usize::MAX),
        };
        for planned in segments.by_ref().take(covered_count) {
            let path = self.dir.join(format!(
                "{}.log",
                super::segment::file_stem(planned.base_offset)
            ));
            let removed = plan.clean_segment(&planned, &path)?;
            cleaned_end_offset = cleaned_end_offset.max(planned.next_offset);
            if let Some(removed) = removed {
                records_removed += removed;
                replaced.push(planned);
            }
        }
        Ok(Cleaned {
            dir: self.dir,
            replaced,
            cleaned_end_offset,
            records_removed,
        })
    }
}

/// What cleaning one segment needs, borrowed from the plan.
struct CompactionPlanView<'a> {
    fs: &'a Fs,
    settings: &'a LogSettings,
    compaction: &'a CompactionSettings,
    now_ms: i64,
    first_dirty_offset: i64,
    latest: &'a HashMap<u128, i64>,
    cleaning_dir: &'a Path,
    decoded_bytes_max: usize,
}

/// Consecutive emptied batches, written as one header-only batch. It carries no timestamp
/// (-1), so time lookups and time retention see only the records that remain.
#[derive(Debug)]
struct EmptyRun {
    base_offset: i64,
    last_offset: i64,
    leader_epoch: i32,
    is_log_append_time: bool,
}

impl CompactionPlanView<'_> {
    /// Whether a record survives: it has a key, no later record has the same key, and it is
    /// not a tombstone past `delete.retention.ms` in an already compacted segment.
    fn keeps(
        &self,
        decoded: &DecodedBatch<'_>,
        record: &records::RecordEntry,
        is_clean: bool,
    ) -> bool {
        let Some(key) = decoded.key(record) else {
            return false; // Kafka's cleaner drops keyless records too
        };
        let offset = decoded.offset(record);
        let is_latest = self
            .latest
            .get(&fingerprint(key))
            .is_none_or(|&latest| latest <= offset);
        is_latest
            && !(DecodedBatch::is_tombstone(record)
                && policy::is_tombstone_expired(
                    decoded.header.max_timestamp,
                    is_clean,
                    self.compaction,
                    self.now_ms,
                ))
    }

    /// Writes the cleaned copy of one segment into the cleaning directory. Returns how many
    /// records it dropped, or None (and no file) when nothing changed.
    fn clean_segment(&self, planned: &PlannedSegment, path: &Path) -> Result<Option<u64>> {
        let mut cleaned = Segment::create(
            self.fs,
            self.cleaning_dir,
            planned.base_offset,
            self.settings,
        )?;
        let is_clean = planned.next_offset <= self.first_dirty_offset;
        let mut removed: u64 = 0;
        let mut run: Option<EmptyRun> = None;
        for_each_batch(planned, path, |batch, header| {
            if header.is_control() {
                flush_run(&mut cleaned, &mut run, self)?;
                return self.write(&mut cleaned, batch, header);
            }
            let decoded = records::decode(batch, self.decoded_bytes_max)?;
            let kept = decoded
                .records
                .iter()
                .filter(|record| self.keeps(&decoded, record, is_clean))
                .count();
            removed += (decoded.records.len() - kept) as u64;
            if kept == decoded.records.len() && !decoded.records.is_empty() {
                flush_run(&mut cleaned, &mut run, self)?;
                return self.write(&mut cleaned, batch, header);
            }
            if kept > 0 {
                flush_run(&mut cleaned, &mut run, self)?;
                let retained =
                    records::retain(batch, &decoded, |r| self.keeps(&decoded, r, is_clean))?;
                return self.write(&mut cleaned, &retained, &BatchHeader::parse(&retained)?);
            }
            extend_run(&mut cleaned, &mut run, header, self)
        })?;
        flush_run(&mut cleaned, &mut run, self)?;
        let is_unchanged = removed == 0 && cleaned.size_bytes() == planned.size_bytes;
        if is_unchanged {
            cleaned.remove()?;
            return Ok(None);
        }
        assert_eq!(
            cleaned.next_offset(),
            planned.next_offset,
            "a cleaned segment must end where its original did"
        );
        cleaned.sync()?;
        cleaned.seal()?;
        Ok(Some(removed))
    }

    fn write(&self, cleaned: &mut Segment, batch: &[u8], header: &BatchHeader) -> Result<()> {
        cleaned.append(batch, header, self.now_ms, self.settings, Write::Cached)
    }
}

/// Adds an emptied batch to the current run, first writing the run if it cannot grow.
fn extend_run(
    cleaned: &mut Segment,
    run: &mut Option<EmptyRun>,
    header: &BatchHeader,
    view: &CompactionPlanView<'_>,
) -> Result<()> {
    if let Some(current) = run.as_mut()
        && header.last_offset() - current.base_offset <= EMPTY_RUN_DELTA_MAX
    {
        current.last_offset = header.last_offset();
        return Ok(());
    }
    flush_run(cleaned, run, view)?;
    *run = Some(EmptyRun {
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        leader_epoch: header.partition_leader_epoch,
        is_log_append_time: header.timestamp_type() == super::TimestampType::LogAppendTime,
    });
    Ok(())
}

fn flush_run(
    cleaned: &mut Segment,
    run: &mut Option<EmptyRun>,
    view: &CompactionPlanView<'_>,
) -> Result<()> {
    let Some(done) = run.take() else {
        return Ok(());
    };
    let delta = i32::try_from(done.last_offset - done.base_offset)
        .expect("runs are capped at i32::MAX offsets");
    let batch = records::empty(
        done.base_offset,
        delta,
        NO_TIMESTAMP,
        done.leader_epoch,
        done.is_log_append_time,
    );
    view.write(cleaned, &batch, &BatchHeader::parse(&batch)?)
}
