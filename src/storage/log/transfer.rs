//! A log's prefix as segment files, for a raft snapshot that a replica lacks: the sending side
//! opens the segments below an offset (shared handles, so a segment that compaction replaces or
//! retention deletes meanwhile stays readable), the receiving side stages the files it is sent,
//! checks them (sizes, offsets, every CRC) and then replaces its whole log with them. An
//! install marker written before the first file changes makes an install cut short by a crash
//! finish when the log opens, so a replica never holds half of one log and half of another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Log;
use crate::storage::fs::{DataFile, FileSystem, Fs, FsFile};
use crate::storage::segment::{self, Segment};
use crate::storage::settings::LogSettings;
use crate::storage::{Error, Result, io_error, recovery, sync_dir, write_atomically};

/// The staging directory of a transfer being received, inside the partition directory.
pub(crate) const INCOMING_DIR: &str = "snapshot-incoming";
/// In the staging directory: which transfer the files belong to.
const TRANSFER_FILE: &str = "transfer";
/// In the staging directory: the transfer is complete and its files checked.
const MANIFEST_FILE: &str = "manifest";
/// In the partition directory while an install replaces the segments.
const INSTALL_MARKER: &str = "snapshot-install";
/// Most segment files one transfer may name (a lying peer cannot make a receiver list more).
const PIECES_MAX: usize = 1 << 20;

/// One segment file of a prefix: its base offset and how many of its bytes belong to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) base_offset: i64,
    pub(crate) len: u64,
}

/// What a transfer carries: the log start offset, the offset the log goes on at after the
/// prefix, and the segment files in between, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrefixManifest {
    pub(crate) transfer: u64,
    pub(crate) log_start_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) pieces: Vec<Piece>,
}

impl PrefixManifest {
    fn encode(&self) -> String {
        let mut text = format!(
            "transfer {}\nlog_start_offset {}\nnext_offset {}\n",
            self.transfer, self.log_start_offset, self.next_offset
        );
        for piece in &self.pieces {
            text.push_str(&format!("piece {} {}\n", piece.base_offset, piece.len));
        }
        text
    }

