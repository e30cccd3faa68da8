//! A classic group member, its supported protocols, the replies owed to waiting members and
//! protocol selection. Pure data and functions; no I/O.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic::JoinRequest;
use super::{JoinResponse, SyncResponse};
use crate::broker::error::Result;

/// One (assignment) protocol a member supports, with its opaque metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub(crate) name: String,
    pub(crate) metadata: Bytes,
}

/// A member of a classic group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) assignment: Bytes,
    pub(crate) awaiting_join: bool,
    pub(crate) awaiting_sync: bool,
    pub(crate) last_heartbeat_ms: i64,
}

impl Member {
    pub(crate) fn new(member_id: String, request: &JoinRequest, now_ms: i64) -> Member {
        Member {
            member_id,
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocols: request.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: false,
            awaiting_sync: false,
            last_heartbeat_ms: now_ms,
        }
    }

    /// The member's metadata for `protocol` (empty if it does not support it).
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// The late answer to a JoinGroup or SyncGroup that waited for the rebalance.
#[derive(Debug)]
pub(crate) enum Reply {
    Join {
        member_id: String,
        result: Result<JoinResponse>,
    },
    Sync {
        member_id: String,
        result: Result<SyncResponse>,
    },
}

impl Reply {
    pub(crate) fn join(member_id: &str, result: Result<JoinResponse>) -> Reply {
        Reply::Join {
            member_id: member_id.to_owned(),
            result,
        }
    }

    pub(crate) fn sync(member_id: &str, result: Result<SyncResponse>) -> Reply {
        Reply::Sync {
            member_id: member_id.to_owned(),
            result,
        }
    }
}

/// Kafka's protocol vote: among the protocols every member supports, each member votes for
/// its most preferred one; the most votes win (ties go to the earliest candidate).
pub(crate) fn select_protocol(members: &BTreeMap<String, Member>) -> Option<String> {
    let first = members.values().next()?;
    let candidates: Vec<&str> = first
        .protocols
        .iter()
        .map(|p| p.name.as_str())
        .filter(|name| {
            members
                .values()
                .all(|m| m.protocols.iter().any(|p| p.name == *name))
        })
        .collect();
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for member in members.values() {
        if let Some(choice) = member
            .protocols
            .iter()
            .find(|p| candidates.contains(&p.name.as_str()))
        {
            *votes.entry(choice.name.as_str()).or_default() += 1;
        }
    }
    let best = votes.values().copied().max()?;
    candidates
        .into_iter()
        .find(|c| votes.get(c) == Some(&best))
        .map(str::to_owned)
}
