//! Committed offsets: commit, fetch, delete and Kafka's retention. Every change is a record
//! of the offsets topic, made durable before it is visible.

use tokio::sync::oneshot;

use super::journal::{Effect, OffsetKey, WriteFailure, WriteReply};
use super::record::{self, CommittedOffset, Key};
use super::{Group, GroupState, State, wait_stored};
use crate::broker::error::{Error, Result};
use crate::broker::{Broker, now_ms};
use crate::storage;

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub(crate) struct CommitPartition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<String>,
}

pub(super) fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    value: Option<&CommittedOffset>,
) -> storage::Record {
    let key = Key::Offset {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    };
    storage::Record {
        key: Some(key.encode()),
        value: value.map(record::encode_offset),
    }
}

/// Kafka's expiry rule for an offset of an empty group (KIP-211): an explicit expiry time wins;
/// otherwise `retention_ms` after the later of the commit and the group becoming empty.
fn is_expired(
    offset: &CommittedOffset,
    empty_since_ms: i64,
    retention_ms: i64,
    now_ms: i64,
) -> bool {
    if offset.expire_timestamp_ms >= 0 {
        now_ms >= offset.expire_timestamp_ms
    } else {
        let since = offset.commit_timestamp_ms.max(empty_since_ms);
        now_ms >= since.saturating_add(retention_ms)
    }
}

