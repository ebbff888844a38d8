//! The TLS trust of the extensions' HTTPS clients (`proxmox-ext` now, a WinRM client later):
//! one rustls client configuration built from one [`Trust`] setting.
//!
//! - [`Trust::System`]: the operating system's trust store, the way OpenSSL reads it, but
//!   lazily: during the handshake only the issuers of the presented chain are loaded, found by
//!   their subject hash in OpenSSL's hashed certificate directory (`/etc/ssl/certs/<hash>.0`),
//!   else by scanning a bundle file (EL's `/etc/pki/tls/certs/ca-bundle.crt`), never the whole
//!   store. `SSL_CERT_DIR` and `SSL_CERT_FILE` point it elsewhere, as they do for OpenSSL.
//! - [`Trust::CaFile`]: only the certificates of one PEM file (a cluster's `pve-root-ca.pem`).
//! - [`Trust::Pinned`]: exactly the leaf certificate with this SHA-256 fingerprint (the form
//!   the Proxmox VE GUI shows), whoever issued it; the server must still prove it holds its key.
//! - [`Trust::Insecure`]: no verification. Callers log a warning every time they use it.
//!
//! TLS 1.2 is the minimum. Whatever the trust, [`ClientTls::peer`] tells what the server
//! presented last (the leaf's fingerprint, to pin) and why it was refused, so a caller can say
//! "TLS verifies, or why not" and send no credential before the check has passed: the check is
//! part of the handshake, which fails before any request byte is written.

mod der;
mod fingerprint;
mod name;
mod store;
mod verify;

#[cfg(feature = "ureq")]
mod connector;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[cfg(feature = "ureq")]
pub use connector::UreqConnector;
pub use fingerprint::{Fingerprint, FingerprintError};
pub use name::subject_hash;
pub use store::SystemStore;
pub use verify::{PeerCertificate, Refusal};

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system trust store (see [`SystemStore`]).
    System(SystemStore),
    /// Only the certificates of this PEM file.
    CaFile(PathBuf),
    /// Only the leaf certificate with this fingerprint.
    Pinned(Fingerprint),
    /// No verification at all.
    Insecure,
}

/// Why a [`Trust`] could not be turned into a configuration (nothing was sent).
#[derive(Debug)]
pub enum SetupError {
    /// The CA file cannot be read.
    ReadCaFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The CA file is not valid PEM.
    BadPem { path: PathBuf, reason: String },
    /// The CA file holds no certificate.
    NoCertificate { path: PathBuf },
    /// No certificate of the CA file is usable as a trust anchor.
    NoUsableCertificate { path: PathBuf, reason: String },
}

impl SetupError {
    /// The CA file concerned.
    pub fn path(&self) -> &Path {
        match self {
            SetupError::ReadCaFile { path, .. }
            | SetupError::BadPem { path, .. }
            | SetupError::NoCertificate { path }
            | SetupError::NoUsableCertificate { path, .. } => path,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::ReadCaFile { path, error } => {
                write!(f, "cannot read CA file '{}': {error}", path.display())
            }
            SetupError::BadPem { path, reason } => {
                write!(f, "CA file '{}' is not valid PEM: {reason}", path.display())
            }
            SetupError::NoCertificate { path } => write!(
                f,
                "CA file '{}' holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
            SetupError::NoUsableCertificate { path, reason } => write!(
                f,
                "CA file '{}' holds no certificate usable as a trust anchor: {reason}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SetupError {}

/// A rustls client configuration for one [`Trust`], and what its handshakes saw.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    observed: Arc<verify::Observed>,
}

impl ClientTls {
    /// Builds the configuration. Reads the CA file now; the system store is read during the
    /// handshake, and only for the presented chain's issuers.
    pub fn new(trust: &Trust) -> Result<ClientTls, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let observed = Arc::new(verify::Observed::default());
        let anchors =
            match trust {
                Trust::System(store) => verify::Anchors::System(store.clone()),
                Trust::CaFile(path) => verify::Anchors::fixed(read_ca_file(path)?, &provider)
                    .map_err(|reason| SetupError::NoUsableCertificate {
                        path: path.clone(),
                        reason,
                    })?,
                Trust::Pinned(fingerprint) => verify::Anchors::Pinned(*fingerprint),
                Trust::Insecure => verify::Anchors::Insecure,
            };
        let verifier = verify::Verifier::new(anchors, provider.clone(), observed.clone());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(config),
            observed,
        })
    }

    /// The rustls configuration, for a connection of the caller's own.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The certificate the server presented in the last handshake, with the reason it was
    /// refused if it was; `None` before any server presented one.
    pub fn peer(&self) -> Option<PeerCertificate> {
        self.observed.last()
    }

    /// A ureq 3 connector (chain it after ureq's TCP connector) using this configuration.
    #[cfg(feature = "ureq")]
    pub fn ureq_connector(&self) -> UreqConnector {
        UreqConnector::new(self.config.clone())
    }
}

/// Every certificate of a PEM file (other PEM items, such as keys, are skipped).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let pem = std::fs::read(path).map_err(|error| SetupError::ReadCaFile {
        path: path.to_path_buf(),
        error,
    })?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        match item {
            Ok(cert) => certs.push(cert),
            Err(e) => {
                return Err(SetupError::BadPem {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if certs.is_empty() {
        return Err(SetupError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}
