//! Entry points for coverage-guided fuzzing, built only with `--cfg fuzzing` (cargo-fuzz sets
//! it; `fuzz/` holds the targets). Each takes the bytes an untrusted peer chooses and must
//! neither panic nor allocate without bound, whatever they hold.

pub use crate::auth::fuzzing::sasl_exchange;
pub use crate::broker::fuzzing::produced_batches;
pub use crate::kafka::fuzzing::RequestTarget;
pub use crate::storage::fuzzing::recovered_log;

/// A cluster peer's AppendEntries payload, decoded as a follower decodes it.
pub fn raft_append_entries(data: &[u8]) {
    let _decoded = crate::replication::decode_partition_append(bytes::Bytes::copy_from_slice(data));
}
