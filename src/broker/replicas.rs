//! The raft groups of this broker's replicas in cluster mode: starting the group of each
//! replicated partition it holds a replica of, and one task per replica that publishes the
//! group's high watermark, reports leadership and in-sync replicas to the controller, moves the
//! replica's log start for DeleteRecords and hands leadership back to the preferred replica.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::Broker;
use super::partition::Partition;
use crate::metadata::{Command, Rejection, State};
use crate::replication::partition::PartitionGroup;

impl Broker {
    /// Starts the raft group of every replicated partition this broker holds a replica of and
    /// has not started yet: the group takes the partition's log over; the first replica
    /// initializes the group with every replica as a voter.
    pub(super) async fn attach_replicas(self: &Arc<Self>, state: &State) {
        let Some(link) = self.cluster.get() else {
            return;
        };
        let me = self.node_id();
        for (name, meta) in &state.topics {
            let Some(local) = self.local_copy(name, meta.id, meta.internal) else {
                continue;
            };
            for (index, placed) in meta.partitions.iter().enumerate() {
                if !placed.is_replicated() || !placed.replicas.contains(&me) {
                    continue;
                }
                let Some(partition) = local.partitions.get(index) else {
                    continue;
                };
                if partition.is_replicated() || partition.is_offline() {
                    continue;
                }
                let Some(log) = partition.take_log() else {
                    continue;
                };
                let index = index as i32;
                let group = match link.node.start_partition_group(meta.id, index, log).await {
                    Ok(group) => group,
                    Err(error) => {
                        tracing::error!(topic = %name, partition = index, %error, "the partition's raft group did not start; it is unavailable until a restart");
                        continue;
                    }
                };
                partition.attach_raft(Arc::clone(&group));
                if meta.internal {
                    // What the coordinator loaded of it at start is served only once this
                    // broker leads it (and loaded it again then).
                    self.unload_coordinator(partition);
                    self.start_internal_writes(partition);
                }
                // Only a new partition's group is initialized (by its first replica); a replica
                // added by a reassignment joins the group its leader adds it to.
                let is_new = placed.leader_epoch == 0 && !placed.is_reassigning();
                if is_new
                    && placed.replicas.first() == Some(&me)
                    && let Err(error) = link
                        .node
                        .initialize_partition_group(&group, &placed.replicas)
                        .await
                {
                    tracing::warn!(topic = %name, partition = index, %error, "initializing the partition's raft group failed");
                }
                tracing::info!(topic = %name, partition = index, replicas = ?placed.replicas, "replica started");
                tokio::spawn(follow_replica(
                    Arc::downgrade(self),
                    Arc::clone(partition),
                    group,
                ));
            }
        }
        self.follow_reassignments(state).await;
    }
}

impl Broker {
    /// This broker's copy of the cluster's topic `name` (id `id`): the local topic of that
    /// id, or, for an internal topic (this broker's own from its first start, with an id of
    /// its own), the local topic of that name, whose partitions are this broker's replicas.
    pub(super) fn local_copy(
        &self,
        name: &str,
        id: [u8; 16],
        internal: bool,
    ) -> Option<Arc<super::Topic>> {
        self.topic_state(name)
            .filter(|t| t.topic_id == id || internal)
    }
}

/// How long a replica waits before reporting its leadership again after the controller
/// could not take the report.
const LEADER_REPORT_RETRY: Duration = Duration::from_millis(200);
/// How long a follower stays in the in-sync replicas after its log last matched the leader's
/// to the end (Kafka's `replica.lag.time.max.ms`, 30 s by default).
const REPLICA_LAG: Duration = Duration::from_secs(10);
/// How often a leader looks at a voter that is out of the in-sync replicas again.
const ISR_RECHECK: Duration = Duration::from_secs(1);
/// How often a replica's loop looks again when nothing else wakes it: a follower that stopped
/// answering ages out of the in-sync replicas, and one the controller took out of them (a
/// fenced broker) is put back once caught up, only when the leader looks.
const REVIEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often a leader that is not its partition's preferred replica (the first one) offers the
/// leadership back to it (Kafka's `leader.imbalance.check.interval.seconds` is 300 s).
const LEADER_BALANCE_INTERVAL: Duration = Duration::from_secs(10);

