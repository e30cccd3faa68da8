//! Raft's blank and membership entries are stored as control batches of Tidelog's own control
//! types (0x7400, 0x7401; src/replication/entry_codec.rs) that take one offset each. Real
//! librdkafka consumers, read_committed and read_uncommitted, must skip them, count them as an
//! offset and keep consuming what follows. The batches are written into a stopped broker's
//! segment file by hand, exactly as the raft log store writes them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

const RAFT_BLANK_CONTROL_TYPE: i16 = 0x7400;
const RAFT_MEMBERSHIP_CONTROL_TYPE: i16 = 0x7401;

/// A v2 control batch as the raft log store writes it: one record whose key is version 0 +
/// `control_type`, no producer id, not transactional, timestamps -1, at `base_offset` with
/// partitionLeaderEpoch `epoch`.
fn raft_control_batch(base_offset: i64, epoch: i32, control_type: i16, value: &[u8]) -> Vec<u8> {
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&control_type.to_be_bytes());
    let mut record = vec![0u8, 0, 0]; // attributes, timestamp delta 0, offset delta 0
    put_varint(&mut record, key.len() as i64);
    record.extend_from_slice(&key);
    put_varint(&mut record, value.len() as i64);
    record.extend_from_slice(value);
    record.push(0); // no headers
    let mut records = Vec::new();
    put_varint(&mut records, record.len() as i64);
    records.extend_from_slice(&record);
    let mut batch = Vec::new();
    batch.extend_from_slice(&base_offset.to_be_bytes());
    batch.extend_from_slice(&(49 + records.len() as i32).to_be_bytes());
    batch.extend_from_slice(&epoch.to_be_bytes());
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // crc, below
    batch.extend_from_slice(&0x20i16.to_be_bytes()); // control
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // base timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // record count
    batch.extend_from_slice(&records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// The active (last) segment file of `topic`-0.
fn active_segment(data_dir: &Path, topic: &str) -> PathBuf {
    let dir = data_dir.join(format!("{topic}-0"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment file")
}

async fn produce(bootstrap: &str, topic: &str, values: &[&str]) -> Vec<i64> {
    let producer = harness::producer(bootstrap, &[("acks", "all")]);
    let mut offsets = Vec::new();
    for value in values {
        let (_, offset) = producer
            .send(
                FutureRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(value),
                CLIENT_DEADLINE,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("produce {value}: {error}"));
        offsets.push(offset);
    }
    offsets
}

/// (offset, value) of every record from the start until the partition's end.
fn read_all(bootstrap: &str, topic: &str, isolation: &str, count: usize) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("raft-control-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create a consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let mut seen = Vec::new();
    let mut at_end = false;
    while seen.len() < count || !at_end {
        assert!(
            Instant::now() < deadline,
            "read only {seen:?} ({isolation})"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                at_end = false;
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                seen.push((message.offset(), value.into_owned()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => at_end = true,
            Some(Err(error)) => panic!("consume failed ({isolation}): {error}"),
        }
    }
    let position = consumer.position().expect("position");
    let next = position
        .find_partition(topic, 0)
        .map(|partition| partition.offset());
    assert_eq!(
        next,
        Some(Offset::Offset(7)),
        "the position moves past the control batch"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_skips_raft_control_batches_and_counts_them_as_offsets() {
    let dir = TempDir::new().expect("tempdir");
    let topic = "raft-control";
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    assert_eq!(
        produce(&broker.bootstrap(), topic, &["a", "b", "c"]).await,
        [0, 1, 2]
    );
    broker.stop();

    // What a raft leader's new term and a membership change leave in the log: offsets 3 and 4.
    let segment = active_segment(dir.path(), topic);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    bytes.extend(raft_control_batch(3, 1, RAFT_BLANK_CONTROL_TYPE, b""));
    let membership = br#"{"configs":[[1]],"nodes":{"1":{"rpc_addr":"127.0.0.1:1"}}}"#;
    bytes.extend(raft_control_batch(
        4,
        1,
        RAFT_MEMBERSHIP_CONTROL_TYPE,
        membership,
    ));
    std::fs::write(&segment, bytes).expect("write segment");
    // Without the clean-shutdown marker the broker scans the segment tail and takes them in.
    std::fs::remove_file(segment.with_file_name("clean-shutdown")).expect("remove clean marker");

    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(harness::watermarks(&bootstrap, topic, 0), (0, 5));
    assert_eq!(produce(&bootstrap, topic, &["d", "e"]).await, [5, 6]);
    let expected: Vec<(i64, String)> = [(0, "a"), (1, "b"), (2, "c"), (5, "d"), (6, "e")]
        .into_iter()
        .map(|(offset, value)| (offset, value.to_owned()))
        .collect();
    for isolation in ["read_committed", "read_uncommitted"] {
        assert_eq!(
            read_all(&bootstrap, topic, isolation, 5),
            expected,
            "{isolation}"
        );
    }
    // A consumer starting exactly at a raft control batch moves on to the next record.
    let from_control = harness::consume(&bootstrap, topic, &[(0, 3, 2)], CLIENT_DEADLINE);
    let offsets: Vec<i64> = from_control[&0].iter().map(Message::offset).collect();
    assert_eq!(offsets, [5, 6]);
}
