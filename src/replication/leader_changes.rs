//! Counts a raft group's leader changes (`tidelog_raft_leader_changes_total`) from openraft's
//! server metrics: one task per group, ending when its raft stops. Observes, changes nothing.

use openraft::async_runtime::WatchReceiver;
use openraft::{Raft, RaftTypeConfig};

use crate::telemetry::metrics;

/// Spawns the counting task of `raft`; `group_kind` is `partition` or `controller`.
pub(crate) fn count_leader_changes<C, SM>(raft: &Raft<C, SM>, group_kind: &'static str)
where
    C: RaftTypeConfig,
    SM: openraft::storage::RaftStateMachine<C>,
{
    let mut server = raft.server_metrics();
    tokio::spawn(async move {
        let mut seen = server.borrow_watched().current_leader.clone();
        while server.changed().await.is_ok() {
            let leader = server.borrow_watched().current_leader.clone();
            if leader != seen {
                if leader.is_some() {
                    metrics::raft_leader_changed(group_kind);
                }
                seen = leader;
            }
        }
    });
}