/// Keeps a replica's partition in step with its raft group: publishes each new high
/// watermark (what fetches and acks wait on), reports this broker to the controller when it
/// becomes the leader of a new term, reports its in-sync replicas, hands the leadership back to
/// the preferred replica once that one has caught up (so leaders stay spread after failovers;
/// [`balance_leadership`]), and stops the group once the partition is gone.
async fn follow_replica(
    broker: Weak<Broker>,
    partition: Arc<Partition>,
    group: Arc<PartitionGroup>,
) {
    let mut review = ticker(REVIEW_INTERVAL);
    let mut high_watermark = group.high_watermark();
    let mut log_start_requests = group.requested_log_start();
    let mut changes = partition.changes();
    let Some((me, mut shutdown)) = broker
        .upgrade()
        .map(|b| (b.node_id(), b.shutdown.subscribe()))
    else {
        return;
    };
    // Commits reach readers (fetches, the last stable offset, compaction) through a task of
    // their own: this loop waits on the controller (a report waits up to its request timeout
    // while a paused or cut-off controller leader is replaced). Leadership offers to the
    // preferred replica, which wait for its answer, have theirs too.
    let publisher = tokio::spawn(publish_commits(
        Arc::clone(&partition),
        group.high_watermark(),
    ));
    let balancer = tokio::spawn(balance_leadership(
        broker.clone(),
        Arc::clone(&partition),
        Arc::clone(&group),
    ));
    let internal = super::topic_name::is_internal(&partition.topic);
    let mut reported = 0u64;
    // While leading: when each voter last caught up (Kafka's lastCaughtUpTime: its log
    // reached the leader's end as of an earlier look), the leader's end at the last look, and
    // the in-sync set last reported (with its term).
    let mut caught_up_at: BTreeMap<u64, tokio::time::Instant> = BTreeMap::new();
    let mut last_look: Option<(tokio::time::Instant, u64)> = None;
    let mut reported_isr: Option<(u64, Vec<i32>)> = None;
    // The last report the controller refused (not sent again for a metadata difference).
    let mut refused_isr: Option<(u64, Vec<i32>)> = None;
    loop {
        // (published by `publish_commits`; a new one only wakes this loop to look again)
        high_watermark.borrow_and_update();
        let leadership = group.leadership();
        let mut retry = false;
        if leadership.leader == u64::try_from(me).ok() && leadership.term > reported {
            let report = Command::SetPartitionLeader {
                topic: partition.topic.clone(),
                partition: partition.index,
                leader: me,
                leader_epoch: i32::try_from(leadership.term).unwrap_or(i32::MAX),
            };
            let Some(answer) = propose_report(&broker, &report).await else {
                break;
            };
            match answer {
                Ok(Ok(_) | Err(Rejection::StaleLeaderEpoch { .. })) => {
                    reported = leadership.term;
                    tracing::info!(topic = %partition.topic, partition = partition.index, epoch = leadership.term, "leading the partition");
                }
                Ok(Err(rejection)) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, %rejection, "the controller refused this leader's report");
                    reported = leadership.term;
                }
                Err(error) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.index, %error, "leader report not taken; retrying");
                    retry = true;
                }
            }
        }
        let leads = leadership.leader == u64::try_from(me).ok();
        if internal && leads != partition.is_coordinating() {
            let Some(strong) = broker.upgrade() else {
                break;
            };
            if leads {
                // Every earlier commit is applied: the log below the high watermark is all.
                partition.publish_flushed(*high_watermark.borrow_and_update());
                if strong.load_coordinator(&partition).await {
                    if group.leadership().leader == u64::try_from(me).ok() {
                        partition.set_coordinating(true);
                    } else {
                        strong.unload_coordinator(&partition);
                    }
                } else {
                    retry = true;
                }
            } else {
                partition.set_coordinating(false);
                strong.unload_coordinator(&partition);
            }
        }
        // DeleteRecords: each replica moves its own log start once it applied the entry.
        let wanted = *log_start_requests.borrow_and_update();
        if wanted > group.with_log(crate::storage::Log::log_start_offset)
            && !group.advance_log_start(wanted).await
        {
            retry = true;
        }
        if !leads {
            caught_up_at.clear();
            last_look = None;
            reported_isr = None;
        } else if !retry && reported == leadership.term {
            let now = tokio::time::Instant::now();
            if let Some((last, voters)) = group.voter_progress() {
                for (voter, matched) in voters {
                    // At the end now, or at least where the end was at the last look (under
                    // steady writes a follower is rarely at the very end when we look).
                    let at = match (matched, last_look) {
                        (Some(matched), _) if matched >= last => Some(now),
                        (Some(matched), Some((then, end))) if matched >= end => Some(then),
                        _ => None,
                    };
                    if let Some(at) = at {
                        let known = caught_up_at.entry(voter).or_insert(at);
                        *known = (*known).max(at);
                    }
                }
                last_look = Some((now, last));
            }
            let isr: Vec<i32> = caught_up_at
                .iter()
                .filter(|(_, at)| now.duration_since(**at) <= REPLICA_LAG)
                .filter_map(|(voter, _)| i32::try_from(*voter).ok())
                .collect();
            let current = (leadership.term, isr);
            // Also when the metadata says otherwise: fencing a broker takes it out of the ISR
            // there without this leader's report, which must then put it back.
            let published = published_isr(&broker, &partition);
            let differs = published.as_ref().is_some_and(|isr| *isr != current.1);
            if reported_isr.as_ref() != Some(&current)
                || (differs && refused_isr.as_ref() != Some(&current))
            {
                let report = Command::SetPartitionIsr {
                    topic: partition.topic.clone(),
                    partition: partition.index,
                    leader_epoch: i32::try_from(current.0).unwrap_or(i32::MAX),
                    isr: current.1.clone(),
                };
                let Some(answer) = propose_report(&broker, &report).await else {
                    break;
                };
                match answer {
                    Ok(Ok(_)) => {
                        tracing::debug!(topic = %partition.topic, partition = partition.index, isr = ?current.1, "in-sync replicas reported");
                        reported_isr = Some(current);
                        refused_isr = None;
                    }
                    // Another epoch by now: the next leadership change reports again.
                    Ok(Err(_)) => {
                        reported_isr = Some(current.clone());
                        refused_isr = Some(current);
                    }
                    Err(_) => retry = true,
                }
            }
        }
        if changes.borrow_and_update().is_gone {
            break;
        }
        // While a voter is out of the in-sync set, look again soon even if nothing else
        // happens: one that catches up on entries already committed moves no high watermark.
        let isr_incomplete = leads
            && published_isr(&broker, &partition)
                .is_some_and(|isr| isr.len() < usize::try_from(group.voter_count()).unwrap_or(0));
        tokio::select! {
            changed = high_watermark.changed() => if changed.is_err() { break },
            changed = log_start_requests.changed() => if changed.is_err() { break },
            () = group.leadership_changed(&leadership) => {}
            _ = changes.changed() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(LEADER_REPORT_RETRY), if retry => {}
            () = tokio::time::sleep(ISR_RECHECK), if isr_incomplete && !retry => {}
            _ = review.tick() => {}
        }
    }
    publisher.abort();
    balancer.abort();
    group.shutdown().await;
}