    fn decode(text: &str) -> Option<PrefixManifest> {
        let mut lines = text.lines();
        let mut field = |name: &str| {
            lines
                .next()?
                .strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let transfer = field("transfer")?.parse().ok()?;
        let log_start_offset = field("log_start_offset")?.parse().ok()?;
        let next_offset = field("next_offset")?.parse().ok()?;
        let mut pieces = Vec::new();
        for line in lines {
            let mut words = line.strip_prefix("piece ")?.split(' ');
            let base_offset = words.next()?.parse().ok()?;
            let len = words.next()?.parse().ok()?;
            if words.next().is_some() || pieces.len() >= PIECES_MAX {
                return None;
            }
            pieces.push(Piece { base_offset, len });
        }
        Some(PrefixManifest {
            transfer,
            log_start_offset,
            next_offset,
            pieces,
        })
    }

    /// Whether the manifest describes a log at all: offsets in order, pieces contiguous by
    /// base, a bounded count. The files themselves are checked against it when sealed.
    fn check(&self) -> std::result::Result<(), String> {
        if self.pieces.len() > PIECES_MAX {
            return Err(format!("{} segment files", self.pieces.len()));
        }
        if self.log_start_offset < 0 || self.next_offset < self.log_start_offset {
            return Err(format!(
                "log start {} and next offset {}",
                self.log_start_offset, self.next_offset
            ));
        }
        match (self.pieces.first(), self.pieces.last()) {
            (None, _) if self.log_start_offset != self.next_offset => {
                Err("no segment file for a non-empty prefix".to_owned())
            }
            (Some(first), _) if first.base_offset > self.log_start_offset => Err(format!(
                "the first segment file starts at {}, after the log start {}",
                first.base_offset, self.log_start_offset
            )),
            (_, Some(last)) if last.base_offset >= self.next_offset => Err(format!(
                "a segment file starts at {}, not below the next offset {}",
                last.base_offset, self.next_offset
            )),
            _ if self
                .pieces
                .windows(2)
                .any(|pair| pair[0].base_offset >= pair[1].base_offset) =>
            {
                Err("segment files out of order".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// The segment files below an offset, opened for sending.
#[derive(Debug)]
pub(crate) struct OutgoingPrefix {
    pub(crate) log_start_offset: i64,
    pub(crate) next_offset: i64,
    files: Vec<(Piece, Arc<FsFile>, PathBuf)>,
}

impl OutgoingPrefix {
    pub(crate) fn pieces(&self) -> Vec<Piece> {
        self.files.iter().map(|(piece, _, _)| *piece).collect()
    }

    /// Up to `bytes_max` bytes of piece `piece` from `position` (none past its end).
    pub(crate) fn read(&self, piece: usize, position: u64, bytes_max: usize) -> Result<Vec<u8>> {
        let Some((piece, file, path)) = self.files.get(piece) else {
            return Ok(Vec::new());
        };
        let left = piece.len.saturating_sub(position);
        let len = usize::try_from(left).unwrap_or(usize::MAX).min(bytes_max);
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, position)
            .map_err(io_error("read segment for a snapshot", path))?;
        Ok(bytes)
    }
}

/// Where a replica stages the segment files of a snapshot it receives. Cheap to clone; its
/// file I/O needs no lock of the log.
#[derive(Clone, Debug)]
pub(crate) struct IncomingPrefix {
    fs: Fs,
    dir: PathBuf,
    settings: LogSettings,
}

impl IncomingPrefix {
    fn staging(&self) -> PathBuf {
        self.dir.join(INCOMING_DIR)
    }

    /// Writes `bytes` at `position` of the staged segment `base_offset` of transfer
    /// `transfer`. Chunks come in order: a chunk that does not continue its file is refused.
    /// The first chunk of another transfer discards what an earlier one staged.
    pub(crate) fn write(
        &self,
        transfer: u64,
        base_offset: i64,
        position: u64,
        bytes: &[u8],
    ) -> Result<()> {
        let staging = self.staging();
        let staged_transfer = std::fs::read_to_string(staging.join(TRANSFER_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok());
        if staged_transfer != Some(transfer) {
            remove_dir_if_present(&staging)?;
            std::fs::create_dir(&staging)
                .map_err(io_error("create staging directory", &staging))?;
            sync_dir(&self.dir)?;
            write_atomically(&staging, TRANSFER_FILE, format!("{transfer}\n").as_bytes())?;
        }
        if base_offset < 0 {
            return Err(self.refused(format!("a segment file at offset {base_offset}")));
        }
        let path = staging.join(format!("{}.log", segment::file_stem(base_offset)));
        let file = if position == 0 && !path.exists() {
            self.fs.create_new(&path)
        } else {
            self.fs.open(&path)
        }
        .map_err(io_error("open staged segment", &path))?;
        let len = file
            .len_bytes()
            .map_err(io_error("stat staged segment", &path))?;
        if len != position {
            return Err(self.refused(format!(
                "a chunk at byte {position} of {} which holds {len}",
                path.display()
            )));
        }
        file.write_all_at(bytes, position)
            .map_err(io_error("write staged segment", &path))
    }

    /// Checks the staged files of a complete transfer against `manifest` (every size, offsets
    /// continuing from file to file, every batch's CRC), builds their indexes, makes them
    /// durable and records the manifest: from then on [`Log::install_prefix`] can use them.
    pub(crate) fn seal(&self, manifest: &PrefixManifest) -> Result<()> {
        manifest.check().map_err(|reason| self.refused(reason))?;
        let staging = self.staging();
        if manifest.pieces.is_empty() {
            remove_dir_if_present(&staging)?;
            std::fs::create_dir(&staging)
                .map_err(io_error("create staging directory", &staging))?;
            sync_dir(&self.dir)?;
            write_atomically(
                &staging,
                TRANSFER_FILE,
                format!("{}\n", manifest.transfer).as_bytes(),
            )?;
        }
        let staged_transfer = std::fs::read_to_string(staging.join(TRANSFER_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok());
        if staged_transfer != Some(manifest.transfer) {
            return Err(self.refused(format!(
                "transfer {} is not the one staged",
                manifest.transfer
            )));
        }
        let mut expected_base = None;
        for piece in &manifest.pieces {
            if expected_base.is_some_and(|expected| expected != piece.base_offset) {
                return Err(self.refused(format!(
                    "the segment file at {} does not continue the one before it",
                    piece.base_offset
                )));
            }
            let (mut staged, _) =
                Segment::open(&self.fs, &staging, piece.base_offset, &self.settings, false)?;
            if staged.size_bytes() != piece.len {
                return Err(self.refused(format!(
                    "the segment file at {} holds {} bytes, not {}",
                    piece.base_offset,
                    staged.size_bytes(),
                    piece.len
                )));
            }
            let valid_end = staged.rebuild(true, &self.settings)?;
            if valid_end != piece.len || staged.next_offset() <= piece.base_offset {
                return Err(self.refused(format!(
                    "the segment file at {} is not valid batches to its end",
                    piece.base_offset
                )));
            }
            staged.sync()?;
            staged.seal()?;
            expected_base = Some(staged.next_offset());
        }
        if let Some(end) = expected_base
            && end != manifest.next_offset
        {
            return Err(self.refused(format!(
                "the segment files end at {end}, not at {}",
                manifest.next_offset
            )));
        }
        sync_dir(&staging)?;
        write_atomically(&staging, MANIFEST_FILE, manifest.encode().as_bytes())
    }

    fn refused(&self, reason: String) -> Error {
        Error::SnapshotTransfer {
            dir: self.dir.clone(),
            reason,
        }
    }
}

impl Log {
    /// The stored batches from the log start to `next_offset` (a batch boundary at or below
    /// the log end) as segment files, the last one cut at `next_offset`.
    pub(crate) fn outgoing_prefix(&self, next_offset: i64) -> Result<OutgoingPrefix> {
        if next_offset > self.log_end_offset() || next_offset < self.log_start_offset {
            return Err(self.out_of_range(next_offset));
        }
        let mut files = Vec::new();
        for segment in &self.segments {
            if segment.base_offset() >= next_offset {
                break;
            }
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            let len = segment.position_limit(next_offset)?;
            if len == 0 {
                continue;
            }
            files.push((
                Piece {
                    base_offset: segment.base_offset(),
                    len,
                },
                segment.file(),
                segment.log_path().to_path_buf(),
            ));
        }
        Ok(OutgoingPrefix {
            log_start_offset: self.log_start_offset,
            next_offset,
            files,
        })
    }

    /// The staging area of a snapshot transfer to this log.
    pub(crate) fn incoming_prefix(&self) -> IncomingPrefix {
        IncomingPrefix {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Drops whatever a transfer staged.
    pub(crate) fn discard_incoming_prefix(&self) -> Result<()> {
        remove_dir_if_present(&self.dir.join(INCOMING_DIR))
    }

    /// Replaces the whole log with the sealed staged prefix that ends at `next_offset`, if
    /// there is one (false otherwise, nothing changed): the log then starts at the prefix's
    /// log start and goes on at `next_offset`, its producer state rebuilt from the new
    /// segments. A crash midway finishes the install at the next open.
    pub(crate) fn install_prefix(&mut self, next_offset: i64) -> Result<bool> {
        self.check_writable()?;
        let staging = self.dir.join(INCOMING_DIR);
        let Some(manifest) = read_manifest(&staging.join(MANIFEST_FILE))
            .filter(|manifest| manifest.next_offset == next_offset)
        else {
            return Ok(false);
        };
        let result = self.install_unpoisoned(&manifest);
        self.poison_on_error("install snapshot", result)?;
        Ok(true)
    }

    fn install_unpoisoned(&mut self, manifest: &PrefixManifest) -> Result<()> {
        let marker = self.dir.join(INSTALL_MARKER);
        let staged_manifest = self.dir.join(INCOMING_DIR).join(MANIFEST_FILE);
        std::fs::rename(&staged_manifest, &marker)
            .map_err(io_error("start snapshot install", &marker))?;
        sync_dir(&self.dir)?;
        apply_install(&self.dir, manifest)?;
        let mut segments = Vec::with_capacity(manifest.pieces.len().max(1));
        for piece in &manifest.pieces {
            segments.push(recovery::open_closed_segment(
                &self.fs,
                &self.dir,
                piece.base_offset,
                &self.settings,
            )?);
        }
        match segments.last_mut() {
            Some(last) => {
                last.unseal(&self.settings)?;
                last.init_rolling_timestamp(self.latest_now_ms)?;
            }
            None => {
                segments.push(Segment::create(
                    &self.fs,
                    &self.dir,
                    manifest.next_offset,
                    &self.settings,
                )?);
                sync_dir(&self.dir)?;
            }
        }
        self.segments = segments;
        self.log_start_offset = manifest.log_start_offset;
        self.flushed_offset = manifest.next_offset;
        self.load_transactions()?;
        self.persist_transactions_of_closed_segments()?;
        finish_marker(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), log_start_offset = manifest.log_start_offset, next_offset = manifest.next_offset, segments = manifest.pieces.len(), "installed a snapshot's segments");
        Ok(())
    }
}

/// At open, before recovery: finishes an install a crash cut short (see [`Log::install_prefix`]).
pub(super) fn finish_interrupted_install(dir: &Path) -> Result<()> {
    let marker = dir.join(INSTALL_MARKER);
    if !marker.exists() {
        return Ok(());
    }
    let Some(manifest) = read_manifest(&marker) else {
        return Err(Error::CorruptState {
            path: marker,
            reason: "unreadable snapshot install marker",
        });
    };
    tracing::warn!(dir = %dir.display(), next_offset = manifest.next_offset, "finishing an interrupted snapshot install");
    apply_install(dir, &manifest)?;
    // Sealed staged segments carry no aborted-transaction index: the producer state is
    // replayed from the first segment on this open (no producer snapshot is left).
    finish_marker(dir)
}

fn read_manifest(path: &Path) -> Option<PrefixManifest> {
    let text = std::fs::read_to_string(path).ok()?;
    PrefixManifest::decode(&text)
}

/// The file-level install, idempotent: every segment and state file of the old log goes
/// (a segment file of the manifest already moved in stays), the staged files move in, the log
/// start and cleaner checkpoint are written and the staging directory goes.
fn apply_install(dir: &Path, manifest: &PrefixManifest) -> Result<()> {
    let staging = dir.join(INCOMING_DIR);
    let wanted: BTreeSet<i64> = manifest
        .pieces
        .iter()
        .map(|piece| piece.base_offset)
        .collect();
    for entry in std::fs::read_dir(dir).map_err(io_error("list log directory", dir))? {
        let entry = entry.map_err(io_error("list log directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((base, extension)) = log_file(&name) else {
            continue;
        };
        let moved_in = wanted.contains(&base)
            && matches!(extension, "log" | "index" | "timeindex")
            && !staging
                .join(format!("{}.log", segment::file_stem(base)))
                .exists();
        if !moved_in {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_error("delete replaced file", &path))?;
        }
    }
    sync_dir(dir)?;
    for base in &wanted {
        let stem = segment::file_stem(*base);
        // The data file last: once it is in, the segment counts as moved.
        for suffix in [".index", ".timeindex", ".log"] {
            let from = staging.join(format!("{stem}{suffix}"));
            if from.exists() {
                let to = dir.join(format!("{stem}{suffix}"));
                std::fs::rename(&from, &to).map_err(io_error("install staged segment", &to))?;
            }
        }
    }
    sync_dir(dir)?;
    recovery::write_log_start_offset(dir, manifest.log_start_offset)?;
    recovery::write_cleaner_checkpoint(dir, manifest.log_start_offset)?;
    remove_dir_if_present(&staging)
}

fn finish_marker(dir: &Path) -> Result<()> {
    let marker = dir.join(INSTALL_MARKER);
    std::fs::remove_file(&marker).map_err(io_error("finish snapshot install", &marker))?;
    sync_dir(dir)
}

/// A segment or state file name (`<20 digits>.<extension>`): its offset and extension.
fn log_file(name: &str) -> Option<(i64, &str)> {
    let (stem, extension) = name.split_once('.')?;
    let known = matches!(
        extension,
        "log" | "index" | "timeindex" | "snapshot" | "txnindex"
    );
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) || !known {
        return None;
    }
    Some((stem.parse().ok()?, extension))
}

/// Removes `dir` and everything in it; a directory that is not there is fine.
pub(super) fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("delete directory", dir)(error))
        }
        _ => Ok(()),
    }
}
