//! The admin listener's accept loop and connection task: at most `ADMIN_CONNECTIONS_MAX`
//! connections (more are closed at once), each reading one bounded request head within
//! `ADMIN_CONNECTION_TIMEOUT_MS`, answered from `AdminHandlers` and closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http::{self, Response, Target};
use crate::limits;

/// Answers of the endpoints, given by app (the server layer knows no broker or metrics registry).
pub(crate) struct AdminHandlers {
    /// `Ok` when the broker serves clients; else the short reason it does not yet.
    pub(crate) ready: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// The metrics in Prometheus' text format; `None`: `/metrics` is not served (404).
    pub(crate) metrics: Option<Box<dyn Fn() -> String + Send + Sync>>,
}

impl std::fmt::Debug for AdminHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandlers").finish_non_exhaustive()
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves; connections still open
/// then are dropped (each is short-lived and bounded by the connection timeout anyway).
pub(crate) async fn serve_admin(
    listener: TcpListener,
    handlers: AdminHandlers,
    shutdown: impl Future<Output = ()>,
) {
    let handlers = Arc::new(handlers);
    let slots = Arc::new(Semaphore::new(limits::ADMIN_CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accept failed");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_millis(limits::ACCEPT_BACKOFF_MS_MIN)) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "admin listener at its connection cap: closed");
            continue;
        };
        let handlers = Arc::clone(&handlers);
        connections.spawn(async move {
            let timeout = Duration::from_millis(limits::ADMIN_CONNECTION_TIMEOUT_MS);
            if tokio::time::timeout(timeout, answer(socket, &handlers))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "admin connection timed out");
            }
            drop(slot);
        });
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Reads one request head and writes its response.
async fn answer(mut socket: TcpStream, handlers: &Arc<AdminHandlers>) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    let parsed = loop {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(chunk.get(..read).unwrap_or_default()),
        }
        match http::parse(&head) {
            Ok(None) => continue,
            other => break other,
        }
    };
    let (response, head_only) = match parsed {
        // Off the async workers: /ready and /metrics read broker state under its locks.
        Ok(Some(request)) => {
            let target = request.target;
            let handlers = Arc::clone(handlers);
            match tokio::task::spawn_blocking(move || respond(&target, &handlers)).await {
                Ok(response) => (response, request.is_head),
                Err(_) => (Response::text(500, "internal error\n"), false),
            }
        }
        Ok(None) => return,
        Err(http::Error::TooLarge) => (Response::text(431, "request head too large\n"), false),
        Err(error @ http::Error::Malformed(_)) => {
            (Response::text(400, format!("{error}\n")), false)
        }
    };
    // The peer may be gone already; there is no one to tell.
    let _ = socket.write_all(&response.encode(head_only)).await;
    let _ = socket.shutdown().await;
}

fn respond(target: &Target, handlers: &AdminHandlers) -> Response {
    match target {
        Target::Health => Response::text(200, "ok"),
        Target::Ready => match (handlers.ready)() {
            Ok(()) => Response::text(200, "ready"),
            Err(reason) => Response::text(503, format!("not ready: {reason}\n")),
        },
        Target::Metrics => match &handlers.metrics {
            Some(render) => Response {
                status: 200,
                content_type: http::PROMETHEUS,
                body: render(),
            },
            None => Response::text(404, "metrics are not exported by this build\n"),
        },
        Target::NotFound => Response::text(404, "not found: try /health, /ready or /metrics\n"),
        Target::MethodNotAllowed => Response::text(405, "only GET and HEAD\n"),
    }
}
