//! Persistence of the coordinator: the internal offsets topic (created on start), writing group
//! and offset records through the ordinary append path, rebuilding state from it on start, and
//! the timer task (session and rebalance timeouts, offset expiry).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::journal::{Effect, WriteFailure, WriteReply, apply_offset};
use super::record::{self, Key};
use super::{Group, GroupEntry, GroupState, GroupWrite, State, txn_offsets};
use crate::broker::error::{Error, Result};
use crate::broker::{Acks, Broker, now_ms};
use crate::limits::{GROUP_LOAD_DECODED_BYTES_MAX, GROUP_LOAD_READ_BYTES};
use crate::storage::{self, BatchHeader, LogEntry};

/// The internal topic holding committed offsets and group metadata.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often the timer task checks sessions and rebalance deadlines.
const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// How often expired offsets are looked for (`offsets.retention.check.interval.ms`).
const EXPIRY_INTERVAL_TICKS: u32 = 600;
/// Kafka's configs of the offsets topic: compacted (the latest record per key is kept and
/// tombstones eventually vanish), 100 MiB segments (`offsets.topic.segment.bytes`) so closed
/// segments become compactable.
const OFFSETS_TOPIC_CONFIGS: [(&str, &str); 2] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "104857600"),
];

/// Kafka's choice of offsets partition: `abs(groupId.hashCode()) % partitions`, with Java's
/// String.hashCode over UTF-16 code units, so the mapping matches Kafka's.
pub(crate) fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions.max(1)
}

impl Broker {
    /// Appends `records` of `group_id` as one batch to its offsets partition (acks=all) and
    /// queues `effect`, applied once the batch is durable, in log order; `reply` then gets the
    /// outcome. A batch that cannot even be appended fails `effect` at once.
    pub(super) fn write_group(
        &self,
        state: &mut State,
        group_id: &str,
        records: &[storage::Record],
        effect: Effect,
        reply: Option<WriteReply>,
    ) {
        let partition = partition_for(group_id, self.offsets_partitions());
        let appended = if state.journal.is_full() {
            Err(Error::CoordinatorNotAvailable {
                group: group_id.to_owned(),
            })
        } else {
            let batch = storage::build_batch(records, now_ms());
            self.append_internal(OFFSETS_TOPIC, partition, Bytes::from(batch), Acks::All)
        };
        match appended {
            Ok(pending) => state.enqueue(&self.groups.state, partition, pending, effect, reply),
            Err(error) => {
                tracing::error!(group = group_id, %error, "appending to the offsets topic failed");
                state.fail(effect, reply, WriteFailure::of(&error));
            }
        }
    }

    /// Called before the coordinator lock is taken to write `group_id`'s records: when its
    /// offsets partition will roll within one batch, fsyncs the active segment now, on the
    /// blocking pool and outside the coordinator lock, so the roll under the lock usually has
    /// nothing left to fsync (it still does if other writes land first). Best effort: a
    /// failure shows in the write itself.
    pub(super) async fn sync_offsets_before_roll(&self, group_id: &str) {
        let partition = partition_for(group_id, self.offsets_partitions());
        let Ok((topic, target)) = self.partition(OFFSETS_TOPIC, partition) else {
            return;
        };
        let batch_bytes = u64::from(topic.settings.message_bytes_max);
        let now = now_ms();
        // The check is in memory; only a due roll goes to the blocking pool.
        if !target.is_roll_due(batch_bytes, now) {
            return;
        }
        let synced =
            crate::broker::produce::off_worker(move || target.sync_before_roll(batch_bytes, now))
                .await;
        if let Err(error) = synced {
            tracing::warn!(group = group_id, %error, "fsync before rolling the offsets partition failed");
        }
    }

    pub(super) fn offsets_partitions(&self) -> i32 {
        self.topic(OFFSETS_TOPIC)
            .map_or(self.settings.groups.offsets_topic_partitions, |t| {
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
            })
    }

