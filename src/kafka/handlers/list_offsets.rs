//! ListOffsets (key 2), v1-v10: earliest, latest, max-timestamp and by-time lookups. The broker
//! finds the batch; this file decodes its records to pick the exact offset and timestamp.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::compression::{self, Decompressor};
use kafka_protocol::messages;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};

use super::leader_epoch_error;
use crate::auth::acl::Operation;
use crate::broker::{Isolation, ListedOffset, OffsetSpec};
use crate::kafka::Context;
use crate::kafka::error_code;

/// Special timestamps of the request (ListOffsetsRequest.json).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// `isolation_level` of a read_committed request.
const ISOLATION_READ_COMMITTED: i8 = 1;
/// Positions in a v2 record batch header.
const LEADER_EPOCH_POSITION: usize = 12;
const ATTRIBUTES_POSITION: usize = 21;
const MAX_TIMESTAMP_POSITION: usize = 35;
const RECORD_COUNT_POSITION: usize = 57;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 1 << 3;
/// The smallest encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const RECORD_BYTES_MIN: usize = 7;

/// What a partition's answer holds: offset, timestamp, leader epoch.
pub(super) type Found = (i64, i64, i32);

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ListOffsetsRequest,
) -> messages::ListOffsetsResponse {
    // v2+: read_committed sees up to the last stable offset.
    let isolation = if version >= 2 && request.isolation_level == ISOLATION_READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let info = ctx.broker.topic(&topic.name);
        let denied = !ctx.allowed_on_topic(Operation::Describe, topic.name.as_str());
        let partitions = topic
            .partitions
            .into_iter()
            .map(|p| {
                let ours = info.as_ref().and_then(|info| {
                    info.partitions
                        .iter()
                        .find(|o| o.partition == p.partition_index)
                });
                let result = match ours {
                    _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    Some(ours) => {
                        match leader_epoch_error(p.current_leader_epoch, ours.leader_epoch) {
                            Some(error) => Err(error),
                            None => lookup(
                                ctx,
                                &topic.name,
                                p.partition_index,
                                p.timestamp,
                                version,
                                ours.leader_epoch,
                                isolation,
                            ),
                        }
                    }
                };
                partition_response(version, p.partition_index, result)
            })
            .collect();
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    messages::ListOffsetsResponse::default().with_topics(topics)
}

pub(super) fn lookup(
    ctx: &Context,
    topic: &str,
    partition: i32,
    timestamp: i64,
    version: i16,
    leader_epoch: i32,
    isolation: Isolation,
) -> Result<Option<Found>, ResponseError> {
    let spec = match timestamp {
        LATEST => OffsetSpec::Latest,
        EARLIEST => OffsetSpec::Earliest,
        // Without tiered storage the local log start is the log start.
        EARLIEST_LOCAL if version >= 8 => OffsetSpec::Earliest,
        // Without tiered storage nothing is tiered.
        LATEST_TIERED if version >= 9 => return Ok(None),
        MAX_TIMESTAMP if version >= 7 => OffsetSpec::MaxTimestamp,
        t if t >= 0 => OffsetSpec::Timestamp(t),
        _ => return Err(ResponseError::InvalidRequest),
    };
    let listed = ctx
        .broker
        .list_offset_isolated(topic, partition, spec, isolation)
        .map_err(|err| {
            tracing::debug!(topic, partition, error = %err, "list offsets failed");
            error_code::for_broker_error(&err)
        })?;
    match listed {
        ListedOffset::Exact { offset, timestamp } => Ok(Some((offset, timestamp, leader_epoch))),
        ListedOffset::NotFound => Ok(None),
        ListedOffset::InBatch { batch } => {
            let target = match spec {
                OffsetSpec::Timestamp(t) => Some(t),
                _ => None,
            };
            locate(batch, target).map_err(|reason| {
                tracing::warn!(topic, partition, %reason, "stored batch could not be decoded");
                ResponseError::UnknownServerError
            })
        }
    }
}

fn partition_response(
    version: i16,
    partition: i32,
    result: Result<Option<Found>, ResponseError>,
) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default()
        .with_partition_index(partition)
        .with_timestamp(-1)
        .with_offset(-1);
    match result {
        Err(error) => response.with_error_code(error.code()),
        Ok(None) => response.with_error_code(error_code::NONE),
        Ok(Some((offset, timestamp, leader_epoch))) => {
            let response = response
                .with_error_code(error_code::NONE)
                .with_offset(offset)
                .with_timestamp(timestamp);
            // The field exists from v4 on; kafka-protocol refuses to encode it earlier.
            if version >= 4 {
                response.with_leader_epoch(leader_epoch)
            } else {
                response
            }
        }
    }
}

/// Picks the record of `batch` the query asks for: the first with a timestamp >= `target`, or
/// (no target) the first with the largest timestamp. In a LogAppendTime batch every record
/// carries the batch's max timestamp, so the first record answers both.
fn locate(mut batch: Bytes, target: Option<i64>) -> Result<Option<Found>, String> {
    let leader_epoch = read_i32(&batch, LEADER_EPOCH_POSITION)?;
    let attributes = read_i16(&batch, ATTRIBUTES_POSITION)?;
    let max_timestamp = read_i64(&batch, MAX_TIMESTAMP_POSITION)?;
    let record_count = usize::try_from(read_i32(&batch, RECORD_COUNT_POSITION)?)
        .map_err(|_| "negative record count".to_owned())?;
    let records = decode_records(&mut batch, record_count)?.records;
    if attributes & ATTRIBUTE_LOG_APPEND_TIME != 0 {
        let hit = records
            .first()
            .filter(|_| target.is_none_or(|t| max_timestamp >= t));
        return Ok(hit.map(|r| (r.offset, max_timestamp, leader_epoch)));
    }
    let hit = match target {
        Some(t) => records.iter().find(|r| r.timestamp >= t),
        // `max_by_key` keeps the last maximum; reversing keeps the first.
        None => records.iter().rev().max_by_key(|r| r.timestamp),
    };
    Ok(hit.map(|r| (r.offset, r.timestamp, leader_epoch)))
}

