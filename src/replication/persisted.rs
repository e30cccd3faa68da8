//! What a partition's raft log keeps outside its batches, as numbers in storage's raft state
//! files: the vote, and where the raft log starts (the last purged log id, the raft index and
//! Kafka offset of the first entry). Encoding only; storage does the durable I/O.

use openraft::type_config::alias::SnapshotMetaOf;

use super::error::Error;
use super::types::{LogId, TypeConfig, Vote, log_id, term_of};
use crate::storage::{Log, RaftStateFile};

/// Where the raft log starts inside the partition log. Batches below `first_offset` are not
/// raft entries (purged ones waiting for their segment to go, or data from before raft).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogStart {
    pub(crate) purged: Option<LogId>,
    /// The raft index of the batch at `first_offset`, or of the next one appended there.
    pub(crate) first_index: u64,
    pub(crate) first_offset: i64,
    /// The batches below `first_offset` stay (a compacted log purges raft entries, not data;
    /// a snapshot's segments were installed there); otherwise a purge deletes them.
    pub(crate) keeps_prefix: bool,
}

const VOTE_NUMBERS: usize = 3;
const LOG_START_NUMBERS: usize = 6;
/// A log start saved before `keeps_prefix` existed.
const LOG_START_NUMBERS_V0: usize = 5;

pub(crate) fn read_vote(log: &Log) -> Result<Option<Vote>, Error> {
    let Some(numbers) = log.read_raft_state(RaftStateFile::Vote)? else {
        return Ok(None);
    };
    let [term, node_id, committed] = shaped::<VOTE_NUMBERS>(&numbers)?;
    Ok(Some(Vote {
        committed: committed != 0,
        ..Vote::new(term, node_id)
    }))
}

/// Durable before it returns.
pub(crate) fn write_vote(log: &Log, vote: &Vote) -> Result<(), Error> {
    let numbers = [
        vote.leader_id.term,
        vote.leader_id.voted_for,
        u64::from(vote.committed),
    ];
    Ok(log.write_raft_state(RaftStateFile::Vote, &numbers)?)
}

/// The saved start; a log never started as a raft log starts at index 0 at its log start.
pub(crate) fn read_log_start(log: &Log) -> Result<LogStart, Error> {
    let Some(numbers) = log.read_raft_state(RaftStateFile::LogStart)? else {
        return Ok(LogStart {
            purged: None,
            first_index: 0,
            first_offset: log.log_start_offset(),
            keeps_prefix: false,
        });
    };
    let [
        has_purged,
        purged_term,
        purged_index,
        first_index,
        first_offset,
        keeps_prefix,
    ] = match shaped::<LOG_START_NUMBERS_V0>(&numbers) {
        Ok([has_purged, term, index, first_index, first_offset]) => {
            [has_purged, term, index, first_index, first_offset, 0]
        }
        Err(_) => shaped::<LOG_START_NUMBERS>(&numbers)?,
    };
    let first_offset = i64::try_from(first_offset).map_err(|_| Error::NotARaftLog {
        reason: format!("raft log start offset {first_offset} is out of range"),
    })?;
    Ok(LogStart {
        purged: (has_purged != 0).then(|| log_id(purged_term, purged_index)),
        first_index,
        first_offset,
        keeps_prefix: keeps_prefix != 0,
    })
}

/// Durable before it returns.
pub(crate) fn write_log_start(log: &Log, start: &LogStart) -> Result<(), Error> {
    let (has_purged, purged_term, purged_index) = match &start.purged {
        Some(purged) => (1, term_of(purged), purged.index),
        None => (0, 0, 0),
    };
    let numbers = [
        has_purged,
        purged_term,
        purged_index,
        start.first_index,
        u64::try_from(start.first_offset).unwrap_or(0),
        u64::from(start.keeps_prefix),
    ];
    Ok(log.write_raft_state(RaftStateFile::LogStart, &numbers)?)
}

/// A partition group's snapshot: raft's metadata (the last entry it covers and the membership
/// then) and the Kafka offset where the log goes on after that entry. The entries it covers
/// are purged: below `next_offset` the partition has no raft entries (retention deleted them,
/// or they are about to go, or a compacted log keeps their batches).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PartitionSnapshot {
    pub(crate) meta: SnapshotMetaOf<TypeConfig>,
    pub(crate) next_offset: i64,
}

impl PartitionSnapshot {
    /// The snapshot's data on the wire: the next offset, 8 bytes big-endian.
    pub(crate) fn data(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.next_offset.to_be_bytes())
    }

    /// The next offset from a snapshot's data.
    pub(crate) fn next_offset_of(data: &[u8]) -> Result<i64, Error> {
        let bytes: [u8; 8] = data
            .try_into()
            .map_err(|_| Error::SnapshotData { len: data.len() })?;
        Ok(i64::from_be_bytes(bytes))
    }
}

/// The last snapshot saved in `log`'s directory.
pub(crate) fn read_snapshot(log: &Log) -> Result<Option<PartitionSnapshot>, Error> {
    let Some(bytes) = log.read_raft_blob(RaftStateFile::Snapshot)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(Error::SnapshotCodec)
}

/// Durable before it returns.
pub(crate) fn write_snapshot(log: &Log, snapshot: &PartitionSnapshot) -> Result<(), Error> {
    let bytes = serde_json::to_vec(snapshot).map_err(Error::SnapshotCodec)?;
    Ok(log.write_raft_blob(RaftStateFile::Snapshot, &bytes)?)
}

fn shaped<const N: usize>(numbers: &[u64]) -> Result<[u64; N], Error> {
    <[u64; N]>::try_from(numbers).map_err(|_| Error::StateFileShape {
        found: numbers.len(),
        expected: N,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LogSettings;

    #[test]
    fn vote_and_log_start_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Log::open(dir.path(), LogSettings::default(), 0).expect("open");
        assert_eq!(read_vote(&log).expect("vote"), None);
        let start = read_log_start(&log).expect("start");
        assert_eq!(
            start,
            LogStart {
                purged: None,
                first_index: 0,
                first_offset: 0,
                keeps_prefix: false,
            }
        );
        let vote = Vote::new_committed(7, 3);
        write_vote(&log, &vote).expect("write vote");
        let start = LogStart {
            purged: Some(log_id(4, 41)),
            first_index: 42,
            first_offset: 1_000,
            keeps_prefix: true,
        };
        write_log_start(&log, &start).expect("write start");
        log.close().expect("close");
        let log = Log::open(dir.path(), LogSettings::default(), 0).expect("reopen");
        assert_eq!(read_vote(&log).expect("vote"), Some(vote));
        assert_eq!(read_log_start(&log).expect("start"), start);
        write_vote(&log, &Vote::new(8, 1)).expect("write vote");
        assert_eq!(read_vote(&log).expect("vote"), Some(Vote::new(8, 1)));
    }
}
