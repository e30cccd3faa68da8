//! The openraft type configuration of a partition's raft group: node ids are broker ids, a
//! node is the broker's cluster RPC address, leader ids are standard raft (a committed leader
//! id is just the term, a log id is (term, index)) and an entry's data is one Kafka v2 batch.

use std::fmt;

use bytes::Bytes;
use openraft::vote::RaftLeaderId;

/// A broker id as raft knows it.
pub(crate) type NodeId = u64;
/// A raft term; stored as a batch's partitionLeaderEpoch, so at most `i32::MAX`.
pub(crate) type Term = u64;

/// How a raft peer is reached: the broker's cluster RPC endpoint (`host:port`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RaftNode {
    pub(crate) rpc_addr: String,
}

impl fmt::Display for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rpc_addr)
    }
}

/// The data of a normal raft entry: the bytes of one Kafka magic v2 record batch, exactly as
/// stored in the partition's segment (base offset and partitionLeaderEpoch included).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RecordBatch(pub(crate) Bytes);

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordBatch({} bytes)", self.0.len())
    }
}

impl fmt::Display for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch of {} bytes", self.0.len())
    }
}

openraft::declare_raft_types!(
    /// The type configuration of every partition raft group.
    pub(crate) TypeConfig:
        D = RecordBatch,
        R = (),
        NodeId = NodeId,
        Node = RaftNode,
        Term = Term,
        LeaderId = openraft::vote::leader_id_std::LeaderId<Term, NodeId>,
        Vote = openraft::Vote<Self::LeaderId>,
        Entry = openraft::Entry<CommittedLeaderId, Payload>,
);

/// The leader id stored in log ids: only the term.
pub(crate) type CommittedLeaderId =
    <openraft::vote::leader_id_std::LeaderId<Term, NodeId> as RaftLeaderId>::Committed;
/// A raft log id: (term, index).
pub(crate) type LogId = openraft::LogId<CommittedLeaderId>;
pub(crate) type Vote = openraft::Vote<openraft::vote::leader_id_std::LeaderId<Term, NodeId>>;
pub(crate) type Payload = openraft::EntryPayload<RecordBatch, NodeId, RaftNode>;
pub(crate) type Entry = openraft::Entry<CommittedLeaderId, Payload>;
pub(crate) type Membership = openraft::Membership<NodeId, RaftNode>;

/// The log id of `index` written in `term`.
pub(crate) fn log_id(term: Term, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term), index)
}

/// The term of a log id.
pub(crate) fn term_of(log_id: &LogId) -> Term {
    log_id.leader_id.term
}
