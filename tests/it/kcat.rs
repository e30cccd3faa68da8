//! Smoke tests with the `kcat` CLI (librdkafka as packaged by Debian): metadata listing, producing
//! with keys and headers, consuming from beginning/end/offset, JSON output and offset queries.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use rdkafka::producer::FutureRecord;
use serde_json::Value;
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};

/// Runs `kcat -b <bootstrap> <args>` with `stdin`, kills it if it outlives the deadline, and
/// panics unless it exits 0. Returns stdout.
pub(crate) fn kcat(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("kcat")
        .arg("-b")
        .arg(bootstrap)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kcat (it must be installed): {e}"));
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin piped");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        input.write_all(stdin.as_bytes()).expect("write kcat stdin");
    });
    let (tx, rx) = mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(CLIENT_DEADLINE) {
        Ok(output) => output.expect("wait for kcat"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("kcat {args:?} did not finish within {CLIENT_DEADLINE:?}");
        }
    };
    writer.join().expect("stdin writer");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "kcat {args:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_metadata_lists_broker_and_topics() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "listed", 2, &[]).await;
    let node_id = harness::metadata(&bootstrap).brokers()[0].id();

    let text = kcat(&bootstrap, &["-L"], "");
    assert!(text.contains(" 1 brokers:"), "{text}");
    assert!(
        text.contains(&format!("broker {node_id} at {bootstrap}")),
        "advertised address is the bound one:\n{text}"
    );
    assert!(
        text.contains("topic \"listed\" with 2 partitions:"),
        "{text}"
    );
    for partition in 0..2 {
        assert!(
            text.contains(&format!(
                "partition {partition}, leader {node_id}, replicas: {node_id}, isrs: {node_id}"
            )),
            "{text}"
        );
    }

    let json = json_lines(&kcat(&bootstrap, &["-L", "-J"], ""));
    assert_eq!(json.len(), 1, "{json:?}");
    let metadata = &json[0];
    assert_eq!(
        metadata["brokers"].as_array().expect("brokers").len(),
        1,
        "{metadata}"
    );
    assert_eq!(metadata["brokers"][0]["id"], node_id, "{metadata}");
    assert_eq!(
        metadata["brokers"][0]["name"],
        format!("{bootstrap}"),
        "{metadata}"
    );
    let topics = metadata["topics"].as_array().expect("topics");
    let listed = topics
        .iter()
        .find(|t| t["topic"] == "listed")
        .unwrap_or_else(|| panic!("topic missing: {metadata}"));
    let partitions = listed["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2, "{listed}");
    for partition in partitions {
        assert_eq!(partition["leader"], node_id, "{partition}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produce_with_keys_and_headers_consumes_back() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "cli", 1, &[]).await;

    let lines: Vec<String> = (0..5).map(|i| format!("key{i}:value {i}\n")).collect();
    kcat(
        &bootstrap,
        &[
            "-P",
            "-t",
            "cli",
            "-p",
            "0",
            "-K:",
            "-H",
            "trace=abc",
            "-H",
            "app=kcat",
        ],
        &lines.concat(),
    );
    assert_eq!(harness::watermarks(&bootstrap, "cli", 0), (0, 5));

    let format = "%k|%s|%h|%o|%p\n";
    let all = kcat(
        &bootstrap,
        &[
            "-C",
            "-t",
            "cli",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            format,
        ],
        "",
    );
    let expected: String = (0..5)
        .map(|i| format!("key{i}|value {i}|trace=abc,app=kcat|{i}|0\n"))
        .collect();
    assert_eq!(all, expected);

    let from_three = kcat(
        &bootstrap,
        &[
            "-C", "-t", "cli", "-p", "0", "-o", "3", "-e", "-f", "%o:%s\n",
        ],
        "",
    );
    assert_eq!(from_three, "3:value 3\n4:value 4\n");

    let last_two = kcat(
        &bootstrap,
        &["-C", "-t", "cli", "-p", "0", "-o", "-2", "-e", "-f", "%o\n"],
        "",
    );
    assert_eq!(last_two, "3\n4\n");

    let at_end = kcat(
        &bootstrap,
        &[
            "-C", "-t", "cli", "-p", "0", "-o", "end", "-e", "-f", "%o\n",
        ],
        "",
    );
    assert_eq!(at_end, "", "nothing after the end");

    let json = json_lines(&kcat(
        &bootstrap,
        &["-C", "-t", "cli", "-p", "0", "-o", "beginning", "-e", "-J"],
        "",
    ));
    assert_eq!(json.len(), 5, "{json:?}");
    for (i, record) in json.iter().enumerate() {
        assert_eq!(record["topic"], "cli", "{record}");
        assert_eq!(record["partition"], 0, "{record}");
        assert_eq!(record["offset"], i, "{record}");
        assert_eq!(record["key"], format!("key{i}"), "{record}");
        assert_eq!(record["payload"], format!("value {i}"), "{record}");
        assert_eq!(record["tstype"], "create", "{record}");
        assert!(record["ts"].as_i64().expect("ts") > 0, "{record}");
        assert_eq!(
            record["headers"],
            serde_json::json!(["trace", "abc", "app", "kcat"]),
            "{record}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_query_offsets_by_timestamp() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    let bootstrap = broker.bootstrap();
    harness::create_topic(&bootstrap, "timed", 1, &[]).await;
    let t0 = harness::now_ms() - 600_000;
    let producer = harness::producer(&bootstrap, &[("linger.ms", "0")]);
    for i in 0..4_i64 {
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("timed")
                    .partition(0)
                    .payload(&value)
                    .timestamp(t0 + i * 1_000),
                CLIENT_DEADLINE,
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("produce {i}: {error}"));
    }
    for (target, offset) in [(t0, 0), (t0 + 1_500, 2), (t0 + 3_000, 3)] {
        let query = format!("timed:0:{target}");
        let text = kcat(&bootstrap, &["-Q", "-t", &query], "");
        assert!(
            text.contains(&format!("timed [0] offset {offset}")),
            "query {query} should give offset {offset}:\n{text}"
        );
    }
}
