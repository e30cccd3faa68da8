//! Consuming a run's records back with a single consumer and verifying each one.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::TOPIC_READY_TIMEOUT;
use crate::client::{ClientLog, Cluster};
use crate::records::{SEQUENCE_BYTES, WARMUP_SEQUENCE, pattern, pattern_shift};
use crate::runs::RunSpec;

/// Consume results: wall time from assign (the connections to the partition leaders already up)
/// to the last verified record.
#[derive(Debug)]
pub(crate) struct ConsumeStats {
    pub(crate) elapsed: Duration,
    pub(crate) bytes: u64,
}

/// Reads the topic back from offset 0 with `isolation.level=read_committed` (librdkafka's default)
/// and checks every record: each partition must hold its warm-up record, then exactly its
/// round-robin share of sequence numbers, in order, at consecutive offsets (increasing ones for
/// a transactional run, whose commit markers take offsets, and on replicated partitions, whose
/// raft control batches do), with intact bodies. The warm-up
/// records are not counted.
pub(crate) fn consume(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    spec: &RunSpec,
    deadline: Instant,
) -> Result<ConsumeStats> {
    let mut config = cluster.client_config();
    // librdkafka's consumer poll needs a group.id, but with assign() it never joins the group.
    config
        .set("group.id", format!("tidelog-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed")
        // librdkafka 2.0 (before fetch.queue.backoff.ms) stops fetching for ~0.5-1 s once a
        // partition's local queue passes these thresholds; set them high so the client never
        // idles while the broker has data (the fix its maintainers suggest).
        .set("queued.min.messages", "10000000")
        .set("queued.max.messages.kbytes", "2097151");
    let consumer: BaseConsumer<ClientLog> =
        BaseConsumer::from_config_and_context(&config, cluster.client_log("consumer"))
            .context("creating the consumer")?;
    let partition_count = usize::try_from(partitions).context("partition count")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(0))
            .context("building the assignment")?;
    }
    let pattern = pattern(spec.record_bytes);
    let has_markers = spec.mode.is_transactional();
    // Raft control batches also take offsets (increasing, not consecutive, offsets then).
    let offsets_may_skip = has_markers || cluster.replicated;
    let step = u64::try_from(partitions).context("partition count")?;
    let mut next_offset = vec![0i64; partition_count];
    let mut next_sequence = vec![WARMUP_SEQUENCE; partition_count];
    let mut warmup_count = 0usize;
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut error_count = 0u64;

    // Connect to every partition's leader outside the timed part, as the producer's warm-up
    // does: over SSL and SASL_SSL the handshakes would otherwise count as consume time.
    for partition in 0..partitions {
        consumer
            .fetch_watermarks(topic, partition, TOPIC_READY_TIMEOUT)
            .with_context(|| format!("connecting to the leader of partition {partition}"))?;
    }
    let started = Instant::now();
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    while received < spec.record_count || warmup_count < partition_count {
        if received.is_multiple_of(1024) {
            ensure!(
                Instant::now() < deadline,
                "overall timeout: consumed {received} of {} records (next offsets {next_offset:?})",
                spec.record_count
            );
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => {
                ensure!(
                    Instant::now() < deadline,
                    "overall timeout: consumed {received} of {} records (next offsets {:?})",
                    spec.record_count,
                    next_offset
                );
                continue;
            }
            Some(Err(error)) => {
                error_count += 1;
                if error_count <= 5 {
                    eprintln!("  consumer error: {error}");
                }
                ensure!(
                    error_count < 1000,
                    "too many consumer errors (last: {error})"
                );
                continue;
            }
            Some(Ok(message)) => message,
        };
        let partition = message.partition();
        let index = usize::try_from(partition)
            .ok()
            .filter(|&index| index < partition_count)
            .with_context(|| format!("record from unassigned partition {partition}"))?;
        let offset = message.offset();
        ensure!(
            offset == next_offset[index] || (offsets_may_skip && offset > next_offset[index]),
            "partition {partition}: expected offset {} but got {offset}",
            next_offset[index]
        );
        let value = message.payload().unwrap_or_default();
        ensure!(
            value.len() == spec.record_bytes,
            "partition {partition} offset {offset}: value is {} bytes, expected {}",
            value.len(),
            spec.record_bytes
        );
        let (head, body) = value.split_at(SEQUENCE_BYTES);
        let sequence = u64::from_le_bytes(head.try_into().context("sequence bytes")?);
        ensure!(
            sequence == next_sequence[index],
            "partition {partition} offset {offset}: expected record {} but got {sequence} \
             (missing, duplicated or reordered)",
            next_sequence[index]
        );
        let shift = pattern_shift(sequence);
        ensure!(
            body == &pattern[shift..shift + body.len()],
            "partition {partition} offset {offset}: body of record {sequence} is corrupt"
        );
        next_offset[index] = offset + 1;
        if sequence == WARMUP_SEQUENCE {
            next_sequence[index] = u64::try_from(index).context("partition index")?;
            warmup_count += 1;
        } else {
            next_sequence[index] += step;
            received += 1;
            bytes += value.len() as u64;
        }
    }
    let elapsed = started.elapsed();

    // No extra records: each partition's high watermark is exactly its share plus the warm-up
    // (plus, in a transactional run, the last commit marker).
    let marker_count = u64::from(has_markers);
    for (index, &end_offset) in next_offset.iter().enumerate() {
        let partition = i32::try_from(index).context("partition index")?;
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high_watermark)) => ensure!(
                high_watermark.abs_diff(end_offset) == marker_count,
                "partition {partition}: high watermark {high_watermark} but the last record read \
                 was at {}",
                end_offset - 1
            ),
            Err(error) => eprintln!("  warning: watermarks of partition {partition}: {error}"),
        }
    }
    Ok(ConsumeStats { elapsed, bytes })
}
