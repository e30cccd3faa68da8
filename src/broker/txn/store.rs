//! Persistence of the transaction coordinator: `__transaction_state` (created on start), each
//! transition written as one record through the ordinary append path (acks=all), and every
//! transactional id rebuilt from the topic on start, before clients are served.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::metadata::{TxnMetadata, TxnTransit};
use super::record;
use super::state::TxnState;
use crate::broker::error::{Error, Result};
use crate::broker::{Acks, Broker, ListedOffset, OffsetSpec, TopicPartition, now_ms};
use crate::limits;
use crate::storage::{self, BatchHeader};

/// The internal topic holding every transactional id's state.
pub(crate) const TXN_TOPIC: &str = "__transaction_state";
/// The internal topic of committed offsets (the group coordinator owns it).
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's configs of the topic: compacted, 100 MiB segments
/// (`transaction.state.log.segment.bytes`).
const TXN_TOPIC_CONFIGS: [(&str, &str); 2] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "104857600"),
];

/// Kafka's choice of coordinator partition for a key (a transactional id or a group id):
/// `abs(key.hashCode()) % partitions` with Java's String.hashCode over UTF-16 code units.
pub(crate) fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions.max(1)
}

impl Broker {
    fn partition_count(&self, topic: &str, default: i32) -> i32 {
        self.topic(topic).map_or(default, |t| {
            i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
        })
    }

    /// The offsets partition a group's commits go to.
    pub(super) fn offsets_partition_for(&self, group_id: &str) -> TopicPartition {
        let partitions =
            self.partition_count(OFFSETS_TOPIC, self.settings.groups.offsets_topic_partitions);
        (
            OFFSETS_TOPIC.to_owned(),
            partition_for(group_id, partitions),
        )
    }

    /// The epoch this broker coordinates `transactional_id` in, which its markers carry (a
    /// partition refuses the markers of a coordinator a newer one replaced): the raft term of
    /// its replicated `__transaction_state` partition, else the single node's constant.
    pub(super) fn coordinator_epoch(&self, transactional_id: &str) -> i32 {
        let partitions =
            self.partition_count(TXN_TOPIC, self.settings.transactions.state_topic_partitions);
        self.partition(TXN_TOPIC, partition_for(transactional_id, partitions))
            .ok()
            .and_then(|(_, target)| target.raft().map(|group| group.leadership().term))
            .map_or(super::markers::COORDINATOR_EPOCH, |term| {
                i32::try_from(term).unwrap_or(i32::MAX)
            })
    }

    /// Appends a transition of `transactional_id` (acks=all) and waits until it is durable.
    pub(super) async fn write_transit(
        &self,
        transactional_id: &str,
        transit: &TxnTransit,
    ) -> Result<()> {
        let partitions =
            self.partition_count(TXN_TOPIC, self.settings.transactions.state_topic_partitions);
        let record = storage::Record {
            key: Some(record::encode_key(transactional_id)),
            value: record::encode_value(transit),
        };
        let batch = storage::build_batch(&[record], now_ms());
        let partition = partition_for(transactional_id, partitions);
        let pending = self.append_internal(TXN_TOPIC, partition, Bytes::from(batch), Acks::All)?;
        pending.wait().await.map(|_| ())
    }

    /// Creates `__transaction_state` if missing, rebuilds every transactional id from it, then
    /// starts coordinating: transactions caught between their prepare and completion get their
    /// markers written, and the timer task starts. Runs before the listener accepts clients.
    pub(crate) fn open_transactions(self: &Arc<Self>) -> Result<()> {
        if self.topic(TXN_TOPIC).is_none() {
            let partitions = Some(self.settings.transactions.state_topic_partitions);
            let configs: Vec<(String, Option<String>)> = TXN_TOPIC_CONFIGS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .collect();
            self.create_topic_local(TXN_TOPIC, partitions, None, &configs, false)?;
        }
        let mut txns: BTreeMap<String, TxnMetadata> = BTreeMap::new();
        let mut record_count = 0usize;
        let partitions =
            self.partition_count(TXN_TOPIC, self.settings.transactions.state_topic_partitions);
        for partition in 0..partitions {
            record_count += self.load_txns(partition, &mut txns)?;
        }
        let prepared = prepared(&txns);
        tracing::info!(
            transactional_ids = txns.len(),
            records = record_count,
            completing = prepared.len(),
            "transaction coordinator loaded"
        );
        {
            let mut state = self.transactions.lock();
            state.txns = txns;
            state.is_active = true;
        }
        self.complete_loaded(prepared);
        super::timer::spawn(self);
        Ok(())
    }

