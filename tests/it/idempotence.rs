//! Idempotent producers: hand-built frames for Kafka's sequence and epoch rules (retries are
//! deduplicated and answered with their first offset, each violation gets its error code, the
//! state survives a restart and a kill -9), and librdkafka's idempotent producer across
//! broker restarts (no duplicates, no gaps).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use indexmap::IndexMap;
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use tempfile::TempDir;

use crate::acks::produce_request;
use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::raw::{self, RawConn};

const INIT_PRODUCER_ID_VERSION: i16 = 4;
const PRODUCE_VERSION: i16 = 9;
const ERROR_OUT_OF_ORDER_SEQUENCE: i16 = 45;
const ERROR_INVALID_PRODUCER_EPOCH: i16 = 47;
const ERROR_INVALID_RECORD: i16 = 87;

/// The producer fields of a hand-built batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) sequence: i32,
    pub(crate) transactional: bool,
    pub(crate) control: bool,
}

/// One uncompressed batch of `count` records with the given producer fields.
pub(crate) fn batch(fields: Fields, count: usize) -> bytes::Bytes {
    let now = harness::now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: fields.transactional,
            control: fields.control,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: fields.producer_id,
            producer_epoch: fields.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).expect("fits"),
            sequence: fields
                .sequence
                .wrapping_add(i32::try_from(i).expect("fits")),
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
    assert_eq!(raw::batch_summaries(&batch).len(), 1, "one batch");
    batch
}

pub(crate) fn fields(producer_id: i64, epoch: i16, sequence: i32) -> Fields {
    Fields {
        producer_id,
        epoch,
        sequence,
        transactional: false,
        control: false,
    }
}

/// InitProducerId without a transactional id: (producer id, epoch).
pub(crate) fn init_producer_id(conn: &mut RawConn) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let response = conn.roundtrip(&request, INIT_PRODUCER_ID_VERSION);
    assert_eq!(response.error_code, 0, "InitProducerId error");
    assert!(response.producer_id.0 >= 0);
    (response.producer_id.0, response.producer_epoch)
}

/// Produces one batch (acks=all); returns (error code, base offset, log append time).
pub(crate) fn produce(
    conn: &mut RawConn,
    topic: &str,
    records: bytes::Bytes,
    transactional_id: Option<&str>,
) -> (i16, i64, i64) {
    let request: ProduceRequest = produce_request(topic, 0, -1, records).with_transactional_id(
        transactional_id.map(|id| kafka_protocol::messages::TransactionalId(id.to_owned().into())),
    );
    let response = conn.roundtrip(&request, PRODUCE_VERSION);
    let partition = &response.responses[0].partition_responses[0];
    (
        partition.error_code,
        partition.base_offset,
        partition.log_append_time_ms,
    )
}

