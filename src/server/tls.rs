//! TLS of `SSL` listeners (rustls, ring provider only): the server config, a certificate
//! resolver that re-reads the cert and key files when they change on disk (checked at most once
//! per `RELOAD_CHECK_INTERVAL`, at a handshake), the handshake bounded by a timeout, and the
//! principal of a client certificate. Reads only the PEM files it is given.

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::auth::{MappingRules, Principal};

use crate::limits::PEM_FILE_BYTES_MAX;

/// How often, at most, a handshake looks at the cert and key files' metadata.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_millis(crate::limits::TLS_RELOAD_CHECK_MS);

/// Whether client certificates are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    None,
    Requested,
    Required,
}

/// What `Tls::new` needs, built by app from the validated config.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) principal_mapping_rules: MappingRules,
    pub(crate) handshake_timeout: Duration,
}

/// Why TLS could not be set up, or a client's handshake failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is larger than {PEM_FILE_BYTES_MAX} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} holds no PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("{cert_file} and {key_file} do not make a usable certificate and key")]
    Key {
        cert_file: PathBuf,
        key_file: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("a CA certificate of {path} is not usable")]
    CaCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot use the CA certificates of {path}")]
    Ca {
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("cannot build the TLS server config")]
    Config(#[source] rustls::Error),
    #[error("TLS handshake failed")]
    Handshake(#[source] io::Error),
    #[error("TLS handshake not done within {timeout_ms} ms")]
    HandshakeTimeout { timeout_ms: u128 },
    #[error("client certificate subject unreadable")]
    Subject(#[source] crate::auth::NameError),
    #[error("no principal mapping rule applies to {dn}")]
    NoMappingRule { dn: String },
}

/// A listener's TLS: the acceptor and how to name a client.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    rules: Arc<MappingRules>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// rustls' ring provider (the only one built: aws-lc-rs is not a dependency).
#[expect(
    deprecated,
    reason = "ring is the provider this build uses; rustls 0.23.48 deprecates it for lacking post-quantum key exchange"
)]
pub(super) fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl Tls {
    /// Loads the certificate, key and CA files (errors name the file at fault).
    pub(crate) fn new(settings: TlsSettings) -> Result<Self, Error> {
        let provider = Arc::new(ring_provider());
        let resolver = ReloadingResolver::load(
            settings.cert_file.clone(),
            settings.key_file.clone(),
            Arc::clone(&provider),
        )?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(Error::Config)?;
        let builder = match (&settings.ca_file, settings.client_auth) {
            (Some(ca_file), auth) if auth != ClientAuth::None => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(ca_file, "certificate")? {
                    roots.add(cert).map_err(|source| Error::CaCertificate {
                        path: ca_file.clone(),
                        source,
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match auth {
                    ClientAuth::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|source| Error::Ca {
                    path: ca_file.clone(),
                    source,
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let config = builder.with_cert_resolver(Arc::new(resolver));
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            rules: Arc::new(settings.principal_mapping_rules),
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// Runs the handshake (bounded by the handshake timeout) and names the client: its
    /// certificate's subject through the mapping rules, or `User:ANONYMOUS` without one.
    pub(crate) async fn accept(
        &self,
        socket: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Principal), Error> {
        let stream = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(socket))
            .await
            .map_err(|_| Error::HandshakeTimeout {
                timeout_ms: self.handshake_timeout.as_millis(),
            })?
            .map_err(Error::Handshake)?;
        let principal = match stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            None => Principal::anonymous(),
            Some(cert) => {
                let dn = crate::auth::subject_dn(cert).map_err(Error::Subject)?;
                let name = self.rules.map(&dn).ok_or(Error::NoMappingRule { dn })?;
                Principal::user(&name)
            }
        };
        Ok((stream, principal))
    }
}

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (Option<FileStamp>, Option<FileStamp>),
    checked: Instant,
}

/// Serves the certificate and key loaded last, and loads them again when either file changed
/// (a failed load keeps the previous pair and is tried again at a later check).
#[derive(Debug)]
pub(super) struct ReloadingResolver {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl ReloadingResolver {
    pub(super) fn load(
        cert_file: PathBuf,
        key_file: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let stamps = (stamp(&cert_file), stamp(&key_file));
        let key = certified_key(&cert_file, &key_file, &provider)?;
        Ok(ReloadingResolver {
            loaded: Mutex::new(Loaded {
                key: Arc::new(key),
                stamps,
                checked: Instant::now(),
            }),
            cert_file,
            key_file,
            provider,
        })
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let stamps = (stamp(&self.cert_file), stamp(&self.key_file));
            if stamps != loaded.stamps {
                match certified_key(&self.cert_file, &self.key_file, &self.provider) {
                    Ok(key) => {
                        loaded.key = Arc::new(key);
                        loaded.stamps = stamps;
                        tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
                    }
                    Err(error) => tracing::warn!(
                        error = %error,
                        "TLS certificate or key changed but cannot be loaded; keeping the previous one"
                    ),
                }
            }
        }
        Some(Arc::clone(&loaded.key))
    }
}

pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, Error> {
    let read = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > PEM_FILE_BYTES_MAX {
        return Err(Error::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read(path).map_err(read)
}

pub(super) fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_bounded(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::Pem {
            path: path.to_owned(),
            what,
        });
    }
    Ok(certs)
}

fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let certs = read_certs(cert_file, "certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read_bounded(key_file)?).map_err(|_| Error::Pem {
        path: key_file.to_owned(),
        what: "private key",
    })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|source| Error::Key {
        cert_file: cert_file.to_owned(),
        key_file: key_file.to_owned(),
        source,
    })
}

/// `error` and its causes on one line (`handshake failed: ...: ...`), for a log line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
