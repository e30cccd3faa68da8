//! In-process tests of the broker's durability paths (group commit, deletion, failing or slow
//! disks): a real broker in a temp directory, driven through its Kafka-agnostic methods.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use super::{Acks, Broker, BrokerSettings, Endpoint, Error};
use crate::storage;
use crate::storage::fault::{Fault, Gate, Op};

/// How long a test waits for something that should happen promptly before it fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn open_broker(dir: &TempDir) -> Arc<Broker> {
    open_broker_on(dir, storage::Fs::default())
}

fn open_broker_on(dir: &TempDir, fs: storage::Fs) -> Arc<Broker> {
    let settings = BrokerSettings::for_test(
        1,
        "durability-test",
        dir.path(),
        Endpoint {
            host: "broker.test".to_owned(),
            port: 19092,
        },
    );
    Broker::open_on(settings, fs).expect("broker opens in a fresh directory")
}

/// Waits on a blocking thread until `count` operations reached `gate`.
async fn wait_entered(gate: &Gate, count: usize) {
    let gate = gate.clone();
    let entered = tokio::task::spawn_blocking(move || gate.wait_entered(count, DEADLINE))
        .await
        .expect("waiting for the gate");
    assert!(entered, "{count} operations should have reached the gate");
}

fn one_record(value: &[u8]) -> Bytes {
    let record = storage::Record {
        key: Some(b"key".to_vec()),
        value: Some(value.to_vec()),
    };
    Bytes::from(storage::build_batch(&[record], 1_000))
}

/// Lets spawned tasks of a current-thread runtime run until `done` holds (bounded).
async fn run_tasks_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}

/// Regression (issue 7, 6b): an acks=all produce whose topic was deleted before its flush
/// waited forever, and the deleted partition's flusher never exited.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn acks_all_produce_to_topic_deleted_before_flush_waits_forever() {
    let dir = TempDir::new().expect("tempdir");
    let broker = open_broker(&dir);
    broker
        .create_topic_local("doomed", Some(1), None, &[], false)
        .expect("create");
    let partition = Arc::downgrade(&broker.partition("doomed", 0).expect("partition").1);
    // Nothing else runs on this runtime until the test awaits: the flusher has not flushed.
    let pending = broker
        .append("doomed", 0, one_record(b"lost"), Acks::All)
        .expect("append");
    broker.delete_topic_local("doomed").expect("delete");
    // Paused time: a wait that never ends trips this timeout at once, without sleeping.
    let waited = tokio::time::timeout(std::time::Duration::from_secs(3600), pending.wait()).await;
    assert!(
        matches!(waited, Ok(Err(Error::UnknownTopicOrPartition { .. }))),
        "the produce must fail, not wait: {waited:?}"
    );
    assert!(
        run_tasks_until(|| partition.strong_count() == 0).await,
        "the deleted partition's flusher must exit and release it"
    );
}