#[track_caller]
fn check(conn: &mut RawConn, topic: &str, records: bytes::Bytes, expected: (i16, i64)) {
    let (code, offset, _) = produce(conn, topic, records, None);
    assert_eq!((code, offset), expected, "(error code, base offset)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_are_deduplicated_and_violations_get_their_codes() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "idem", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let (pid, epoch) = init_producer_id(&mut conn);
    assert_eq!(epoch, 0);
    let (other, _) = init_producer_id(&mut conn);
    assert_ne!(pid, other, "every InitProducerId gets a new id");

    let first = batch(fields(pid, 0, 0), 3);
    check(&mut conn, "idem", first.clone(), (0, 0));
    check(&mut conn, "idem", first.clone(), (0, 0)); // retry: same offset, nothing appended
    check(&mut conn, "idem", batch(fields(pid, 0, 3), 2), (0, 3));
    check(&mut conn, "idem", first, (0, 0)); // an older batch of the last five
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 0, 10), 1),
        (ERROR_OUT_OF_ORDER_SEQUENCE, -1),
    );
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 0, i32::MAX), 1),
        (ERROR_OUT_OF_ORDER_SEQUENCE, -1),
    );
    // A new epoch starts at sequence 0; then the old epoch is fenced.
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 1, 7), 1),
        (ERROR_OUT_OF_ORDER_SEQUENCE, -1),
    );
    check(&mut conn, "idem", batch(fields(pid, 1, 0), 1), (0, 5));
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 0, 5), 1),
        (ERROR_INVALID_PRODUCER_EPOCH, -1),
    );
    // A producer id without state here (expired, or never seen) may start at any sequence, as
    // in Kafka since KIP-360; it then has to continue from there.
    check(&mut conn, "idem", batch(fields(other, 4, 77), 1), (0, 6));
    check(
        &mut conn,
        "idem",
        batch(fields(other, 4, 79), 1),
        (ERROR_OUT_OF_ORDER_SEQUENCE, -1),
    );
    check(&mut conn, "idem", batch(fields(other, 4, 78), 1), (0, 7));
    // Bad input: a negative sequence with a producer id, a control batch from a client.
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 1, -1), 1),
        (ERROR_INVALID_RECORD, -1),
    );
    let control = Fields {
        control: true,
        ..fields(pid, 1, 1)
    };
    check(
        &mut conn,
        "idem",
        batch(control, 1),
        (ERROR_INVALID_RECORD, -1),
    );
    assert_eq!(harness::watermarks(&broker.bootstrap(), "idem", 0), (0, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_survives_a_restart_and_a_kill_9() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "idem", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let (pid, _) = init_producer_id(&mut conn);
    let first = batch(fields(pid, 0, 0), 2);
    check(&mut conn, "idem", first.clone(), (0, 0));

    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    check(&mut conn, "idem", first.clone(), (0, 0));
    let second = batch(fields(pid, 0, 2), 2);
    check(&mut conn, "idem", second.clone(), (0, 2));
    let (after_restart, _) = init_producer_id(&mut conn);
    assert!(
        after_restart > pid,
        "producer ids are never reused after a restart"
    );

    broker.kill9();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    check(&mut conn, "idem", second, (0, 2));
    check(&mut conn, "idem", first, (0, 0));
    check(
        &mut conn,
        "idem",
        batch(fields(pid, 0, 5), 1),
        (ERROR_OUT_OF_ORDER_SEQUENCE, -1),
    );
    check(&mut conn, "idem", batch(fields(pid, 0, 4), 1), (0, 4));
    let (after_crash, _) = init_producer_id(&mut conn);
    assert!(
        after_crash > after_restart,
        "producer ids are never reused after a kill -9"
    );
    assert_eq!(harness::watermarks(&broker.bootstrap(), "idem", 0), (0, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_idempotent_producer_across_restarts_has_no_duplicates_or_gaps() {
    const PARTITIONS: i32 = 3;
    const PER_PARTITION: usize = 3000;
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "idem-restarts", PARTITIONS, &[]).await;
    // Small batches so the stream takes many round trips and restarts hit it mid-flight.
    let producer = harness::producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "1"),
            ("batch.num.messages", "10"),
            ("retry.backoff.ms", "20"),
        ],
    );
    let mut deliveries = Vec::new();
    for n in 0..PER_PARTITION {
        for partition in 0..PARTITIONS {
            let value = format!("{n}");
            let record = FutureRecord::to("idem-restarts")
                .partition(partition)
                .key("k")
                .payload(&value);
            let delivery = producer
                .send_result(record)
                .map_err(|(error, _)| error)
                .expect("enqueue");
            deliveries.push(delivery);
        }
    }
    let total = deliveries.len();
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&delivered);
    let waiter = tokio::spawn(async move {
        let mut failures = Vec::new();
        for delivery in deliveries {
            match tokio::time::timeout(CLIENT_DEADLINE, delivery).await {
                Ok(Ok(Ok(_))) => {}
                other => failures.push(format!("{other:?}")),
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
        failures
    });
    // A kill -9 a third of the way through, a graceful restart at two thirds.
    harness::wait_until(CLIENT_DEADLINE, "a third delivered", || {
        delivered.load(Ordering::Relaxed) >= total / 3
    });
    broker.kill9();
    broker.restart_on_same_port();
    harness::wait_until(CLIENT_DEADLINE, "two thirds delivered", || {
        delivered.load(Ordering::Relaxed) >= 2 * total / 3
    });
    broker.stop();
    broker.restart_on_same_port();
    let failures = waiter.await.expect("delivery waiter");
    assert!(
        failures.is_empty(),
        "{} deliveries failed, the first: {:?}",
        failures.len(),
        failures.iter().take(3).collect::<Vec<_>>()
    );
    let wanted: Vec<(i32, i64, usize)> = (0..PARTITIONS).map(|p| (p, 0, PER_PARTITION)).collect();
    let consumed = harness::consume(&bootstrap, "idem-restarts", &wanted, CLIENT_DEADLINE);
    let mut problems = BTreeMap::new();
    for (partition, messages) in consumed {
        let values: Vec<usize> = messages
            .iter()
            .map(|m| {
                String::from_utf8_lossy(m.payload().expect("payload"))
                    .parse()
                    .expect("numeric payload")
            })
            .collect();
        if values != (0..PER_PARTITION).collect::<Vec<usize>>() {
            problems.insert(partition, values);
        }
    }
    let first_problem = problems.iter().next().map(|(partition, values)| {
        let at = values
            .iter()
            .enumerate()
            .position(|(i, v)| *v != i)
            .unwrap_or(values.len());
        (
            *partition,
            at,
            values.get(at.saturating_sub(2)..(at + 3).min(values.len())),
        )
    });
    assert!(
        problems.is_empty(),
        "duplicates, gaps or reordering (partition, index, values around it): {first_problem:?}"
    );
    for partition in 0..PARTITIONS {
        let (_, high) = harness::watermarks(&bootstrap, "idem-restarts", partition);
        assert_eq!(
            high, PER_PARTITION as i64,
            "no extra record in partition {partition}"
        );
    }
}
