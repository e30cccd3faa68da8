//! Partition storage: segmented logs with memory-mapped indexes, batch header and CRC checks,
//! crash recovery, retention and the persisted topic catalog. Synchronous std I/O only; knows
//! nothing of Kafka requests, tokio or raft beyond opaque numbers handed to it.

mod batch;
mod batch_builder;
mod catalog;
mod cleaner;
mod control_record;
mod fs;
#[cfg(fuzzing)]
pub(crate) mod fuzzing;
mod identity;
mod index_file;
mod log;
mod mmap;
mod offset_index;
mod partition_dirs;
mod partition_metadata;
mod producer_ids;
mod producer_state;
mod raft_state;
mod record_stream;
mod records;
mod recovery;
mod retention;
mod security_files;
mod segment;
mod settings;
mod time_index;
mod txn_index;

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod compaction_model_tests;
#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod direct_write_tests;
#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod producer_state_log_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod records_tests;
#[cfg(test)]
pub(crate) mod test_batches;
#[cfg(test)]
mod transfer_tests;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) use batch::{
    BATCH_HEADER_LEN, BatchHeader, Compression, TimestampType, set_max_timestamp, set_place,
    stamp_log_append_time, verify_crc,
};
pub(crate) use batch_builder::{
    LogEntry, Producer, Record, build as build_batch, build_with, read_entries, read_records,
};
pub(crate) use catalog::{Catalog, TopicRecord};
pub(crate) use control_record::{build as build_control_batch, read as read_control_record};
pub(crate) use fs::Fs;
#[cfg(test)]
pub(crate) use fs::fault;
pub(crate) use identity::Identity;
pub(crate) use log::{
    BatchLocation, Log, OutgoingPrefix, Piece, PrefixManifest, ReadPlan, past_header_only_batches,
};
/// Kafka's text form of a UUID (cluster, topic and directory ids) and back.
pub(crate) use partition_metadata::{
    decode_topic_id as decode_uuid, encode_topic_id as encode_uuid,
};
pub(crate) use producer_ids::ProducerIdStore;
pub(crate) use producer_state::marker::build_from_parts as build_marker;
pub(crate) use producer_state::{BatchMeta, Origin, ProducerError, Verdict};
pub(crate) use raft_state::RaftStateFile;
pub(crate) use record_stream::Records;
#[cfg(test)]
pub(crate) use records::decode as decode_records;
pub(crate) use records::recompress;
pub(crate) use security_files::{
    load_acls, load_broker_configs, load_quotas, load_users, save_acls, save_broker_configs,
    save_quotas, save_users,
};
pub(crate) use settings::{CompactionSettings, LogSettings};

/// Everything that can go wrong in storage. Disk and batch problems are values, never panics.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("i/o error during {operation} on {path}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("record batch of {len} bytes is shorter than the {needed} bytes it needs")]
    BatchTooShort { len: usize, needed: usize },
    #[error("record batch magic {magic} is not supported (only 2)")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch field {field} has invalid value {value}")]
    InvalidBatchHeader { field: &'static str, value: i64 },
    #[error("record batch crc mismatch: stored {stored_crc:#010x}, computed {computed_crc:#010x}")]
    CrcMismatch { stored_crc: u32, computed_crc: u32 },
    #[error("record batch is {len} bytes but its header says {header_len}")]
    BatchLengthMismatch { len: usize, header_len: usize },
    #[error("record batch of {len} bytes exceeds the segment size limit of {segment_bytes_max}")]
    BatchTooLarge { len: usize, segment_bytes_max: u64 },
    #[error("offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("stored batch at position {position} of {path} is unreadable")]
    CorruptSegment { path: PathBuf, position: u64 },
    #[error(
        "log {dir} is inconsistent at segment {base_offset}: {reason}; newer data follows, so \
         nothing was cut or deleted: restore the segment or move the directory aside"
    )]
    InconsistentLog {
        dir: PathBuf,
        base_offset: i64,
        reason: String,
    },
    #[error("{path} is invalid: {reason}")]
    CorruptPartitionMetadata { path: PathBuf, reason: &'static str },
    #[error(
        "{dir} holds data of topic id {found}, not of this topic (id {expected}); it was left \
         alone: move it aside if it is not needed"
    )]
    TopicIdMismatch {
        dir: PathBuf,
        expected: String,
        found: String,
    },
    #[error("log {dir} is poisoned by a failed {operation} and accepts no more writes")]
    Poisoned {
        dir: PathBuf,
        operation: &'static str,
    },
    #[error("records of the batch at offset {base_offset} are malformed: {reason}")]
    MalformedRecords {
        base_offset: i64,
        reason: &'static str,
    },
    #[error("{codec:?} records of the batch at offset {base_offset} cannot be (de)compressed")]
    Decompression {
        base_offset: i64,
        codec: Compression,
        #[source]
        source: io::Error,
    },
    #[error(
        "{codec:?} records of the batch at offset {base_offset} decompress to more than {bytes_max} bytes"
    )]
    DecompressedTooLarge {
        base_offset: i64,
        codec: Compression,
        bytes_max: usize,
    },
    #[error("catalog {path} line {line_number} is invalid: {reason}")]
    CorruptCatalog {
        path: PathBuf,
        line_number: usize,
        reason: &'static str,
    },
    #[error(
        "data dir {path} belongs to node {stored}, not to node {configured}: \
         start node {stored} on it, or give node {configured} a data dir of its own"
    )]
    ForeignDataDir {
        path: PathBuf,
        stored: i32,
        configured: i32,
    },
    #[error("a snapshot transfer to {dir} is refused: {reason}")]
    SnapshotTransfer { dir: PathBuf, reason: String },
    #[error("state file {path} is invalid: {reason}")]
    CorruptState { path: PathBuf, reason: &'static str },
    #[error("catalog name {name:?} is invalid: {reason}")]
    InvalidCatalogName { name: String, reason: &'static str },
}

/// Suffix of files written by [`write_atomically`] before their rename.
const TMP_SUFFIX: &str = ".tmp";

/// Storage result.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Builds a mapper from `io::Error` to [`Error::Io`] naming the operation and the path.
pub(crate) fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        operation,
        path,
        source,
    }
}

/// Fsyncs a directory so that creations, renames and removals inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Writes `contents` to `dir/name` so that a crash leaves either the old or the new file.
pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp_path = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = std::fs::File::create(&tmp_path).map_err(io_error("create", &tmp_path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", &tmp_path))?;
    drop(file);
    std::fs::rename(&tmp_path, &path).map_err(io_error("rename", &path))?;
    sync_dir(dir)
}
