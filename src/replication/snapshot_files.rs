//! The segment files a partition snapshot carries. A snapshot covers the raft entries below a
//! Kafka offset; below it a compacted partition keeps its (compacted) batches, which a replica
//! behind the snapshot lacks. The leader streams them (`network.rs`: chunks of at most
//! `SNAPSHOT_CHUNK_BYTES`, then the snapshot with a manifest); the receiver stages each chunk on
//! disk, and checks and seals the whole before raft installs the snapshot, which then replaces
//! the replica's log with them (`RaftLog::install_snapshot`). Nothing is held whole in memory.

use bytes::Bytes;

use super::error::Error;
use super::log_store::LogReader;
use super::persisted::PartitionSnapshot;
use crate::storage::{OutgoingPrefix, Piece, PrefixManifest};

/// One chunk of a segment file on the wire.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Chunk {
    pub(crate) transfer: u64,
    pub(crate) base_offset: i64,
    pub(crate) position: u64,
    pub(crate) bytes: Bytes,
}

/// What a complete transfer sent, sent with the snapshot itself.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Manifest {
    pub(crate) transfer: u64,
    pub(crate) log_start_offset: i64,
    pub(crate) next_offset: i64,
    /// Base offset and length of each segment file, oldest first.
    pub(crate) pieces: Vec<(i64, u64)>,
}

/// A group's snapshot files, for its network: what to send with a snapshot, where to put what
/// arrives. Every method does blocking file I/O.
pub(crate) trait SnapshotFiles: Send + Sync + 'static {
    /// Opens the segment files a snapshot with data `data` carries.
    fn outgoing(&self, data: &[u8]) -> Result<OutgoingPrefix, Error>;
    /// Stages one received chunk.
    fn receive(&self, chunk: &Chunk) -> Result<(), Error>;
    /// Checks and seals a complete transfer, before raft installs its snapshot.
    fn seal(&self, manifest: &Manifest) -> Result<(), Error>;
}

impl SnapshotFiles for LogReader {
    fn outgoing(&self, data: &[u8]) -> Result<OutgoingPrefix, Error> {
        let next_offset = PartitionSnapshot::next_offset_of(data)?;
        Ok(self.with_log(|log| log.outgoing_prefix(next_offset))?)
    }

    fn receive(&self, chunk: &Chunk) -> Result<(), Error> {
        let incoming = self.with_log(|log| log.incoming_prefix());
        Ok(incoming.write(
            chunk.transfer,
            chunk.base_offset,
            chunk.position,
            &chunk.bytes,
        )?)
    }

    fn seal(&self, manifest: &Manifest) -> Result<(), Error> {
        let incoming = self.with_log(|log| log.incoming_prefix());
        let manifest = PrefixManifest {
            transfer: manifest.transfer,
            log_start_offset: manifest.log_start_offset,
            next_offset: manifest.next_offset,
            pieces: manifest
                .pieces
                .iter()
                .map(|&(base_offset, len)| Piece { base_offset, len })
                .collect(),
        };
        Ok(incoming.seal(&manifest)?)
    }
}

/// A transfer id no earlier transfer of this process used, and unlikely to be one an earlier
/// process used (a receiver discards what another transfer staged).
pub(crate) fn new_transfer_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    nanos ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
