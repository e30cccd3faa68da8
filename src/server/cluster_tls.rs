//! The rustls configs of the cluster listener's mTLS (`cluster.tls`): a server that requires a
//! client certificate of the cluster CA, and a client that presents this broker's certificate
//! and trusts only that CA. Built here, beside the Kafka listeners' TLS, and handed to the
//! cluster RPC as plain rustls configs.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::WebPkiClientVerifier;

use super::tls::{Error, ReloadingResolver, read_bounded, read_certs, ring_provider};

/// The server and client configs of the cluster RPC.
pub(crate) fn cluster_mtls(
    cert_file: &Path,
    key_file: &Path,
    ca_file: &Path,
) -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), Error> {
    let provider = Arc::new(ring_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca_file, "certificate")? {
        roots.add(cert).map_err(|source| Error::CaCertificate {
            path: ca_file.to_owned(),
            source,
        })?;
    }
    let roots = Arc::new(roots);
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|source| Error::Ca {
                path: ca_file.to_owned(),
                source,
            })?;
    let resolver = ReloadingResolver::load(
        cert_file.to_owned(),
        key_file.to_owned(),
        Arc::clone(&provider),
    )?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    let certs = read_certs(cert_file, "certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read_bounded(key_file)?).map_err(|_| Error::Pem {
        path: key_file.to_owned(),
        what: "private key",
    })?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|source| Error::Key {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            source,
        })?;
    Ok((Arc::new(server), Arc::new(client)))
}
