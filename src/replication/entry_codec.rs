//! Raft entries as Kafka v2 batches: a normal entry is its batch byte for byte; raft's blank and
//! membership entries are control batches of Tidelog's own control types, which every Kafka
//! client skips (ARCHITECTURE.md, "replication"). Pure functions over bytes.

use bytes::{Bytes, BytesMut};

use super::error::Error;
use super::types::{Entry, LogId, Membership, Payload, RecordBatch, Term};
use crate::storage::{self, BatchHeader};

/// Control record type of raft's blank entry (the first entry of a new leader's term).
/// Kafka's own types are 0 ABORT, 1 COMMIT, 2 LEADER_CHANGE, 3/4 SNAPSHOT_HEADER/FOOTER,
/// 5 KRAFT_VERSION, 6 KRAFT_VOTERS and grow from 0; clients treat any type they do not know as
/// "unknown, ignore" (Java `ControlRecordType.UNKNOWN`, librdkafka's default case, sarama's
/// `ControlRecordUnknown`), so ours sit far above Kafka's range.
pub(crate) const RAFT_BLANK_CONTROL_TYPE: i16 = 0x7400;
/// Control record type of a raft membership entry; the record value is the membership as JSON.
pub(crate) const RAFT_MEMBERSHIP_CONTROL_TYPE: i16 = 0x7401;
/// Control record type of a DeleteRecords entry: a normal entry (proposed like a batch, applied
/// by every replica in log order) whose value is Kafka's marker shape (version i16 0,
/// coordinator epoch i32 0, six bytes for sarama) followed by the new log start offset (i64).
pub(crate) const LOG_START_CONTROL_TYPE: i16 = 0x7402;
/// Timestamp of raft control batches: Kafka's "no timestamp", so they never move time-based
/// lookups or retention, and every replica writes the same bytes.
const RAFT_CONTROL_TIMESTAMP_MS: i64 = -1;
/// The value of a blank entry's control record: the shape of Kafka's marker value (version
/// i16 0, coordinator epoch i32 0). sarama (1.x) decodes those six bytes from every control
/// record, whatever its type, and fails the whole fetch on a shorter value; a membership
/// value (JSON) is always longer.
const BLANK_VALUE: [u8; 6] = [0; 6];
/// A membership value never needs more than this once decoded.
const MEMBERSHIP_BYTES_MAX: usize = 1 << 20;

/// The batch bytes to append for `payload` (its base offset and partitionLeaderEpoch are
/// set by the log at append). A normal entry must be one whole v2 batch that is not a raft
/// control batch.
pub(crate) fn batch_of(payload: &Payload) -> Result<BytesMut, Error> {
    match payload {
        Payload::Blank => Ok(control_batch(RAFT_BLANK_CONTROL_TYPE, &BLANK_VALUE)),
        Payload::Membership(membership) => {
            let value = serde_json::to_vec(membership).map_err(Error::membership_codec)?;
            Ok(control_batch(RAFT_MEMBERSHIP_CONTROL_TYPE, &value))
        }
        Payload::Normal(RecordBatch(bytes)) => {
            let header = BatchHeader::parse(bytes).map_err(Error::Storage)?;
            check_normal(bytes, &header)?;
            Ok(BytesMut::from(&bytes[..]))
        }
    }
}

/// A normal entry's data must be one whole v2 batch that is not a raft control batch.
fn check_normal(bytes: &[u8], header: &BatchHeader) -> Result<(), Error> {
    if header.total_len() != bytes.len() {
        return Err(Error::NotOneBatch {
            len: bytes.len(),
            header_len: header.total_len(),
        });
    }
    if raft_control_type(bytes)?.is_some() {
        return Err(Error::RaftControlTypeInData);
    }
    Ok(())
}

/// A normal entry's batch when it already starts at `base_offset` with leader epoch `epoch`,
/// so it can be stored as it is (checked as [`batch_of`] checks it); None otherwise.
pub(crate) fn stored_batch(
    payload: &Payload,
    base_offset: i64,
    epoch: i32,
) -> Result<Option<Bytes>, Error> {
    let Payload::Normal(RecordBatch(bytes)) = payload else {
        return Ok(None);
    };
    let header = BatchHeader::parse(bytes).map_err(Error::Storage)?;
    if header.base_offset != base_offset || header.partition_leader_epoch != epoch {
        return Ok(None);
    }
    check_normal(bytes, &header)?;
    Ok(Some(bytes.clone()))
}

/// `batch` as a log whose end is `end_offset` stores it as its next entry in `term`: base
/// offset and leader epoch set, in place, when `batch` holds its bytes alone (a produce
/// request's batch, copied out of its frame by validation). A leader stamps its proposals so:
/// its log then stores each as it is ([`stored_batch`]), without a copy, unless raft puts
/// another entry first (the log then sets them on a copy). A shared or short `batch` is
/// returned as it is.
pub(crate) fn stamped(batch: Bytes, end_offset: i64, term: Term) -> Bytes {
    let Ok(epoch) = i32::try_from(term) else {
        return batch;
    };
    match batch.try_into_mut() {
        Ok(mut owned) => {
            if owned.len() >= storage::BATCH_HEADER_LEN {
                storage::set_place(&mut owned, end_offset, epoch);
            }
            owned.freeze()
        }
        Err(shared) => shared,
    }
}

