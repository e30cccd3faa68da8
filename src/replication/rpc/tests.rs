//! Tests of the cluster RPC over loopback: routing by group, failures, pipelining, bad frames.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Answers `<group name>:<payload>`, after `payload[0]` milliseconds when the method is 1, and
/// never when the method is 2.
struct Echo(&'static str);

impl Handler for Echo {
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        let name = self.0;
        Box::pin(async move {
            match method {
                1 => {
                    let delay = payload.first().copied().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
                }
                2 => std::future::pending::<()>().await,
                3 => return Err("refused".to_owned()),
                _ => {}
            }
            let mut answer = format!("{name}:").into_bytes();
            answer.extend_from_slice(&payload);
            Ok(Bytes::from(answer))
        })
    }
}

struct Server {
    address: String,
    registry: Arc<Registry>,
    stop: watch::Sender<bool>,
}

async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let registry = Arc::new(Registry::default());
    registry.insert(0, Arc::new(Echo("controller")));
    registry.insert(7, Arc::new(Echo("partition")));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(listener, Arc::clone(&registry), stopped, None));
    Server {
        address,
        registry,
        stop,
    }
}

#[tokio::test]
async fn calls_reach_the_handler_of_their_group() {
    let server = server().await;
    let peers = Peers::new(None);
    for (group, expected) in [(0, "controller:x"), (7, "partition:x")] {
        let answer = peers
            .call(
                1,
                &server.address,
                (group, 0),
                Bytes::from_static(b"x"),
                TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(answer, Bytes::from(expected));
    }
    let unknown = peers
        .call(1, &server.address, (9, 0), Bytes::new(), TIMEOUT)
        .await;
    assert!(matches!(unknown, Err(CallError::Remote(m)) if m.contains("group 9")));
    let refused = peers
        .call(1, &server.address, (0, 3), Bytes::new(), TIMEOUT)
        .await;
    assert_eq!(refused, Err(CallError::Remote("refused".to_owned())));
    server.registry.remove(7);
    let removed = peers
        .call(1, &server.address, (7, 0), Bytes::new(), TIMEOUT)
        .await;
    assert!(matches!(removed, Err(CallError::Remote(_))), "{removed:?}");
}

#[tokio::test]
async fn pipelined_calls_get_their_own_answers_out_of_order() {
    let server = server().await;
    let peers = Peers::new(None);
    let calls = (0..64u8).map(|i| {
        let peers = Arc::clone(&peers);
        let address = server.address.clone();
        async move {
            // Earlier calls wait longer, so answers come back in reverse order.
            let payload = Bytes::from(vec![64 - i, i]);
            let answer = peers
                .call(1, &address, (7, 1), payload.clone(), TIMEOUT)
                .await
                .unwrap();
            assert_eq!(&answer[b"partition:".len()..], &payload[..]);
        }
    });
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

#[tokio::test]
async fn a_call_to_nobody_is_unreachable_and_a_silent_handler_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let peers = Peers::new(None);
    let unreachable = peers.call(1, &closed, (0, 0), Bytes::new(), TIMEOUT).await;
    assert!(
        matches!(unreachable, Err(CallError::Unreachable(_))),
        "{unreachable:?}"
    );

    let server = server().await;
    let short = Duration::from_millis(200);
    let silent = peers
        .call(2, &server.address, (0, 2), Bytes::new(), short)
        .await;
    assert_eq!(silent, Err(CallError::Timeout(short)));
    // The connection still serves other calls.
    let answer = peers
        .call(
            2,
            &server.address,
            (0, 0),
            Bytes::from_static(b"y"),
            TIMEOUT,
        )
        .await;
    assert_eq!(answer, Ok(Bytes::from_static(b"controller:y")));

    // A call whose caller stops waiting (a timeout, a forward given up) leaves nothing behind.
    let given_up = tokio::time::timeout(
        short,
        peers.call(2, &server.address, (0, 2), Bytes::new(), TIMEOUT),
    )
    .await;
    assert!(given_up.is_err());
    assert_eq!(peers.pending_calls(2), 0);
}

#[tokio::test]
async fn a_peer_that_moves_or_restarts_is_reached_again() {
    let first = server().await;
    let peers = Peers::new(None);
    let call = |address: String| {
        let peers = Arc::clone(&peers);
        async move {
            peers
                .call(1, &address, (0, 0), Bytes::from_static(b"z"), TIMEOUT)
                .await
        }
    };
    assert!(call(first.address.clone()).await.is_ok());
    first.stop.send(true).unwrap();
    // The old connection's server is gone: calls fail until the peer is back.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while call(first.address.clone()).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never stopped"
        );
        tokio::task::yield_now().await;
    }
    let second = server().await;
    assert_eq!(
        call(second.address.clone()).await,
        Ok(Bytes::from_static(b"controller:z"))
    );
}

#[tokio::test]
async fn an_oversized_or_short_frame_closes_the_connection() {
    let server = server().await;
    for frame in [
        u32::MAX.to_be_bytes().to_vec(),
        [&3u32.to_be_bytes()[..], &[0, 0, 0]].concat(),
    ] {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        stream.write_all(&frame).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
}

#[expect(
    deprecated,
    reason = "ring is the provider this build uses, as in server/tls.rs"
)]
/// The mTLS of a broker of a test CA named `ca_name` (its certificate has SAN 127.0.0.1), built
/// in memory the way `server::cluster_mtls` builds it from files.
fn cluster_tls(ca_name: &str) -> ClusterTls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "broker");
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let roots = Arc::new(roots);
    let private = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::clone(&roots),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], private())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert.der().clone()], private())
        .unwrap();
    ClusterTls::new(Arc::new(server), Arc::new(client))
}

#[tokio::test]
async fn with_mtls_only_peers_with_a_certificate_of_the_cluster_ca_are_served() {
    let ours = cluster_tls("cluster-ca");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let registry = Arc::new(Registry::default());
    registry.insert(0, Arc::new(Echo("controller")));
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(serve(
        listener,
        Arc::clone(&registry),
        stopped,
        Some(ours.clone()),
    ));
    let call = |peers: Arc<Peers>| {
        let address = address.clone();
        async move {
            peers
                .call(1, &address, (0, 0), Bytes::from_static(b"x"), TIMEOUT)
                .await
        }
    };
    assert_eq!(
        call(Peers::new(Some(ours))).await.unwrap(),
        Bytes::from_static(b"controller:x")
    );
    // A certificate of another CA, and no TLS at all, are refused.
    let refused = call(Peers::new(Some(cluster_tls("other-ca")))).await;
    assert!(
        matches!(refused, Err(CallError::Unreachable(_))),
        "{refused:?}"
    );
    let plain = call(Peers::new(None)).await;
    assert!(plain.is_err(), "{plain:?}");
}