    /// Writes the record the group's state machine asked for (the leader's assignment, a
    /// static member's new id) or, for a group that became Empty, its new generation.
    pub(super) fn write_group_changes(
        &self,
        state: &mut State,
        group_id: &str,
        reply: Option<WriteReply>,
    ) {
        let Some(entry) = state.groups.get_mut(group_id) else {
            return;
        };
        let group = &mut entry.group;
        let write = group.pending_write.take();
        if write.is_none() && !(group.is_dirty && group.state == GroupState::Empty) {
            return;
        }
        group.is_dirty = false;
        let record = storage::Record {
            key: Some(
                Key::Group {
                    group: group_id.to_owned(),
                }
                .encode(),
            ),
            value: Some(record::encode_group(group)),
        };
        let group = group_id.to_owned();
        let effect = match write {
            Some(GroupWrite::Assignment(generation)) => Effect::Assignment { group, generation },
            Some(GroupWrite::StaticReplacement(revert)) => {
                Effect::StaticReplacement { group, revert }
            }
            None => Effect::Record { group },
        };
        self.write_group(state, group_id, &[record], effect, reply);
    }

    /// Creates the offsets topic if missing and rebuilds every group from it; then starts the
    /// timer task. Runs before the listener accepts clients, so no request sees a partial load.
    pub(crate) fn open_groups(self: &Arc<Self>) -> Result<()> {
        if self.topic(OFFSETS_TOPIC).is_none() {
            let partitions = Some(self.settings.groups.offsets_topic_partitions);
            let configs: Vec<(String, Option<String>)> = OFFSETS_TOPIC_CONFIGS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .collect();
            self.create_topic_local(OFFSETS_TOPIC, partitions, None, &configs, false)?;
        }
        let mut groups: BTreeMap<String, GroupEntry> = BTreeMap::new();
        let mut record_count = 0usize;
        for partition in 0..self.offsets_partitions() {
            record_count += self.load_groups(partition, &mut groups)?;
        }
        tracing::info!(
            groups = groups.len(),
            records = record_count,
            "group coordinator loaded"
        );
        self.groups.lock().groups = groups;
        spawn_timer(self);
        Ok(())
    }

    /// Rebuilds the groups of offsets partition `partition` from its log into `groups`;
    /// returns how many records and markers it read.
    fn load_groups(
        &self,
        partition: i32,
        groups: &mut BTreeMap<String, GroupEntry>,
    ) -> Result<usize> {
        let now = now_ms();
        let partitions = self.offsets_partitions();
        let mut record_count = 0usize;
        for entry in self.read_internal(partition)? {
            record_count += 1;
            match entry {
                LogEntry::Record {
                    record,
                    transactional_producer: None,
                    ..
                } => apply(groups, record, now),
                LogEntry::Record {
                    record,
                    transactional_producer: Some(producer_id),
                    ..
                } => txn_offsets::load_pending(groups, producer_id, record, now),
                LogEntry::Marker {
                    producer_id,
                    is_commit,
                    ..
                } => txn_offsets::complete(groups, partition, partitions, producer_id, is_commit),
            }
        }
        groups.retain(|_, entry| !entry.is_unused());
        Ok(record_count)
    }

    /// A replicated offsets partition this broker now leads (its log holds every committed
    /// write): rebuilds its groups from the log, in place of whatever was held of them.
    pub(crate) fn load_offsets_partition(&self, partition: i32) -> Result<()> {
        let mut loaded = BTreeMap::new();
        let records = self.load_groups(partition, &mut loaded)?;
        let partitions = self.offsets_partitions();
        let mut state = self.groups.lock();
        state
            .groups
            .retain(|group, _| partition_for(group, partitions) != partition);
        tracing::info!(
            partition,
            groups = loaded.len(),
            records,
            "offsets partition loaded: coordinating its groups"
        );
        state.groups.extend(loaded);
        Ok(())
    }