/// The batch of a DeleteRecords entry moving the log start to `offset`.
pub(crate) fn log_start_batch(offset: i64) -> Bytes {
    let mut value = BLANK_VALUE.to_vec();
    value.extend_from_slice(&offset.to_be_bytes());
    Bytes::from(storage::build_control_batch(
        LOG_START_CONTROL_TYPE,
        &value,
        RAFT_CONTROL_TIMESTAMP_MS,
    ))
}

/// The log start a DeleteRecords entry's batch moves to; None for any other batch.
pub(crate) fn log_start_of(batch: &[u8]) -> Option<i64> {
    let record = storage::read_control_record(batch, MEMBERSHIP_BYTES_MAX).ok()??;
    if record.control_type != LOG_START_CONTROL_TYPE {
        return None;
    }
    let offset: [u8; 8] = record.value.get(BLANK_VALUE.len()..)?.try_into().ok()?;
    Some(i64::from_be_bytes(offset))
}

/// The entry with `log_id` stored as `batch` (whole, as read from the segment).
pub(crate) fn entry_of(log_id: LogId, batch: Bytes) -> Result<Entry, Error> {
    let record = storage::read_control_record(&batch, MEMBERSHIP_BYTES_MAX)?;
    let payload = match record {
        Some(record) if record.control_type == RAFT_BLANK_CONTROL_TYPE => Payload::Blank,
        Some(record) if record.control_type == RAFT_MEMBERSHIP_CONTROL_TYPE => {
            let membership: Membership =
                serde_json::from_slice(&record.value).map_err(Error::membership_codec)?;
            Payload::Membership(membership)
        }
        _ => Payload::Normal(RecordBatch(batch)),
    };
    Ok(Entry { log_id, payload })
}

/// The raft control type of `batch`, if it is a raft control batch.
fn raft_control_type(batch: &[u8]) -> Result<Option<i16>, Error> {
    let record = storage::read_control_record(batch, MEMBERSHIP_BYTES_MAX)?;
    Ok(record
        .map(|record| record.control_type)
        .filter(|control_type| {
            [RAFT_BLANK_CONTROL_TYPE, RAFT_MEMBERSHIP_CONTROL_TYPE].contains(control_type)
        }))
}

fn control_batch(control_type: i16, value: &[u8]) -> BytesMut {
    let batch = storage::build_control_batch(control_type, value, RAFT_CONTROL_TIMESTAMP_MS);
    BytesMut::from(&batch[..])
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::replication::types::{RaftNode, log_id};
    use crate::storage::test_batches;

    #[track_caller]
    fn round_trip(payload: Payload) {
        let bytes = batch_of(&payload).expect("encode");
        let entry = entry_of(log_id(3, 9), bytes.freeze()).expect("decode");
        assert_eq!(entry.log_id, log_id(3, 9));
        assert_eq!(entry.payload, payload);
    }

    #[test]
    fn every_payload_kind_round_trips_through_its_batch() {
        round_trip(Payload::Blank);
        let nodes = BTreeMap::from([
            (
                1,
                RaftNode {
                    rpc_addr: "10.0.0.1:9093".into(),
                },
            ),
            (
                2,
                RaftNode {
                    rpc_addr: "10.0.0.2:9093".into(),
                },
            ),
        ]);
        let membership =
            Membership::new(vec![BTreeSet::from([1])], nodes).expect("valid membership");
        round_trip(Payload::Membership(membership));
        let data = Bytes::from(test_batches::build(3, 1_000, 10));
        round_trip(Payload::Normal(RecordBatch(data)));
        let marker = Bytes::from(storage::build_marker(true, 0, 7, 0, 1_000));
        round_trip(Payload::Normal(RecordBatch(marker)));
        let log_start = log_start_batch(1_234);
        assert_eq!(log_start_of(&log_start), Some(1_234));
        round_trip(Payload::Normal(RecordBatch(log_start)));
        assert_eq!(log_start_of(&test_batches::build(1, 0, 1)), None);
    }

    #[test]
    fn raft_control_values_are_as_long_as_a_marker_value() {
        let nodes = BTreeMap::from([(1, RaftNode::default())]);
        let membership =
            Membership::new(vec![BTreeSet::from([1])], nodes).expect("valid membership");
        for payload in [Payload::Blank, Payload::Membership(membership)] {
            let batch = batch_of(&payload).expect("encode");
            let record = storage::read_control_record(&batch, MEMBERSHIP_BYTES_MAX)
                .expect("readable")
                .expect("a control record");
            assert!(record.value.len() >= 6, "{payload:?}");
        }
        // Blank entries written before the value was set still read as blank.
        let old = storage::build_control_batch(RAFT_BLANK_CONTROL_TYPE, b"", -1);
        let entry = entry_of(log_id(1, 1), Bytes::from(old)).expect("decode");
        assert_eq!(entry.payload, Payload::Blank);
    }

    #[test]
    fn normal_data_must_be_one_batch_and_not_pose_as_a_raft_entry() {
        let two = [test_batches::build(1, 0, 1), test_batches::build(1, 0, 1)].concat();
        let blank = storage::build_control_batch(RAFT_BLANK_CONTROL_TYPE, b"", 0);
        for bytes in [two, blank, vec![1, 2, 3]] {
            let payload = Payload::Normal(RecordBatch(Bytes::from(bytes)));
            assert!(batch_of(&payload).is_err());
        }
    }
}
