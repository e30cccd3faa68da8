//! Data path: Produce (including the hand-built v0-v2 requests), Fetch, ListOffsets and
//! OffsetForLeaderEpoch against `TOPIC`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, BrokerId, RequestHeader, fetch_request, list_offsets_request,
    offset_for_leader_epoch_request, produce_request,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use uuid::Uuid;

use super::{
    ABSENT, ABSENT_ID, NONE, PARTITION_COUNT, Sent, Sweep, TOPIC, encode_sized, exactly, respond,
    response_body, text, topic_name,
};
use crate::kafka::versions;

/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

fn compression(version: i16) -> Compression {
    match version % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

/// One v2 record batch, offsets from 0 as a client sends them.
pub(super) fn record_batch(records: &[Sent], compression: Compression) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, sent)| {
            let delta = i32::try_from(i).expect("small");
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(delta),
                // Offset minus sequence stays constant, so the encoder keeps one batch; the
                // base sequence is -1 (not idempotent).
                sequence: delta - 1,
                timestamp: sent.timestamp,
                key: sent.key.clone(),
                value: sent.value.clone(),
                headers: sent.headers.iter().cloned().collect(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("batch encodes");
    buf.freeze()
}

/// Decodes fetched record bytes into what was sent.
#[track_caller]
fn received(records: Option<Bytes>, what: &str) -> Vec<Sent> {
    let mut records = records.unwrap_or_else(|| panic!("{what}: null records"));
    let sets = RecordBatchDecoder::decode_all(&mut records)
        .unwrap_or_else(|err| panic!("{what}: records: {err:#}"));
    sets.into_iter()
        .flat_map(|set| set.records)
        .map(|r| Sent {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().collect(),
        })
        .collect()
}

pub(super) async fn produce(sweep: &mut Sweep, version: i16) {
    if version < versions::PRODUCE_DECODED_MIN {
        return produce_legacy(sweep, version).await;
    }
    // Partition p gets p + 2 records.
    let sent: Vec<Vec<Sent>> = (0..sweep.produced.len())
        .map(|p| sweep.next_records(p, version, p + 2))
        .collect();
    let data = |p: usize, records: &[Sent]| {
        produce_request::PartitionProduceData::default()
            .with_index(i32::try_from(p).expect("small"))
            .with_records(Some(record_batch(records, compression(version))))
    };
    let topic = produce_request::TopicProduceData::default()
        .with_partition_data(sent.iter().enumerate().map(|(p, r)| data(p, r)).collect());
    let absent =
        produce_request::TopicProduceData::default().with_partition_data(vec![data(0, &sent[0])]);
    // v13 addresses topics by id only.
    let (topic, absent, unknown) = if version >= 13 {
        let topic = topic.with_topic_id(sweep.topic_id);
        (
            topic,
            absent.with_topic_id(ABSENT_ID),
            ResponseError::UnknownTopicId,
        )
    } else {
        let topic = topic.with_name(topic_name(TOPIC));
        let absent = absent.with_name(topic_name(ABSENT));
        (topic, absent, ResponseError::UnknownTopicOrPartition)
    };
    let request = messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic, absent]);
    let response: messages::ProduceResponse = sweep.call(ApiKey::Produce, version, &request).await;
    let at = format!("Produce v{version}");
    let [topic, absent] = exactly(&response.responses, &at);
    let addressed =
        |t: &messages::produce_response::TopicProduceResponse| (t.name.to_string(), t.topic_id);
    let expected = addresses(version, sweep.topic_id);
    assert_eq!([addressed(topic), addressed(absent)], expected, "{at}");
    let [failed] = exactly(&absent.partition_responses, &at);
    let failed = (failed.index, failed.error_code, failed.base_offset);
    assert_eq!(failed, (0, unknown.code(), -1), "{at}");
    assert_eq!(topic.partition_responses.len(), sent.len(), "{at}");
    for (p, (answer, records)) in topic.partition_responses.iter().zip(sent).enumerate() {
        let at = format!("{at} partition {p}");
        assert_eq!(usize::try_from(answer.index), Ok(p), "{at}");
        assert_eq!(answer.error_code, NONE, "{at}: {:?}", answer.error_message);
        assert_eq!(answer.base_offset, records[0].offset, "{at}: base offset");
        assert_eq!(answer.log_append_time_ms, -1, "{at}: CreateTime topic");
        let log_start = if version >= 5 { 0 } else { -1 };
        assert_eq!(answer.log_start_offset, log_start, "{at}");
        assert!(answer.record_errors.is_empty(), "{at}");
        assert_eq!(answer.error_message, None, "{at}");
        sweep.produced[p].extend(records);
    }
}