    /// A replicated offsets partition this broker no longer leads: forgets its groups (their
    /// members get NOT_COORDINATOR and find the new coordinator).
    pub(crate) fn unload_offsets_partition(&self, partition: i32) {
        let partitions = self.offsets_partitions();
        let mut state = self.groups.lock();
        let before = state.groups.len();
        state
            .groups
            .retain(|group, _| partition_for(group, partitions) != partition);
        let dropped = before - state.groups.len();
        if dropped > 0 {
            tracing::info!(
                partition,
                groups = dropped,
                "offsets partition unloaded: its groups are coordinated elsewhere"
            );
        }
    }

    /// Every record and transaction marker of one offsets partition, below its high watermark.
    fn read_internal(&self, partition: i32) -> Result<Vec<LogEntry>> {
        let mut offset = self
            .list_offset(
                OFFSETS_TOPIC,
                partition,
                crate::broker::OffsetSpec::Earliest,
            )
            .map(|listed| match listed {
                crate::broker::ListedOffset::Exact { offset, .. } => offset,
                _ => 0,
            })?;
        let mut out = Vec::new();
        loop {
            let fetched = self.fetch(
                OFFSETS_TOPIC,
                partition,
                offset,
                GROUP_LOAD_READ_BYTES,
                true,
            )?;
            if fetched.records.is_empty() {
                return Ok(out);
            }
            let mut rest: &[u8] = &fetched.records;
            let mut next = offset;
            while let Ok(header) = BatchHeader::parse(rest) {
                next = next.max(header.last_offset() + 1);
                rest = rest.get(header.total_len()..).unwrap_or_default();
            }
            match storage::read_entries(&fetched.records, GROUP_LOAD_DECODED_BYTES_MAX) {
                Ok(entries) => out.extend(entries.into_iter().filter(|entry| {
                    let at = match entry {
                        LogEntry::Record { offset, .. } | LogEntry::Marker { offset, .. } => {
                            *offset
                        }
                    };
                    at >= offset
                })),
                Err(source) => {
                    return Err(Error::Storage {
                        topic: OFFSETS_TOPIC.to_owned(),
                        partition,
                        source,
                    });
                }
            }
            if next <= offset {
                return Ok(out);
            }
            offset = next;
        }
    }
}

/// Applies one stored record on start: the last value of a key wins, a null value deletes it.
fn apply(groups: &mut BTreeMap<String, GroupEntry>, record: storage::Record, now: i64) {
    let Some((key, format)) = record.key.as_deref().and_then(Key::decode) else {
        tracing::warn!("skipping an offsets-topic record with an unreadable key");
        return;
    };
    match key {
        Key::Offset {
            group,
            topic,
            partition,
        } => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| GroupEntry::new(&group, now));
            match record
                .value
                .as_deref()
                .map(|v| record::decode_offset(v, format))
            {
                None => apply_offset(entry, (topic, partition), None),
                Some(Some(value)) => apply_offset(entry, (topic, partition), Some(value)),
                Some(None) => tracing::warn!(%group, "skipping an unreadable offset record"),
            }
        }
        Key::Group { group } => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| GroupEntry::new(&group, now));
            match record
                .value
                .as_deref()
                .map(|v| record::decode_group(&group, v, format, now))
            {
                // A group tombstone ends the membership; offsets have tombstones of their own
                // (as in Kafka), so a live apply and a replay agree.
                None => entry.group = Group::new(&group, now),
                Some(Some(restored)) => entry.group = restored,
                Some(None) => tracing::warn!(%group, "skipping an unreadable group record"),
            }
        }
    }
}

