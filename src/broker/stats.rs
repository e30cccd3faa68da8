//! What the metrics scrape reads of the broker: offsets, size and replica lag of every
//! partition this broker serves (leads), and the lag of the groups it coordinates on those
//! partitions. Bounded in series; reads state, changes nothing.

use std::collections::BTreeMap;

use super::Broker;
use super::cluster_link::Leadership;
use crate::limits;
use crate::telemetry::metrics::{GroupLag, PartitionGauges};

impl Broker {
    /// The gauges of the partitions this broker leads (every partition, standalone), at most
    /// `limits::METRICS_PARTITIONS_MAX`, and the lag of its groups on them, at most
    /// `limits::METRICS_GROUP_LAG_SERIES_MAX`.
    pub(crate) fn metric_gauges(&self) -> (Vec<PartitionGauges>, Vec<GroupLag>) {
        let me = u64::try_from(self.node_id()).ok();
        let mut partitions = Vec::new();
        let topics: Vec<_> = self.topics_read().values().cloned().collect();
        'topics: for topic in &topics {
            for partition in &topic.partitions {
                if partitions.len() >= limits::METRICS_PARTITIONS_MAX {
                    break 'topics;
                }
                let leads = match partition.raft() {
                    Some(group) => group.leadership().leader.is_some_and(|l| Some(l) == me),
                    None => matches!(
                        self.leadership(&topic.name, partition.index),
                        Leadership::Local | Leadership::Leader
                    ),
                };
                if !leads || partition.is_offline() {
                    continue;
                }
                let Ok((log_start_offset, log_end_offset, size_bytes)) =
                    partition.read_log(|log| {
                        Ok((
                            log.log_start_offset(),
                            log.log_end_offset(),
                            log.size_bytes(),
                        ))
                    })
                else {
                    continue;
                };
                let replica_lags = partition
                    .raft()
                    .and_then(|group| group.voter_progress())
                    .map(|(last, voters)| {
                        voters
                            .into_iter()
                            .map(|(id, matched)| (id, matched.map(|m| last.saturating_sub(m))))
                            .collect()
                    })
                    .unwrap_or_default();
                partitions.push(PartitionGauges {
                    topic: topic.name.clone(),
                    partition: partition.index,
                    log_start_offset,
                    log_end_offset,
                    high_watermark: partition.high_watermark(),
                    size_bytes,
                    replica_lags,
                });
            }
        }
        let group_lags = self.group_lags(&partitions);
        (partitions, group_lags)
    }

    /// High watermark minus committed offset of the groups coordinated here, on each
    /// partition this broker has a current high watermark of: one it leads, or a replica of a
    /// replicated partition (raft keeps every replica's high watermark, a little behind).
    fn group_lags(&self, led: &[PartitionGauges]) -> Vec<GroupLag> {
        let mut high_watermarks: BTreeMap<(String, i32), i64> = led
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.high_watermark))
            .collect();
        for topic in self.topics_read().values() {
            for partition in topic.partitions.iter().filter(|p| p.is_replicated()) {
                high_watermarks
                    .entry((topic.name.clone(), partition.index))
                    .or_insert_with(|| partition.high_watermark());
            }
        }
        let mut lags = Vec::new();
        for group in self.list_groups() {
            for (topic, partition, committed) in self.fetch_offsets(&group.group_id, None) {
                if lags.len() >= limits::METRICS_GROUP_LAG_SERIES_MAX {
                    return lags;
                }
                let high_watermark = high_watermarks.get(&(topic.clone(), partition)).copied();
                let (Some(committed), Some(high_watermark)) = (committed, high_watermark) else {
                    continue;
                };
                lags.push(GroupLag {
                    group: group.group_id.clone(),
                    topic,
                    partition,
                    lag: (high_watermark - committed.offset).max(0),
                });
            }
        }
        lags
    }
}
