//! Topic administration through librdkafka's AdminClient: CreateTopics (configs, validate_only,
//! errors), DeleteTopics, DescribeConfigs (topic and broker), AlterConfigs, CreatePartitions.

use std::time::Duration;

use rdkafka::admin::{
    AlterConfig, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic,
    OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use tempfile::TempDir;

use kafka_protocol::messages::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::protocol::StrBytes;

use crate::acks::{encode_batch, produce_request};
use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::raw::{self, RawConn};

/// CreateTopics for one topic; returns the per-topic result.
async fn try_create(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> Result<String, (String, RDKafkaErrorCode)> {
    let admin = harness::admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let mut results = admin
        .create_topics(
            [&topic],
            &harness::admin_options().validate_only(validate_only),
        )
        .await
        .expect("CreateTopics request");
    assert_eq!(results.len(), 1, "{results:?}");
    results.remove(0)
}

pub(crate) async fn describe(bootstrap: &str, resource: ResourceSpecifier<'_>) -> ConfigResource {
    let admin = harness::admin(bootstrap);
    let mut results = admin
        .describe_configs([&resource], &harness::admin_options())
        .await
        .expect("DescribeConfigs request");
    assert_eq!(results.len(), 1, "{results:?}");
    results
        .remove(0)
        .unwrap_or_else(|code| panic!("DescribeConfigs {resource:?} failed: {code:?}"))
}

#[track_caller]
fn entry<'a>(resource: &'a ConfigResource, name: &str) -> &'a ConfigEntry {
    resource.get(name).unwrap_or_else(|| {
        let names: Vec<&str> = resource.entries.iter().map(|e| e.name.as_str()).collect();
        panic!(
            "config {name:?} missing from {:?}; has {names:?}",
            resource.specifier
        )
    })
}

#[track_caller]
pub(crate) fn assert_override(resource: &ConfigResource, name: &str, value: &str) {
    let entry = entry(resource, name);
    assert_eq!(entry.value.as_deref(), Some(value), "{name}: {entry:?}");
    assert_eq!(
        entry.source,
        ConfigSource::DynamicTopic,
        "{name}: {entry:?}"
    );
    assert!(!entry.is_default, "{name}: {entry:?}");
}

