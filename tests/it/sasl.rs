//! SASL with real clients: librdkafka (rdkafka crate) and kcat with PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 against a SASL_PLAINTEXT listener whose user is a bootstrap user; wrong
//! passwords and unknown users refused while others are served; requests before authentication
//! and a client that never authenticates closed; garbage tokens; an expired session that must
//! re-authenticate; users kept across a restart.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE};
use crate::kcat::kcat;
use crate::raw::RawConn;

pub(crate) const PASSWORD: &str = "s3cret-admin";
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const ILLEGAL_SASL_STATE: i16 = 34;

/// A broker with a SASL_PLAINTEXT listener `sasl` and bootstrap user `admin`.
pub(crate) fn start(data: &Path, secrets: &Path, extra: &[(&str, &str)]) -> Broker {
    let password_file = secrets.join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("test setup");
    let users = format!("admin:{}", password_file.display());
    let mut env = vec![
        ("TIDELOG_LISTENERS__SASL__BIND", "127.0.0.1:0"),
        (
            "TIDELOG_LISTENERS__SASL__SECURITY_PROTOCOL",
            "SASL_PLAINTEXT",
        ),
        ("TIDELOG_AUTHORIZATION__BOOTSTRAP_USERS", users.as_str()),
        ("TIDELOG_SASL__AUTHENTICATION_TIMEOUT_MS", "1000"),
    ];
    env.extend_from_slice(extra);
    let broker = Broker::start_with_env(data, &env);
    harness::wait_until(CLIENT_DEADLINE, "the bootstrap user", || {
        broker.log().contains("bootstrap user created")
            || broker.log().contains("bootstrap user already exists")
    });
    broker
}

