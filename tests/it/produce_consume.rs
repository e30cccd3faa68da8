//! Produce with librdkafka in every compression codec, consume everything back, and compare each
//! record byte for byte (key, value, headers, timestamp) and its offset, partition by partition.

use std::collections::BTreeMap;

use rdkafka::Timestamp;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::raw;

/// The content of one produced record, regenerated from its index for the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordSpec {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: i64,
}

impl RecordSpec {
    /// A varied but deterministic record: some null keys/values, empty keys/values, duplicate and
    /// null-valued headers, values of different lengths (compressible text).
    pub(crate) fn generate(index: usize, base_timestamp: i64) -> RecordSpec {
        let key = match index % 97 {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(format!("key-{index}").into_bytes()),
        };
        let value = match index % 101 {
            0 => None,
            1 => Some(Vec::new()),
            _ => {
                let mut value = format!("value-{index}:").into_bytes();
                let filler = index % 200;
                value.extend(std::iter::repeat_n(b'a' + (index % 26) as u8, filler));
                Some(value)
            }
        };
        let headers = match index % 4 {
            0 => Vec::new(),
            1 => vec![("trace".to_owned(), Some(format!("t-{index}").into_bytes()))],
            2 => vec![
                ("dup".to_owned(), Some(b"first".to_vec())),
                ("null".to_owned(), None),
                ("empty".to_owned(), Some(Vec::new())),
                ("dup".to_owned(), Some(b"second".to_vec())),
            ],
            _ => vec![("bin".to_owned(), Some(vec![0, 255, 1, 254]))],
        };
        let offset_ms = i64::try_from(index).expect("index fits i64");
        RecordSpec {
            key,
            value,
            headers,
            timestamp: base_timestamp + offset_ms,
        }
    }

    pub(crate) fn owned_headers(&self) -> Option<OwnedHeaders> {
        if self.headers.is_empty() {
            return None;
        }
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
        for (key, value) in &self.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_ref(),
            });
        }
        Some(headers)
    }

    pub(crate) fn record<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
    ) -> FutureRecord<'a, [u8], [u8]> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .timestamp(self.timestamp);
        if let Some(key) = &self.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &self.value {
            record = record.payload(value.as_slice());
        }
        if let Some(headers) = self.owned_headers() {
            record = record.headers(headers);
        }
        record
    }

    /// Panics with a precise message if `message` differs from this spec in any field.
    #[track_caller]
    pub(crate) fn assert_matches(&self, message: &OwnedMessage, context: &str) {
        let at = format!("{context} ({})", harness::describe(message));
        assert_eq!(message.key(), self.key.as_deref(), "key differs at {at}");
        assert_eq!(
            message.payload(),
            self.value.as_deref(),
            "value differs at {at}"
        );
        assert_eq!(
            message.timestamp(),
            Timestamp::CreateTime(self.timestamp),
            "timestamp differs at {at}"
        );
        let headers: Vec<(String, Option<Vec<u8>>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(headers, self.headers, "headers differ at {at}");
    }
}