#[track_caller]
fn assert_not_overridden(resource: &ConfigResource, name: &str, value: &str) {
    let entry = entry(resource, name);
    assert_eq!(entry.value.as_deref(), Some(value), "{name}: {entry:?}");
    assert!(
        matches!(
            entry.source,
            ConfigSource::Default | ConfigSource::StaticBroker
        ),
        "{name} should come from the broker or the default: {entry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_with_configs_appear_in_metadata_and_describe_configs() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let configs = [
        ("retention.ms", "3600000"),
        ("cleanup.policy", "delete"),
        ("message.timestamp.type", "CreateTime"),
    ];
    let created = try_create(&bootstrap, "configured", 3, &configs, false).await;
    assert_eq!(created, Ok("configured".to_owned()));

    let metadata = harness::metadata(&bootstrap);
    assert_eq!(metadata.brokers().len(), 1, "single node");
    let node_id = metadata.brokers()[0].id();
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == "configured")
        .expect("created topic listed in metadata");
    assert!(topic.error().is_none(), "topic error {:?}", topic.error());
    let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, vec![0, 1, 2]);
    for partition in topic.partitions() {
        assert_eq!(partition.leader(), node_id, "partition {}", partition.id());
        assert_eq!(partition.replicas(), &[node_id]);
        assert_eq!(partition.isr(), &[node_id]);
    }

    let described = describe(&bootstrap, ResourceSpecifier::Topic("configured")).await;
    assert_eq!(
        described.specifier,
        OwnedResourceSpecifier::Topic("configured".to_owned())
    );
    assert_override(&described, "retention.ms", "3600000");
    assert_override(&described, "cleanup.policy", "delete");
    assert_override(&described, "message.timestamp.type", "CreateTime");
    assert_not_overridden(&described, "segment.bytes", "1073741824");
    assert_not_overridden(&described, "max.message.bytes", "1048588");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_validate_only_creates_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let result = try_create(&bootstrap, "dry-run", 2, &[("retention.ms", "1000")], true).await;
    assert_eq!(result, Ok("dry-run".to_owned()));
    assert_eq!(harness::partition_count(&bootstrap, "dry-run"), None);
    // validate_only still validates.
    let bad = try_create(&bootstrap, "dry-run", 2, &[("retention.ms", "soon")], true).await;
    assert_eq!(
        bad,
        Err(("dry-run".to_owned(), RDKafkaErrorCode::InvalidConfig))
    );
    // And the real creation afterwards works.
    let real = try_create(&bootstrap, "dry-run", 2, &[], false).await;
    assert_eq!(real, Ok("dry-run".to_owned()));
    assert_eq!(harness::partition_count(&bootstrap, "dry-run"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_duplicate_name_is_topic_already_exists() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    assert_eq!(
        try_create(&bootstrap, "twice", 1, &[], false).await,
        Ok("twice".to_owned())
    );
    let again = try_create(&bootstrap, "twice", 4, &[], false).await;
    assert_eq!(
        again,
        Err(("twice".to_owned(), RDKafkaErrorCode::TopicAlreadyExists))
    );
    let validate = try_create(&bootstrap, "twice", 1, &[], true).await;
    assert_eq!(
        validate,
        Err(("twice".to_owned(), RDKafkaErrorCode::TopicAlreadyExists))
    );
    assert_eq!(
        harness::partition_count(&bootstrap, "twice"),
        Some(1),
        "unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_bad_name_is_invalid_topic() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let too_long = "a".repeat(250);
    for name in [
        "bad/name",
        "has space",
        ".",
        "..",
        "ünïcode",
        too_long.as_str(),
    ] {
        let result = try_create(&bootstrap, name, 1, &[], false).await;
        assert_eq!(
            result,
            Err((name.to_owned(), RDKafkaErrorCode::InvalidTopic)),
            "topic name {name:?}"
        );
    }
    let longest = "b".repeat(249);
    assert_eq!(
        try_create(&bootstrap, &longest, 1, &[], false).await,
        Ok(longest.clone())
    );
    assert_eq!(
        harness::user_topics(&bootstrap),
        vec![longest],
        "only the valid topic exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_bad_partitions_or_config_is_rejected() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let zero = try_create(&bootstrap, "zero", 0, &[], false).await;
    assert_eq!(
        zero,
        Err(("zero".to_owned(), RDKafkaErrorCode::InvalidPartitions))
    );
    let bad_value = try_create(&bootstrap, "bad-value", 1, &[("retention.ms", "x")], false).await;
    assert_eq!(
        bad_value,
        Err(("bad-value".to_owned(), RDKafkaErrorCode::InvalidConfig))
    );
    let bad_policy = try_create(
        &bootstrap,
        "bad-policy",
        1,
        &[("cleanup.policy", "shred")],
        false,
    )
    .await;
    assert_eq!(
        bad_policy,
        Err(("bad-policy".to_owned(), RDKafkaErrorCode::InvalidConfig))
    );
    let unknown = try_create(
        &bootstrap,
        "unknown-key",
        1,
        &[("no.such.config", "1")],
        false,
    )
    .await;
    assert_eq!(
        unknown,
        Err(("unknown-key".to_owned(), RDKafkaErrorCode::InvalidConfig))
    );
    assert!(
        harness::user_topics(&bootstrap).is_empty(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_removes_topic_and_unknown_is_error() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "doomed", 2, &[]).await;
    harness::create_topic(&bootstrap, "kept", 1, &[]).await;
    let producer = harness::producer(&bootstrap, &[]);
    producer
        .send(
            FutureRecord::to("doomed")
                .partition(1)
                .key("k")
                .payload("v"),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce before delete");
    // Closed first: a producer that knows the topic asks for its metadata with auto-creation
    // on, and could create it again between the deletion and the checks below.
    drop(producer);

    let admin = harness::admin(&bootstrap);
    let results = admin
        .delete_topics(&["doomed"], &harness::admin_options())
        .await
        .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok("doomed".to_owned())]);
    assert_eq!(harness::partition_count(&bootstrap, "doomed"), None);
    assert_eq!(harness::partition_count(&bootstrap, "kept"), Some(1));

    let again = admin
        .delete_topics(&["doomed"], &harness::admin_options())
        .await
        .expect("DeleteTopics request");
    assert_eq!(
        again,
        vec![Err((
            "doomed".to_owned(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    // Recreating the name starts from an empty log.
    harness::create_topic(&bootstrap, "doomed", 2, &[]).await;
    assert_eq!(harness::watermarks(&bootstrap, "doomed", 1), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_broker_reports_values_and_sources() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let node_id = harness::metadata(&bootstrap).brokers()[0].id();
    let described = describe(&bootstrap, ResourceSpecifier::Broker(node_id)).await;
    assert_eq!(described.specifier, OwnedResourceSpecifier::Broker(node_id));
    assert!(!described.entries.is_empty(), "broker configs are empty");
    for entry in &described.entries {
        assert!(
            matches!(
                entry.source,
                ConfigSource::Default
                    | ConfigSource::StaticBroker
                    | ConfigSource::DynamicBroker
                    | ConfigSource::DynamicDefaultBroker
            ),
            "broker config with a non-broker source: {entry:?}"
        );
        assert!(
            entry.is_sensitive || entry.value.is_some(),
            "non-sensitive broker config without a value: {entry:?}"
        );
    }
    // A broker started with no config file reports Kafka's defaults, as defaults.
    for (name, value) in [
        ("log.segment.bytes", "1073741824"),
        ("message.max.bytes", "1048588"),
    ] {
        let entry = entry(&described, name);
        assert_eq!(entry.value.as_deref(), Some(value), "{entry:?}");
        assert_eq!(entry.source, ConfigSource::Default, "{entry:?}");
        assert!(entry.is_default, "{entry:?}");
    }
}

/// A Kafka broker config that changes at runtime and that no Tidelog component reads.
pub(crate) const KERBEROS_RELOGIN: &str = "sasl.kerberos.min.time.before.relogin";

#[track_caller]
pub(crate) fn assert_dynamic(
    resource: &ConfigResource,
    name: &str,
    value: &str,
    source: ConfigSource,
) {
    let entry = entry(resource, name);
    assert_eq!(entry.value.as_deref(), Some(value), "{name}: {entry:?}");
    assert_eq!(entry.source, source, "{name}: {entry:?}");
    assert!(
        !entry.is_read_only && !entry.is_default,
        "{name}: {entry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_are_described_and_survive_a_restart() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    let node_id = harness::metadata(&bootstrap).brokers()[0].id();
    let admin = harness::admin(&bootstrap);
    let node = AlterConfig::new(ResourceSpecifier::Broker(node_id)).set(KERBEROS_RELOGIN, "58000");
    let results = admin
        .alter_configs([&node], &harness::admin_options())
        .await
        .expect("AlterConfigs request");
    assert_eq!(results, vec![Ok(OwnedResourceSpecifier::Broker(node_id))]);
    // The cluster-wide default (the empty broker name, which rdkafka cannot name) on the wire.
    let default = raw_alter_config(broker.addr(), RESOURCE_TYPE_BROKER, "", "custom.key", "on");
    assert_eq!(default, (0, None));
    // A static key is refused as Kafka refuses it, and a per-broker key as a default.
    let node_name = node_id.to_string();
    let refusals = [
        (
            node_name.as_str(),
            "log.dirs",
            "Cannot update these configs dynamically: Set(log.dirs)",
        ),
        (
            "",
            KERBEROS_RELOGIN,
            "Cannot update these configs at default cluster level, broker id must be specified: \
             Set(sasl.kerberos.min.time.before.relogin)",
        ),
    ];
    for (name, key, message) in refusals {
        let got = raw_alter_config(broker.addr(), RESOURCE_TYPE_BROKER, name, key, "1");
        assert_eq!(
            got,
            (ERROR_INVALID_REQUEST, Some(message.to_owned())),
            "{key}"
        );
    }

    for round in ["before", "after"] {
        let bootstrap = broker.bootstrap();
        let described = describe(&bootstrap, ResourceSpecifier::Broker(node_id)).await;
        let dynamic = ConfigSource::DynamicBroker;
        assert_dynamic(&described, KERBEROS_RELOGIN, "58000", dynamic);
        let inherited = ConfigSource::DynamicDefaultBroker;
        assert_dynamic(&described, "custom.key", "on", inherited);
        assert_not_overridden(&described, "log.dirs", &dir.path().display().to_string());
        if round == "before" {
            assert_eq!(broker.stop().code(), Some(0));
            broker.restart();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_all_topic_overrides() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(
        &bootstrap,
        "altered",
        1,
        &[("retention.ms", "3600000"), ("cleanup.policy", "delete")],
    )
    .await;
    let admin = harness::admin(&bootstrap);

    // validate_only changes nothing.
    let dry = AlterConfig::new(ResourceSpecifier::Topic("altered")).set("retention.ms", "1");
    let results = admin
        .alter_configs([&dry], &harness::admin_options().validate_only(true))
        .await
        .expect("AlterConfigs request");
    assert_eq!(
        results,
        vec![Ok(OwnedResourceSpecifier::Topic("altered".to_owned()))]
    );
    let described = describe(&bootstrap, ResourceSpecifier::Topic("altered")).await;
    assert_override(&described, "retention.ms", "3600000");

    // Legacy AlterConfigs sets the complete override set: cleanup.policy is no longer overridden.
    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("altered")).set("retention.ms", "7200000");
    let results = admin
        .alter_configs([&alter], &harness::admin_options())
        .await
        .expect("AlterConfigs request");
    assert_eq!(
        results,
        vec![Ok(OwnedResourceSpecifier::Topic("altered".to_owned()))]
    );
    let described = describe(&bootstrap, ResourceSpecifier::Topic("altered")).await;
    assert_override(&described, "retention.ms", "7200000");
    assert_not_overridden(&described, "cleanup.policy", "delete");

    // rdkafka 0.33 drops per-resource AlterConfigs errors, so the error cases go on the wire.
    for (key, value) in [("retention.ms", "forever"), ("no.such.config", "1")] {
        let code = raw_alter_topic_config(broker.addr(), "altered", key, value);
        assert_eq!(code, ERROR_INVALID_CONFIG, "AlterConfigs {key}={value}");
    }
    let described = describe(&bootstrap, ResourceSpecifier::Topic("altered")).await;
    assert_override(&described, "retention.ms", "7200000");
    let code = raw_alter_topic_config(broker.addr(), "missing", "retention.ms", "1");
    assert_eq!(
        code, ERROR_UNKNOWN_TOPIC_OR_PARTITION,
        "AlterConfigs on a missing topic"
    );
}

const ERROR_UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ERROR_INVALID_CONFIG: i16 = 40;
const RESOURCE_TYPE_TOPIC: i8 = 2;
const RESOURCE_TYPE_BROKER: i8 = 4;
const ERROR_INVALID_REQUEST: i16 = 42;

/// AlterConfigs (legacy, non-incremental) of one topic key over a raw connection; returns the
/// resource's error code.
fn raw_alter_topic_config(addr: std::net::SocketAddr, topic: &str, key: &str, value: &str) -> i16 {
    raw_alter_config(addr, RESOURCE_TYPE_TOPIC, topic, key, value).0
}

/// AlterConfigs (legacy, non-incremental) of one key of a resource over a raw connection;
/// returns the resource's error code and message.
fn raw_alter_config(
    addr: std::net::SocketAddr,
    resource_type: i8,
    name: &str,
    key: &str,
    value: &str,
) -> (i16, Option<String>) {
    let version = raw::negotiate(&raw::api_versions(addr), API_KEY_ALTER_CONFIGS, (0, 2));
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_owned()))
                    .with_value(Some(StrBytes::from_string(value.to_owned()))),
            ]),
    ]);
    let response = RawConn::connect(addr).roundtrip(&request, version);
    assert_eq!(response.responses.len(), 1, "{response:?}");
    let resource = &response.responses[0];
    assert_eq!(resource.resource_name.as_str(), name);
    (
        resource.error_code,
        resource.error_message.as_ref().map(|m| m.to_string()),
    )
}

const API_KEY_ALTER_CONFIGS: i16 = 33;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_topic_and_rejects_shrink() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "growing", 2, &[]).await;
    let admin = harness::admin(&bootstrap);

    let dry = NewPartitions::new("growing", 4);
    let results = admin
        .create_partitions([&dry], &harness::admin_options().validate_only(true))
        .await
        .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok("growing".to_owned())]);
    assert_eq!(
        harness::partition_count(&bootstrap, "growing"),
        Some(2),
        "validate_only"
    );

    let grow = NewPartitions::new("growing", 5);
    let results = admin
        .create_partitions([&grow], &harness::admin_options())
        .await
        .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok("growing".to_owned())]);
    assert_eq!(harness::partition_count(&bootstrap, "growing"), Some(5));

    for count in [5, 3] {
        let shrink = NewPartitions::new("growing", count);
        let results = admin
            .create_partitions([&shrink], &harness::admin_options())
            .await
            .expect("CreatePartitions request");
        assert_eq!(
            results,
            vec![Err((
                "growing".to_owned(),
                RDKafkaErrorCode::InvalidPartitions
            ))],
            "to {count} partitions"
        );
    }
    let unknown = NewPartitions::new("missing", 3);
    let results = admin
        .create_partitions([&unknown], &harness::admin_options())
        .await
        .expect("CreatePartitions request");
    assert_eq!(
        results,
        vec![Err((
            "missing".to_owned(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    // The new partition takes writes and serves them.
    let producer = harness::producer(&bootstrap, &[]);
    let delivered = producer
        .send(
            FutureRecord::to("growing")
                .partition(4)
                .key("k")
                .payload("p4"),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce to a new partition");
    assert_eq!(delivered, (4, 0));
    let consumed = harness::consume_to_high_watermark(&bootstrap, "growing", 4, 0);
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].payload(), Some(&b"p4"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topic_stamps_broker_time() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(
        &bootstrap,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = harness::now_ms();
    let producer = harness::producer(&bootstrap, &[]);
    producer
        .send(
            FutureRecord::<(), _>::to("stamped")
                .partition(0)
                .payload("old")
                .timestamp(before - 86_400_000),
            CLIENT_DEADLINE,
        )
        .await
        .expect("produce");

    // The produce response carries the append time (not -1).
    let versions = raw::api_versions(broker.addr());
    let version = raw::negotiate(&versions, raw::API_KEY_PRODUCE, (3, 12));
    let response = RawConn::connect(broker.addr())
        .roundtrip(&produce_request("stamped", 0, -1, encode_batch(2)), version);
    let after = harness::now_ms();
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, raw::ERROR_NONE);
    assert_eq!(partition.base_offset, 1);
    assert!(
        (before..=after).contains(&partition.log_append_time_ms),
        "log_append_time_ms {} not within [{before}, {after}]",
        partition.log_append_time_ms
    );

    let consumed = harness::consume_to_high_watermark(&bootstrap, "stamped", 0, 0);
    assert_eq!(consumed.len(), 3);
    for message in &consumed {
        match message.timestamp() {
            Timestamp::LogAppendTime(t) => assert!(
                (before..=after).contains(&t),
                "append time {t} not within [{before}, {after}]"
            ),
            other => panic!(
                "expected LogAppendTime, got {other:?} at {}",
                message.offset()
            ),
        }
    }

    // ListOffsets by time uses the append time.
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("stamped", 0, Offset::Offset(before - 1))
        .expect("add partition");
    let found = harness::consumer(&bootstrap)
        .offsets_for_times(query, Duration::from_secs(30))
        .expect("offsets_for_times");
    assert_eq!(
        found
            .find_partition("stamped", 0)
            .expect("partition")
            .offset(),
        Offset::Offset(0)
    );
}
