//! Optional mTLS of cluster RPC connections (`cluster.tls`): both ends run a TLS handshake,
//! bounded by a timeout, before any frame; each requires the other's certificate to come from
//! the cluster CA, so a broker without one cannot take part. Without it, plain TCP.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::limits::CLUSTER_CONNECT_TIMEOUT_MS;

/// The two sides of the cluster's mTLS.
#[derive(Clone)]
pub(crate) struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

impl ClusterTls {
    pub(crate) fn new(
        server: Arc<rustls::ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> ClusterTls {
        ClusterTls {
            acceptor: TlsAcceptor::from(server),
            connector: TlsConnector::from(client),
        }
    }
}

/// A connection's read and write halves, over TLS or not.
pub(super) type Halves = (
    Box<dyn AsyncRead + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
);

fn timeout() -> Duration {
    Duration::from_millis(CLUSTER_CONNECT_TIMEOUT_MS)
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
}

/// The calling side: a handshake that checks the peer's certificate names `host`.
pub(super) async fn client(
    tls: Option<&ClusterTls>,
    stream: TcpStream,
    host: &str,
) -> std::io::Result<Halves> {
    let Some(tls) = tls else {
        let (read, write) = stream.into_split();
        return Ok((Box::new(read), Box::new(write)));
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let stream = tokio::time::timeout(timeout(), tls.connector.connect(name, stream))
        .await
        .map_err(|_| timed_out())??;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

/// The serving side.
pub(super) async fn server(tls: Option<&ClusterTls>, stream: TcpStream) -> std::io::Result<Halves> {
    let Some(tls) = tls else {
        let (read, write) = stream.into_split();
        return Ok((Box::new(read), Box::new(write)));
    };
    let stream = tokio::time::timeout(timeout(), tls.acceptor.accept(stream))
        .await
        .map_err(|_| timed_out())??;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}
