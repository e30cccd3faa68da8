//! TLS to `SSL` listeners for the CLI (rustls, ring provider): trusts the CA file given (or
//! nothing else), presents a client certificate for mTLS when one is given.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::error::ClientError;

/// PEM files for a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// CA certificates the broker's certificate must chain to.
    pub(crate) ca_file: Option<PathBuf>,
    /// Client certificate chain and key, for listeners that require mTLS.
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
}

/// A ready client config.
#[derive(Debug, Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
}

fn invalid(what: String) -> ClientError {
    ClientError::Invalid(what)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

impl TlsConnector {
    pub(crate) fn new(files: &TlsFiles) -> Result<TlsConnector, ClientError> {
        let ca_file = files.ca_file.as_deref().ok_or_else(|| {
            invalid("TLS needs --tls-ca FILE (the CA of the broker's certificate)".to_owned())
        })?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca_file)? {
            roots.add(cert).map_err(|e| {
                invalid(format!(
                    "a CA certificate of {} is not usable: {e}",
                    ca_file.display()
                ))
            })?;
        }
        let provider = Arc::new(ring_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS protocol versions: {e}")))?
            .with_root_certificates(roots);
        let config = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    invalid(format!(
                        "reading the private key from {}: {e}",
                        key.display()
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(format!("the client certificate and key: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(invalid("--tls-cert and --tls-key go together".to_owned()));
            }
        };
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }

    /// Starts TLS over `tcp` to `address` (HOST:PORT; HOST is the name the certificate must
    /// carry). The handshake completes with the first request.
    pub(crate) fn wrap(
        &self,
        address: &str,
        tcp: TcpStream,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, ClientError> {
        let host = address
            .rsplit_once(':')
            .map_or(address, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| invalid(format!("{host} as a TLS server name: {e}")))?;
        let connection = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| invalid(format!("starting TLS to {address}: {e}")))?;
        Ok(StreamOwned::new(connection, tcp))
    }
}

/// rustls' ring provider (the only one built: aws-lc-rs is not a dependency).
#[expect(
    deprecated,
    reason = "ring is the provider this build uses; rustls 0.23.48 deprecates it for lacking post-quantum key exchange"
)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
