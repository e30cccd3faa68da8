//! The admin HTTP listener's probes (issue 12): `/health` and `/ready` on a single broker (the
//! binary, configured by environment) and on a 3-broker in-process cluster whose first broker
//! waits alone for the others; its bounds (head size, garbage, connection cap) and 404s.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::cluster_inproc::InProcessCluster;
use crate::harness::{self, wait_until};

const READY_DEADLINE: Duration = Duration::from_secs(90);
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// `limits::ADMIN_CONNECTIONS_MAX`.
const ADMIN_CONNECTIONS_MAX: usize = tidelog::limits::ADMIN_CONNECTIONS_MAX;

/// Sends `request` as is and returns the status code and body of the answer (status 0: the
/// connection was closed without one).
pub(crate) fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the admin listener");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    // The server may answer and close before reading it all (431): ignore a reset here.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text);
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// `GET path` over HTTP/1.1.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    http_raw(addr, request.as_bytes())
}

/// The admin address a broker process logged (`admin HTTP serving ... addr=IP:PORT`).
pub(crate) fn admin_addr(broker: &harness::Broker) -> SocketAddr {
    let mut found = None;
    wait_until(READY_DEADLINE, "the admin listener's log line", || {
        found = broker
            .log()
            .lines()
            .filter(|line| line.contains("admin HTTP serving"))
            .find_map(|line| {
                let at = line.find("addr=")? + "addr=".len();
                line[at..].split_whitespace().next()?.parse().ok()
            });
        found.is_some()
    });
    found.expect("checked")
}

fn wait_ready(addr: SocketAddr, what: &str) {
    wait_until(READY_DEADLINE, what, || http_get(addr, "/ready").0 == 200);
}

#[test]
fn single_broker_admin_listener_serves_probes_and_404s() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker =
        harness::Broker::start_with_env(dir.path(), &[("TIDELOG_ADMIN__LISTEN", "127.0.0.1:0")]);
    let admin = admin_addr(&broker);
    assert_eq!(http_get(admin, "/health"), (200, "ok".to_owned()));
    wait_ready(admin, "the single broker to be ready");
    assert_eq!(http_get(admin, "/ready"), (200, "ready".to_owned()));
    let head = http_raw(admin, b"HEAD /health HTTP/1.1\r\n\r\n");
    assert_eq!(head, (200, String::new()));
    assert_eq!(http_get(admin, "/").0, 404);
    assert_eq!(http_get(admin, "/health/../secret").0, 404);
    assert_eq!(
        http_raw(admin, b"POST /ready HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        405
    );
    // Bad input gets an error status, never a hang or a crash.
    assert_eq!(
        http_raw(admin, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03").0,
        400
    );
    let huge = format!(
        "GET /health HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(http_raw(admin, huge.as_bytes()).0, 431);
    // A client that stops half-way only holds its own connection.
    let mut stalled = TcpStream::connect(admin).expect("connect");
    stalled.write_all(b"GET /hea").expect("write");
    assert_eq!(http_get(admin, "/health").0, 200);
    drop(stalled);
    // The Kafka side still works beside it.
    assert!(!harness::metadata(&broker.bootstrap()).brokers().is_empty());
}

#[test]
fn admin_listener_at_its_connection_cap_closes_new_connections_then_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker =
        harness::Broker::start_with_env(dir.path(), &[("TIDELOG_ADMIN__LISTEN", "127.0.0.1:0")]);
    let admin = admin_addr(&broker);
    wait_ready(admin, "the broker to be ready");
    let idle: Vec<TcpStream> = (0..ADMIN_CONNECTIONS_MAX)
        .map(|_| TcpStream::connect(admin).expect("connect"))
        .collect();
    // The accept loop takes the idle connections' slots in order; one over the cap is closed.
    wait_until(
        READY_DEADLINE,
        "a connection over the cap to be closed unanswered",
        || http_get(admin, "/health").0 == 0,
    );
    drop(idle);
    wait_until(READY_DEADLINE, "the listener to answer again", || {
        http_get(admin, "/health").0 == 200
    });
}

#[test]
fn cluster_broker_is_ready_only_once_the_controller_forms_and_registers_it() {
    let mut cluster = InProcessCluster::empty();
    let first = cluster
        .add(3)
        .admin_addr()
        .expect("admin listener configured");
    assert_eq!(http_get(first, "/health"), (200, "ok".to_owned()));
    // Alone, with two more brokers expected, no controller can form.
    let (status, reason) = http_get(first, "/ready");
    assert_eq!(status, 503, "{reason}");
    assert!(reason.starts_with("not ready: "), "{reason}");
    cluster.add(3);
    cluster.add(3);
    let admins: Vec<SocketAddr> = cluster
        .brokers()
        .iter()
        .map(|broker| broker.admin_addr().expect("admin listener configured"))
        .collect();
    for (at, admin) in admins.iter().enumerate() {
        wait_ready(*admin, &format!("broker {} to be ready", at + 1));
    }
    // Ready means the broker serves: it lists all three brokers to a client.
    let bootstrap = cluster.brokers()[2].kafka_addr().to_string();
    assert_eq!(harness::metadata(&bootstrap).brokers().len(), 3);
    cluster.stop();
}
