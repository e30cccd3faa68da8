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
    tokio::spawn(serve(listener, Arc::clone(&registry), stopped));
    Server {
        address,
        registry,
        stop,
    }
}

#[tokio::test]
async fn calls_reach_the_handler_of_their_group() {
    let server = server().await;
    let peers = Peers::new();
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
    let peers = Peers::new();
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
    let peers = Peers::new();
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
}

#[tokio::test]
async fn a_peer_that_moves_or_restarts_is_reached_again() {
    let first = server().await;
    let peers = Peers::new();
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