impl Broker {
    /// OffsetCommit: one result per partition, in order; a group-level error fails them all.
    /// Answers once the records are durable and applied, so the commit is then visible to
    /// OffsetFetch and survives anything that happens to the group meanwhile.
    pub(crate) async fn commit_offsets(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        retention_ms: Option<i64>,
        partitions: Vec<CommitPartition>,
    ) -> Result<Vec<Result<()>>> {
        self.check_group(group_id)?;
        self.sync_offsets_before_roll(group_id).await;
        let now = now_ms();
        let expire_timestamp_ms = retention_ms.filter(|r| *r >= 0).map_or(-1, |r| now + r);
        let mut results: Vec<Result<()>> = Vec::with_capacity(partitions.len());
        let mut accepted = Vec::new();
        let stored = {
            let mut state = self.groups.lock();
            match state.groups.get_mut(group_id) {
                None if generation >= 0 || !member_id.is_empty() => {
                    return Err(Error::IllegalGeneration {
                        group: group_id.to_owned(),
                        generation,
                        current: -1,
                    });
                }
                // A group that only commits offsets (generation -1) is Empty: anyone may commit.
                None => {}
                Some(entry) if entry.consumer.members.is_empty() => {
                    entry
                        .group
                        .check_commit(member_id, instance_id, generation, now)?;
                }
                // KIP-848 groups: the field carries the member epoch.
                Some(entry) => entry
                    .consumer
                    .check_commit(group_id, member_id, generation)?,
            }
            let metadata_max = self.settings.groups.offset_metadata_bytes_max;
            let mut records = Vec::new();
            let mut changes = Vec::new();
            for p in partitions {
                let check = if p.metadata.as_ref().is_some_and(|m| m.len() > metadata_max) {
                    Err(Error::OffsetMetadataTooLarge {
                        group: group_id.to_owned(),
                        bytes_max: metadata_max,
                    })
                } else {
                    self.partition_exists(&p.topic, p.partition)
                };
                if check.is_ok() {
                    let value = CommittedOffset {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        // Kafka stores no metadata as the empty string.
                        metadata: Some(p.metadata.clone().unwrap_or_default()),
                        commit_timestamp_ms: now,
                        expire_timestamp_ms,
                    };
                    records.push(offset_record(group_id, &p.topic, p.partition, Some(&value)));
                    accepted.push(results.len());
                    changes.push(((p.topic, p.partition), Some(value)));
                }
                results.push(check);
            }
            if records.is_empty() {
                return Ok(results);
            }
            let (reply, stored) = oneshot::channel();
            let effect = Effect::Offsets {
                group: group_id.to_owned(),
                changes,
            };
            self.write_group(&mut state, group_id, &records, effect, Some(reply));
            stored
        };
        if let Err(error) = wait_stored(stored, group_id).await {
            tracing::warn!(group = group_id, %error, "offset commit failed");
            let failure = WriteFailure::of(&error);
            for index in accepted {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Err(failure.error(group_id));
                }
            }
        }
        Ok(results)
    }

    /// OffsetFetch: the committed offset of each requested partition (`None` = not committed),
    /// or of every partition with a committed offset when `partitions` is `None`.
    pub(crate) fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let state = self.groups.lock();
        let offsets = state.groups.get(group_id).map(|e| &e.offsets);
        match partitions {
            Some(requested) => requested
                .into_iter()
                .map(|(topic, partition)| {
                    let found = offsets.and_then(|o| o.get(&(topic.clone(), partition)).cloned());
                    (topic, partition, found)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((topic, partition), value)| (topic.clone(), *partition, Some(value.clone())))
                .collect(),
        }
    }

    /// OffsetDelete: drops the committed offsets of `partitions` (the caller has already
    /// refused partitions of topics the group is subscribed to); answers once durable.
    pub(crate) async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        self.check_group(group_id)?;
        let stored = {
            let mut state = self.groups.lock();
            let entry = state
                .groups
                .get(group_id)
                .ok_or_else(|| Error::GroupIdNotFound {
                    group: group_id.to_owned(),
                })?;
            let pending = state.journal.pending_offset_keys(group_id);
            let keys: Vec<OffsetKey> = partitions
                .iter()
                .filter(|key| entry.offsets.contains_key(*key) || pending.contains(key))
                .cloned()
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            let (reply, stored) = oneshot::channel();
            self.write_tombstones(&mut state, group_id, keys, false, Some(reply));
            stored
        };
        wait_stored(stored, group_id).await
    }

    /// Writes tombstones for `keys` of `group_id` (and for the group itself if `with_group`);
    /// the offsets go from memory once the tombstones are durable.
    pub(super) fn write_tombstones(
        &self,
        state: &mut State,
        group_id: &str,
        keys: Vec<OffsetKey>,
        with_group: bool,
        reply: Option<WriteReply>,
    ) {
        let mut records: Vec<storage::Record> = keys
            .iter()
            .map(|(topic, partition)| offset_record(group_id, topic, *partition, None))
            .collect();
        if with_group {
            records.push(storage::Record {
                key: Some(
                    Key::Group {
                        group: group_id.to_owned(),
                    }
                    .encode(),
                ),
                value: None,
            });
        }
        let effect = Effect::Offsets {
            group: group_id.to_owned(),
            changes: keys.into_iter().map(|key| (key, None)).collect(),
        };
        self.write_group(state, group_id, &records, effect, reply);
    }

    /// Kafka's offset retention: offsets of an empty group expire `offsets.retention.minutes`
    /// after the later of their commit and the group becoming empty (or at their explicit
    /// expiry); an empty group left without offsets is deleted. A group with writes in flight
    /// waits for the next round, so a fresh commit is never tombstoned.
    pub(super) fn expire_offsets(&self, now: i64) {
        let retention = self.settings.groups.offsets_retention_ms;
        let mut state = self.groups.lock();
        let mut expiring = Vec::new();
        for (group_id, entry) in &state.groups {
            if entry.group.state != GroupState::Empty
                || !entry.consumer.members.is_empty()
                || state.journal.has_pending(group_id)
            {
                continue;
            }
            let empty_since = entry.group.state_since_ms;
            let expired: Vec<OffsetKey> = entry
                .offsets
                .iter()
                .filter(|(_, o)| is_expired(o, empty_since, retention, now))
                .map(|(key, _)| key.clone())
                .collect();
            if !expired.is_empty() {
                let is_all = expired.len() == entry.offsets.len();
                expiring.push((group_id.clone(), expired, is_all));
            }
        }
        for (group_id, expired, is_all) in expiring {
            tracing::info!(group = %group_id, offsets = expired.len(), "committed offsets expired");
            if is_all && let Some(entry) = state.groups.get_mut(&group_id) {
                // The group goes with its last offset (a group tombstone, as Kafka).
                entry.group = Group::new(&group_id, now);
            }
            self.write_tombstones(&mut state, &group_id, expired, is_all, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_at(commit_timestamp_ms: i64, expire_timestamp_ms: i64) -> CommittedOffset {
        CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms,
            expire_timestamp_ms,
        }
    }

    #[test]
    fn offset_expiry_counts_from_the_later_of_commit_and_group_empty() {
        let retention = 100;
        // Committed at 10, group empty since 50: expires at 150.
        assert!(!is_expired(&committed_at(10, -1), 50, retention, 149));
        assert!(is_expired(&committed_at(10, -1), 50, retention, 150));
        // Committed after the group emptied: counts from the commit.
        assert!(!is_expired(&committed_at(80, -1), 50, retention, 179));
        // An explicit expiry time (OffsetCommit v2-v4 retention) wins.
        assert!(is_expired(&committed_at(80, 90), 50, retention, 90));
    }
}