pub(crate) fn sasl_config(
    bootstrap: &str,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "500");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_scram_clients_authenticate_produce_and_consume() {
    let (data, secrets) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let broker = start(data.path(), secrets.path(), &[]);
    let sasl = broker.listener_addr("sasl").to_string();
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = format!("sasl-{}", mechanism.to_lowercase());
        let producer: FutureProducer = sasl_config(&sasl, mechanism, "admin", PASSWORD)
            .set("message.timeout.ms", "20000")
            .create()
            .unwrap();
        let value = format!("over {mechanism}");
        producer
            .send(
                FutureRecord::<(), str>::to(&topic).payload(&value),
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("{mechanism}: produce failed: {e}"));
        let consumer: BaseConsumer = sasl_config(&sasl, mechanism, "admin", PASSWORD)
            .set("group.id", format!("g-{topic}"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let mut consumed = Vec::new();
        harness::wait_until(CLIENT_DEADLINE, "the record back", || {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                consumed.push(
                    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                );
            }
            !consumed.is_empty()
        });
        assert_eq!(consumed, [value], "{mechanism}");
    }
    // kcat (Debian's librdkafka) with SCRAM-SHA-512.
    let password = format!("sasl.password={PASSWORD}");
    let out = kcat(
        &sasl,
        &[
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-512",
            "-X",
            "sasl.username=admin",
            "-X",
            &password,
            "-C",
            "-t",
            "sasl-plain",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        "",
    );
    assert_eq!(out.trim(), "over PLAIN");
    assert!(broker.log().contains("SASL authentication succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_are_refused_and_the_broker_keeps_serving() {
    let (data, secrets) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let broker = start(data.path(), secrets.path(), &[]);
    let sasl = broker.listener_addr("sasl").to_string();
    for (mechanism, user, password) in [
        ("SCRAM-SHA-256", "admin", "wrong"),
        ("SCRAM-SHA-512", "nobody", PASSWORD),
        ("PLAIN", "admin", "wrong"),
    ] {
        let consumer: BaseConsumer = sasl_config(&sasl, mechanism, user, password)
            .create()
            .unwrap();
        let refused = consumer.fetch_metadata(None, Duration::from_secs(3));
        assert!(refused.is_err(), "{mechanism} {user}: authenticated");
    }
    assert!(broker.log().contains("SASL authentication failed"));
    // The right password still works, and so does the plaintext listener.
    let consumer: BaseConsumer = sasl_config(&sasl, "SCRAM-SHA-256", "admin", PASSWORD)
        .create()
        .unwrap();
    consumer.fetch_metadata(None, CLIENT_DEADLINE).unwrap();
    harness::metadata(&broker.bootstrap());
}

fn handshake(conn: &mut RawConn, mechanism: &'static str) -> i16 {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    conn.roundtrip(&request, 1).error_code
}

fn authenticate(conn: &mut RawConn, token: &[u8], version: i16) -> (i16, i64) {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
    let response = conn.roundtrip(&request, version);
    (response.error_code, response.session_lifetime_ms)
}

#[test]
fn requests_before_authentication_garbage_tokens_and_silent_clients_are_closed() {
    let (data, secrets) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let broker = start(data.path(), secrets.path(), &[]);
    let sasl = broker.listener_addr("sasl");

    // ApiVersions is served before authentication; Metadata closes the connection.
    let mut conn = RawConn::connect(sasl);
    conn.roundtrip(&ApiVersionsRequest::default(), 3);
    conn.send(&MetadataRequest::default(), 12);
    conn.expect_closed("Metadata before authentication");

    // SaslAuthenticate before a handshake is out of order.
    let mut conn = RawConn::connect(sasl);
    assert_eq!(
        authenticate(&mut conn, b"\0admin\0x", 2).0,
        ILLEGAL_SASL_STATE
    );
    conn.expect_closed("SaslAuthenticate before SaslHandshake");

    // Garbage SCRAM and PLAIN tokens fail and close.
    for (mechanism, token) in [
        ("SCRAM-SHA-256", &b"\xff\xfe garbage,,,="[..]),
        ("SCRAM-SHA-512", b"n,,n=admin"),
        ("PLAIN", b"no separators at all"),
    ] {
        let mut conn = RawConn::connect(sasl);
        assert_eq!(handshake(&mut conn, mechanism), 0, "{mechanism}");
        assert_eq!(
            authenticate(&mut conn, token, 2).0,
            SASL_AUTHENTICATION_FAILED,
            "{mechanism}"
        );
        conn.expect_closed(mechanism);
    }

    // An unknown mechanism is refused with the list of offered ones.
    let mut conn = RawConn::connect(sasl);
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI"));
    let response = conn.roundtrip(&request, 1);
    assert_eq!(response.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    assert_eq!(response.mechanisms.len(), 3);

    // A client that connects and never authenticates is closed at the 1 s timeout, one that
    // stops half way too.
    let mut silent = RawConn::connect(sasl);
    let mut halfway = RawConn::connect(sasl);
    assert_eq!(handshake(&mut halfway, "SCRAM-SHA-256"), 0);
    silent.expect_closed("a connection that never authenticates");
    halfway.expect_closed("a SCRAM exchange that stops after the handshake");

    // Meanwhile (and after) a real client is served.
    let mut conn = RawConn::connect(sasl);
    assert_eq!(handshake(&mut conn, "PLAIN"), 0);
    let token = format!("\0admin\0{PASSWORD}");
    assert_eq!(authenticate(&mut conn, token.as_bytes(), 2).0, 0);
    conn.roundtrip(&MetadataRequest::default(), 12);
}

#[test]
fn an_expired_session_is_closed_unless_it_reauthenticates() {
    let (data, secrets) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let broker = start(
        data.path(),
        secrets.path(),
        &[("TIDELOG_SASL__CONNECTIONS_MAX_REAUTH_MS", "1000")],
    );
    let sasl = broker.listener_addr("sasl");
    let token = format!("\0admin\0{PASSWORD}");
    let mut conn = RawConn::connect(sasl);
    assert_eq!(handshake(&mut conn, "PLAIN"), 0);
    assert_eq!(authenticate(&mut conn, token.as_bytes(), 2), (0, 1000));
    // Re-authenticating (KIP-368) renews the session, on the same connection.
    let mut renewed = RawConn::connect(sasl);
    assert_eq!(handshake(&mut renewed, "PLAIN"), 0);
    assert_eq!(authenticate(&mut renewed, token.as_bytes(), 2).0, 0);
    // The first connection's session runs out: its next request closes it.
    let mut closed = false;
    harness::wait_until(CLIENT_DEADLINE, "the session to expire", || {
        let correlation_id = conn.send(&MetadataRequest::default(), 12);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conn.receive::<MetadataRequest>(correlation_id, 12)
        })) {
            Ok(_) => {
                // Still valid: re-authenticate the other connection meanwhile.
                assert_eq!(handshake(&mut renewed, "PLAIN"), 0);
                assert_eq!(authenticate(&mut renewed, token.as_bytes(), 2).0, 0);
                false
            }
            Err(_) => {
                closed = true;
                true
            }
        }
    });
    assert!(closed);
    renewed.roundtrip(&MetadataRequest::default(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_survive_a_restart() {
    let (data, secrets) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let mut broker = start(data.path(), secrets.path(), &[]);
    broker.stop();
    broker.restart();
    harness::wait_until(CLIENT_DEADLINE, "the bootstrap user check", || {
        broker.log().contains("bootstrap user already exists")
    });
    let sasl = broker.listener_addr("sasl").to_string();
    let consumer: BaseConsumer = sasl_config(&sasl, "SCRAM-SHA-512", "admin", PASSWORD)
        .create()
        .unwrap();
    consumer.fetch_metadata(None, CLIENT_DEADLINE).unwrap();
    assert_eq!(
        broker.log().matches("bootstrap user created").count(),
        1,
        "created once, kept across the restart"
    );
}
