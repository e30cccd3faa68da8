//! The admin commands (`tidelog topic|group|cluster`) run as the real binary against brokers
//! started by the harness: outputs parsed as JSON, failures checked for their exit status and
//! the Kafka error they name; a 4-broker cluster for status, partitions, reassign, drain and
//! unregister.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::cluster::{group_config, leaders};
use crate::harness::{Broker, wait_until};
use crate::operations::{form_four, replicas_of};

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `tidelog ARGS` with `stdin`; returns its output whatever the exit status.
fn tidelog(args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidelog"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TIDELOG_") {
            command.env_remove(name);
        }
    }
    command.args(args);
    if !args.contains(&"--timeout-ms") {
        command.args(["--timeout-ms", "30000"]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidelog");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("tidelog runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
#[track_caller]
fn ok(args: &[&str], stdin: &str) -> String {
    let output = tidelog(args, stdin);
    assert!(
        output.status.success(),
        "tidelog {args:?} failed ({}): {}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs a command with `--format json` that must succeed; returns its stdout parsed.
#[track_caller]
fn json(args: &[&str]) -> Value {
    let mut with_format = args.to_vec();
    with_format.extend(["--format", "json"]);
    let out = ok(&with_format, "");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Runs a command that must fail; returns its stderr.
#[track_caller]
fn fails(args: &[&str]) -> String {
    let output = tidelog(args, "");
    assert_eq!(
        output.status.code(),
        Some(1),
        "tidelog {args:?} should fail: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

/// The records `tidelog topic consume ARGS --format json` prints, one JSON object a line.
#[track_caller]
fn consume(args: &[&str]) -> Vec<Value> {
    let mut full = vec!["topic", "consume"];
    full.extend(args);
    full.extend(["--format", "json"]);
    records(&ok(&full, ""))
}

/// The sum of `field` (committed, lag) over the partitions `group describe` shows.
#[track_caller]
fn total(b: &str, group: &str, field: &str) -> i64 {
    let described = json(&["group", "describe", group, "--bootstrap", b]);
    described["offsets"]
        .as_array()
        .unwrap_or_else(|| panic!("no offsets: {described}"))
        .iter()
        .map(|o| o[field].as_i64().unwrap_or(0))
        .sum()
}

/// NDJSON lines of `consume --format json`.
fn records(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn key_values(records: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("").to_owned(),
                r["value"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn topic_commands_create_describe_configure_produce_consume_and_delete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(dir.path());
    let b = broker.bootstrap();
    let b = b.as_str();

    let created = json(&[
        "topic",
        "create",
        "cli-topic",
        "-p",
        "3",
        "--bootstrap",
        b,
        "--config",
        "retention.ms=3600000",
    ]);
    assert_eq!(created["created"][0], "cli-topic");
    let again = fails(&["topic", "create", "cli-topic", "--bootstrap", b]);
    assert!(again.contains("TOPIC_ALREADY_EXISTS"), "{again}");
    assert!(
        again.contains("tidelog topic delete"),
        "names what to do: {again}"
    );

    let listed = json(&["topic", "list", "--bootstrap", b]);
    let topic = listed
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "cli-topic"))
        .unwrap_or_else(|| panic!("listed: {listed}"));
    assert_eq!(topic["partitions"], 3);
    assert_eq!(topic["replication_factor"], 1);
    assert!(
        listed
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["internal"] == false)),
        "internal topics only with --internal: {listed}"
    );

    let lines: String = (0..30).map(|i| format!("k{i}=v{i}\n")).collect();
    let produced = ok(
        &[
            "topic",
            "produce",
            "cli-topic",
            "--key-separator",
            "=",
            "--bootstrap",
            b,
            "--format",
            "json",
        ],
        &lines,
    );
    let produced: Value = serde_json::from_str(&produced).expect("JSON");
    assert_eq!(produced["records"], 30);
    ok(
        &[
            "topic",
            "produce",
            "cli-topic",
            "--partition",
            "2",
            "--bootstrap",
            b,
        ],
        "no-key\n",
    );

    let all = consume(&["cli-topic", "--bootstrap", b]);
    let mut expected: Vec<(String, String)> = (0..30)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    expected.push((String::new(), "no-key".to_owned()));
    expected.sort();
    assert_eq!(key_values(&all), expected);
    assert!(
        all.iter()
            .any(|r| r["key"].is_null() && r["partition"] == 2)
    );
    // The same key always lands in the same partition (Kafka's murmur2 partitioner).
    let again = consume(&["cli-topic", "--bootstrap", b]);
    let placement = |rs: &[Value]| {
        let mut p: Vec<(String, i64)> = rs
            .iter()
            .map(|r| {
                (
                    r["value"].to_string(),
                    r["partition"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        p.sort();
        p
    };
    assert_eq!(placement(&all), placement(&again));
    let spread: std::collections::BTreeSet<i64> =
        all.iter().filter_map(|r| r["partition"].as_i64()).collect();
    assert_eq!(spread.len(), 3, "30 keys over 3 partitions use all of them");

    let two = consume(&[
        "cli-topic",
        "--partition",
        "2",
        "--from",
        "0",
        "--max-messages",
        "2",
        "--bootstrap",
        b,
    ]);
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|r| r["partition"] == 2));
    let text_out = ok(
        &[
            "topic",
            "consume",
            "cli-topic",
            "--partition",
            "2",
            "--from",
            "end",
            "--bootstrap",
            b,
        ],
        "",
    );
    assert!(text_out.is_empty(), "nothing after the end: {text_out}");

    ok(
        &[
            "topic",
            "alter-config",
            "cli-topic",
            "--set",
            "cleanup.policy=compact",
            "--delete",
            "retention.ms",
            "--bootstrap",
            b,
        ],
        "",
    );
    let described = json(&["topic", "describe", "cli-topic", "--bootstrap", b]);
    let partitions = described["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    let total: i64 = partitions
        .iter()
        .map(|p| {
            p["latest_offset"].as_i64().unwrap_or(0) - p["earliest_offset"].as_i64().unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 31);
    let configs: Vec<(&str, &str)> = described["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        configs,
        [("cleanup.policy", "compact")],
        "only configs set on the topic"
    );
    let bad = fails(&[
        "topic",
        "alter-config",
        "cli-topic",
        "--set",
        "cleanup.policy=sometimes",
        "--bootstrap",
        b,
    ]);
    assert!(
        bad.contains("INVALID_CONFIG") || bad.contains("INVALID_REQUEST"),
        "{bad}"
    );

    ok(&["topic", "delete", "cli-topic", "--bootstrap", b], "");
    let gone = fails(&["topic", "describe", "cli-topic", "--bootstrap", b]);
    assert!(gone.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{gone}");
    let listed = json(&["topic", "list", "--bootstrap", b]);
    assert_eq!(listed, Value::Array(Vec::new()));

    // Nothing listening: a non-zero exit naming the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let unreachable = fails(&[
        "topic",
        "list",
        "--bootstrap",
        &nowhere,
        "--timeout-ms",
        "1000",
    ]);
    assert!(unreachable.contains(&nowhere), "{unreachable}");
}

#[test]
fn group_commands_show_members_and_lag_and_reset_offsets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(dir.path());
    let b = broker.bootstrap();
    let b = b.as_str();
    ok(
        &["topic", "create", "grouped", "-p", "2", "--bootstrap", b],
        "",
    );
    let lines: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(
        &[
            "topic",
            "produce",
            "grouped",
            "--key-separator",
            ":",
            "--bootstrap",
            b,
        ],
        &lines,
    );

    // A CLI consume with --group commits what it printed.
    let read = consume(&[
        "grouped",
        "--group",
        "cli-group",
        "--max-messages",
        "5",
        "--bootstrap",
        b,
    ]);
    assert_eq!(read.len(), 5);
    assert_eq!(
        (
            total(b, "cli-group", "committed"),
            total(b, "cli-group", "lag")
        ),
        (5, 15)
    );
    // The next consume goes on from there.
    let rest = consume(&["grouped", "--group", "cli-group", "--bootstrap", b]);
    assert_eq!(rest.len(), 15);
    let mut seen = key_values(&read);
    seen.extend(key_values(&rest));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20);

    ok(
        &[
            "group",
            "reset-offsets",
            "cli-group",
            "--topic",
            "grouped",
            "--to",
            "earliest",
            "--dry-run",
            "--bootstrap",
            b,
        ],
        "",
    );
    let lag = total(b, "cli-group", "lag");
    assert_eq!(lag, 0, "a dry run commits nothing");
    let reset = json(&[
        "group",
        "reset-offsets",
        "cli-group",
        "--topic",
        "grouped",
        "--to",
        "earliest",
        "--bootstrap",
        b,
    ]);
    assert_eq!(reset["committed"], true);
    let lag = total(b, "cli-group", "lag");
    assert_eq!(lag, 20);

    // A live librdkafka member: describe shows it and its assignment; reset is refused.
    let consumer: BaseConsumer = group_config(b, "live-group").create().expect("consumer");
    consumer.subscribe(&["grouped"]).expect("subscribe");
    let mut polled = 0;
    wait_until(DEADLINE, "the member reads", || {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            polled += 1;
        }
        polled > 0
    });
    let live = json(&["group", "describe", "live-group", "--bootstrap", b]);
    assert_eq!(live["state"], "Stable", "{live}");
    let members = live["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{live}");
    let assigned: Vec<i64> = members[0]["assignment"][0][1]
        .as_array()
        .expect("assignment")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(assigned, [0, 1], "{live}");
    assert_eq!(members[0]["assignment"][0][0], "grouped");
    let table = ok(&["group", "describe", "live-group", "--bootstrap", b], "");
    assert!(table.contains("grouped:0,1"), "{table}");
    let refused = fails(&[
        "group",
        "reset-offsets",
        "live-group",
        "--topic",
        "grouped",
        "--to",
        "latest",
        "--bootstrap",
        b,
    ]);
    assert!(refused.contains("active member"), "{refused}");
    let not_empty = fails(&["group", "delete", "live-group", "--bootstrap", b]);
    assert!(not_empty.contains("NON_EMPTY_GROUP"), "{not_empty}");

    let groups = json(&["group", "list", "--bootstrap", b]);
    let names: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert!(
        names.contains(&"cli-group") && names.contains(&"live-group"),
        "{groups}"
    );
    drop(consumer);

    ok(&["group", "delete", "cli-group", "--bootstrap", b], "");
    let missing = fails(&["group", "describe", "cli-group", "--bootstrap", b]);
    assert!(missing.contains("does not exist"), "{missing}");
}

#[test]
fn cluster_commands_reassign_drain_and_unregister_a_broker() {
    let (mut brokers, _dirs) = form_four();
    let bootstraps: Vec<String> = brokers.iter().map(Broker::bootstrap).collect();
    let b = bootstraps[0].as_str();

    let status = json(&["cluster", "status", "--bootstrap", b]);
    let ids: Vec<i64> = status["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .filter_map(|b| b["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4], "{status}");
    assert!(
        status["controller_id"].as_i64().is_some_and(|c| c > 0),
        "{status}"
    );

    ok(
        &[
            "topic",
            "create",
            "moving",
            "-p",
            "2",
            "-r",
            "3",
            "--bootstrap",
            b,
        ],
        "",
    );
    wait_until(DEADLINE, "both partitions lead", || {
        leaders(b, "moving").values().filter(|&&l| l > 0).count() == 2
    });
    // Written through one broker, read through another.
    let lines: String = (0..50).map(|i| format!("m{i}\n")).collect();
    ok(
        &["topic", "produce", "moving", "--bootstrap", &bootstraps[1]],
        &lines,
    );
    let read = consume(&["moving", "--bootstrap", &bootstraps[2]]);
    assert_eq!(read.len(), 50);

    // Partition 0 moves a follower's replica to broker 4, waiting until done.
    let replicas = replicas_of(b, "moving");
    assert!(
        !replicas.contains(&4),
        "broker 4 joined after the internal topics and this one: {replicas:?}"
    );
    let leader = leaders(b, "moving")[&0];
    let dropped = *replicas
        .iter()
        .rev()
        .find(|&&r| r != leader)
        .expect("a follower");
    let target: Vec<i32> = replicas
        .iter()
        .map(|&r| if r == dropped { 4 } else { r })
        .collect();
    assert!(target.contains(&4), "{target:?}");
    let target_text: Vec<String> = target.iter().map(ToString::to_string).collect();
    let moved = json(&[
        "cluster",
        "reassign",
        "--move",
        &format!("moving:0={}", target_text.join(",")),
        "--bootstrap",
        b,
    ]);
    assert_eq!(moved[0]["error"], Value::Null, "{moved}");
    assert_eq!(replicas_of(b, "moving"), target);
    let listed = json(&[
        "cluster",
        "partitions",
        "--topic",
        "moving",
        "--bootstrap",
        b,
    ]);
    let p0 = &listed.as_array().expect("partitions")[0];
    assert_eq!(p0["replicas"], serde_json::json!(target), "{listed}");
    assert_eq!(p0["reassignment"], Value::Null, "done: {listed}");
    let bad = fails(&[
        "cluster",
        "reassign",
        "--move",
        "moving:1=1,1,9",
        "--bootstrap",
        b,
    ]);
    assert!(bad.contains("INVALID_REPLICA_ASSIGNMENT"), "{bad}");
    // Preferred leaders: each partition's first replica leads (or is made to).
    let elected = json(&[
        "cluster",
        "elect-leaders",
        "--topic",
        "moving",
        "--bootstrap",
        b,
    ]);
    let results: Vec<&str> = elected
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["result"].as_str())
        .collect();
    assert_eq!(results.len(), 2, "{elected}");
    assert!(
        results
            .iter()
            .all(|r| *r == "elected" || *r == "already leads"),
        "{elected}"
    );
    wait_until(DEADLINE, "the preferred replicas lead", || {
        let leaders = leaders(b, "moving");
        leaders.get(&0) == Some(&target[0])
    });
    let unknown = fails(&[
        "cluster",
        "elect-leaders",
        "--topic",
        "nowhere",
        "--bootstrap",
        b,
    ]);
    assert!(unknown.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{unknown}");

    // Drain broker 4: its replica goes elsewhere; then stopped, it is unregistered.
    ok(&["cluster", "drain", "4", "--bootstrap", b], "");
    let after = json(&["cluster", "partitions", "--bootstrap", b]);
    let holding: Vec<&Value> = after
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| {
            p["replicas"]
                .as_array()
                .is_some_and(|r| r.contains(&Value::from(4)))
        })
        .collect();
    assert!(holding.is_empty(), "still on broker 4: {holding:?}");
    assert_eq!(replicas_of(b, "moving").len(), 3);
    let running = fails(&["cluster", "unregister", "4", "--bootstrap", b]);
    assert!(
        running.contains("INVALID_REQUEST"),
        "a running broker: {running}"
    );
    brokers[3].stop();
    wait_until(DEADLINE, "broker 4 fenced", || {
        !crate::cluster::view(brokers[0].addr()).2.contains(&4)
    });
    ok(&["cluster", "unregister", "4", "--bootstrap", b], "");
    let gone = fails(&["cluster", "unregister", "4", "--bootstrap", b]);
    assert!(gone.contains("BROKER_ID_NOT_REGISTERED"), "{gone}");
    let status = json(&["cluster", "status", "--bootstrap", b]);
    assert_eq!(
        status["brokers"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );
    let still = consume(&["moving", "--bootstrap", b]);
    assert_eq!(still.len(), 50);
}

#[test]
fn commands_reach_an_mtls_listener_with_flags_or_a_properties_file() {
    use rcgen::DnType;

    use crate::tls::{Ca, Files, ssl_env, start, write};

    let ca = Ca::new("Tidelog CLI test CA");
    let (files, _) = Files::new(&ca, "broker");
    let (cert, key, _) = ca.sign(&[(DnType::CommonName, "admin")], &[]);
    let cert = write(files.dir.path(), "admin.pem", &cert);
    let key = write(files.dir.path(), "admin.key", &key);
    let data = tempfile::tempdir().expect("temp dir");
    let broker = start(data.path(), &ssl_env(&files, "required"));
    let ssl = broker.listener_addr("ssl").to_string();
    let (ca_path, cert_path, key_path) = (
        files.ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );

    let tls = [
        "--bootstrap",
        ssl.as_str(),
        "--tls-ca",
        &ca_path,
        "--tls-cert",
        &cert_path,
        "--tls-key",
        &key_path,
    ];
    let mut create = vec!["topic", "create", "secure", "-p", "1"];
    create.extend(tls);
    ok(&create, "");
    let mut produce = vec!["topic", "produce", "secure"];
    produce.extend(tls);
    ok(&produce, "over tls\n");

    let properties = write(
        files.dir.path(),
        "client.properties",
        &format!(
            "bootstrap.servers={ssl}\nsecurity.protocol=SSL\nssl.ca.location={ca_path}\n\
             ssl.certificate.location={cert_path}\nssl.key.location={key_path}\n"
        ),
    );
    let properties = properties.display().to_string();
    let read = consume(&["secure", "--command-config", &properties]);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["value"], "over tls");

    // No client certificate: the listener refuses the handshake, the command fails.
    let refused = fails(&[
        "topic",
        "list",
        "--bootstrap",
        &ssl,
        "--tls-ca",
        &ca_path,
        "--timeout-ms",
        "2000",
    ]);
    assert!(refused.contains(&ssl), "{refused}");
    // Plaintext to the TLS listener fails too, rather than hanging.
    let plaintext = fails(&["topic", "list", "--bootstrap", &ssl, "--timeout-ms", "2000"]);
    assert!(plaintext.contains(&ssl), "{plaintext}");
}

#[test]
fn users_created_by_the_cli_authenticate_with_scram() {
    let (data, secrets) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let broker = crate::sasl::start(data.path(), secrets.path(), &[]);
    let b = broker.bootstrap();
    let b = b.as_str();
    ok(
        &[
            "user",
            "create",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password-stdin",
            "--bootstrap",
            b,
        ],
        "wonderland\n",
    );
    ok(
        &[
            "user",
            "create",
            "alice",
            "--password",
            "wonderland",
            "--iterations",
            "8192",
            "--bootstrap",
            b,
        ],
        "",
    );
    let users = json(&["user", "list", "--bootstrap", b]);
    let alice = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["user"] == "alice"))
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(
        alice["credentials"],
        serde_json::json!([["SCRAM-SHA-256", 8192], ["SCRAM-SHA-512", 4096]]),
        "{users}"
    );
    assert!(
        users
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["user"] == "admin")),
        "{users}"
    );

    let sasl = broker.listener_addr("sasl").to_string();
    let authenticates = |mechanism: &str, password: &str, timeout: Duration| {
        let consumer: BaseConsumer = crate::sasl::sasl_config(&sasl, mechanism, "alice", password)
            .create()
            .expect("consumer");
        consumer.fetch_metadata(None, timeout).is_ok()
    };
    assert!(authenticates("SCRAM-SHA-256", "wonderland", DEADLINE));
    assert!(authenticates("SCRAM-SHA-512", "wonderland", DEADLINE));
    assert!(!authenticates(
        "SCRAM-SHA-256",
        "looking-glass",
        Duration::from_secs(3)
    ));

    ok(
        &[
            "user",
            "delete",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--bootstrap",
            b,
        ],
        "",
    );
    assert!(!authenticates(
        "SCRAM-SHA-512",
        "wonderland",
        Duration::from_secs(3)
    ));
    assert!(authenticates("SCRAM-SHA-256", "wonderland", DEADLINE));
    let few = fails(&[
        "user",
        "create",
        "bob",
        "--password",
        "x",
        "--iterations",
        "100",
        "--bootstrap",
        b,
    ]);
    assert!(few.contains("user bob: UNACCEPTABLE_CREDENTIAL"), "{few}");
    let missing = fails(&["user", "delete", "carol", "--bootstrap", b]);
    assert!(missing.contains("RESOURCE_NOT_FOUND"), "{missing}");
}