/// Decodes one stored batch. The record count comes from disk, written by a client: it is
/// checked against the decompressed size before the decoder reserves room for that many records.
fn decode_records(batch: &mut Bytes, record_count: usize) -> Result<RecordSet, String> {
    // kafka-protocol's decompression hook speaks anyhow; errors become strings right here.
    let decompress = |compressed: &mut Bytes, codec: Compression| -> anyhow::Result<Bytes> {
        let take = |out: &mut Bytes| Ok(std::mem::take(out));
        let plain = match codec {
            Compression::None => std::mem::take(compressed),
            Compression::Gzip => compression::Gzip::decompress(compressed, take)?,
            Compression::Snappy => compression::Snappy::decompress(compressed, take)?,
            Compression::Lz4 => compression::Lz4::decompress(compressed, take)?,
            Compression::Zstd => compression::Zstd::decompress(compressed, take)?,
        };
        if record_count.saturating_mul(RECORD_BYTES_MIN) > plain.len() {
            anyhow::bail!("{record_count} records cannot fit in {} bytes", plain.len());
        }
        Ok(plain)
    };
    RecordBatchDecoder::decode_with_custom_compression(batch, Some(decompress))
        .map_err(|err| format!("{err:#}"))
}

fn read_array<const N: usize>(batch: &[u8], position: usize) -> Result<[u8; N], String> {
    batch
        .get(position..position + N)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or_else(|| format!("batch of {} bytes is shorter than its header", batch.len()))
}

fn read_i16(batch: &[u8], position: usize) -> Result<i16, String> {
    read_array(batch, position).map(i16::from_be_bytes)
}

fn read_i32(batch: &[u8], position: usize) -> Result<i32, String> {
    read_array(batch, position).map(i32::from_be_bytes)
}

fn read_i64(batch: &[u8], position: usize) -> Result<i64, String> {
    read_array(batch, position).map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;

    /// Offsets minus sequences must be constant, or the encoder starts a new batch.
    fn record(offset: i64, timestamp: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 7,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: (offset - 100) as i32,
            timestamp,
            key: None,
            value: Some(Bytes::from_static(b"value")),
            headers: Default::default(),
        }
    }

    fn batch(timestamps: &[i64], compression: Compression) -> Bytes {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| record(100 + i as i64, ts))
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodable");
        buf.freeze()
    }

    #[test]
    fn locate_finds_first_record_at_or_after_target_in_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let stored = batch(&[10, 30, 20, 30, 40], codec);
            let found = |target| locate(stored.clone(), target).expect("decodable");
            assert_eq!(found(Some(5)), Some((100, 10, 7)), "{codec:?}");
            assert_eq!(found(Some(25)), Some((101, 30, 7)), "{codec:?}");
            assert_eq!(found(Some(40)), Some((104, 40, 7)), "{codec:?}");
            assert_eq!(found(Some(41)), None, "{codec:?}");
            assert_eq!(found(None), Some((104, 40, 7)), "max timestamp, {codec:?}");
        }
    }

    #[test]
    fn locate_max_timestamp_keeps_the_first_of_equal_maxima() {
        let stored = batch(&[50, 10, 50], Compression::None);
        assert_eq!(locate(stored, None), Ok(Some((100, 50, 7))));
    }

    #[test]
    fn locate_in_log_append_time_batch_uses_the_batch_timestamp() {
        let mut stored = BytesMut::from(&batch(&[1, 2, 3], Compression::None)[..]);
        // Stamp as the broker does: attribute bit 3, max_timestamp, and a new CRC.
        let attributes = i16::from_be_bytes([stored[21], stored[22]]) | ATTRIBUTE_LOG_APPEND_TIME;
        stored[21..23].copy_from_slice(&attributes.to_be_bytes());
        stored[35..43].copy_from_slice(&999i64.to_be_bytes());
        let crc = crc32c::crc32c(&stored[21..]);
        stored[17..21].copy_from_slice(&crc.to_be_bytes());
        let stored = stored.freeze();
        assert_eq!(locate(stored.clone(), Some(500)), Ok(Some((100, 999, 7))));
        assert_eq!(locate(stored.clone(), None), Ok(Some((100, 999, 7))));
        assert_eq!(locate(stored, Some(1000)), Ok(None));
    }

    #[test]
    fn locate_rejects_forged_record_count_without_reserving_it() {
        let mut stored = BytesMut::from(&batch(&[1], Compression::Gzip)[..]);
        stored[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&stored[21..]);
        stored[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(locate(stored.freeze(), Some(0)).is_err());
    }

    #[test]
    fn locate_on_truncated_batch_is_an_error() {
        let stored = batch(&[1, 2], Compression::None);
        for cut in [0, 10, 40, 60, stored.len() - 1] {
            assert!(
                locate(stored.slice(..cut), Some(0)).is_err(),
                "cut at {cut}"
            );
        }
    }
}
