//! In-process tests of the broker's durability paths (group commit, deletion, failing or slow
//! disks): a real broker in a temp directory, driven through its Kafka-agnostic methods.

use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempDir;

use super::{Acks, Broker, BrokerSettings, Endpoint, Error};
use crate::storage;

fn open_broker(dir: &TempDir) -> Arc<Broker> {
    let settings = BrokerSettings::for_test(
        1,
        "durability-test",
        dir.path(),
        Endpoint {
            host: "broker.test".to_owned(),
            port: 19092,
        },
    );
    Broker::open(settings).expect("broker opens in a fresh directory")
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
        .create_topic("doomed", Some(1), None, &[], false)
        .expect("create");
    let partition = Arc::downgrade(&broker.partition("doomed", 0).expect("partition").1);
    // Nothing else runs on this runtime until the test awaits: the flusher has not flushed.
    let pending = broker
        .append("doomed", 0, one_record(b"lost"), Acks::All)
        .expect("append");
    broker.delete_topic("doomed").expect("delete");
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
