//! Log compaction through the real binary: a compacted topic with small segments, several
//! versions per key in every codec, a background pass, then a consumer from the start sees the
//! latest value per key (plus the uncompacted tail); keyless records are refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

const TOPIC: &str = "kv-latest";
const KEYS: usize = 6;
const ROUNDS: usize = 30;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// A compressible value, so librdkafka really compresses the batches it is in.
fn value(key: usize, round: usize) -> String {
    format!("value-{key}-{round}-{}", "x".repeat(100))
}

/// One producer per codec; a round's records go out as one batch.
fn producers(bootstrap: &str) -> Vec<FutureProducer> {
    CODECS
        .iter()
        .map(|codec| {
            harness::producer(
                bootstrap,
                &[("compression.type", codec), ("linger.ms", "20")],
            )
        })
        .collect()
}

/// Every record from the log start to the high watermark: (offset, key, value).
fn consume_all(consumer: &BaseConsumer, high: i64) -> Vec<(i64, String, String)> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let end = Instant::now() + CLIENT_DEADLINE;
    while out.last().is_none_or(|(offset, _, _)| offset + 1 < high) {
        assert!(Instant::now() < end, "timed out consuming; got {out:?}");
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.expect("consume");
        let text =
            |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or(b"")).into_owned();
        out.push((
            message.offset(),
            text(message.key()),
            text(message.payload()),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_serves_latest_per_key_and_refuses_keyless_records() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start_with_env(
        dir.path(),
        &[("TIDELOG_LOG__RETENTION_CHECK_INTERVAL_MS", "100")],
    );
    let bootstrap = broker.bootstrap();
    harness::create_topic(
        &bootstrap,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "2048"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;

    // Each round is one batch per codec in turn: every key but one, so later rounds empty
    // some batches entirely and others only partly (those are re-encoded).
    let producers = producers(&bootstrap);
    let mut produced: Vec<(i64, String, String)> = Vec::new();
    for round in 0..ROUNDS {
        let producer = &producers[round % CODECS.len()];
        let mut deliveries = Vec::new();
        for key in (0..KEYS).filter(|key| key % KEYS != round % (KEYS + 1)) {
            let (key, value) = (format!("key-{key}"), value(key, round));
            let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
            let delivery = producer
                .send_result(record)
                .unwrap_or_else(|(error, _)| panic!("enqueue {key} round {round}: {error}"));
            deliveries.push((key, value, delivery));
        }
        for (key, value, delivery) in deliveries {
            let (_, offset) = delivery
                .await
                .expect("delivery not cancelled")
                .unwrap_or_else(|(error, _)| panic!("produce {key} round {round}: {error}"));
            produced.push((offset, key, value));
        }
    }
    produced.sort();
    let produced_count = i64::try_from(produced.len()).expect("fits");
    harness::wait_until(CLIENT_DEADLINE, "a compaction pass", || {
        broker.log().contains("records_removed=")
    });

    let (low, high) = harness::watermarks(&bootstrap, TOPIC, 0);
    assert_eq!(
        (low, high),
        (0, produced_count),
        "compaction never renumbers offsets"
    );
    let records = consume_all(&harness::consumer(&bootstrap), high);
    assert!(
        records.len() < produced.len(),
        "compaction removed nothing: {} records",
        records.len()
    );
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    for record in &records {
        assert!(produced.contains(record), "{record:?} was never produced");
    }
    // Per key, what is left is a suffix of what was produced: the latest record below the
    // compacted end, then everything in the uncompacted tail.
    let by_key = |list: &[(i64, String, String)]| {
        let mut map: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (offset, key, _) in list {
            map.entry(key.clone()).or_default().push(*offset);
        }
        map
    };
    let (produced_by_key, consumed_by_key) = (by_key(&produced), by_key(&records));
    assert_eq!(
        produced_by_key.keys().collect::<Vec<_>>(),
        consumed_by_key.keys().collect::<Vec<_>>()
    );
    for (key, consumed) in &consumed_by_key {
        let all = &produced_by_key[key];
        assert_eq!(consumed[..], all[all.len() - consumed.len()..], "{key}");
    }

    // Keyless records are refused, uncompressed and compressed alike.
    for producer in [&producers[0], &producers[1]] {
        let record: FutureRecord<'_, (), str> = FutureRecord::to(TOPIC).payload("no key");
        let result = producer.send(record, CLIENT_DEADLINE).await;
        assert!(
            matches!(
                result,
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord),
                    _
                ))
            ),
            "{result:?}"
        );
    }
    assert_eq!(harness::watermarks(&bootstrap, TOPIC, 0).1, produced_count);
}
