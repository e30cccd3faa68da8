//! Transactions with hand-built frames: the error code of each refusal (KIP-890's server-side
//! check of transactional produce at v10, v11 and v12, a late write after an abort, bad input)
//! and the implicit add of transactions v2.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, EndTxnResponse, InitProducerIdRequest, ProducerId,
    TransactionalId,
};
use tempfile::TempDir;

use crate::acks::produce_request;
use crate::harness::{self, Broker};
use crate::idempotence::{Fields, batch, fields};
use crate::raw::{self, RawConn};
use crate::transactions::last_stable_offset;

const INVALID_RECORD: i16 = 87;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const TRANSACTION_ABORTABLE: i16 = 120;

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(id.to_owned().into())
}

/// InitProducerId v4 with a transactional id: (error, producer id, epoch).
fn init(conn: &mut RawConn, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = conn.roundtrip(&request, 4);
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

fn add_partition(conn: &mut RawConn, id: &str, (pid, epoch): (i64, i16), topic: &str) -> i16 {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(raw::topic_name(topic))
                .with_partitions(vec![0]),
        ]);
    let response = conn.roundtrip(&request, 3);
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end(
    conn: &mut RawConn,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
    version: i16,
) -> EndTxnResponse {
    let request = EndTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    conn.roundtrip(&request, version)
}