    /// Completes transactions found between their prepare and completion at a load.
    fn complete_loaded(self: &Arc<Self>, prepared: Vec<String>) {
        for transactional_id in prepared {
            let broker = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = broker.complete_transaction(&transactional_id).await {
                    tracing::warn!(%transactional_id, %error, "completing a loaded transaction failed; the timer retries");
                }
            });
        }
    }

    /// A replicated `__transaction_state` partition this broker now leads (its log holds every
    /// committed transition): rebuilds its transactional ids from the log, in place of
    /// whatever was held of them, and completes the prepared ones.
    pub(crate) fn load_txn_partition(self: &Arc<Self>, partition: i32) -> Result<()> {
        let mut loaded: BTreeMap<String, TxnMetadata> = BTreeMap::new();
        let record_count = self.load_txns(partition, &mut loaded)?;
        let prepared = prepared(&loaded);
        tracing::info!(
            partition,
            transactional_ids = loaded.len(),
            records = record_count,
            completing = prepared.len(),
            "transaction state partition loaded: coordinating its transactional ids"
        );
        let partitions =
            self.partition_count(TXN_TOPIC, self.settings.transactions.state_topic_partitions);
        let mut state = self.transactions.lock();
        state
            .txns
            .retain(|id, _| partition_for(id, partitions) != partition);
        state.txns.extend(loaded);
        drop(state);
        self.complete_loaded(prepared);
        Ok(())
    }

    /// Rebuilds the transactional ids of `__transaction_state` partition `partition` from its
    /// log into `txns`; returns how many records it read.
    fn load_txns(&self, partition: i32, txns: &mut BTreeMap<String, TxnMetadata>) -> Result<usize> {
        let records = self.read_records(TXN_TOPIC, partition)?;
        let record_count = records.len();
        for record in records {
            apply(txns, record);
        }
        Ok(record_count)
    }

    /// A replicated `__transaction_state` partition this broker no longer leads: forgets its
    /// transactional ids (their producers get NOT_COORDINATOR and find the new coordinator).
    pub(crate) fn unload_txn_partition(&self, partition: i32) {
        let partitions =
            self.partition_count(TXN_TOPIC, self.settings.transactions.state_topic_partitions);
        self.transactions
            .lock()
            .txns
            .retain(|id, _| partition_for(id, partitions) != partition);
    }

    /// Every record of one partition of an internal topic, below its high watermark.
    fn read_records(&self, topic: &str, partition: i32) -> Result<Vec<storage::Record>> {
        let mut offset = match self.list_offset(topic, partition, OffsetSpec::Earliest)? {
            ListedOffset::Exact { offset, .. } => offset,
            _ => 0,
        };
        let mut out = Vec::new();
        loop {
            let fetched =
                self.fetch(topic, partition, offset, limits::TXN_LOAD_READ_BYTES, true)?;
            if fetched.records.is_empty() {
                return Ok(out);
            }
            let mut rest: &[u8] = &fetched.records;
            let mut next = offset;
            while let Ok(header) = BatchHeader::parse(rest) {
                next = next.max(header.last_offset() + 1);
                rest = rest.get(header.total_len()..).unwrap_or_default();
            }
            let records =
                storage::read_records(&fetched.records, limits::TXN_LOAD_DECODED_BYTES_MAX)
                    .map_err(|source| Error::Storage {
                        topic: topic.to_owned(),
                        partition,
                        source,
                    })?;
            out.extend(
                records
                    .into_iter()
                    .filter(|(o, _)| *o >= offset)
                    .map(|(_, r)| r),
            );
            if next <= offset {
                return Ok(out);
            }
            offset = next;
        }
    }
}

/// The transactional ids caught between their prepare and completion.
fn prepared(txns: &BTreeMap<String, TxnMetadata>) -> Vec<String> {
    txns.values()
        .filter(|meta| matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
        .map(|meta| meta.transactional_id.clone())
        .collect()
}

/// Applies one stored record: the last value of a key wins, a tombstone removes the id.
fn apply(txns: &mut BTreeMap<String, TxnMetadata>, stored: storage::Record) {
    let Some(transactional_id) = stored.key.as_deref().map(record::decode_key) else {
        tracing::warn!("skipping a transaction state record without a key");
        return;
    };
    let transactional_id = match transactional_id {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%error, "skipping a transaction state record");
            return;
        }
    };
    match stored.value.as_deref().map(record::decode_value) {
        None => {
            txns.remove(&transactional_id);
        }
        Some(Ok(transit)) => {
            let meta = TxnMetadata::from_transit(&transactional_id, transit);
            txns.insert(transactional_id, meta);
        }
        Some(Err(error)) => {
            tracing::warn!(%transactional_id, %error, "skipping a transaction state record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_matches_java_string_hash_code() {
        // "group".hashCode() == 98629247 in Java.
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert_eq!(partition_for("", 8), 0);
        for id in ["a", "txn-1", "\u{e9}t\u{e9}"] {
            assert!((0..8).contains(&partition_for(id, 8)));
        }
    }
}
