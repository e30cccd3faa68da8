//! The final drain: after every fault healed and the producers stopped, read each partition from
//! its start to its high watermark with a fresh consumer (no group offsets), bounded by a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::checker::{Drain, Tp};
use crate::system::{Target, client_config};

const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// Drains every partition of `target`; a partition that cannot be read to its high watermark by
/// `deadline` is returned incomplete with the reason.
pub(crate) fn drain(target: &Target, deadline: Instant) -> anyhow::Result<BTreeMap<Tp, Drain>> {
    let consumer: BaseConsumer = client_config(&target.bootstrap)
        .set("group.id", format!("chaos-drain-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_uncommitted")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .context("create the drain consumer")?;
    let mut drains: BTreeMap<Tp, Drain> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..target.partitions {
        let tp = Tp::new(&target.topic, partition);
        let mut drain = Drain::default();
        match high_watermark(&consumer, &tp, deadline) {
            Ok(high) => drain.high_watermark = high,
            Err(error) => drain.error = Some(error),
        }
        if drain.error.is_none() {
            assignment
                .add_partition_offset(&target.topic, partition, Offset::Beginning)
                .context("build the drain assignment")?;
        }
        drains.insert(tp, drain);
    }
    consumer.assign(&assignment).context("assign the drain")?;
    let mut last_error = None;
    // The consumer's positions: a partition whose log ends with a control batch (a raft leader's
    // blank entry) is read to its end once the position passes it, with no record to show.
    let mut positions: BTreeMap<Tp, i64> = BTreeMap::new();
    // The offset after the last record read of each partition, kept as records come (a scan
    // of every record read at each poll made the drain quadratic: 600,000 records outlasted
    // its deadline).
    let mut read_to: BTreeMap<Tp, i64> = BTreeMap::new();
    loop {
        if let Ok(list) = consumer.position() {
            for element in list.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    positions.insert(Tp::new(element.topic(), element.partition()), offset);
                }
            }
        }
        let pending = drains
            .iter()
            .any(|(tp, d)| d.error.is_none() && !reached(d, read_to.get(tp), positions.get(tp)));
        if !pending || Instant::now() >= deadline {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let tp = Tp::new(message.topic(), message.partition());
                if let Some(drain) = drains.get_mut(&tp) {
                    let value = message.payload().unwrap_or_default().to_vec();
                    drain.records.push((message.offset(), value));
                    let next = read_to.entry(tp).or_insert(0);
                    *next = (*next).max(message.offset() + 1);
                }
            }
            Some(Err(error)) => last_error = Some(error.to_string()),
            None => {}
        }
    }
    for (tp, drain) in drains.iter_mut() {
        drain.complete =
            drain.error.is_none() && reached(drain, read_to.get(tp), positions.get(tp));
        if !drain.complete && drain.error.is_none() {
            drain.error = Some(format!(
                "deadline passed{}",
                last_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" (last error: {e})"))
            ));
        }
    }
    Ok(drains)
}

/// Whether the read of a partition reached its high watermark: by the records read (up to
/// `read_to`) or by the consumer's position (past a trailing control batch).
fn reached(drain: &Drain, read_to: Option<&i64>, position: Option<&i64>) -> bool {
    let next = read_to.copied().unwrap_or(0);
    next.max(position.copied().unwrap_or(0)) >= drain.high_watermark
}

fn high_watermark(consumer: &BaseConsumer, tp: &Tp, deadline: Instant) -> Result<i64, String> {
    loop {
        match consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(5)) {
            Ok((_, high)) => return Ok(high),
            Err(error) if Instant::now() >= deadline => {
                return Err(format!("no high watermark: {error}"));
            }
            Err(_) => std::thread::sleep(RETRY_INTERVAL),
        }
    }
}
