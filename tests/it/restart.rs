//! Graceful stop (SIGTERM) and restart on the same data dir: records, offsets, topics and topic
//! configs all survive, and new writes continue at the old high watermark; a data dir of another
//! node id is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::ResourceSpecifier;
use rdkafka::message::Message;
use tempfile::TempDir;

use crate::admin::{assert_override, describe};
use crate::harness::{self, Broker, CLIENT_DEADLINE, wait_until};
use crate::produce_consume::RecordSpec;

const PARTITIONS: i32 = 3;

/// Produces `specs[range]` round-robin; returns, per partition, (offset, spec index) in order.
async fn produce_specs(
    bootstrap: &str,
    topic: &str,
    specs: &[RecordSpec],
    range: std::ops::Range<usize>,
) -> BTreeMap<i32, Vec<(i64, usize)>> {
    // Batches stay well below the topic's 64 KiB segment.bytes.
    let producer = harness::producer(bootstrap, &[("acks", "all"), ("batch.size", "16384")]);
    let mut deliveries = Vec::new();
    for i in range {
        let partition = i32::try_from(i).expect("fits") % PARTITIONS;
        match producer.send_result(specs[i].record(topic, partition)) {
            Ok(delivery) => deliveries.push((i, delivery)),
            Err((error, _)) => panic!("enqueue {i}: {error}"),
        }
    }
    let mut out: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for (i, delivery) in deliveries {
        let (partition, offset) = delivery
            .await
            .expect("not cancelled")
            .unwrap_or_else(|(error, _)| panic!("record {i} not delivered: {error}"));
        out.entry(partition).or_default().push((offset, i));
    }
    out
}

