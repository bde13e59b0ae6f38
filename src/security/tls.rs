//! TLS and mTLS for the gRPC server (rustls, aws-lc-rs provider), checked
//! at start so a bad file fails with its name rather than at the first
//! handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tonic::transport::{Certificate, Identity as TlsIdentity, ServerTlsConfig};

use super::SetupError;

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS files of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain the server presents (end entity first).
    pub cert: Option<PathBuf>,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// PEM CA certificate(s); when set, clients must present a certificate
    /// signed by one of them (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The server's TLS configuration: `None` (plaintext) when no file is
    /// set. Every file is read and checked now: unreadable or invalid PEM,
    /// a key that does not match the certificate, or a key, certificate or
    /// client CA given alone is an error naming the file or flag.
    pub fn server_tls_config(&self) -> Result<Option<ServerTlsConfig>, SetupError> {
        let (cert_path, key_path) = match (&self.cert, &self.key) {
            (None, None) if self.client_ca.is_none() => return Ok(None),
            (None, None) => return Err(SetupError::ClientCaWithoutTls),
            (None, Some(_)) => return Err(SetupError::KeyWithoutCert),
            (Some(_), None) => return Err(SetupError::CertWithoutKey),
            (Some(cert), Some(key)) => (cert, key),
        };
        // tonic builds its rustls config with the process-wide provider;
        // pin it to the one the AWS SDK already uses (an error only means
        // one is installed already).
        let _ = aws_lc_rs::default_provider().install_default();
        let provider = Arc::new(aws_lc_rs::default_provider());

        let cert_pem = read(cert_path, "tls certificate")?;
        let chain = certificates(&cert_pem, cert_path, "tls certificate")?;
        let key_pem = read(key_path, "tls key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            // The parser's detail could quote key material: leave it out.
            .map_err(|_| invalid(key_path, "tls key", "no usable pem private key".to_owned()))?;
        ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| {
                invalid(
                    key_path,
                    "tls key",
                    format!("does not fit the certificate: {e}"),
                )
            })?;

        let mut config = ServerTlsConfig::new()
            .identity(TlsIdentity::from_pem(cert_pem, key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca_path) = &self.client_ca {
            let ca_pem = read(ca_path, "client ca")?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(&ca_pem, ca_path, "client ca")? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(ca_path, "client ca", format!("unusable ca: {e}")))?;
            }
            check_client_verifier(roots, provider, ca_path)?;
            config = config.client_ca_root(Certificate::from_pem(ca_pem));
        }
        Ok(Some(config))
    }
}

/// Whether a client-certificate verifier can be built from `roots`.
fn check_client_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    path: &Path,
) -> Result<(), SetupError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map(drop)
        .map_err(|e| invalid(path, "client ca", format!("unusable ca: {e}")))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Every certificate of a PEM file; at least one.
fn certificates(
    pem: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, what, format!("invalid pem: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, what, "no pem certificate found".to_owned()));
    }
    Ok(certs)
}

fn invalid(path: &Path, what: &'static str, reason: String) -> SetupError {
    SetupError::Invalid {
        what,
        path: path.to_owned(),
        reason,
    }
}