/// Session and rebalance timers, and offset expiry, until the broker shuts down.
fn spawn_timer(broker: &Arc<Broker>) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let mut shutdown = broker.shutdown.subscribe();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticker.tick() => {}
            }
            let Some(broker) = weak.upgrade() else {
                return;
            };
            let now = now_ms();
            broker.tick_groups(now);
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(EXPIRY_INTERVAL_TICKS) {
                broker.expire_offsets(now);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::group::record::CommittedOffset;

    fn offset_record(partition: i32, value: Option<i64>) -> storage::Record {
        let key = Key::Offset {
            group: "g".to_owned(),
            topic: "t".to_owned(),
            partition,
        };
        storage::Record {
            key: Some(key.encode()),
            value: value.map(|offset| {
                record::encode_offset(&CommittedOffset {
                    offset,
                    leader_epoch: 3,
                    metadata: Some("m".to_owned()),
                    commit_timestamp_ms: 1,
                    expire_timestamp_ms: -1,
                })
            }),
        }
    }

    #[test]
    fn rebuild_keeps_the_last_record_per_key_and_honours_tombstones() {
        let mut groups = BTreeMap::new();
        apply(&mut groups, offset_record(0, Some(5)), 0);
        apply(&mut groups, offset_record(1, Some(7)), 0);
        apply(&mut groups, offset_record(0, Some(9)), 0);
        apply(&mut groups, offset_record(1, None), 0);
        let entry = groups.get("g").expect("group rebuilt");
        let offsets: Vec<(i32, i64)> = entry
            .offsets
            .iter()
            .map(|((_, partition), value)| (*partition, value.offset))
            .collect();
        assert_eq!(offsets, vec![(0, 9)]);
        let mut group = Group::new("g", 0);
        group.generation = 4;
        group.protocol_type = Some("consumer".to_owned());
        let group_record = storage::Record {
            key: Some(
                Key::Group {
                    group: "g".to_owned(),
                }
                .encode(),
            ),
            value: Some(record::encode_group(&group)),
        };
        apply(&mut groups, group_record, 0);
        let entry = groups.get("g").expect("group kept");
        assert_eq!(entry.group.generation, 4);
        assert_eq!(entry.group.state, super::super::GroupState::Empty);
        let tombstone = storage::Record {
            key: Some(
                Key::Group {
                    group: "g".to_owned(),
                }
                .encode(),
            ),
            value: None,
        };
        apply(&mut groups, tombstone, 0);
        let entry = groups.get("g").expect("offsets outlive the group record");
        assert_eq!(
            entry.group.generation, 0,
            "the tombstone ends the membership"
        );
        assert_eq!(
            entry.offsets.len(),
            1,
            "offsets go only with their own tombstones"
        );
        apply(&mut groups, offset_record(0, None), 0);
        assert!(groups.get("g").is_some_and(GroupEntry::is_unused));
    }

    #[test]
    fn rebuild_reads_legacy_records_before_kafka_ones() {
        use crate::broker::group::record_legacy::encode as legacy;
        let old = CommittedOffset {
            offset: 5,
            leader_epoch: 1,
            metadata: None,
            commit_timestamp_ms: 1,
            expire_timestamp_ms: -1,
        };
        let mut groups = BTreeMap::new();
        let legacy_record = |partition| storage::Record {
            key: Some(legacy::offset_key("g", "t", partition)),
            value: Some(legacy::offset_value(&old)),
        };
        apply(&mut groups, legacy_record(0), 0);
        apply(&mut groups, legacy_record(1), 0);
        // The Kafka-format record of the same key supersedes the legacy one.
        apply(&mut groups, offset_record(1, Some(9)), 0);
        let offsets: Vec<(i32, i64)> = groups
            .get("g")
            .expect("group")
            .offsets
            .iter()
            .map(|((_, partition), value)| (*partition, value.offset))
            .collect();
        assert_eq!(offsets, vec![(0, 5), (1, 9)]);
    }

    #[test]
    fn partition_for_matches_java_string_hash_code() {
        // "group".hashCode() == 98629247 in Java.
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert_eq!(partition_for("", 8), 0);
        for id in ["a", "consumer-group-1", "\u{e9}t\u{e9}"] {
            assert!((0..8).contains(&partition_for(id, 8)));
        }
    }
}
