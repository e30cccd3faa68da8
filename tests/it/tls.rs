//! Listeners and TLS with real clients: a PLAINTEXT and an SSL listener on one broker (each
//! client told its own listener's endpoints), librdkafka and kcat over TLS, mTLS with
//! `client_auth: required`, a certificate replaced on disk, and hostile
//! handshakes. Certificates are generated here with rcgen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tempfile::TempDir;

use crate::harness::{self, Broker, CLIENT_DEADLINE, PROCESS_DEADLINE};
use crate::kcat::kcat;

/// A test CA that signs server and client certificates.
pub(crate) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("test setup");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("test setup");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("test setup").pem();
        Ca { params, key, pem }
    }

    /// A certificate for `subject` (CN then OU, as `(type, value)` in DER order) with `sans`;
    /// returns (certificate PEM, key PEM, certificate DER).
    pub(crate) fn sign(
        &self,
        subject: &[(DnType, &str)],
        sans: &[&str],
    ) -> (String, String, Vec<u8>) {
        self.sign_valid(subject, sans, false)
    }

    /// [`Ca::sign`] of a certificate valid only in 2020 (expired).
    pub(crate) fn sign_expired(&self, subject: &[(DnType, &str)]) -> (String, String, Vec<u8>) {
        self.sign_valid(subject, &[], true)
    }

    fn sign_valid(
        &self,
        subject: &[(DnType, &str)],
        sans: &[&str],
        expired: bool,
    ) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().expect("test setup");
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("test setup");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("test setup");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// PEM files of one test setup: the CA, the broker's certificate and key.
pub(crate) struct Files {
    pub(crate) dir: TempDir,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Files {
    pub(crate) fn new(ca: &Ca, server_cn: &str) -> (Files, Vec<u8>) {
        let dir = TempDir::new().expect("test setup");
        let (cert, key, der) = ca.sign(
            &[(DnType::CommonName, server_cn)],
            &["localhost", "127.0.0.1"],
        );
        let files = Files {
            ca: write(dir.path(), "ca.pem", &ca.pem),
            cert: write(dir.path(), "broker.pem", &cert),
            key: write(dir.path(), "broker.key", &key),
            dir,
        };
        (files, der)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("test setup");
    path
}

/// The broker's environment for a second listener `ssl` on a fresh port, with `client_auth`.
pub(crate) fn ssl_env(files: &Files, client_auth: &str) -> Vec<(String, String)> {
    [
        ("TIDELOG_LISTENERS__SSL__BIND", "127.0.0.1:0".to_owned()),
        (
            "TIDELOG_LISTENERS__SSL__SECURITY_PROTOCOL",
            "SSL".to_owned(),
        ),
        ("TIDELOG_TLS__CERT_FILE", files.cert.display().to_string()),
        ("TIDELOG_TLS__KEY_FILE", files.key.display().to_string()),
        ("TIDELOG_TLS__CA_FILE", files.ca.display().to_string()),
        ("TIDELOG_TLS__CLIENT_AUTH", client_auth.to_owned()),
        ("TIDELOG_TLS__HANDSHAKE_TIMEOUT_MS", "1000".to_owned()),
        ("TIDELOG_LOG", "info,tidelog::server=debug".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

pub(crate) fn start(data: &Path, env: &[(String, String)]) -> Broker {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Broker::start_with_env(data, &env)
}

/// librdkafka settings of an SSL client trusting `ca`, with an optional client certificate.
fn ssl_config(bootstrap: &str, ca: &Path, client: Option<(&Path, &Path)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.display().to_string())
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "500");
    if let Some((cert, key)) = client {
        config
            .set("ssl.certificate.location", cert.display().to_string())
            .set("ssl.key.location", key.display().to_string());
    }
    config
}

/// (broker id, port) of every broker the Metadata answer names.
fn metadata_ports(config: &ClientConfig, timeout: Duration) -> Result<Vec<(i32, u16)>, String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    Ok(metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), u16::try_from(b.port()).expect("test setup")))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_ssl_listeners_each_answer_their_own_endpoints() {
    let ca = Ca::new("Tidelog test CA");
    let (files, _) = Files::new(&ca, "broker");
    let data = TempDir::new().unwrap();
    let broker = start(data.path(), &ssl_env(&files, "none"));
    let plain = broker.addr();
    let ssl = broker.listener_addr("ssl");
    assert_ne!(plain.port(), ssl.port());

    let mut plain_config = ClientConfig::new();
    plain_config.set("bootstrap.servers", plain.to_string());
    assert_eq!(
        metadata_ports(&plain_config, CLIENT_DEADLINE).unwrap(),
        [(1, plain.port())]
    );
    let ssl_config = ssl_config(&ssl.to_string(), &files.ca, None);
    assert_eq!(
        metadata_ports(&ssl_config, CLIENT_DEADLINE).unwrap(),
        [(1, ssl.port())]
    );
    // A plaintext client on the SSL port gets nothing it can read.
    let mut wrong = ClientConfig::new();
    wrong.set("bootstrap.servers", ssl.to_string());
    assert!(metadata_ports(&wrong, Duration::from_secs(3)).is_err());

    // Produce and consume over TLS, with a consumer group (FindCoordinator on the SSL listener).
    let producer: FutureProducer = ssl_config.clone().set("acks", "all").create().unwrap();
    for idx in 0..20 {
        let value = format!("secret-{idx}");
        producer
            .send(
                FutureRecord::<(), _>::to("over-tls").payload(&value),
                CLIENT_DEADLINE,
            )
            .await
            .unwrap();
    }
    let consumer: BaseConsumer = ssl_config
        .clone()
        .set("group.id", "tls-group")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["over-tls"]).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while values.len() < 20 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            use rdkafka::Message as _;
            values.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    let expected: Vec<String> = (0..20).map(|idx| format!("secret-{idx}")).collect();
    assert_eq!(values, expected);
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_and_consumes_over_tls() {
    let ca = Ca::new("Tidelog test CA");
    let (files, _) = Files::new(&ca, "broker");
    let data = TempDir::new().unwrap();
    let broker = start(data.path(), &ssl_env(&files, "none"));
    let ssl = broker.listener_addr("ssl").to_string();
    let ca_path = files.ca.display().to_string();
    let tls = ["-X", "security.protocol=SSL", "-X"];
    let ca_arg = format!("ssl.ca.location={ca_path}");
    let with = |rest: &[&str]| -> Vec<String> {
        tls.iter()
            .chain(&[ca_arg.as_str()])
            .chain(rest)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let produce = with(&["-t", "kcat-tls", "-P"]);
    let produce: Vec<&str> = produce.iter().map(String::as_str).collect();
    kcat(&ssl, &produce, "one\ntwo\nthree\n");
    let consume = with(&["-t", "kcat-tls", "-C", "-o", "beginning", "-e"]);
    let consume: Vec<&str> = consume.iter().map(String::as_str).collect();
    assert_eq!(kcat(&ssl, &consume, ""), "one\ntwo\nthree\n");
    let list = with(&["-L"]);
    let list: Vec<&str> = list.iter().map(String::as_str).collect();
    let text = kcat(&ssl, &list, "");
    assert!(text.contains(&format!("broker 1 at {ssl}")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_required_serves_only_certificates_of_the_ca() {
    let ca = Ca::new("Tidelog test CA");
    let (files, _) = Files::new(&ca, "broker");
    let (bob_cert, bob_key, _) = ca.sign(
        &[
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "bob"),
        ],
        &[],
    );
    let bob = (
        write(files.dir.path(), "bob.pem", &bob_cert),
        write(files.dir.path(), "bob.key", &bob_key),
    );
    let stranger_ca = Ca::new("Somebody else's CA");
    let (eve_cert, eve_key, _) = stranger_ca.sign(&[(DnType::CommonName, "eve")], &[]);
    let eve = (
        write(files.dir.path(), "eve.pem", &eve_cert),
        write(files.dir.path(), "eve.key", &eve_key),
    );
    let (old_cert, old_key, _) = ca.sign_expired(&[(DnType::CommonName, "old")]);
    let old = (
        write(files.dir.path(), "old.pem", &old_cert),
        write(files.dir.path(), "old.key", &old_key),
    );
    let data = TempDir::new().unwrap();
    let broker = start(data.path(), &ssl_env(&files, "required"));
    let ssl = broker.listener_addr("ssl").to_string();

    let with_bob = ssl_config(&ssl, &files.ca, Some((&bob.0, &bob.1)));
    assert_eq!(
        metadata_ports(&with_bob, CLIENT_DEADLINE).unwrap()[0].0,
        1,
        "a certificate of the CA is served"
    );
    harness::wait_until(CLIENT_DEADLINE, "bob's principal logged", || {
        broker.log().contains("principal=User:CN=bob,OU=eng")
    });

    let anonymous = ssl_config(&ssl, &files.ca, None);
    let refused = metadata_ports(&anonymous, Duration::from_secs(3));
    assert!(refused.is_err(), "no certificate: {refused:?}");
    let with_eve = ssl_config(&ssl, &files.ca, Some((&eve.0, &eve.1)));
    let refused = metadata_ports(&with_eve, Duration::from_secs(3));
    assert!(refused.is_err(), "unknown CA: {refused:?}");
    let with_old = ssl_config(&ssl, &files.ca, Some((&old.0, &old.1)));
    let refused = metadata_ports(&with_old, Duration::from_secs(3));
    assert!(refused.is_err(), "expired certificate: {refused:?}");
    assert!(
        broker.log().contains("TLS handshake refused"),
        "{}",
        broker.log()
    );
    // The plaintext listener is unaffected.
    assert!(harness::metadata(&broker.bootstrap()).brokers().len() == 1);
}

/// The DER certificate the server at `addr` presents to a client trusting `ca`.
#[expect(
    deprecated,
    reason = "ring is the provider this build has (see server/tls.rs)"
)]
async fn presented_certificate(addr: SocketAddr, ca: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("test setup") {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("test setup");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3 with ring")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = tokio::net::TcpStream::connect(addr)
        .await
        .expect("test setup");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("test setup");
    let stream = tokio::time::timeout(CLIENT_DEADLINE, connector.connect(name, socket))
        .await
        .expect("handshake within the deadline")
        .expect("handshake");
    stream.get_ref().1.peer_certificates().expect("test setup")[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_replaced_on_disk_is_used_by_the_next_connection() {
    let ca = Ca::new("Tidelog test CA");
    let (files, first) = Files::new(&ca, "first");
    let data = TempDir::new().unwrap();
    let broker = start(data.path(), &ssl_env(&files, "none"));
    let ssl = broker.listener_addr("ssl");
    assert_eq!(presented_certificate(ssl, &files.ca).await, first);

    // Replace both files the way cert-manager or certbot do: write aside, then rename over.
    let (cert, key, second) = ca.sign(
        &[(DnType::CommonName, "second")],
        &["localhost", "127.0.0.1"],
    );
    write(files.dir.path(), "new.pem", &cert);
    write(files.dir.path(), "new.key", &key);
    std::fs::rename(files.path("new.key"), &files.key).unwrap();
    std::fs::rename(files.path("new.pem"), &files.cert).unwrap();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    loop {
        let presented = presented_certificate(ssl, &files.ca).await;
        if presented == second {
            break;
        }
        assert_eq!(presented, first, "only the old or the new certificate");
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The log line may reach the test's log reader a moment after the new certificate is served.
    harness::wait_until(CLIENT_DEADLINE, "the reload's log line", || {
        broker.log().contains("TLS certificate reloaded")
    });
    // librdkafka verifies the new certificate against the same CA.
    let config = ssl_config(&ssl.to_string(), &files.ca, None);
    assert_eq!(
        metadata_ports(&config, CLIENT_DEADLINE).unwrap()[0].1,
        ssl.port()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalled_handshakes_are_closed_and_others_are_served() {
    let ca = Ca::new("Tidelog test CA");
    let (files, first) = Files::new(&ca, "broker");
    let data = TempDir::new().unwrap();
    let broker = start(data.path(), &ssl_env(&files, "none"));
    let ssl = broker.listener_addr("ssl");

    // A flood: connections that send garbage, a truncated ClientHello, or nothing at all.
    let mut sockets = Vec::new();
    for idx in 0..150 {
        let mut socket = TcpStream::connect(ssl).unwrap();
        match idx % 3 {
            0 => socket.write_all(&[0xde; 4096]).unwrap(),
            1 => socket
                .write_all(&[0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00])
                .unwrap(),
            _ => {}
        }
        sockets.push(socket);
    }
    // Meanwhile a real client is served.
    assert_eq!(presented_certificate(ssl, &files.ca).await, first);
    // Every hostile connection is closed by the broker (garbage at once, the others at the
    // 1 s handshake timeout).
    for mut socket in sockets {
        socket.set_read_timeout(Some(CLIENT_DEADLINE)).unwrap();
        let mut buf = [0u8; 256];
        let closed = loop {
            match socket.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // a TLS alert
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(e) => panic!("not closed within {CLIENT_DEADLINE:?}: {e}"),
            }
        };
        assert!(closed);
    }
    assert!(
        broker
            .log()
            .contains("TLS handshake not done within 1000 ms")
    );
    assert_eq!(presented_certificate(ssl, &files.ca).await, first);
}

/// (node id, port) of every broker a raw Metadata at `addr` names, sorted.
fn raw_brokers(addr: SocketAddr) -> Vec<(i32, u16)> {
    let mut brokers: Vec<(i32, u16)> = crate::cluster::metadata(addr)
        .brokers
        .iter()
        .map(|b| (b.node_id.0, u16::try_from(b.port).expect("test setup")))
        .collect();
    brokers.sort_unstable();
    brokers
}

#[test]
fn brokers_of_a_cluster_tell_each_listener_s_clients_that_listener_s_endpoints() {
    let (brokers, _dirs) =
        crate::cluster::form_three_with(&[("TIDELOG_LISTENERS__EXTERNAL__BIND", "127.0.0.1:0")]);
    let default: Vec<(i32, u16)> = (1..=3)
        .zip(brokers.iter().map(|b| b.addr().port()))
        .collect();
    let external: Vec<(i32, u16)> = (1..=3)
        .zip(brokers.iter().map(|b| b.listener_addr("external").port()))
        .collect();
    for broker in &brokers {
        let on_external = broker.listener_addr("external");
        harness::wait_until(CLIENT_DEADLINE, "every broker's external endpoint", || {
            raw_brokers(on_external) == external
        });
        assert_eq!(raw_brokers(broker.addr()), default);
    }
    // FindCoordinator on the external listener names the coordinator's external endpoint.
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("external-group"))
        .with_key_type(0);
    let on_external = brokers[0].listener_addr("external");
    harness::wait_until(CLIENT_DEADLINE, "a group coordinator", || {
        let response = crate::raw::RawConn::connect(on_external).roundtrip(&request, 3);
        if response.error_code != 0 {
            return false;
        }
        let port = u16::try_from(response.port).unwrap();
        assert!(
            external.contains(&(response.node_id.0, port)),
            "{response:?} is not an external endpoint of {external:?}"
        );
        true
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_at_the_connection_cap_do_not_lock_out_a_client() {
    let ca = Ca::new("Tidelog test CA");
    let (files, first) = Files::new(&ca, "broker");
    let data = TempDir::new().unwrap();
    let mut env = ssl_env(&files, "none");
    // Handshakes would wait a minute: only closing them for the new client can serve it sooner.
    env.push((
        "TIDELOG_TLS__HANDSHAKE_TIMEOUT_MS".to_owned(),
        "60000".to_owned(),
    ));
    env.push((
        "TIDELOG_LIMITS__MAX_CONNECTIONS".to_owned(),
        "20".to_owned(),
    ));
    let broker = start(data.path(), &env);
    let ssl = broker.listener_addr("ssl");
    let stalled: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(ssl).unwrap()).collect();
    let started = Instant::now();
    let presented = tokio::time::timeout(
        Duration::from_secs(30),
        presented_certificate(ssl, &files.ca),
    )
    .await
    .expect("a client is served while stalled handshakes fill the cap");
    assert_eq!(presented, first);
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_the_client_s_listener_is_listener_not_found() {
    use kafka_protocol::messages::MetadataRequest;
    // Only broker 1 has the `external` listener.
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new().unwrap()).collect();
    let mut first_env = crate::cluster::cluster_env(1, 3, "");
    first_env.push((
        "TIDELOG_LISTENERS__EXTERNAL__BIND".to_owned(),
        "127.0.0.1:0".to_owned(),
    ));
    let mut brokers = vec![crate::cluster::start(dirs[0].path(), &first_env)];
    let seed = crate::cluster::gossip_addr(&brokers[0]);
    for id in 2..=3 {
        let env = crate::cluster::cluster_env(id, 3, &seed);
        brokers.push(crate::cluster::start(dirs[id as usize - 1].path(), &env));
    }
    harness::wait_until(PROCESS_DEADLINE, "every broker lists all three", || {
        brokers
            .iter()
            .all(|b| crate::cluster::view(b.addr()).2 == [1, 2, 3])
    });
    // One partition per broker (replication factor 1, spread over the three).
    let bootstrap = brokers[0].bootstrap();
    harness::create_topic(&bootstrap, "spread", 3, &[]).await;
    harness::wait_until(CLIENT_DEADLINE, "a leader on every broker", || {
        let leaders: std::collections::BTreeSet<i32> =
            crate::cluster::leaders(&bootstrap, "spread")
                .into_values()
                .collect();
        leaders.len() == 3
    });
    let external = brokers[0].listener_addr("external");
    harness::wait_until(
        CLIENT_DEADLINE,
        "metadata over the external listener",
        || {
            let response = crate::raw::RawConn::connect(external)
                .roundtrip(&MetadataRequest::default().with_topics(None), 12);
            let brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
            assert_eq!(brokers, [1], "only broker 1 has the listener");
            let Some(topic) = response
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "spread"))
            else {
                return false;
            };
            let mut answers: Vec<(i16, i32)> = topic
                .partitions
                .iter()
                .map(|p| (p.error_code, p.leader_id.0))
                .collect();
            answers.sort_unstable();
            // LISTENER_NOT_FOUND (72) for the two partitions brokers 2 and 3 lead.
            answers == [(0, 1), (72, -1), (72, -1)]
        },
    );
}

/// `cluster.tls`: three brokers whose certificates come from the cluster CA form a cluster
/// over mTLS; a fourth with a certificate of another CA is refused at the TLS handshake and
/// never registered.
#[test]
fn brokers_with_cluster_mtls_form_a_cluster_and_one_of_another_ca_cannot_join() {
    let ca = Ca::new("Tidelog cluster CA");
    let (files, _) = Files::new(&ca, "broker");
    let tls = [
        (
            "TIDELOG_CLUSTER__TLS__CERT_FILE",
            files.cert.display().to_string(),
        ),
        (
            "TIDELOG_CLUSTER__TLS__KEY_FILE",
            files.key.display().to_string(),
        ),
        (
            "TIDELOG_CLUSTER__TLS__CA_FILE",
            files.ca.display().to_string(),
        ),
    ];
    let extra: Vec<(&str, &str)> = tls.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (brokers, _dirs) = crate::cluster::form_three_with(&extra);

    let other = Ca::new("Another CA");
    let (stranger, _) = Files::new(&other, "stranger");
    let dir = TempDir::new().unwrap();
    let mut env = crate::cluster::cluster_env(4, 3, &crate::cluster::gossip_addr(&brokers[0]));
    env.extend([
        (
            "TIDELOG_CLUSTER__TLS__CERT_FILE".to_owned(),
            stranger.cert.display().to_string(),
        ),
        (
            "TIDELOG_CLUSTER__TLS__KEY_FILE".to_owned(),
            stranger.key.display().to_string(),
        ),
        (
            "TIDELOG_CLUSTER__TLS__CA_FILE".to_owned(),
            stranger.ca.display().to_string(),
        ),
    ]);
    let fourth = crate::cluster::start(dir.path(), &env);
    harness::wait_until(
        CLIENT_DEADLINE,
        "the controller refusing to register it",
        || {
            brokers
                .iter()
                .any(|b| b.log().contains("not registering a broker gossip found"))
        },
    );
    assert!(
        fourth
            .log()
            .contains("cluster connection refused: TLS handshake failed"),
        "the stranger refused the controller's certificate too"
    );
    let (_, _, ids) = crate::cluster::view(brokers[0].addr());
    assert_eq!(ids, [1, 2, 3], "the stranger is not registered");
}