#[test]
fn commands_authenticate_with_sasl_plain_and_scram() {
    let (data, secrets) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let broker = crate::sasl::start(data.path(), secrets.path(), &[]);
    let sasl = broker.listener_addr("sasl").to_string();
    let password = crate::sasl::PASSWORD;
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = format!("over-{}", mechanism.to_ascii_lowercase());
        ok(
            &[
                "topic",
                "create",
                &topic,
                "--bootstrap",
                &sasl,
                "--sasl-mechanism",
                mechanism,
                "--sasl-username",
                "admin",
                "--sasl-password",
                password,
            ],
            "",
        );
    }
    let properties = secrets.path().join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "bootstrap.servers={sasl}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.username=admin\nsasl.password={password}\n"
        ),
    )
    .expect("write properties");
    let properties = properties.display().to_string();
    let listed = json(&["topic", "list", "--command-config", &properties]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["over-plain", "over-scram-sha-256", "over-scram-sha-512"]
    );

    let wrong = fails(&[
        "topic",
        "list",
        "--bootstrap",
        &sasl,
        "--sasl-mechanism",
        "SCRAM-SHA-256",
        "--sasl-username",
        "admin",
        "--sasl-password",
        "not-it",
    ]);
    assert!(wrong.contains("SASL_AUTHENTICATION_FAILED"), "{wrong}");
    let unsupported = fails(&[
        "topic",
        "list",
        "--bootstrap",
        &sasl,
        "--sasl-mechanism",
        "GSSAPI",
        "--sasl-username",
        "admin",
        "--sasl-password",
        "x",
    ]);
    assert!(unsupported.contains("GSSAPI"), "{unsupported}");
}

