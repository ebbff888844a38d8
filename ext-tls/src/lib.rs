//! The TLS trust of the extensions' HTTPS clients (`proxmox-ext`'s API client and the
//! `winrm` crate's): one rustls client configuration built from one [`Trust`] setting.
//!
//! - [`Trust::System`]: the operating system's trust store, the way OpenSSL reads it, but
//!   lazily: during the handshake only the issuers of the presented chain are loaded, found by
//!   their subject hash in OpenSSL's hashed certificate directory (`/etc/ssl/certs/<hash>.0`),
//!   else by scanning a bundle file (EL's `/etc/pki/tls/certs/ca-bundle.crt`), never the whole
//!   store. `SSL_CERT_DIR` and `SSL_CERT_FILE` point it elsewhere, as they do for OpenSSL.
//! - [`Trust::Ca`]: only the certificates of one PEM file (a cluster's `pve-root-ca.pem`) or
//!   PEM text ([`CaCertificate`], what a `ca_certificate` detail names).
//! - [`Trust::Pinned`]: exactly the leaf certificate with this SHA-256 fingerprint (the form
//!   the Proxmox VE GUI and `openssl x509 -fingerprint -sha256` show), whoever issued it; the
//!   server must still prove it holds its key.
//! - [`Trust::Insecure`]: no verification. Callers log a warning every time they use it.
//!
//! TLS 1.2 is the minimum. Whatever the trust, [`ClientTls::peer`] tells what the server
//! presented last (the leaf's fingerprint, to pin) and why it was refused, so a caller can say
//! "TLS verifies, or why not" and send no credential before the check has passed: the check is
//! part of the handshake, which fails before any request byte is written.
//! [`tls_server_end_point`] is the channel binding an authentication over the connection
//! carries (NTLM for WinRM).

#![forbid(unsafe_code)]

mod binding;
mod ca;
mod der;
mod fingerprint;
mod name;
mod store;
mod verify;

#[cfg(feature = "ureq")]
mod connector;

use std::sync::Arc;

use rustls::ClientConfig;

pub use binding::tls_server_end_point;
pub use ca::{CaCertificate, CaProblem, SetupError};
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
    /// Only these certificates.
    Ca(CaCertificate),
    /// Only the leaf certificate with this fingerprint.
    Pinned(Fingerprint),
    /// No verification at all.
    Insecure,
}

impl Trust {
    /// The trust the usual three settings ask for, one rule for every extension: a pinned
    /// fingerprint is the whole check; else `verify=false` checks nothing (the caller warns);
    /// else the CA certificate, else the system store.
    pub fn from_settings(
        pinned: Option<Fingerprint>,
        verify: bool,
        ca: Option<CaCertificate>,
    ) -> Trust {
        match (pinned, verify, ca) {
            (Some(fingerprint), _, _) => Trust::Pinned(fingerprint),
            (None, false, _) => Trust::Insecure,
            (None, true, Some(ca)) => Trust::Ca(ca),
            (None, true, None) => Trust::System(SystemStore::from_env()),
        }
    }
}

/// A rustls client configuration for one [`Trust`], and what its handshakes saw.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    observed: Arc<verify::Observed>,
}

impl ClientTls {
    /// Builds the configuration. Reads the CA certificate now; the system store is read during the
    /// handshake, and only for the presented chain's issuers.
    pub fn new(trust: &Trust) -> Result<ClientTls, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let observed = Arc::new(verify::Observed::default());
        let anchors = match trust {
            Trust::System(store) => verify::Anchors::System(store.clone()),
            Trust::Ca(ca) => {
                verify::Anchors::fixed(ca.certificates()?, ca.anchor_name(), &provider).map_err(
                    |reason| SetupError {
                        ca: ca.clone(),
                        problem: CaProblem::NoUsableCertificate(reason),
                    },
                )?
            }
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
pub fn read_ca_file(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, SetupError> {
    CaCertificate::File(path.to_path_buf()).certificates()
}
