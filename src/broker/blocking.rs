//! File work that blocks (a topic's directories, files and their fsyncs) run from async code
//! without stalling the other tasks of the worker thread that runs it.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on this thread; on a multi-thread runtime the worker first hands its other tasks
/// (every connection it serves) to another thread. Creating a topic syncs several files per
/// partition and deleting one removes every segment: on a busy disk that takes long enough to
/// stall requests that never touch the topic. Inline on a current-thread runtime (tests).
pub(super) fn in_place<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