/// Consumes every partition to its high watermark and checks each record against `written`.
fn verify_all(
    bootstrap: &str,
    topic: &str,
    specs: &[RecordSpec],
    written: &BTreeMap<i32, Vec<(i64, usize)>>,
) {
    for (partition, records) in written {
        let expected_end = i64::try_from(records.len()).expect("fits");
        assert_eq!(
            harness::watermarks(bootstrap, topic, *partition),
            (0, expected_end),
            "watermarks of partition {partition}"
        );
        let consumed = harness::consume_to_high_watermark(bootstrap, topic, *partition, 0);
        for (message, (offset, index)) in consumed.iter().zip(records) {
            assert_eq!(message.offset(), *offset);
            specs[*index].assert_matches(message, &format!("record {index}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigterm_keeps_records_offsets_topics_and_configs() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = "durable";
    // Small segments so the log spans several segment files and indexes.
    let configs = [("retention.ms", "86400000"), ("segment.bytes", "65536")];
    harness::create_topic(&bootstrap, topic, PARTITIONS, &configs).await;
    harness::create_topic(&bootstrap, "empty-topic", 1, &[]).await;
    harness::create_topic(&bootstrap, "deleted", 1, &[]).await;
    let deleted = harness::admin(&bootstrap)
        .delete_topics(&["deleted"], &harness::admin_options())
        .await
        .expect("DeleteTopics request");
    assert_eq!(deleted, vec![Ok("deleted".to_owned())]);

    let base_timestamp = harness::now_ms() - 60_000;
    let specs: Vec<RecordSpec> = (0..4_000)
        .map(|i| RecordSpec::generate(i, base_timestamp))
        .collect();
    let mut written = produce_specs(&bootstrap, topic, &specs, 0..3_000).await;

    let status = broker.stop();
    assert!(status.success(), "graceful stop exited with {status}");
    broker.restart();
    let bootstrap = broker.bootstrap();

    assert_eq!(
        harness::user_topics(&bootstrap),
        vec!["durable", "empty-topic"]
    );
    assert_eq!(harness::partition_count(&bootstrap, topic), Some(3));
    assert_eq!(harness::watermarks(&bootstrap, "empty-topic", 0), (0, 0));
    let described = describe(&bootstrap, ResourceSpecifier::Topic(topic)).await;
    assert_override(&described, "retention.ms", "86400000");
    assert_override(&described, "segment.bytes", "65536");
    verify_all(&bootstrap, topic, &specs, &written);

    // New writes continue at the old high watermark.
    let more = produce_specs(&bootstrap, topic, &specs, 3_000..4_000).await;
    for (partition, records) in more {
        let previous = written.entry(partition).or_default();
        let next_offset = i64::try_from(previous.len()).expect("fits");
        assert_eq!(
            records[0].0, next_offset,
            "partition {partition} continues its offsets"
        );
        previous.extend(records);
    }

    // A second clean cycle over a log that was itself recovered.
    let status = broker.stop();
    assert!(
        status.success(),
        "second graceful stop exited with {status}"
    );
    broker.restart();
    verify_all(&broker.bootstrap(), topic, &specs, &written);
    assert_eq!(
        harness::partition_count(&broker.bootstrap(), "deleted"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_idle_broker_exits_cleanly_and_serves() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let status = broker.stop();
    assert!(status.success(), "idle graceful stop exited with {status}");
    broker.restart();
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "after-restart", 1, &[]).await;
    let producer = harness::producer(&bootstrap, &[]);
    let delivered = producer
        .send(
            rdkafka::producer::FutureRecord::to("after-restart")
                .partition(0)
                .payload("x")
                .key("k"),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce");
    assert_eq!(delivered, (0, 0));
}

/// Issue 7, 5: a closed segment damaged while the broker was down makes only its partition
/// offline (Metadata: no leader, LEADER_NOT_AVAILABLE, logged as an error); nothing on disk is
/// cut or deleted, and the other partitions are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_closed_segment_makes_only_its_partition_offline() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let topic = "damaged";
    harness::create_topic(&bootstrap, topic, 2, &[("segment.bytes", "16384")]).await;
    let producer = harness::producer(&bootstrap, &[("batch.size", "4096")]);
    let value = "v".repeat(1_000);
    for partition in 0..2 {
        for i in 0..60 {
            let key = format!("key-{i}");
            producer
                .send(
                    rdkafka::producer::FutureRecord::to(topic)
                        .partition(partition)
                        .payload(&value)
                        .key(&key),
                    CLIENT_DEADLINE,
                )
                .await
                .expect("produce");
        }
    }
    drop(producer);
    let status = broker.stop();
    assert!(status.success(), "graceful stop exited with {status}");
    let partition_dir = dir.path().join(format!("{topic}-0"));
    let segments = |dir: &std::path::Path| -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
            .expect("list partition dir")
            .map(|entry| entry.expect("entry"))
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
            .map(|entry| {
                let len = entry.metadata().expect("stat").len();
                (entry.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        found.sort();
        found
    };
    let first = partition_dir.join("00000000000000000000.log");
    let len = std::fs::metadata(&first).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .and_then(|file| file.set_len(len - 1))
        .expect("cut one byte");
    let damaged = segments(&partition_dir);
    assert!(damaged.len() > 2, "the log spans segments: {damaged:?}");

    broker.restart();
    let bootstrap = broker.bootstrap();
    let metadata = harness::metadata(&bootstrap);
    let described = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("the topic is listed");
    let partitions: Vec<(i32, i32, bool)> = described
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader(), p.error().is_some()))
        .collect();
    assert_eq!(
        partitions,
        [(0, -1, true), (1, 1, false)],
        "partition 0 has no leader and an error; partition 1 is served"
    );
    let producer = harness::producer(&bootstrap, &[]);
    let delivered = producer
        .send(
            rdkafka::producer::FutureRecord::to(topic)
                .partition(1)
                .payload("after")
                .key("k"),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce to the healthy partition");
    assert_eq!(delivered, (1, 60));
    let log = broker.log();
    assert!(
        log.contains("partition is offline") && log.contains("is inconsistent at segment 0"),
        "the broker says which partition is offline and why"
    );
    assert_eq!(
        segments(&partition_dir),
        damaged,
        "nothing was cut or deleted"
    );
}

#[tokio::test]
async fn data_dir_of_another_node_id_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    assert!(broker.stop().success());
    let meta = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(meta.contains("node.id=1\n"), "{meta}");

    let mut other = std::process::Command::new(env!("CARGO_BIN_EXE_tidelog"))
        .args([
            "serve",
            "--node-id",
            "7",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("TIDELOG_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(Duration::from_secs(30), "the second broker exits", || {
        status = other.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut other.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("belongs to node 1, not to node 7"),
        "{stderr}"
    );
    // The first node still starts on it.
    let mut again = Broker::start(dir.path());
    assert!(again.stop().success());
}
