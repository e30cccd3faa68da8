//! What a chaos run recorded: every write with its outcome, every read, the final drain of each
//! partition and each replica's stored log. Plain data; the checks live in `checks.rs`.

use std::collections::BTreeMap;
use std::fmt;

/// A topic partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Tp {
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

impl Tp {
    pub(crate) fn new(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: topic.to_owned(),
            partition,
        }
    }
}

impl fmt::Display for Tp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// What the client was told about a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged (acks=all) at this offset; a negative one when the client acknowledged it
    /// without an offset (librdkafka's implicit ack: a later request of the producer succeeded,
    /// so this earlier one, whose own answer was lost, was written too; the delivery report
    /// then carries `RD_KAFKA_OFFSET_INVALID`, -1001).
    Acked { offset: i64 },
    /// Definitely not written (the client never sent it).
    Failed { error: String },
    /// An error after it may have been sent (timeout, purge, broken connection): may or may not
    /// be in the log.
    Unknown { error: String },
}

/// One produced record. `value` is unique across the run.
#[derive(Clone, Debug)]
pub(crate) struct Write {
    pub(crate) value: Vec<u8>,
    pub(crate) tp: Tp,
    /// The producer instance (an idempotent producer's order holds within one instance).
    pub(crate) producer: String,
    /// Send order within the producer instance.
    pub(crate) seq: u64,
    pub(crate) outcome: Outcome,
}

/// One record a consumer returned.
#[derive(Clone, Debug)]
pub(crate) struct Read {
    pub(crate) reader: String,
    pub(crate) tp: Tp,
    pub(crate) offset: i64,
    pub(crate) value: Vec<u8>,
}

/// The final read of one partition from its start up to its high watermark, after every fault
/// was healed and the producers stopped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Drain {
    pub(crate) high_watermark: i64,
    /// (offset, value) in the order read.
    pub(crate) records: Vec<(i64, Vec<u8>)>,
    /// Whether the read reached the high watermark; if not, `error` says why.
    pub(crate) complete: bool,
    pub(crate) error: Option<String>,
}

/// One record batch as stored in a replica's segment files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    /// Whole batch, from its base offset field to its end.
    pub(crate) bytes: Vec<u8>,
    pub(crate) crc_ok: bool,
    pub(crate) is_control: bool,
    /// (offset, value) of each record when the batch is uncompressed and decodes; None otherwise.
    pub(crate) records: Option<Vec<(i64, Option<Vec<u8>>)>>,
}

/// One replica's log of one partition: every batch of its segment files in offset order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplicaLog {
    pub(crate) broker: String,
    pub(crate) batches: Vec<StoredBatch>,
    /// Why reading stopped early (a torn tail, an unreadable file), if it did.
    pub(crate) problem: Option<String>,
}

impl ReplicaLog {
    /// One past the last offset stored (the log end offset).
    pub(crate) fn end_offset(&self) -> Option<i64> {
        self.batches.last().map(|batch| batch.last_offset + 1)
    }
}

/// Everything the checker looks at.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub(crate) writes: Vec<Write>,
    pub(crate) reads: Vec<Read>,
    pub(crate) drains: BTreeMap<Tp, Drain>,
    /// Replica logs per partition; empty when they were not collected.
    pub(crate) replicas: BTreeMap<Tp, Vec<ReplicaLog>>,
}

/// A value for messages: text when printable, else hex, cut to a readable length.
pub(crate) fn show(value: &[u8]) -> String {
    const SHOWN_MAX: usize = 40;
    let text = String::from_utf8_lossy(value);
    // Workload values are `<id> <filler>`: the id says it all.
    let text = text.split(' ').next().unwrap_or_default();
    if text.chars().count() > SHOWN_MAX {
        format!("{}…", text.chars().take(SHOWN_MAX).collect::<String>())
    } else {
        format!("{text:?}")
    }
}
