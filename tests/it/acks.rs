//! Every producer `acks` level (0, 1, all) delivers records that are then readable in order;
//! acks=0 requests get no response on the wire.

use bytes::BytesMut;
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiVersionsRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::message::Message;
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::raw::{self, RawConn};

const RECORDS: usize = 1_000;
const PARTITIONS: i32 = 2;

async fn produce_and_read_back(acks: &str) {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = format!("acks-{acks}");
    harness::create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;

    let producer = harness::producer(&bootstrap, &[("acks", acks)]);
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let key = format!("k{i}");
        let value = format!("{acks}-value-{i}");
        let partition = i32::try_from(i).expect("fits") % PARTITIONS;
        let record = rdkafka::producer::FutureRecord::to(&topic)
            .partition(partition)
            .key(&key)
            .payload(&value);
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((error, _)) => panic!("enqueue {i}: {error}"),
        }
    }
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let (partition, offset) = delivery
            .await
            .expect("delivery not cancelled")
            .unwrap_or_else(|(error, _)| panic!("acks={acks} record {i} not delivered: {error}"));
        assert_eq!(partition, i32::try_from(i).expect("fits") % PARTITIONS);
        if acks != "0" {
            let expected = i64::try_from(i).expect("fits") / i64::from(PARTITIONS);
            assert_eq!(offset, expected, "acks={acks} record {i} delivery offset");
        }
    }
    drop(producer);

    let per_partition = RECORDS / usize::try_from(PARTITIONS).expect("fits");
    let want = i64::try_from(per_partition).expect("fits");
    for partition in 0..PARTITIONS {
        // acks=0 gives no confirmation: wait until the broker has appended everything.
        harness::wait_until(CLIENT_DEADLINE, "all records to be appended", || {
            harness::watermarks(&bootstrap, &topic, partition).1 >= want
        });
        assert_eq!(
            harness::watermarks(&bootstrap, &topic, partition),
            (0, want)
        );
    }
    let wanted: Vec<(i32, i64, usize)> = (0..PARTITIONS).map(|p| (p, 0, per_partition)).collect();
    let consumed = harness::consume(&bootstrap, &topic, &wanted, CLIENT_DEADLINE);
    for (partition, messages) in consumed {
        for (position, message) in messages.iter().enumerate() {
            let i = position * usize::try_from(PARTITIONS).expect("fits")
                + usize::try_from(partition).expect("fits");
            assert_eq!(message.offset(), i64::try_from(position).expect("fits"));
            assert_eq!(message.key(), Some(format!("k{i}").as_bytes()));
            assert_eq!(
                message.payload(),
                Some(format!("{acks}-value-{i}").as_bytes())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_acks_zero_records_are_readable() {
    produce_and_read_back("0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_acks_one_records_are_readable() {
    produce_and_read_back("1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_acks_all_records_are_readable() {
    produce_and_read_back("all").await;
}

/// One uncompressed batch of `count` records with values `v0..`.
pub(crate) fn encode_batch(count: usize) -> bytes::Bytes {
    let now = harness::now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).expect("fits"),
            // kafka-protocol starts a new batch whenever offset - sequence changes; keep it
            // constant so all records share one batch (whose base_sequence is then -1).
            sequence: i32::try_from(i).expect("fits") - 1,
            timestamp: now,
            key: Some(bytes::Bytes::from(format!("k{i}"))),
            value: Some(bytes::Bytes::from(format!("v{i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    let batch = buf.freeze();
    let batches = raw::batch_summaries(&batch);
    assert_eq!(batches.len(), 1, "encoded exactly one batch: {batches:?}");
    assert_eq!(
        usize::try_from(batches[0].record_count).expect("fits"),
        count
    );
    batch
}

pub(crate) fn produce_request(
    topic: &str,
    partition: i32,
    acks: i16,
    records: bytes::Bytes,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(raw::topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_acks_zero_request_gets_no_response() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "silent", 1, &[]).await;
    let versions = raw::api_versions(broker.addr());
    let produce_version = raw::negotiate(&versions, raw::API_KEY_PRODUCE, (3, 12));

    let mut conn = RawConn::connect(broker.addr());
    let _ignored = conn.send(
        &produce_request("silent", 0, 0, encode_batch(3)),
        produce_version,
    );
    // The next frame on this connection must be the ApiVersions response, not a produce response.
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tidelog-it"))
        .with_client_software_version(StrBytes::from_static_str("0.0.0"));
    let correlation_id = conn.send(&request, 3);
    let response = conn.receive::<ApiVersionsRequest>(correlation_id, 3);
    assert_eq!(response.error_code, raw::ERROR_NONE);
    harness::wait_until(CLIENT_DEADLINE, "the acks=0 batch to be appended", || {
        harness::watermarks(&bootstrap, "silent", 0) == (0, 3)
    });
}