/// Produce v0-v2: the request is built by hand (kafka-protocol has no codec for it) and every
/// partition is answered UNSUPPORTED_VERSION without appending anything.
async fn produce_legacy(sweep: &mut Sweep, version: i16) {
    sweep.correlation_id += 1;
    sweep.exercised.insert((ApiKey::Produce as i16, version));
    let correlation_id = sweep.correlation_id;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(text("version-sweep")));
    let header_version = ApiKey::Produce.request_header_version(version);
    let mut frame = BytesMut::from(&encode_sized(&header, header_version, "header")[..]);
    let message_set = record_batch(&sweep.next_records(0, version, 1), Compression::None);
    frame.put_i16(1); // acks
    frame.put_i32(30_000); // timeout
    frame.put_i32(1); // topics
    put_string(&mut frame, TOPIC);
    frame.put_i32(2); // partitions
    for partition in 0..2 {
        frame.put_i32(partition);
        frame.put_i32(i32::try_from(message_set.len()).expect("small"));
        frame.put_slice(&message_set);
    }
    let response = Box::pin(respond(
        &sweep.ctx,
        ApiKey::Produce,
        version,
        frame.freeze(),
    ))
    .await;
    let mut body = response_body(ApiKey::Produce, version, correlation_id, response);
    let at = format!("Produce v{version} response");
    assert_eq!(body.get_i32(), 1, "{at}: topics");
    assert_eq!(body.get_i16(), i16::try_from(TOPIC.len()).expect("short"));
    assert_eq!(body.copy_to_bytes(TOPIC.len()), TOPIC.as_bytes(), "{at}");
    assert_eq!(body.get_i32(), 2, "{at}: partitions");
    for partition in 0..2 {
        assert_eq!(body.get_i32(), partition, "{at}");
        let code = body.get_i16();
        assert_eq!(code, ResponseError::UnsupportedVersion.code(), "{at}");
        assert_eq!(body.get_i64(), -1, "{at}: base offset");
        if version >= 2 {
            assert_eq!(body.get_i64(), -1, "{at}: log append time");
        }
    }
    if version >= 1 {
        assert_eq!(body.get_i32(), 0, "{at}: throttle time");
    }
    assert!(body.is_empty(), "{at}: {} bytes left", body.len());
    for (p, partition) in sweep.produced.iter().enumerate() {
        assert_eq!(
            high_watermark(sweep, p),
            partition.len(),
            "{at}: nothing appended"
        );
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("short"));
    buf.put_slice(s.as_bytes());
}

fn high_watermark(sweep: &Sweep, partition: usize) -> usize {
    let fetched = sweep
        .ctx
        .broker
        .fetch(TOPIC, i32::try_from(partition).expect("small"), 0, 0, false)
        .expect("partition exists");
    usize::try_from(fetched.high_watermark).expect("non-negative")
}

