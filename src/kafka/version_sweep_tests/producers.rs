//! Idempotent and transactional producers: InitProducerId (and, as they are served, the
//! transaction APIs) at every advertised version.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{self, ApiKey, add_partitions_to_txn_request};

use super::{NONE, Sweep, exactly, group_id, text, topic_name};

pub(super) async fn init_producer_id(sweep: &mut Sweep, version: i16) {
    let request = messages::InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let request = if version >= 3 {
        request
            .with_producer_id(messages::ProducerId(-1))
            .with_producer_epoch(-1)
    } else {
        request
    };
    let response: messages::InitProducerIdResponse =
        sweep.call(ApiKey::InitProducerId, version, &request).await;
    let at = format!("InitProducerId v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    assert!(response.producer_id.0 >= 0, "{at}: {response:?}");
    assert_eq!(response.producer_epoch, 0, "{at}");
    assert!(
        sweep.producer_ids.insert(response.producer_id.0),
        "{at}: producer id handed out twice"
    );
}

/// The topic the transaction requests name (kept apart from `TOPIC`, whose data other
/// requests check: a transaction marker takes an offset).
const TXN_TOPIC: &str = "sweep-txn";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// A transactional producer for the sweep: InitProducerId v4 with `transactional_id`.
async fn transactional_producer(sweep: &mut Sweep, transactional_id: &str) -> (i64, i16) {
    if !sweep.created_txn_topic {
        sweep.create_topic(TXN_TOPIC, 2, &[]).await;
        sweep.created_txn_topic = true;
    }
    let request = messages::InitProducerIdRequest::default()
        .with_transactional_id(Some(messages::TransactionalId(text(transactional_id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let response: messages::InitProducerIdResponse =
        sweep.call(ApiKey::InitProducerId, 4, &request).await;
    assert_eq!(
        response.error_code, NONE,
        "InitProducerId {transactional_id}"
    );
    (response.producer_id.0, response.producer_epoch)
}

fn add_topic(partitions: Vec<i32>) -> add_partitions_to_txn_request::AddPartitionsToTxnTopic {
    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
        .with_name(topic_name(TXN_TOPIC))
        .with_partitions(partitions)
}

/// The v0-v3 form: partitions of `TXN_TOPIC`; returns (partition, error code) per partition.
async fn add_partitions_v3(
    sweep: &mut Sweep,
    version: i16,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    partitions: Vec<i32>,
) -> Vec<(i32, i16)> {
    let request = messages::AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(messages::TransactionalId(text(transactional_id)))
        .with_v3_and_below_producer_id(messages::ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![add_topic(partitions)]);
    let response: messages::AddPartitionsToTxnResponse = sweep
        .call(ApiKey::AddPartitionsToTxn, version, &request)
        .await;
    let [topic] = exactly(&response.results_by_topic_v3_and_below, "one topic");
    topic
        .results_by_partition
        .iter()
        .map(|p| (p.partition_index, p.partition_error_code))
        .collect()
}

async fn end_txn(
    sweep: &mut Sweep,
    version: i16,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    commit: bool,
) -> messages::EndTxnResponse {
    let request = messages::EndTxnRequest::default()
        .with_transactional_id(messages::TransactionalId(text(transactional_id)))
        .with_producer_id(messages::ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    sweep.call(ApiKey::EndTxn, version, &request).await
}

pub(super) async fn add_partitions_to_txn(sweep: &mut Sweep, version: i16) {
    let at = format!("AddPartitionsToTxn v{version}");
    let id = format!("sweep-add-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    if version < 4 {
        let added = add_partitions_v3(sweep, version, &id, producer, vec![0, 1]).await;
        assert_eq!(added, [(0, NONE), (1, NONE)], "{at}");
        // Kafka: an unknown partition fails, the others are not attempted.
        let unknown = add_partitions_v3(sweep, version, &id, producer, vec![0, 9]).await;
        assert_eq!(
            unknown,
            [
                (0, OPERATION_NOT_ATTEMPTED),
                (9, UNKNOWN_TOPIC_OR_PARTITION)
            ],
            "{at}"
        );
    } else {
        for verify_only in [false, true] {
            let transaction =
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(messages::TransactionalId(text(&id)))
                    .with_producer_id(messages::ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_verify_only(verify_only)
                    .with_topics(vec![add_topic(vec![1])]);
            let request =
                messages::AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
            let response: messages::AddPartitionsToTxnResponse = sweep
                .call(ApiKey::AddPartitionsToTxn, version, &request)
                .await;
            assert_eq!(response.error_code, NONE, "{at}");
            let [result] = exactly(&response.results_by_transaction, &at);
            assert_eq!(result.transactional_id.as_str(), id, "{at}");
            let [topic] = exactly(&result.topic_results, &at);
            let codes: Vec<_> = topic
                .results_by_partition
                .iter()
                .map(|p| (p.partition_index, p.partition_error_code))
                .collect();
            assert_eq!(codes, [(1, NONE)], "{at} verify_only={verify_only}");
        }
    }
    let ended = end_txn(sweep, 3, &id, producer, false).await;
    assert_eq!(ended.error_code, NONE, "{at}: abort");
}

pub(super) async fn add_offsets_to_txn(sweep: &mut Sweep, version: i16) {
    let at = format!("AddOffsetsToTxn v{version}");
    let id = format!("sweep-offsets-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    let request = messages::AddOffsetsToTxnRequest::default()
        .with_transactional_id(messages::TransactionalId(text(&id)))
        .with_producer_id(messages::ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_group_id(group_id("sweep-txn-group"));
    let response: messages::AddOffsetsToTxnResponse =
        sweep.call(ApiKey::AddOffsetsToTxn, version, &request).await;
    assert_eq!(response.error_code, NONE, "{at}");
    // A stale epoch is fenced.
    let stale = request.with_producer_epoch(producer.1 - 1);
    let response: messages::AddOffsetsToTxnResponse =
        sweep.call(ApiKey::AddOffsetsToTxn, version, &stale).await;
    assert_eq!(
        response.error_code,
        ResponseError::ProducerFenced.code(),
        "{at}"
    );
    let ended = end_txn(sweep, 3, &id, producer, false).await;
    assert_eq!(ended.error_code, NONE, "{at}: abort");
}

pub(super) async fn end_txn_at(sweep: &mut Sweep, version: i16) {
    let at = format!("EndTxn v{version}");
    let id = format!("sweep-end-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    let added = add_partitions_v3(sweep, 3, &id, producer, vec![0]).await;
    assert_eq!(added, [(0, NONE)], "{at}");
    let committed = end_txn(sweep, version, &id, producer, true).await;
    assert_eq!(committed.error_code, NONE, "{at}");
    // A retry of the same EndTxn is answered the same way.
    let retried = end_txn(sweep, version, &id, producer, true).await;
    assert_eq!(retried.error_code, NONE, "{at}: retry");
    if version >= 5 {
        // Transactions v2: the epoch is bumped and returned.
        for response in [&committed, &retried] {
            assert_eq!(
                (response.producer_id.0, response.producer_epoch),
                (producer.0, producer.1 + 1),
                "{at}"
            );
        }
    }
    // Aborting what was committed is refused (for v5: with the old epoch it is a retry).
    let wrong = end_txn(sweep, version, &id, producer, false).await;
    assert_eq!(
        wrong.error_code,
        ResponseError::InvalidTxnState.code(),
        "{at}"
    );
    let unknown = end_txn(sweep, version, "sweep-never-initialized", producer, true).await;
    assert_eq!(
        unknown.error_code,
        ResponseError::InvalidProducerIdMapping.code(),
        "{at}"
    );
}

pub(super) async fn describe_producers(sweep: &mut Sweep, version: i16) {
    let at = format!("DescribeProducers v{version}");
    // The EndTxn sweep committed with markers on partition 0 of the transaction topic.
    let request = messages::DescribeProducersRequest::default().with_topics(vec![
        messages::describe_producers_request::TopicRequest::default()
            .with_name(topic_name(TXN_TOPIC))
            .with_partition_indexes(vec![0, 7]),
    ]);
    let response: messages::DescribeProducersResponse = sweep
        .call(ApiKey::DescribeProducers, version, &request)
        .await;
    let [topic] = exactly(&response.topics, &at);
    let [known, unknown] = exactly(&topic.partitions, &at);
    assert_eq!(known.error_code, NONE, "{at}");
    assert!(
        !known.active_producers.is_empty(),
        "{at}: markers leave producer state"
    );
    for producer in &known.active_producers {
        assert!(producer.producer_epoch >= 0, "{at}");
        assert_eq!(
            producer.current_txn_start_offset, -1,
            "{at}: nothing is open"
        );
    }
    assert_eq!(
        unknown.error_code,
        ResponseError::UnknownTopicOrPartition.code(),
        "{at}"
    );
}

pub(super) async fn describe_transactions(sweep: &mut Sweep, version: i16) {
    let at = format!("DescribeTransactions v{version}");
    let id = format!("sweep-describe-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    let added = add_partitions_v3(sweep, 3, &id, producer, vec![1, 0]).await;
    assert_eq!(added, [(1, NONE), (0, NONE)], "{at}");
    let request = messages::DescribeTransactionsRequest::default().with_transactional_ids(vec![
        messages::TransactionalId(text(&id)),
        messages::TransactionalId(text("sweep-never-initialized")),
    ]);
    let response: messages::DescribeTransactionsResponse = sweep
        .call(ApiKey::DescribeTransactions, version, &request)
        .await;
    let [described, unknown] = exactly(&response.transaction_states, &at);
    assert_eq!(described.error_code, NONE, "{at}");
    assert_eq!(described.transaction_state.as_str(), "Ongoing", "{at}");
    assert_eq!(
        (described.producer_id.0, described.producer_epoch),
        producer,
        "{at}"
    );
    assert_eq!(described.transaction_timeout_ms, 60_000, "{at}");
    assert!(described.transaction_start_time_ms > 0, "{at}");
    let [topic] = exactly(&described.topics, &at);
    assert_eq!(topic.topic.as_str(), TXN_TOPIC, "{at}");
    assert_eq!(topic.partitions, [0, 1], "{at}");
    assert_eq!(
        unknown.error_code,
        ResponseError::TransactionalIdNotFound.code(),
        "{at}"
    );
    let ended = end_txn(sweep, 3, &id, producer, false).await;
    assert_eq!(ended.error_code, NONE, "{at}: abort");
}

pub(super) async fn list_transactions(sweep: &mut Sweep, version: i16) {
    let at = format!("ListTransactions v{version}");
    let id = format!("sweep-list-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    let added = add_partitions_v3(sweep, 3, &id, producer, vec![0]).await;
    assert_eq!(added, [(0, NONE)], "{at}");
    let request = messages::ListTransactionsRequest::default()
        .with_state_filters(vec![text("Ongoing"), text("NoSuchState")])
        .with_producer_id_filters(vec![messages::ProducerId(producer.0)]);
    let response: messages::ListTransactionsResponse = sweep
        .call(ApiKey::ListTransactions, version, &request)
        .await;
    assert_eq!(response.error_code, NONE, "{at}");
    assert_eq!(
        response
            .unknown_state_filters
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["NoSuchState"],
        "{at}"
    );
    let [listed] = exactly(&response.transaction_states, &at);
    assert_eq!(listed.transactional_id.as_str(), id, "{at}");
    assert_eq!(listed.transaction_state.as_str(), "Ongoing", "{at}");
    if version >= 1 {
        // KIP-994: only transactions running longer than the filter.
        let long = messages::ListTransactionsRequest::default().with_duration_filter(3_600_000);
        let response: messages::ListTransactionsResponse =
            sweep.call(ApiKey::ListTransactions, version, &long).await;
        assert!(
            !response
                .transaction_states
                .iter()
                .any(|t| t.transactional_id.as_str() == id),
            "{at}: a new transaction is not long-running"
        );
    }
    let ended = end_txn(sweep, 3, &id, producer, false).await;
    assert_eq!(ended.error_code, NONE, "{at}: abort");
}

/// OffsetFetch v7 of one partition of `TXN_TOPIC`: (offset, error code).
async fn fetch_committed(sweep: &mut Sweep, group: &str, require_stable: bool) -> (i64, i16) {
    let request = messages::OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![
            messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic_name(TXN_TOPIC))
                .with_partition_indexes(vec![0]),
        ]));
    let response: messages::OffsetFetchResponse =
        sweep.call(ApiKey::OffsetFetch, 7, &request).await;
    let [topic] = exactly(&response.topics, "OffsetFetch v7");
    let [partition] = exactly(&topic.partitions, "OffsetFetch v7");
    (partition.committed_offset, partition.error_code)
}

pub(super) async fn txn_offset_commit(sweep: &mut Sweep, version: i16) {
    let at = format!("TxnOffsetCommit v{version}");
    let id = format!("sweep-txn-offsets-v{version}");
    let group = format!("sweep-txn-offsets-group-v{version}");
    let producer = transactional_producer(sweep, &id).await;
    if version < 5 {
        // Transactions v1: the offsets partition is added explicitly.
        let request = messages::AddOffsetsToTxnRequest::default()
            .with_transactional_id(messages::TransactionalId(text(&id)))
            .with_producer_id(messages::ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_group_id(group_id(&group));
        let response: messages::AddOffsetsToTxnResponse =
            sweep.call(ApiKey::AddOffsetsToTxn, 3, &request).await;
        assert_eq!(response.error_code, NONE, "{at}: AddOffsetsToTxn");
    }
    let partitions = vec![
        messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(5)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(text("in a transaction"))),
        messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
            .with_partition_index(9)
            .with_committed_offset(1),
    ];
    let mut request = messages::TxnOffsetCommitRequest::default()
        .with_transactional_id(messages::TransactionalId(text(&id)))
        .with_group_id(group_id(&group))
        .with_producer_id(messages::ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_topics(vec![
            messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(topic_name(TXN_TOPIC))
                .with_partitions(partitions),
        ]);
    if version >= 3 {
        request = request.with_generation_id(-1).with_member_id(text(""));
    }
    let response: messages::TxnOffsetCommitResponse =
        sweep.call(ApiKey::TxnOffsetCommit, version, &request).await;
    let [topic] = exactly(&response.topics, &at);
    let codes: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, [(0, NONE), (9, UNKNOWN_TOPIC_OR_PARTITION)], "{at}");
    // Pending until the commit: invisible, and unstable for a client that asks.
    assert_eq!(
        fetch_committed(sweep, &group, false).await,
        (-1, NONE),
        "{at}"
    );
    assert_eq!(
        fetch_committed(sweep, &group, true).await,
        (-1, ResponseError::UnstableOffsetCommit.code()),
        "{at}"
    );
    let end_version = if version >= 5 { 5 } else { 3 };
    let committed = end_txn(sweep, end_version, &id, producer, true).await;
    assert_eq!(committed.error_code, NONE, "{at}: commit");
    assert_eq!(
        fetch_committed(sweep, &group, true).await,
        (5, NONE),
        "{at}"
    );
}
