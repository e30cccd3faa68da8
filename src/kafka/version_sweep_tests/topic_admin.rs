//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions and DeleteRecords.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, BrokerId, create_partitions_request, create_topics_request,
    delete_records_request, delete_topics_request, produce_request,
};
use kafka_protocol::records::Compression;
use uuid::Uuid;

use super::data::record_batch;
use super::{ABSENT, NODE_ID, NONE, Sweep, TOPIC, exactly, text, topic_name};
use crate::kafka::topic_id_to_uuid;

pub(super) fn creatable(
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> create_topics_request::CreatableTopic {
    let configs = configs.iter().map(|(key, value)| {
        create_topics_request::CreatableTopicConfig::default()
            .with_name(text(key))
            .with_value(Some(text(value)))
    });
    create_topics_request::CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(configs.collect())
}

pub(super) async fn create_topics(sweep: &mut Sweep, version: i16) {
    let name = format!("created-v{version}");
    let request = messages::CreateTopicsRequest::default()
        .with_topics(vec![
            creatable(&name, 3, &[("retention.ms", "3600000")]),
            creatable(TOPIC, 1, &[]),
        ])
        .with_timeout_ms(10_000);
    let response: messages::CreateTopicsResponse =
        sweep.call(ApiKey::CreateTopics, version, &request).await;
    let at = format!("CreateTopics v{version}");
    let [created, existing] = exactly(&response.topics, &at);
    assert_eq!(created.name.as_str(), name, "{at}");
    assert_eq!(
        created.error_code, NONE,
        "{at}: {:?}",
        created.error_message
    );
    let info = sweep.ctx.broker.topic(&name).expect("created");
    assert_eq!(info.partitions.len(), 3, "{at}");
    let topic_id = if version >= 7 {
        topic_id_to_uuid(info.topic_id)
    } else {
        Uuid::nil()
    };
    assert_eq!(created.topic_id, topic_id, "{at}");
    if version >= 5 {
        assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
        let configs = created.configs.as_ref().expect("configs at v5+");
        let retention = configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap_or_else(|| panic!("{at}: retention.ms listed"));
        let got = (retention.value.as_deref(), retention.config_source);
        assert_eq!(got, (Some("3600000"), 1), "{at}");
    }
    assert_eq!(existing.name.as_str(), TOPIC, "{at}");
    let exists = ResponseError::TopicAlreadyExists.code();
    assert_eq!(existing.error_code, exists, "{at}");
    assert!(existing.error_message.is_some(), "{at}");
}

pub(super) async fn delete_topics(sweep: &mut Sweep, version: i16) {
    let name = format!("doomed-v{version}");
    let topic_id = sweep.create_topic(&name, 1, &[]).await;
    let request = messages::DeleteTopicsRequest::default().with_timeout_ms(10_000);
    let request = if version >= 6 {
        request.with_topics(vec![
            delete_topics_request::DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(topic_id),
            delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name(ABSENT))),
        ])
    } else {
        request.with_topic_names(vec![topic_name(&name), topic_name(ABSENT)])
    };
    let response: messages::DeleteTopicsResponse =
        sweep.call(ApiKey::DeleteTopics, version, &request).await;
    let at = format!("DeleteTopics v{version}");
    let got: Vec<_> = response
        .responses
        .iter()
        .map(|r| {
            let name = r.name.as_deref().map(|n| n.to_string());
            (name, r.error_code, r.topic_id, r.error_message.is_some())
        })
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    // Ids are reported from v6 on; error messages from v5 on.
    let id = if version >= 6 { topic_id } else { Uuid::nil() };
    let expected = [
        (Some(name.clone()), NONE, id, false),
        (Some(ABSENT.to_owned()), unknown, Uuid::nil(), version >= 5),
    ];
    assert_eq!(got, expected, "{at}");
    assert!(sweep.ctx.broker.topic(&name).is_none(), "{at}: deleted");
}

pub(super) async fn create_partitions(sweep: &mut Sweep, version: i16) {
    let name = format!("grown-v{version}");
    sweep.create_topic(&name, 1, &[]).await;
    let on_us = || {
        create_partitions_request::CreatePartitionsAssignment::default()
            .with_broker_ids(vec![BrokerId(NODE_ID)])
    };
    // Odd versions place the new partitions explicitly.
    let assignments = (version % 2 == 1).then(|| vec![on_us(), on_us()]);
    let grow = |name: &str| {
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(3)
            .with_assignments(assignments.clone())
    };
    let request = messages::CreatePartitionsRequest::default()
        .with_topics(vec![grow(&name), grow(ABSENT)])
        .with_timeout_ms(10_000);
    let response: messages::CreatePartitionsResponse = sweep
        .call(ApiKey::CreatePartitions, version, &request)
        .await;
    let got: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.name.to_string(), r.error_code, r.error_message.is_some()))
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let expected = [
        (name.clone(), NONE, false),
        (ABSENT.to_owned(), unknown, true),
    ];
    assert_eq!(got, expected, "CreatePartitions v{version}");
    let partitions = sweep.ctx.broker.topic(&name).map(|t| t.partitions.len());
    assert_eq!(partitions, Some(3), "CreatePartitions v{version}");
}

pub(super) async fn delete_records(sweep: &mut Sweep, version: i16) {
    let name = format!("trimmed-v{version}");
    sweep.create_topic(&name, 1, &[]).await;
    for batch in 0..2 {
        let records = sweep.next_records(0, batch, 2);
        let partition = produce_request::PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(record_batch(&records, Compression::None)));
        let topic = produce_request::TopicProduceData::default()
            .with_name(topic_name(&name))
            .with_partition_data(vec![partition]);
        let request = messages::ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![topic]);
        let response: messages::ProduceResponse = sweep.call(ApiKey::Produce, 9, &request).await;
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (NONE, i64::from(batch) * 2)
        );
    }
    // v0 cuts at a batch boundary, v1 inside a batch, later versions at the high watermark (-1).
    let (before, low_watermark) = match version {
        0 => (2, 2),
        1 => (3, 3),
        _ => (-1, 4),
    };
    let partition = |index, offset| {
        delete_records_request::DeleteRecordsPartition::default()
            .with_partition_index(index)
            .with_offset(offset)
    };
    let topic = delete_records_request::DeleteRecordsTopic::default()
        .with_name(topic_name(&name))
        .with_partitions(vec![partition(0, before), partition(5, 0)]);
    let request = messages::DeleteRecordsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let response: messages::DeleteRecordsResponse =
        sweep.call(ApiKey::DeleteRecords, version, &request).await;
    let at = format!("DeleteRecords v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.name.as_str(), name, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.low_watermark))
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(got, [(0, NONE, low_watermark), (5, unknown, -1)], "{at}");
    let earliest = sweep
        .ctx
        .broker
        .list_offset(&name, 0, crate::broker::OffsetSpec::Earliest);
    let expected = crate::broker::ListedOffset::Exact {
        offset: low_watermark,
        timestamp: -1,
    };
    assert_eq!(earliest.expect("listed"), expected, "{at}");
}
