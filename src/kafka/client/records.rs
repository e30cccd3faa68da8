//! Producing and reading records: Produce (acks=all) to each partition's leader, Fetch from it,
//! ListOffsets for a partition's earliest, latest or by-time offset. Kafka's default partitioner
//! (murmur2 of the key) places keyed records where Java and librdkafka clients would.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::Serialize;

use super::error::ClientError;
use super::metadata::topic_name;
use super::session::{Client, Target};

/// Produce v9: by topic name, flexible (v13 addresses topics by id).
const PRODUCE_VERSION: i16 = 9;
/// Fetch v12: by topic name (v13 addresses topics by id).
const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 7;
/// acks=all.
const ACKS_ALL: i16 = -1;
/// How long a fetch waits at the leader for records to arrive.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bytes one fetch asks for.
const FETCH_MAX_BYTES: i32 = 4 * 1024 * 1024;
/// read_uncommitted: every record of the log below the high watermark.
const READ_UNCOMMITTED: i8 = 0;
/// Length of a record batch header up to and including its length field.
const BATCH_LENGTH_END: usize = 12;

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutRecord {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct InRecord {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    #[serde(skip)]
    pub(crate) key: Option<Bytes>,
    #[serde(skip)]
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

/// What one fetch of one partition returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub(crate) records: Vec<InRecord>,
    /// Where the next fetch starts (past control batches and records skipped).
    pub(crate) next_offset: i64,
    pub(crate) high_watermark: i64,
}

/// Which offset ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetSpec {
    Earliest,
    Latest,
}

/// Kafka's murmur2 (as in `Utils.murmur2`), the hash of the default partitioner.
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ len;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(&first) = rest.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
pub(crate) fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Appends `records` to `partition` of `topic` with acks=all; returns the first record's offset.
pub(crate) fn produce(
    client: &mut Client,
    topic: &str,
    partition: i32,
    records: &[OutRecord],
) -> Result<i64, ClientError> {
    let batch = encode_batch(records)?;
    let timeout_ms = client.timeout_ms();
    let request = ProduceRequest::default()
        .with_acks(ACKS_ALL)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ]),
        ]);
    client.retry("Produce", |client| {
        let leader = client.leader(topic, partition)?;
        let response = client.call(Target::Broker(leader), &request, PRODUCE_VERSION)?;
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::protocol("Produce answered without the partition"))?;
        ClientError::check_with(
            answer.error_code,
            format!("producing to {topic}-{partition}"),
            answer.error_message.as_deref(),
        )?;
        Ok(answer.base_offset)
    })
}

fn encode_batch(records: &[OutRecord]) -> Result<Bytes, ClientError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let records: Vec<Record> = records
        .iter()
        .zip(0i32..)
        .map(|(r, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(offset),
            // The encoder keeps records whose offset - sequence agree in one batch, and writes
            // the first record's sequence as the batch's: -1, not idempotent.
            sequence: offset - 1,
            timestamp: now,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
        .map_err(|e| ClientError::Invalid(format!("encoding the records: {e}")))?;
    Ok(buf.freeze())
}

/// Reads records of `partition` of `topic` from `offset` (waits up to half a second for some).
pub(crate) fn fetch(
    client: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Fetched, ClientError> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(READ_UNCOMMITTED)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(FETCH_MAX_BYTES),
                ]),
        ]);
    let data = client.retry("Fetch", |client| {
        let leader = client.leader(topic, partition)?;
        let response = client.call(Target::Broker(leader), &request, FETCH_VERSION)?;
        ClientError::check(response.error_code, format!("fetching {topic}-{partition}"))?;
        let data = response
            .responses
            .into_iter()
            .filter(|t| t.topic.as_str() == topic)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::protocol("Fetch answered without the partition"))?;
        ClientError::check(
            data.error_code,
            format!("fetching {topic}-{partition} at offset {offset}"),
        )?;
        Ok(data)
    })?;
    let mut fetched = Fetched {
        records: Vec::new(),
        next_offset: offset,
        high_watermark: data.high_watermark,
    };
    if let Some(bytes) = data.records {
        decode_batches(bytes, partition, &mut fetched)?;
    }
    Ok(fetched)
}

/// Decodes every whole batch of `bytes` (a fetch may end inside one), keeping the data records
/// at or after `fetched.next_offset` and moving it past every batch read.
fn decode_batches(
    mut bytes: Bytes,
    partition: i32,
    fetched: &mut Fetched,
) -> Result<(), ClientError> {
    while bytes.len() >= BATCH_LENGTH_END {
        let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(BATCH_LENGTH_END))
            .ok_or_else(|| ClientError::protocol("a record batch of negative length"))?;
        if total > bytes.len() {
            break;
        }
        let mut batch = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::protocol(format!("decoding a record batch: {e}")))?;
        for record in set.records {
            let next = record.offset + 1;
            if !record.control && record.offset >= fetched.next_offset {
                fetched.records.push(InRecord {
                    partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                });
            }
            fetched.next_offset = fetched.next_offset.max(next);
        }
    }
    Ok(())
}

/// The offset `spec` names in `partition` of `topic`.
pub(crate) fn list_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> Result<i64, ClientError> {
    let timestamp = match spec {
        OffsetSpec::Earliest => -2,
        OffsetSpec::Latest => -1,
    };
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(READ_UNCOMMITTED)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(timestamp),
                ]),
        ]);
    client.retry("ListOffsets", |client| {
        let leader = client.leader(topic, partition)?;
        let response = client.call(Target::Broker(leader), &request, LIST_OFFSETS_VERSION)?;
        let answer = response
            .topics
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::protocol("ListOffsets answered without the partition"))?;
        ClientError::check(answer.error_code, format!("offsets of {topic}-{partition}"))?;
        Ok(answer.offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn partitions_are_in_range() {
        for key in [&b""[..], b"a", b"key-1", b"\xff\xfe"] {
            assert!((0..7).contains(&partition_for_key(key, 7)));
        }
    }

    #[test]
    fn a_batch_round_trips_and_a_cut_batch_is_left_for_the_next_fetch() {
        let records = [
            OutRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"one")),
            },
            OutRecord {
                key: None,
                value: Some(Bytes::from_static(b"two")),
            },
        ];
        let batch = encode_batch(&records).expect("encodes");
        let mut fetched = Fetched {
            records: Vec::new(),
            next_offset: 1,
            high_watermark: 2,
        };
        decode_batches(batch.clone(), 3, &mut fetched).expect("decodes");
        assert_eq!(fetched.next_offset, 2);
        assert_eq!(
            fetched.records.len(),
            1,
            "offset 0 is before the fetch offset"
        );
        assert_eq!(fetched.records[0].value.as_deref(), Some(&b"two"[..]));
        assert_eq!(fetched.records[0].partition, 3);
        let mut cut = Fetched {
            records: Vec::new(),
            next_offset: 0,
            high_watermark: 2,
        };
        decode_batches(batch.slice(..batch.len() - 1), 0, &mut cut).expect("stops at the cut");
        assert!(cut.records.is_empty());
        assert_eq!(cut.next_offset, 0);
    }
}