#[test]
fn acl_commands_grant_list_and_revoke_a_principal_s_access() {
    let (data, secrets) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let broker = crate::sasl::start(
        data.path(),
        secrets.path(),
        &[
            ("TIDELOG_AUTHORIZATION__ENABLED", "true"),
            ("TIDELOG_AUTHORIZATION__SUPER_USERS", "User:admin"),
        ],
    );
    let sasl = broker.listener_addr("sasl").to_string();
    let as_user = |user: &str, password: &str, args: &[&str]| -> Vec<String> {
        let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        full.extend(
            [
                "--bootstrap",
                &sasl,
                "--sasl-mechanism",
                "SCRAM-SHA-256",
                "--sasl-username",
                user,
                "--sasl-password",
                password,
            ]
            .map(str::to_owned),
        );
        full
    };
    let admin = |args: &[&str]| as_user("admin", crate::sasl::PASSWORD, args);
    let alice = |args: &[&str]| as_user("alice", "wonderland", args);
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        tidelog(&refs, "x\n")
    };
    let succeeded = |args: Vec<String>| {
        let output = run(args.clone());
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    succeeded(admin(&["topic", "create", "guarded"]));
    succeeded(admin(&[
        "user",
        "create",
        "alice",
        "--password",
        "wonderland",
    ]));

    let denied = run(alice(&["topic", "produce", "guarded"]));
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("AUTHORIZATION_FAILED"),
        "{}",
        text(&denied.stderr)
    );

    let created: Value = serde_json::from_str(&succeeded(admin(&[
        "acl",
        "create",
        "--principal",
        "User:alice",
        "--operation",
        "write",
        "--operation",
        "describe",
        "--topic",
        "guarded",
        "--format",
        "json",
    ])))
    .expect("JSON");
    let granted: Vec<(&str, &str, &str, &str)> = created
        .as_array()
        .expect("acls")
        .iter()
        .map(|a| {
            (
                a["operation"].as_str().unwrap_or(""),
                a["permission"].as_str().unwrap_or(""),
                a["resource_type"].as_str().unwrap_or(""),
                a["pattern_type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        granted,
        [
            ("DESCRIBE", "ALLOW", "TOPIC", "LITERAL"),
            ("WRITE", "ALLOW", "TOPIC", "LITERAL")
        ]
    );
    succeeded(alice(&["topic", "produce", "guarded"]));

    succeeded(admin(&[
        "acl",
        "create",
        "--principal",
        "User:alice",
        "--operation",
        "read",
        "--topic",
        "gua",
        "--prefixed",
    ]));
    let prefixed: Value = serde_json::from_str(&succeeded(admin(&[
        "acl",
        "list",
        "--topic",
        "gua",
        "--prefixed",
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert_eq!(prefixed.as_array().map(Vec::len), Some(1), "{prefixed}");
    assert_eq!(prefixed[0]["operation"], "READ");
    let all: Value = serde_json::from_str(&succeeded(admin(&[
        "acl",
        "list",
        "--principal",
        "User:alice",
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

    let deleted: Value = serde_json::from_str(&succeeded(admin(&[
        "acl",
        "delete",
        "--principal",
        "User:alice",
        "--topic",
        "guarded",
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert_eq!(deleted.as_array().map(Vec::len), Some(2), "{deleted}");
    let denied = run(alice(&["topic", "produce", "guarded"]));
    assert_eq!(denied.status.code(), Some(1), "access revoked");
    let unfiltered = run(admin(&["acl", "delete"]));
    assert_eq!(
        unfiltered.status.code(),
        Some(1),
        "deleting every ACL needs a filter"
    );
    let bad = run(admin(&[
        "acl",
        "create",
        "--principal",
        "User:alice",
        "--operation",
        "fly",
        "--topic",
        "t",
    ]));
    assert!(
        text(&bad.stderr).contains("\"fly\" is not one of"),
        "{}",
        text(&bad.stderr)
    );
}