/// Every `LEADER_BALANCE_INTERVAL`, offers the leadership to the partition's preferred replica
/// (the first of its current replica list: a reassignment or a new order may change it); the
/// offer waits up to an election timeout for that replica's answer, so it has a task of its
/// own (aborted with its replica task).
async fn balance_leadership(
    broker: Weak<Broker>,
    partition: Arc<Partition>,
    group: Arc<PartitionGroup>,
) {
    let mut balance = ticker(LEADER_BALANCE_INTERVAL);
    // The first tick is immediate: a replica that just started has nothing to hand back.
    balance.tick().await;
    loop {
        balance.tick().await;
        let preferred = broker.upgrade().and_then(|b| {
            let state = b.cluster_state()?;
            let placed = state.partition(&partition.topic, partition.index)?;
            placed.replicas.first().copied()
        });
        if let Some(Ok(preferred)) = preferred.map(u64::try_from)
            && group.transfer_to(preferred).await
        {
            tracing::info!(topic = %partition.topic, partition = partition.index, preferred, "handing the leadership back to the preferred replica");
        }
    }
}

/// An interval ticking every `period` (at once first) that skips no tick after a late one.
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// Publishes each high watermark raft reports to the partition's readers until the group's
/// sender goes (or the task is aborted with its replica task).
async fn publish_commits(partition: Arc<Partition>, mut high_watermark: watch::Receiver<i64>) {
    loop {
        partition.publish_flushed(*high_watermark.borrow_and_update());
        if high_watermark.changed().await.is_err() {
            return;
        }
    }
}

/// The partition's in-sync replicas in the published metadata, sorted.
fn published_isr(broker: &Weak<Broker>, partition: &Partition) -> Option<Vec<i32>> {
    let state = broker.upgrade()?.cluster_state()?;
    let mut isr = state
        .partition(&partition.topic, partition.index)?
        .isr
        .clone();
    isr.sort_unstable();
    Some(isr)
}

impl Broker {
    /// Loads a replicated internal partition this broker leads into its coordinator (on the
    /// blocking pool: it reads the partition's log); whether it did.
    async fn load_coordinator(self: &Arc<Self>, partition: &Arc<Partition>) -> bool {
        let broker = Arc::clone(self);
        let (topic, index) = (partition.topic.clone(), partition.index);
        let loaded = super::produce::off_worker(move || {
            if topic == super::txn::TXN_TOPIC {
                broker.load_txn_partition(index)
            } else {
                broker.load_offsets_partition(index)
            }
        })
        .await;
        if let Err(error) = &loaded {
            tracing::warn!(topic = %partition.topic, partition = partition.index, %error, "loading the coordinator's partition failed; retrying");
        }
        loaded.is_ok()
    }

    /// Drops what the coordinator holds of a replicated internal partition.
    fn unload_coordinator(&self, partition: &Partition) {
        if partition.topic == super::txn::TXN_TOPIC {
            self.unload_txn_partition(partition.index);
        } else {
            self.unload_offsets_partition(partition.index);
        }
    }
}

/// Proposes a replica's report to the controller; None once the broker is gone.
async fn propose_report(
    broker: &Weak<Broker>,
    report: &Command,
) -> Option<std::result::Result<crate::replication::controller::Answer, String>> {
    let strong = broker.upgrade()?;
    let link = strong.cluster.get()?;
    Some(link.node.propose(report).await.map_err(|e| e.to_string()))
}
