//! `/metrics` (issue 12): Prometheus text from a real broker after real produce, fetch and
//! group commits, checked to move; and every metric name the Grafana dashboard
//! (`ops/grafana/tidelog.json`) queries is one a replicated cluster exports.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster_inproc::InProcessCluster;
use crate::harness::{self, CLIENT_DEADLINE, wait_until};
use crate::probes::{admin_addr, http_get};

const DEADLINE: Duration = Duration::from_secs(90);

/// The sum of every sample of `name` whose labels include all of `labels`; None if none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name
            || !labels
                .iter()
                .all(|(key, value)| series_labels.contains(&format!("{key}=\"{value}\"")))
        {
            continue;
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad sample {line:?}"));
        *found.get_or_insert(0.0) += value;
    }
    found
}

/// The metric family names of a scrape (its `# TYPE` lines).
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn scrape(admin: SocketAddr) -> String {
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// Sends `count` records (`value 0`, `value 1`, ...) to partition 0 of `topic`, one at a
/// time, each waited for.
pub(crate) fn send_values(
    runtime: &tokio::runtime::Runtime,
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    count: usize,
) {
    for i in 0..count {
        let value = format!("value {i}");
        let record = FutureRecord::to(topic)
            .partition(0)
            .key("k")
            .payload(&value);
        runtime
            .block_on(producer.send(record, CLIENT_DEADLINE))
            .expect("delivered");
    }
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("broker.address.family", "v4")
        .create()
        .expect("create a consumer")
}

#[test]
fn single_broker_metrics_move_with_produce_fetch_and_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker =
        harness::Broker::start_with_env(dir.path(), &[("TIDELOG_ADMIN__LISTEN", "127.0.0.1:0")]);
    let admin = admin_addr(&broker);
    let before = scrape(admin);
    assert!(
        before.contains("# TYPE tidelog_authentication_failures_total counter"),
        "{before}"
    );
    let produced_before = sample(&before, "tidelog_requests_total", &[("api", "Produce")]);
    assert_eq!(produced_before, None, "nothing produced yet: {before}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(harness::create_topic(
        &broker.bootstrap(),
        "metered",
        1,
        &[],
    ));
    let producer = harness::producer(&broker.bootstrap(), &[]);
    send_values(&runtime, &producer, "metered", 10);
    let read = harness::consume(
        &broker.bootstrap(),
        "metered",
        &[(0, 0, 10)],
        CLIENT_DEADLINE,
    );
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), 10);
    let consumer = group_consumer(&broker.bootstrap(), "metered-group");
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset("metered", 0, Offset::Offset(4))
        .expect("offset");
    consumer
        .commit(&commit, CommitMode::Sync)
        .expect("commit offset 4");

    let after = scrape(admin);
    let topic = [("topic", "metered")];
    let partition = [("topic", "metered"), ("partition", "0")];
    assert!(
        sample(&after, "tidelog_requests_total", &[("api", "Produce")]).is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_requests_total", &[("api", "Fetch")]).is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "tidelog_request_duration_seconds_count",
            &[("api", "Produce")]
        )
        .is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_topic_bytes_in_total", &topic).is_some_and(|n| n > 100.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_topic_bytes_out_total", &topic).is_some_and(|n| n > 100.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tidelog_partition_log_end_offset", &partition),
        Some(10.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tidelog_partition_high_watermark", &partition),
        Some(10.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tidelog_partition_log_start_offset", &partition),
        Some(0.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_partition_log_size_bytes", &partition).is_some_and(|n| n > 100.0),
        "{after}"
    );
    let lag = [
        ("group", "metered-group"),
        ("topic", "metered"),
        ("partition", "0"),
    ];
    assert_eq!(
        sample(&after, "tidelog_consumer_group_lag_records", &lag),
        Some(6.0),
        "{after}"
    );
    // acks=all waits for fsync.
    assert!(
        sample(&after, "tidelog_storage_fsync_duration_seconds_count", &[])
            .is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_connections_open", &[]).is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        sample(&after, "tidelog_connections_accepted_total", &[]).is_some_and(|n| n >= 2.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tidelog_authentication_failures_total", &[]),
        Some(0.0),
        "{after}"
    );
    // A request the broker cannot serve is counted as failed, with a bounded label.
    let garbage = [0_u8, 0, 0, 8, 0x7f, 0x7f, 0x12, 0x34, 0, 0, 0, 1];
    let _ = crate::probes::http_raw(broker.addr(), &garbage);
    wait_until(DEADLINE, "the undecodable request to be counted", || {
        let text = scrape(admin);
        sample(
            &text,
            "tidelog_request_errors_total",
            &[("api", "unknown"), ("version", "unsupported")],
        )
        .is_some_and(|n| n >= 1.0)
    });
}

#[test]
fn replicated_cluster_exports_every_metric_the_dashboard_uses() {
    let mut cluster = InProcessCluster::empty();
    for _ in 0..3 {
        cluster.add(3);
    }
    let admins: Vec<SocketAddr> = cluster
        .brokers()
        .iter()
        .map(|b| b.admin_addr().expect("admin listener"))
        .collect();
    for admin in &admins {
        wait_until(DEADLINE, "every broker ready", || {
            http_get(*admin, "/ready").0 == 200
        });
    }
    let bootstrap = cluster.brokers()[0].kafka_addr().to_string();
    let topic = NewTopic::new("replicated", 2, TopicReplication::Fixed(3));
    let created = cluster
        .runtime()
        .block_on(harness::admin(&bootstrap).create_topics([&topic], &harness::admin_options()))
        .expect("CreateTopics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer = harness::producer(&bootstrap, &[]);
    wait_until(DEADLINE, "a record acknowledged by the replicas", || {
        let record = FutureRecord::to("replicated")
            .partition(0)
            .key("k")
            .payload("v");
        cluster
            .runtime()
            .block_on(producer.send(record, Duration::from_secs(5)))
            .is_ok()
    });
    for i in 0..10 {
        let record = FutureRecord::to("replicated")
            .partition(i % 2)
            .key("k")
            .payload("value");
        cluster
            .runtime()
            .block_on(producer.send(record, CLIENT_DEADLINE))
            .expect("delivered");
    }
    let consumer = group_consumer(&bootstrap, "dashboard-group");
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset("replicated", 0, Offset::Offset(1))
        .expect("offset");
    wait_until(DEADLINE, "an offset commit", || {
        consumer.commit(&commit, CommitMode::Sync).is_ok()
    });
    let read = harness::consume(&bootstrap, "replicated", &[(1, 0, 5)], CLIENT_DEADLINE);
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), 5);

    let dashboard_path = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/grafana/tidelog.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard_path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    let mut used = BTreeSet::new();
    collect_metric_names(&dashboard, &mut used);
    assert!(used.len() >= 15, "the dashboard uses {used:?}");
    // The brokers share this process's registry; each scrape sets the gauges of what it leads.
    let mut missing = used.clone();
    wait_until(DEADLINE, "every dashboard metric exported", || {
        let mut exported = BTreeSet::new();
        for admin in &admins {
            exported.extend(exported_names(&scrape(*admin)));
        }
        missing = used
            .iter()
            .filter(|name| !exported.contains(*name))
            .cloned()
            .collect();
        missing.is_empty()
    });
    let text = scrape(admins[0]);
    assert!(
        sample(&text, "tidelog_raft_commit_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "tidelog_raft_leader_changes_total",
            &[("group_kind", "partition")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "tidelog_partition_replica_lag_entries",
            &[("topic", "replicated")]
        )
        .is_some(),
        "{text}"
    );
    drop(producer);
    cluster.stop();
}

/// Every `tidelog_*` metric family named in the dashboard's queries (`_bucket`, `_sum` and
/// `_count` belong to their histogram).
fn collect_metric_names(value: &serde_json::Value, names: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "definition", serde_json::Value::String(expr)) => {
                        names.extend(metric_names_in(expr));
                    }
                    _ => collect_metric_names(inner, names),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_metric_names(item, names);
            }
        }
        _ => {}
    }
}

fn metric_names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tidelog_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                word.strip_suffix(suffix)
                    .filter(|base| base.ends_with("_seconds"))
            })
            .unwrap_or(&word);
        names.push(family.to_owned());
    }
    names
}