/// Produce (acks=all) at `version` with a transactional id: (error code, base offset).
fn produce(
    conn: &mut RawConn,
    topic: &str,
    records: bytes::Bytes,
    id: Option<&str>,
    version: i16,
) -> (i16, i64) {
    let request = produce_request(topic, 0, -1, records).with_transactional_id(id.map(txn_id));
    let response = conn.roundtrip(&request, version);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn txn(pid: i64, epoch: i16, sequence: i32) -> Fields {
    Fields {
        transactional: true,
        ..fields(pid, epoch, sequence)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_produce_outside_a_transaction_gets_kafkas_codes() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "tx", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let (code, pid, epoch) = init(&mut conn, "raw-1", 60_000);
    assert_eq!(code, 0);
    // Not added to the transaction: v10 clients get INVALID_TXN_STATE, v11 TRANSACTION_ABORTABLE.
    let first = batch(txn(pid, epoch, 0), 2);
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), Some("raw-1"), 10).0,
        INVALID_TXN_STATE
    );
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), Some("raw-1"), 11).0,
        TRANSACTION_ABORTABLE
    );
    // Transactional records without a transactional id.
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), None, 9).0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    // A transactional id the coordinator does not know.
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), Some("raw-unknown"), 10).0,
        INVALID_PRODUCER_ID_MAPPING
    );
    // Added (v1): accepted, and a retry is a duplicate.
    assert_eq!(add_partition(&mut conn, "raw-1", (pid, epoch), "tx"), 0);
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), Some("raw-1"), 10),
        (0, 0)
    );
    assert_eq!(
        produce(&mut conn, "tx", first.clone(), Some("raw-1"), 10),
        (0, 0)
    );
    assert_eq!(
        last_stable_offset(broker.addr(), "tx", 0),
        0,
        "the open transaction holds the LSO"
    );
    // A control batch from a client is invalid.
    let control = Fields {
        control: true,
        ..txn(pid, epoch, 2)
    };
    assert_eq!(
        produce(&mut conn, "tx", batch(control, 1), Some("raw-1"), 10).0,
        INVALID_RECORD
    );
    // After the abort, a late write of the aborted transaction is refused (KIP-890 part 1).
    assert_eq!(
        end(&mut conn, "raw-1", (pid, epoch), false, 3).error_code,
        0
    );
    let late = batch(txn(pid, epoch, 2), 1);
    assert_eq!(
        produce(&mut conn, "tx", late, Some("raw-1"), 10).0,
        INVALID_TXN_STATE
    );
    assert_eq!(
        last_stable_offset(broker.addr(), "tx", 0),
        3,
        "past the abort marker"
    );
    // Bad input to the coordinator.
    let unknown = end(&mut conn, "raw-never", (pid, epoch), true, 3);
    assert_eq!(unknown.error_code, INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(
        init(&mut conn, "raw-2", i32::MAX).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(init(&mut conn, "raw-2", 0).0, INVALID_TRANSACTION_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_v2_add_partitions_implicitly_and_fence_late_writes() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "tx2", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let (_, pid, epoch) = init(&mut conn, "raw-v2", 60_000);
    // Produce v12: the partition joins the transaction by itself.
    let first = batch(txn(pid, epoch, 0), 3);
    assert_eq!(produce(&mut conn, "tx2", first, Some("raw-v2"), 12), (0, 0));
    assert_eq!(last_stable_offset(broker.addr(), "tx2", 0), 0);
    // EndTxn v5 commits and bumps the epoch.
    let committed = end(&mut conn, "raw-v2", (pid, epoch), true, 5);
    assert_eq!(committed.error_code, 0);
    assert_eq!(
        (committed.producer_id.0, committed.producer_epoch),
        (pid, epoch + 1)
    );
    assert_eq!(
        last_stable_offset(broker.addr(), "tx2", 0),
        4,
        "past the commit marker"
    );
    // A late write at the old epoch is fenced; the new epoch starts again at sequence 0.
    let late = batch(txn(pid, epoch, 3), 1);
    assert_eq!(
        produce(&mut conn, "tx2", late, Some("raw-v2"), 12).0,
        INVALID_PRODUCER_EPOCH
    );
    let next = batch(txn(pid, epoch + 1, 0), 1);
    assert_eq!(produce(&mut conn, "tx2", next, Some("raw-v2"), 12), (0, 4));
    let aborted = end(&mut conn, "raw-v2", (pid, epoch + 1), false, 5);
    assert_eq!(aborted.error_code, 0);
    assert_eq!(aborted.producer_epoch, epoch + 2);
    assert_eq!(last_stable_offset(broker.addr(), "tx2", 0), 6);
}

/// TxnOffsetCommit v3 of `offset` for partition 0 of `topic`: the partition error code.
fn txn_commit(
    conn: &mut RawConn,
    id: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    use kafka_protocol::messages::TxnOffsetCommitRequest;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(id))
        .with_group_id(kafka_protocol::messages::GroupId(group.to_owned().into()))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_member_id("".into())
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(raw::topic_name(topic))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    let response = conn.roundtrip(&request, 3);
    response.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 (require_stable) of partition 0 of `topic`: (offset, error code).
fn fetch_stable(conn: &mut RawConn, group: &str, topic: &str) -> (i64, i16) {
    use kafka_protocol::messages::OffsetFetchRequest;
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let request = OffsetFetchRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(group.to_owned().into()))
        .with_require_stable(true)
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(raw::topic_name(topic))
                .with_partition_indexes(vec![0]),
        ]));
    let response = conn.roundtrip(&request, 7);
    let partition = &response.topics[0].partitions[0];
    (partition.committed_offset, partition.error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transactional_offsets_survive_a_restart_and_count_once_committed() {
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "in", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let (_, pid, epoch) = init(&mut conn, "raw-offsets", 60_000);
    let request = kafka_protocol::messages::AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("raw-offsets"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(kafka_protocol::messages::GroupId("g".to_owned().into()));
    assert_eq!(conn.roundtrip(&request, 3).error_code, 0);
    assert_eq!(
        txn_commit(&mut conn, "raw-offsets", (pid, epoch), "g", "in", 7),
        0
    );
    assert_eq!(
        fetch_stable(&mut conn, "g", "in"),
        (-1, UNSTABLE_OFFSET_COMMIT)
    );
    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    assert_eq!(
        fetch_stable(&mut conn, "g", "in"),
        (-1, UNSTABLE_OFFSET_COMMIT),
        "the pending commit was rebuilt from the offsets topic"
    );
    assert_eq!(
        end(&mut conn, "raw-offsets", (pid, epoch), true, 3).error_code,
        0
    );
    assert_eq!(fetch_stable(&mut conn, "g", "in"), (7, 0));
    // A fenced (stale) producer cannot commit offsets.
    let (_, _, new_epoch) = init(&mut conn, "raw-offsets", 60_000);
    assert!(new_epoch > epoch);
    let fenced = txn_commit(&mut conn, "raw-offsets", (pid, epoch), "g", "in", 9);
    assert_ne!(fenced, 0, "a stale epoch is refused");
    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    assert_eq!(
        fetch_stable(&mut conn, "g", "in"),
        (7, 0),
        "the committed offset is durable"
    );
}