pub(super) async fn fetch(sweep: &mut Sweep, version: i16) {
    let read_committed = version % 2 == 1;
    // Each version starts at another offset, often inside a batch.
    let starts: Vec<usize> = sweep
        .produced
        .iter()
        .map(|records| usize::try_from(version).expect("positive") % records.len())
        .collect();
    let start = |p: usize| starts[p];
    let partition = |p: usize| {
        let partition = fetch_request::FetchPartition::default()
            .with_partition(i32::try_from(p).expect("small"))
            .with_fetch_offset(i64::try_from(start(p)).expect("small"))
            .with_partition_max_bytes(1 << 20);
        if version >= 9 {
            partition.with_current_leader_epoch(0)
        } else {
            partition
        }
    };
    let topic = fetch_request::FetchTopic::default()
        .with_partitions((0..sweep.produced.len()).map(partition).collect());
    let absent = fetch_request::FetchTopic::default().with_partitions(vec![partition(0)]);
    // v13+ addresses topics by id only.
    let (topic, absent, unknown) = if version >= 13 {
        let topic = topic.with_topic_id(sweep.topic_id);
        (
            topic,
            absent.with_topic_id(ABSENT_ID),
            ResponseError::UnknownTopicId,
        )
    } else {
        let topic = topic.with_topic(topic_name(TOPIC));
        let absent = absent.with_topic(topic_name(ABSENT));
        (topic, absent, ResponseError::UnknownTopicOrPartition)
    };
    let request = messages::FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(4 << 20)
        .with_isolation_level(i8::from(read_committed))
        .with_topics(vec![topic, absent]);
    let response: messages::FetchResponse = sweep.call(ApiKey::Fetch, version, &request).await;
    let at = format!("Fetch v{version}");
    let session = (response.error_code, response.session_id);
    assert_eq!(session, (NONE, 0), "{at}");
    let [topic, absent] = exactly(&response.responses, &at);
    let addressed =
        |t: &messages::fetch_response::FetchableTopicResponse| (t.topic.to_string(), t.topic_id);
    let expected = addresses(version, sweep.topic_id);
    assert_eq!([addressed(topic), addressed(absent)], expected, "{at}");
    let [failed] = exactly(&absent.partitions, &at);
    let failed = (
        failed.error_code,
        failed.high_watermark,
        failed.records.clone(),
    );
    assert_eq!(failed, (unknown.code(), -1, Some(Bytes::new())), "{at}");
    assert_eq!(topic.partitions.len(), sweep.produced.len(), "{at}");
    for (p, data) in topic.partitions.iter().enumerate() {
        let at = format!("{at} partition {p}");
        let expected = &sweep.produced[p];
        let end = i64::try_from(expected.len()).expect("small");
        assert_eq!(usize::try_from(data.partition_index), Ok(p), "{at}");
        assert_eq!(data.error_code, NONE, "{at}");
        assert_eq!(data.high_watermark, end, "{at}");
        assert_eq!(data.last_stable_offset, end, "{at}");
        let log_start = if version >= 5 { 0 } else { -1 };
        assert_eq!(data.log_start_offset, log_start, "{at}");
        let aborted = data.aborted_transactions.as_ref().map(Vec::len);
        assert_eq!(aborted, read_committed.then_some(0), "{at}");
        assert_eq!(data.preferred_read_replica, BrokerId(-1), "{at}");
        // Whole batches come back, so the first may begin before the fetch offset.
        let expected = &expected[start(p)..];
        let got = received(data.records.clone(), &at);
        let first = got.first().map(|r| r.offset);
        assert!(
            first <= Some(expected[0].offset),
            "{at}: starts at {first:?}"
        );
        let got: Vec<_> = got
            .into_iter()
            .filter(|r| r.offset >= expected[0].offset)
            .collect();
        assert_eq!(got, expected, "{at}");
    }
}

/// The (name, id) Produce and Fetch responses carry for `TOPIC` and `ABSENT`: from v13 on they
/// address topics by id only, before by name only.
fn addresses(version: i16, topic_id: Uuid) -> [(String, Uuid); 2] {
    if version >= 13 {
        [(String::new(), topic_id), (String::new(), ABSENT_ID)]
    } else {
        let nil = Uuid::nil();
        [(TOPIC.to_owned(), nil), (ABSENT.to_owned(), nil)]
    }
}

/// The (offset, timestamp) ListOffsets must find for `timestamp` in `records`.
fn expected_offset(records: &[Sent], timestamp: i64) -> (i64, i64) {
    let end = i64::try_from(records.len()).expect("small");
    let found = |r: Option<&Sent>| r.map_or((-1, -1), |r| (r.offset, r.timestamp));
    match timestamp {
        EARLIEST | EARLIEST_LOCAL => (0, -1),
        LATEST => (end, -1),
        LATEST_TIERED => (-1, -1),
        // The first record with the largest timestamp.
        MAX_TIMESTAMP => found(records.iter().rev().max_by_key(|r| r.timestamp)),
        t => found(records.iter().find(|r| r.timestamp >= t)),
    }
}

