//! Client quotas over the wire: AlterClientQuotas sets a producer_byte_rate and a
//! consumer_byte_rate for the default client id, DescribeClientQuotas shows them, and produce
//! and fetch over the bound are answered with a throttle time (and late), while a client under
//! it is not throttled; the quotas survive a restart. A request_percentage quota throttles
//! every API of its client id (throttle_time_ms, and late), and no other client.

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, FetchRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use tempfile::TempDir;

use crate::acks::{encode_batch, produce_request};
use crate::harness::{self, Broker};
use crate::raw::{self, RawConn};

/// Bytes per second the default client id may produce and fetch.
const BYTE_RATE: f64 = 2_000.0;

fn set_default_client_quotas(conn: &mut RawConn) {
    let op = |key: &'static str| {
        OpData::default()
            .with_key(StrBytes::from_static_str(key))
            .with_value(BYTE_RATE)
    };
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(None),
            ])
            .with_ops(vec![op("producer_byte_rate"), op("consumer_byte_rate")]),
    ]);
    let response = conn.roundtrip(&request, 1);
    assert_eq!(response.entries[0].error_code, 0, "{response:?}");
}

fn described_default_quotas(conn: &mut RawConn) -> Vec<(String, f64)> {
    let request = DescribeClientQuotasRequest::default().with_components(vec![
        ComponentData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_match_type(1),
    ]);
    let response = conn.roundtrip(&request, 1);
    assert_eq!(response.error_code, 0);
    response
        .entries
        .unwrap_or_default()
        .iter()
        .flat_map(|e| &e.values)
        .map(|v| (v.key.to_string(), v.value))
        .collect()
}

fn fetch(topic: &str) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(raw::topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_over_a_byte_rate_quota_are_throttled() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "quota", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    // A first produce under no quota is not throttled.
    let batch: Bytes = encode_batch(200);
    let response = conn.roundtrip(&produce_request("quota", 0, -1, batch.clone()), 9);
    assert_eq!(response.throttle_time_ms, 0);

    set_default_client_quotas(&mut conn);
    let mut described = described_default_quotas(&mut conn);
    described.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        described,
        [
            ("consumer_byte_rate".to_owned(), BYTE_RATE),
            ("producer_byte_rate".to_owned(), BYTE_RATE)
        ]
    );
    // 200 records (about 2.4 KB a batch) well over 2 KB/s: throttled within a few batches.
    let mut throttled = 0;
    for _ in 0..20 {
        let response = conn.roundtrip(&produce_request("quota", 0, -1, batch.clone()), 9);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        throttled = response.throttle_time_ms;
        if throttled > 0 {
            break;
        }
    }
    assert!(
        throttled > 0,
        "produce over producer_byte_rate was never throttled"
    );
    // Fetching it all back is over consumer_byte_rate too.
    let response = conn.roundtrip(&fetch("quota"), 12);
    assert!(
        response.throttle_time_ms > 0,
        "fetch over consumer_byte_rate not throttled"
    );

    // The quotas are kept across a restart.
    broker.stop();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr());
    assert_eq!(described_default_quotas(&mut conn).len(), 2);
}

/// A share of one request thread (in percent) so small that any client's requests exceed it.
const REQUEST_PERCENTAGE: f64 = 0.000_1;

/// Sends Metadata requests (at most `count`) until one is answered with a throttle time.
fn first_throttle(conn: &mut RawConn, count: usize) -> Option<i32> {
    (0..count).find_map(|_| {
        let response = conn.roundtrip(&MetadataRequest::default().with_topics(None), 12);
        (response.throttle_time_ms > 0).then_some(response.throttle_time_ms)
    })
}

#[test]
fn requests_over_a_request_percentage_quota_are_throttled_for_that_client_only() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let mut admin = RawConn::connect(broker.addr());
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(Some(StrBytes::from_static_str("busy-client"))),
            ])
            .with_ops(vec![
                OpData::default()
                    .with_key(StrBytes::from_static_str("request_percentage"))
                    .with_value(REQUEST_PERCENTAGE),
            ]),
    ]);
    let response = admin.roundtrip(&request, 1);
    assert_eq!(response.entries[0].error_code, 0, "{response:?}");

    let mut busy = RawConn::connect_as(broker.addr(), "busy-client");
    let throttled = first_throttle(&mut busy, 50)
        .expect("a client over its request_percentage was never throttled");
    // Kafka bounds a request throttle by one quota window (1 s).
    assert!(throttled <= 1_000, "throttled {throttled} ms");
    // Another client id has no request quota: never throttled.
    let mut other = RawConn::connect_as(broker.addr(), "other-client");
    assert_eq!(first_throttle(&mut other, 20), None);
}