/// Produces `count` generated records round-robin over `partitions` with `codec`, checks delivery
/// offsets, consumes everything back and checks content and order; checks the stored codec.
async fn roundtrip_with_codec(codec: &str, codec_id: i16, count: usize, partitions: i32) {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = format!("codec-{codec}");
    harness::create_topic(&bootstrap, &topic, partitions, &[]).await;

    let producer = harness::producer(
        &bootstrap,
        &[
            ("compression.type", codec),
            ("acks", "all"),
            ("linger.ms", "20"),
        ],
    );
    let base_timestamp = harness::now_ms() - 600_000;
    let specs: Vec<RecordSpec> = (0..count)
        .map(|i| RecordSpec::generate(i, base_timestamp))
        .collect();
    let partition_of = |i: usize| i32::try_from(i).expect("fits") % partitions;
    let mut deliveries = Vec::with_capacity(count);
    for (i, spec) in specs.iter().enumerate() {
        match producer.send_result(spec.record(&topic, partition_of(i))) {
            Ok(delivery) => deliveries.push(delivery),
            Err((error, _)) => panic!("enqueue record {i} failed: {error}"),
        }
    }
    // Per partition, the indexes of records in send order; delivery offsets must be 0, 1, 2, ...
    let mut sent: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let result: OwnedDeliveryResult = delivery.await.expect("delivery future not cancelled");
        let (partition, offset) = result
            .unwrap_or_else(|(error, _)| panic!("record {i} ({codec}) not delivered: {error}"));
        assert_eq!(
            partition,
            partition_of(i),
            "record {i} went to the wrong partition"
        );
        let order = sent.entry(partition).or_default();
        assert_eq!(
            offset,
            i64::try_from(order.len()).expect("fits"),
            "record {i} ({codec}) got offset {offset} but is #{} sent to partition {partition}",
            order.len()
        );
        order.push(i);
    }
    drop(producer);

    for partition in 0..partitions {
        let want = i64::try_from(sent[&partition].len()).expect("fits");
        assert_eq!(
            harness::watermarks(&bootstrap, &topic, partition),
            (0, want),
            "watermarks of partition {partition}"
        );
    }

    let wanted: Vec<(i32, i64, usize)> = sent.iter().map(|(p, ids)| (*p, 0, ids.len())).collect();
    let consumed = harness::consume(&bootstrap, &topic, &wanted, CLIENT_DEADLINE * 3);
    for (partition, messages) in &consumed {
        for (position, message) in messages.iter().enumerate() {
            assert_eq!(
                message.offset(),
                i64::try_from(position).expect("fits"),
                "partition {partition} records out of order"
            );
            let index = sent[partition][position];
            specs[index].assert_matches(message, &format!("{codec} record {index}"));
        }
    }

    // The broker must store what the client sent: the codec survives in the batch attributes.
    let stored = raw::fetch_records(broker.addr(), &topic, 0, 0);
    let batches = raw::batch_summaries(&stored);
    assert!(!batches.is_empty(), "raw fetch returned no whole batch");
    let layout: Vec<(i64, i16, i32)> = batches
        .iter()
        .map(|b| (b.base_offset, b.compression(), b.record_count))
        .collect();
    for batch in &batches {
        assert_eq!(batch.magic, 2, "stored batch magic: {batch:?}");
        // librdkafka sends a batch uncompressed when compressing would not shrink it (tiny
        // batches); a big batch of this text must be compressed. It also silently sends
        // everything uncompressed when it believes the broker lacks the codec (LZ4 needs
        // FindCoordinator v0 advertised, ZSTD Produce v7 + Fetch v10).
        let allowed_uncompressed = batch.record_count < 50;
        assert!(
            batch.compression() == codec_id || (allowed_uncompressed && batch.compression() == 0),
            "stored batch at {} has codec {} (want {codec_id} = {codec}); batches (base offset, \
             codec, records): {layout:?}",
            batch.base_offset,
            batch.compression()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_uncompressed_100k_records_consume_identical_in_order() {
    roundtrip_with_codec("none", 0, 100_000, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_gzip_records_consume_identical_in_order() {
    roundtrip_with_codec("gzip", 1, 20_000, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_snappy_records_consume_identical_in_order() {
    roundtrip_with_codec("snappy", 2, 20_000, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_lz4_records_consume_identical_in_order() {
    roundtrip_with_codec("lz4", 3, 20_000, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_zstd_records_consume_identical_in_order() {
    roundtrip_with_codec("zstd", 4, 20_000, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_null_values_and_empty_keys_consume_exactly() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = "nulls";
    harness::create_topic(&bootstrap, topic, 1, &[]).await;
    let timestamp = harness::now_ms() - 1_000;
    let specs = [
        (None, None),
        (Some(b"".to_vec()), None),
        (None, Some(b"".to_vec())),
        (Some(b"".to_vec()), Some(b"".to_vec())),
        (Some(b"tombstone".to_vec()), None),
        (None, Some(b"keyless".to_vec())),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (key, value))| RecordSpec {
        key,
        value,
        headers: if i % 2 == 0 {
            vec![("h".to_owned(), None), ("e".to_owned(), Some(Vec::new()))]
        } else {
            Vec::new()
        },
        timestamp: timestamp + i64::try_from(i).expect("fits"),
    })
    .collect::<Vec<_>>();
    let producer = harness::producer(&bootstrap, &[]);
    for (i, spec) in specs.iter().enumerate() {
        // One record per request: each is its own batch.
        let (partition, offset) = producer
            .send(spec.record(topic, 0), CLIENT_DEADLINE)
            .await
            .unwrap_or_else(|(error, _)| panic!("record {i} not delivered: {error}"));
        assert_eq!((partition, offset), (0, i64::try_from(i).expect("fits")));
    }
    let consumed = harness::consume_to_high_watermark(&bootstrap, topic, 0, 0);
    assert_eq!(consumed.len(), specs.len());
    for (i, (spec, message)) in specs.iter().zip(&consumed).enumerate() {
        assert_eq!(message.offset(), i64::try_from(i).expect("fits"));
        spec.assert_matches(message, &format!("record {i}"));
    }
}