pub(super) async fn list_offsets(sweep: &mut Sweep, version: i16) {
    if version < versions::LIST_OFFSETS_DECODED_MIN {
        return list_offsets_v0(sweep).await;
    }
    let records = &sweep.produced[0];
    let target = records[usize::try_from(version).expect("positive") % records.len()].timestamp;
    let last = records.last().expect("produced").timestamp;
    let mut queries = vec![EARLIEST, LATEST, target - 1, target, last + 1];
    for (since, query) in [(7, MAX_TIMESTAMP), (8, EARLIEST_LOCAL), (9, LATEST_TIERED)] {
        if version >= since {
            queries.push(query);
        }
    }
    for query in queries {
        let at = format!("ListOffsets v{version} timestamp {query}");
        let partitions = (0..PARTITION_COUNT)
            .map(|p| {
                let partition = list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(p)
                    .with_timestamp(query);
                if version >= 4 {
                    partition.with_current_leader_epoch(0)
                } else {
                    partition
                }
            })
            .collect();
        let topic = list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(partitions);
        let request = messages::ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![topic]);
        let request = if version >= 10 {
            request.with_timeout_ms(1_000)
        } else {
            request
        };
        let response: messages::ListOffsetsResponse =
            sweep.call(ApiKey::ListOffsets, version, &request).await;
        let [topic] = exactly(&response.topics, &at);
        assert_eq!(topic.name.as_str(), TOPIC, "{at}");
        assert_eq!(topic.partitions.len(), sweep.produced.len(), "{at}");
        for (p, answer) in topic.partitions.iter().enumerate() {
            let (offset, timestamp) = expected_offset(&sweep.produced[p], query);
            let epoch = if version >= 4 && offset >= 0 { 0 } else { -1 };
            let got = (
                answer.partition_index,
                answer.error_code,
                answer.offset,
                answer.timestamp,
                answer.leader_epoch,
            );
            let p = i32::try_from(p).expect("small");
            assert_eq!(
                got,
                (p, NONE, offset, timestamp, epoch),
                "{at} partition {p}"
            );
        }
    }
}

pub(super) async fn offset_for_leader_epoch(sweep: &mut Sweep, version: i16) {
    let partition = |index: i32| {
        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(0)
            .with_leader_epoch(0)
    };
    let topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
        .with_topic(topic_name(TOPIC))
        .with_partitions(vec![partition(0), partition(1), partition(9)]);
    let request = messages::OffsetForLeaderEpochRequest::default().with_topics(vec![topic]);
    let request = if version >= 3 {
        request.with_replica_id(BrokerId(-1))
    } else {
        request
    };
    let response: messages::OffsetForLeaderEpochResponse = sweep
        .call(ApiKey::OffsetForLeaderEpoch, version, &request)
        .await;
    let at = format!("OffsetForLeaderEpoch v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.topic.as_str(), TOPIC, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
        .collect();
    let end = |p: usize| i64::try_from(sweep.produced[p].len()).expect("small");
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        got,
        [
            (0, NONE, 0, end(0)),
            (1, NONE, 0, end(1)),
            (9, unknown, -1, -1)
        ],
        "{at}"
    );
}

/// ListOffsets v0 (removed in Kafka 4.0; kafka-protocol has no codec for it): built by hand,
/// answered with at most one old-style offset per partition.
async fn list_offsets_v0(sweep: &mut Sweep) {
    sweep.correlation_id += 1;
    sweep.exercised.insert((ApiKey::ListOffsets as i16, 0));
    let correlation_id = sweep.correlation_id;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ListOffsets as i16)
        .with_request_api_version(0)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(text("version-sweep")));
    let header_version = ApiKey::ListOffsets.request_header_version(0);
    let mut frame = BytesMut::from(&encode_sized(&header, header_version, "header")[..]);
    let queries = [(LATEST, 1), (EARLIEST, 1), (LATEST, 0)];
    frame.put_i32(-1); // replica id: a consumer
    frame.put_i32(1); // topics
    put_string(&mut frame, TOPIC);
    frame.put_i32(i32::try_from(queries.len()).expect("small"));
    for (timestamp, max_num_offsets) in queries {
        frame.put_i32(0);
        frame.put_i64(timestamp);
        frame.put_i32(max_num_offsets);
    }
    let response = Box::pin(respond(&sweep.ctx, ApiKey::ListOffsets, 0, frame.freeze())).await;
    let mut body = response_body(ApiKey::ListOffsets, 0, correlation_id, response);
    let at = "ListOffsets v0 response";
    assert_eq!(body.get_i32(), 1, "{at}: topics");
    assert_eq!(body.get_i16(), i16::try_from(TOPIC.len()).expect("short"));
    assert_eq!(body.copy_to_bytes(TOPIC.len()), TOPIC.as_bytes(), "{at}");
    assert_eq!(body.get_i32(), 3, "{at}: partitions");
    let latest = i64::try_from(high_watermark(sweep, 0)).expect("small");
    for expected in [vec![latest], vec![0], vec![]] {
        assert_eq!(body.get_i32(), 0, "{at}: partition");
        assert_eq!(body.get_i16(), 0, "{at}: error code");
        let count = usize::try_from(body.get_i32()).expect("count");
        let offsets: Vec<i64> = (0..count).map(|_| body.get_i64()).collect();
        assert_eq!(offsets, expected, "{at}");
    }
    assert!(body.is_empty(), "{at}: {} bytes left", body.len());
}