/// Regression (issue 7, 4): after another fsync of the same file failed and poisoned the log,
/// a group-commit fsync already running on that descriptor could still succeed (the kernel
/// reports a writeback error once) and move the high watermark over pages that were dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_succeeding_after_the_log_was_poisoned_moves_the_high_watermark() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker_on(&dir, fs.clone());
    broker
        .create_topic_local("t", Some(1), None, &[], false)
        .expect("create");
    let partition_dir = dir.path().join("t-0");
    let gate = Gate::default();
    fs.inject_once(&partition_dir, Op::Fsync, Fault::Block(gate.clone()));
    fs.inject_once(&partition_dir, Op::Fsync, Fault::Fail);
    let pending = broker
        .append("t", 0, one_record(b"maybe lost"), Acks::All)
        .expect("append");
    wait_entered(&gate, 1).await; // the group commit's fsync is in flight
    let (_, partition) = broker.partition("t", 0).expect("partition");
    let failed = partition.with_log(storage::Log::flush);
    assert!(
        failed.is_err(),
        "the second fsync fails and poisons the log"
    );
    gate.open();
    let waited = tokio::time::timeout(DEADLINE, pending.wait())
        .await
        .expect("the produce is answered");
    assert!(
        matches!(waited, Err(Error::FlushFailed { .. })),
        "an fsync racing a failed one proves nothing: {waited:?}"
    );
    assert_eq!(partition.high_watermark(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_poisons_only_its_own_partition() {
    let dir = TempDir::new().expect("tempdir");
    let fs = storage::Fs::default();
    let broker = open_broker_on(&dir, fs.clone());
    broker
        .create_topic_local("t", Some(2), None, &[], false)
        .expect("create");
    fs.inject_always(&dir.path().join("t-0"), Op::Fsync, Fault::Fail);
    let failed = broker
        .append("t", 0, one_record(b"a"), Acks::All)
        .expect("the write itself succeeds")
        .wait()
        .await;
    assert!(
        matches!(failed, Err(Error::FlushFailed { .. })),
        "{failed:?}"
    );
    let refused = broker.append("t", 0, one_record(b"b"), Acks::All);
    assert!(
        matches!(
            refused,
            Err(Error::Storage {
                source: storage::Error::Poisoned { .. },
                ..
            })
        ),
        "a poisoned partition refuses writes: {refused:?}"
    );
    let other = broker
        .append("t", 1, one_record(b"c"), Acks::All)
        .expect("append to the healthy partition")
        .wait()
        .await
        .expect("the healthy partition makes its writes durable");
    assert_eq!(other.base_offset, 0);
    let fetched = broker.fetch("t", 1, 0, 1 << 20, true).expect("fetch");
    assert_eq!(fetched.high_watermark, 1);
    assert!(!fetched.records.is_empty());
    let poisoned = broker
        .fetch("t", 0, 0, 1 << 20, true)
        .expect("reads still work");
    assert_eq!(poisoned.high_watermark, 0, "nothing unsynced is visible");
}

/// Issue 7, 5: a partition whose log is inconsistent at start is reported offline and refuses
/// requests with a storage error, while the broker serves every other partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_partition_is_offline_and_the_others_are_served() {
    let dir = TempDir::new().expect("tempdir");
    let broker = open_broker(&dir);
    let configs = [("segment.bytes".to_owned(), Some("1024".to_owned()))];
    broker
        .create_topic_local("t", Some(2), None, &configs, false)
        .expect("create");
    for value in 0..20u8 {
        for partition in 0..2 {
            broker
                .append("t", partition, one_record(&[value; 200]), Acks::All)
                .expect("append")
                .wait()
                .await
                .expect("durable");
        }
    }
    broker.shutdown().expect("clean shutdown");
    drop(broker);
    let first = dir.path().join("t-0").join("00000000000000000000.log");
    let len = std::fs::metadata(&first).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .and_then(|file| file.set_len(len - 1))
        .expect("cut one byte");

    let broker = open_broker(&dir);
    let info = broker.topic("t").expect("the topic is still there");
    let offline: Vec<bool> = info.partitions.iter().map(|p| p.is_offline).collect();
    assert_eq!(offline, [true, false]);
    let fetched = broker.fetch("t", 0, 0, 1 << 20, true);
    assert!(
        matches!(fetched, Err(Error::PartitionOffline { partition: 0, .. })),
        "{fetched:?}"
    );
    let appended = broker.append("t", 0, one_record(b"x"), Acks::All);
    assert!(
        matches!(appended, Err(Error::PartitionOffline { .. })),
        "{appended:?}"
    );
    let healthy = broker.fetch("t", 1, 0, 1 << 20, true).expect("fetch");
    assert_eq!(healthy.high_watermark, 20);
    let appended = broker
        .append("t", 1, one_record(b"y"), Acks::All)
        .expect("append")
        .wait()
        .await
        .expect("durable");
    assert_eq!(appended.base_offset, 20);
    assert_eq!(
        std::fs::metadata(&first)
            .expect("the damaged segment is kept")
            .len(),
        len - 1
    );
}

/// Regression (issue 7, 3): the catalog entry went before the partition directories and
/// nothing swept orphans at start, so a crash during a delete left `<topic>-<n>` behind and a
/// new topic of the same name opened it and served the old topic's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_topic_resurrects_the_deleted_topics_data() {
    let dir = TempDir::new().expect("tempdir");
    let broker = open_broker(&dir);
    broker
        .create_topic_local("reborn", Some(1), None, &[], false)
        .expect("create");
    broker
        .append("reborn", 0, one_record(b"old incarnation"), Acks::All)
        .expect("append")
        .wait()
        .await
        .expect("durable");
    broker.shutdown().expect("shutdown");
    drop(broker);
    // A crash mid-delete: the catalog entry is gone, the directory is not.
    let mut catalog = storage::Catalog::open(dir.path()).expect("catalog");
    catalog.remove("reborn").expect("remove from the catalog");
    drop(catalog);
    assert!(dir.path().join("reborn-0").exists());

    let broker = open_broker(&dir);
    broker
        .create_topic_local("reborn", Some(1), None, &[], false)
        .expect("create again");
    let fetched = broker.fetch("reborn", 0, 0, 1 << 20, true).expect("fetch");
    assert_eq!(
        (fetched.high_watermark, fetched.records.len()),
        (0, 0),
        "a new topic starts empty"
    );
}

/// A leftover directory of a deleted topic that is still there when the topic is created
/// again (its removal failed) is removed first, never opened as the new topic's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_topic_over_a_leftover_directory_starts_empty() {
    let dir = TempDir::new().expect("tempdir");
    let broker = open_broker(&dir);
    broker
        .create_topic_local("left", Some(1), None, &[], false)
        .expect("create");
    broker
        .append("left", 0, one_record(b"old"), Acks::All)
        .expect("append")
        .wait()
        .await
        .expect("durable");
    let leftover = dir.path().join("left-0");
    let saved = dir.path().join("saved");
    copy_dir(&leftover, &saved);
    broker.delete_topic_local("left").expect("delete");
    assert!(!leftover.exists());
    copy_dir(&saved, &leftover); // as if the removal had failed
    broker
        .create_topic_local("left", Some(1), None, &[], false)
        .expect("create again");
    let fetched = broker.fetch("left", 0, 0, 1 << 20, true).expect("fetch");
    assert_eq!((fetched.high_watermark, fetched.records.len()), (0, 0));
}

/// A partition directory recorded for another topic id than the catalog's is left untouched
/// and its partition is offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_directory_of_another_topic_id_is_offline() {
    let dir = TempDir::new().expect("tempdir");
    let broker = open_broker(&dir);
    broker
        .create_topic_local("mixed", Some(2), None, &[], false)
        .expect("create");
    broker.shutdown().expect("shutdown");
    drop(broker);
    let metadata = dir.path().join("mixed-1").join("partition.metadata");
    std::fs::write(&metadata, "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n").expect("write");
    let broker = open_broker(&dir);
    let fetched = broker.fetch("mixed", 1, 0, 1 << 20, true);
    assert!(
        matches!(fetched, Err(Error::PartitionOffline { .. })),
        "{fetched:?}"
    );
    assert!(broker.fetch("mixed", 0, 0, 1 << 20, true).is_ok());
    assert_eq!(
        std::fs::read_to_string(&metadata).expect("kept"),
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}
