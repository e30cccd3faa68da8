//! OTLP trace export (issue 12): a broker with `telemetry.otlp_endpoint` set sends its spans
//! as http/protobuf to a receiver this test runs; after real produce requests the spans are
//! checked against STYLE.md's tree: `connection{peer, listener}` > `request{api, version,
//! correlation_id, client_id}` > `append{topic, partition}`, and in a cluster, raft work under
//! `raft{group, node_id, term}` (below the append on the leader, a root span on followers).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message as _;

use crate::harness::{self, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);
/// Largest export request the receiver reads.
const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: BTreeMap<String, String>,
    service: Option<String>,
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: decodes every `POST /v1/traces` and keeps its spans.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("addr");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (spans, paths, stop) = (Arc::clone(&spans), Arc::clone(&paths), Arc::clone(&stop));
            // One thread per connection: several brokers export at once, each over a
            // keep-alive connection. Drop wakes the blocking accept with a connection of its own.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (spans, paths) = (Arc::clone(&spans), Arc::clone(&paths));
                    std::thread::spawn(move || serve(stream, &spans, &paths));
                }
            })
        };
        Receiver {
            addr,
            spans,
            paths,
            stop,
            thread: Some(thread),
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("spans").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers every request of one (keep-alive) connection until the client closes it.
fn serve(stream: TcpStream, spans: &Mutex<Vec<Span>>, paths: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut content_length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().expect("a content length");
            }
        }
        assert!(
            content_length <= BODY_BYTES_MAX,
            "export of {content_length} bytes"
        );
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).expect("the request body");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        paths.lock().expect("paths").push(path);
        spans.lock().expect("spans").extend(flatten(request));
        let response =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans.resource.as_ref().and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(text)
        });
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                kv.value.as_ref().map(text).unwrap_or_default(),
                            )
                        })
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    spans
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn produce_spans_reach_an_otlp_receiver_as_connection_request_append() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = format!("http://{}", receiver.addr);
    let mut broker = harness::Broker::start_with_env(
        dir.path(),
        &[("TIDELOG_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(harness::create_topic(&broker.bootstrap(), "traced", 1, &[]));
    let producer = harness::producer(&broker.bootstrap(), &[("client.id", "otlp-test")]);
    crate::metrics::send_values(&runtime, &producer, "traced", 3);
    drop(producer);
    // The batch processor exports every few seconds; a clean stop flushes the rest.
    let exit = broker.stop();
    assert!(exit.success(), "broker exit: {exit}");
    let mut spans = Vec::new();
    wait_until(DEADLINE, "an exported append span", || {
        spans = receiver.spans();
        spans.iter().any(|s| s.name == "append")
    });
    let paths = receiver.paths.lock().expect("paths").clone();
    assert!(paths.iter().all(|p| p == "/v1/traces"), "{paths:?}");

    let append = spans
        .iter()
        .find(|s| {
            s.name == "append" && s.attributes.get("topic").map(String::as_str) == Some("traced")
        })
        .unwrap_or_else(|| panic!("no append span of topic traced in {spans:#?}"));
    assert_eq!(
        append.attributes.get("partition").map(String::as_str),
        Some("0")
    );
    assert_eq!(append.service.as_deref(), Some("tidelog"));
    let parent_of = |child: &Span| {
        spans
            .iter()
            .find(|s| s.span_id == child.parent_span_id && s.trace_id == child.trace_id)
            .unwrap_or_else(|| panic!("no parent of {child:?} in {spans:#?}"))
            .clone()
    };
    let request = parent_of(append);
    assert_eq!(request.name, "request");
    assert_eq!(
        request.attributes.get("api").map(String::as_str),
        Some("Produce")
    );
    assert_eq!(
        request.attributes.get("client_id").map(String::as_str),
        Some("otlp-test")
    );
    assert!(request.attributes.contains_key("version"), "{request:?}");
    assert!(
        request.attributes.contains_key("correlation_id"),
        "{request:?}"
    );
    let connection = parent_of(&request);
    assert_eq!(connection.name, "connection");
    assert_eq!(
        connection.attributes.get("listener").map(String::as_str),
        Some("kafka")
    );
    assert!(
        connection
            .attributes
            .get("peer")
            .is_some_and(|peer| peer.starts_with("127.0.0.1:")),
        "{connection:?}"
    );
    assert!(
        connection.parent_span_id.is_empty(),
        "the connection is a root span"
    );
}

#[test]
fn replicated_produce_runs_raft_work_under_raft_spans_on_leader_and_followers() {
    let receiver = Receiver::start();
    let endpoint = format!("http://{}", receiver.addr);
    let (mut brokers, _dirs) =
        crate::cluster::form_three_with(&[("TIDELOG_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())]);
    let all: Vec<String> = brokers.iter().map(|b| b.bootstrap()).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(crate::replication::create_replicated(
        &all[0],
        "raft-traced",
        1,
    ));
    let producer = harness::producer(&all.join(","), &[("acks", "all")]);
    crate::metrics::send_values(&runtime, &producer, "raft-traced", 3);
    drop(producer);
    // A clean stop flushes every broker's batch processor.
    for broker in &mut brokers {
        let exit = broker.stop();
        assert!(exit.success(), "broker exit: {exit}");
    }
    let mut spans = Vec::new();
    wait_until(DEADLINE, "raft spans of three brokers", || {
        spans = receiver.spans();
        let nodes: std::collections::BTreeSet<_> = spans
            .iter()
            .filter(|s| s.name == "raft")
            .filter_map(|s| s.attributes.get("node_id"))
            .collect();
        nodes.len() == 3
    });
    let append = spans
        .iter()
        .find(|s| {
            s.name == "append"
                && s.attributes.get("topic").map(String::as_str) == Some("raft-traced")
        })
        .unwrap_or_else(|| panic!("no append span of topic raft-traced in {spans:#?}"));
    // The leader: its proposal runs under a raft span below the append span.
    let proposal = spans
        .iter()
        .find(|s| {
            s.name == "raft" && s.parent_span_id == append.span_id && s.trace_id == append.trace_id
        })
        .unwrap_or_else(|| panic!("no raft span below {append:?} in {spans:#?}"));
    for field in ["group", "node_id", "term"] {
        assert!(proposal.attributes.contains_key(field), "{proposal:?}");
    }
    assert_ne!(proposal.attributes["group"], "0", "a partition's group");
    assert!(
        proposal.attributes["term"]
            .parse::<u64>()
            .is_ok_and(|t| t > 0),
        "{proposal:?}"
    );
    // The followers: storing the entries the leader sent is a raft span of the same group.
    let followers: BTreeMap<String, &Span> = spans
        .iter()
        .filter(|s| {
            s.name == "raft"
                && s.parent_span_id.is_empty()
                && s.attributes.get("group") == proposal.attributes.get("group")
                && s.attributes.get("node_id") != proposal.attributes.get("node_id")
        })
        .map(|s| (s.attributes["node_id"].clone(), s))
        .collect();
    assert_eq!(followers.len(), 2, "both followers: {followers:#?}");
    // The metadata log (group 0): CreateTopics was proposed under a raft span too.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "raft" && s.attributes.get("group").map(String::as_str) == Some("0")),
        "no raft span of the metadata log"
    );
}
