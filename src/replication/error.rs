//! Errors of the replication layer. openraft's storage traits speak `io::Error`, so every
//! error converts into one (kind `Other`, this error as its source).

use crate::storage;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Storage(#[from] storage::Error),
    #[error(
        "raft entry data of {len} bytes is not one record batch (its header says {header_len})"
    )]
    NotOneBatch { len: usize, header_len: usize },
    #[error("raft entry data is a control batch of a raft control type")]
    RaftControlTypeInData,
    #[error("raft membership cannot be encoded or decoded")]
    MembershipCodec(#[source] serde_json::Error),
    #[error("a partition snapshot cannot be encoded or decoded")]
    SnapshotCodec(#[source] serde_json::Error),
    #[error("a partition snapshot's data is not a Kafka offset ({len} bytes)")]
    SnapshotData { len: usize },
    #[error("raft term {term} does not fit a batch's partitionLeaderEpoch")]
    TermTooLarge { term: u64 },
    #[error("raft log entry {index} would leave a hole: the next index is {expected}")]
    Hole { index: u64, expected: u64 },
    #[error("raft log entry {index} is not in the log (it holds {first}..={last})")]
    Missing { index: u64, first: u64, last: u64 },
    #[error("partition log is not a raft log: {reason}")]
    NotARaftLog { reason: String },
    #[error("raft log state file holds {found} numbers, not {expected}")]
    StateFileShape { found: usize, expected: usize },
    #[error("the partition log is poisoned by a failed write or fsync")]
    Poisoned,
    #[cfg(test)]
    #[error("the raft log cannot close while a reader of it is alive")]
    ReadersAlive,
    #[error("the raft log flusher stopped")]
    FlusherStopped,
    #[error("a storage task failed")]
    BlockingTask(#[source] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn membership_codec(source: serde_json::Error) -> Error {
        Error::MembershipCodec(source)
    }
}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> std::io::Error {
        std::io::Error::other(error)
    }
}
