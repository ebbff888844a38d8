//! The certificate verifier behind every [`crate::Trust`]: it decides, and it records what
//! the server presented and why it was refused, for the caller's error messages.

use std::fmt;
use std::sync::{Arc, Mutex};

use log::debug;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::fingerprint::Fingerprint;
use crate::name;
use crate::store::SystemStore;

/// What a server presented in a handshake, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// SHA-256 of the leaf certificate: what to pin.
    pub fingerprint: Fingerprint,
    /// Why it was refused; `None` when it was accepted.
    pub refusal: Option<Refusal>,
}

/// Why a presented certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A fingerprint is pinned and the leaf is another certificate.
    NotPinned { pinned: Fingerprint },
    /// It does not chain to a trusted certificate, is not for the name asked for, has
    /// expired, ...: the reason in words.
    Untrusted { reason: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotPinned { pinned } => {
                write!(f, "it is not the pinned certificate {pinned}")
            }
            Refusal::Untrusted { reason } => f.write_str(reason),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Observed(Mutex<Option<PeerCertificate>>);

impl Observed {
    pub(crate) fn last(&self) -> Option<PeerCertificate> {
        self.0.lock().map(|g| g.clone()).unwrap_or(None)
    }

    fn record(&self, peer: PeerCertificate) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(peer);
        }
    }
}

pub(crate) enum Anchors {
    /// Trust anchors known up front (a CA certificate), and how to name them: "the CA file"
    /// or "the inline CA certificate".
    Fixed(Arc<WebPkiServerVerifier>, &'static str),
    /// Looked up per handshake, by issuer.
    System(SystemStore),
    Pinned(Fingerprint),
    Insecure,
}

impl Anchors {
    pub(crate) fn fixed(
        certs: Vec<CertificateDer<'static>>,
        named: &'static str,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Anchors, String> {
        webpki_verifier(certs, provider).map(|verifier| Anchors::Fixed(verifier, named))
    }
}

fn webpki_verifier(
    certs: Vec<CertificateDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    debug!("trust anchors: {added} added, {ignored} unusable");
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())
}

pub(crate) struct Verifier {
    anchors: Anchors,
    provider: Arc<CryptoProvider>,
    observed: Arc<Observed>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.anchors {
            Anchors::Fixed(..) => "ca-certificate",
            Anchors::System(_) => "system",
            Anchors::Pinned(_) => "pinned",
            Anchors::Insecure => "insecure",
        };
        f.debug_struct("Verifier").field("trust", &kind).finish()
    }
}

impl Verifier {
    pub(crate) fn new(
        anchors: Anchors,
        provider: Arc<CryptoProvider>,
        observed: Arc<Observed>,
    ) -> Verifier {
        Verifier {
            anchors,
            provider,
            observed,
        }
    }

    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chain = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        match &self.anchors {
            Anchors::Insecure => Ok(ServerCertVerified::assertion()),
            Anchors::Pinned(pinned) => {
                if Fingerprint::of(end_entity) == *pinned {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
            Anchors::Fixed(verifier, _) => chain(verifier),
            Anchors::System(store) => {
                // The issuers of the leaf and of each intermediate: whichever the store holds
                // is the anchor; nothing else of the store is read.
                let names: Vec<&[u8]> = std::iter::once(end_entity)
                    .chain(intermediates)
                    .filter_map(|c| name::issuer_and_subject(c).map(|(issuer, _)| issuer))
                    .collect();
                let anchors = store.issuers(&names);
                if anchors.is_empty() {
                    return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
                }
                let verifier = webpki_verifier(anchors, &self.provider).map_err(Error::General)?;
                chain(&verifier)
            }
        }
    }
}

impl Verifier {
    /// The server proves it holds the certificate's key, whatever the trust (a pinned leaf
    /// too); only without verification is this skipped, as ureq's own insecure mode does.
    fn signature(
        &self,
        verify: impl FnOnce(
            &rustls::crypto::WebPkiSupportedAlgorithms,
        ) -> Result<HandshakeSignatureValid, Error>,
    ) -> Result<HandshakeSignatureValid, Error> {
        if matches!(self.anchors, Anchors::Insecure) {
            return Ok(HandshakeSignatureValid::assertion());
        }
        verify(&self.provider.signature_verification_algorithms)
    }
}

/// The reason in words, for an operator.
fn explain(error: &Error, anchors: &Anchors, server_name: &ServerName<'_>) -> String {
    use CertificateError as C;
    let name = server_name.to_str();
    match error {
        Error::InvalidCertificate(C::UnknownIssuer) => match anchors {
            Anchors::System(_) => {
                "it is not issued by a certificate authority of the system trust store".into()
            }
            Anchors::Fixed(_, named) => format!("it is not issued by a certificate of {named}"),
            Anchors::Pinned(_) | Anchors::Insecure => "its issuer is unknown".into(),
        },
        Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("it is not valid for the name '{name}'")
        }
        Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "it has expired".into(),
        Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "it is not valid yet (check this machine's clock)".into()
        }
        Error::InvalidCertificate(C::Revoked) => "it has been revoked".into(),
        Error::InvalidCertificate(C::BadSignature) => "its signature is invalid".into(),
        Error::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            "it is not a TLS server certificate".into()
        }
        other => format!("{other}"),
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fingerprint = Fingerprint::of(end_entity);
        let verdict = self.decide(end_entity, intermediates, server_name, ocsp_response, now);
        let refusal = match (&verdict, &self.anchors) {
            (Ok(_), _) => None,
            (Err(_), Anchors::Pinned(pinned)) => Some(Refusal::NotPinned { pinned: *pinned }),
            (Err(e), anchors) => Some(Refusal::Untrusted {
                reason: explain(e, anchors, server_name),
            }),
        };
        debug!(
            "server certificate {fingerprint}: {}",
            refusal
                .as_ref()
                .map_or_else(|| "accepted".to_string(), |r| format!("refused: {r}"))
        );
        self.observed.record(PeerCertificate {
            fingerprint,
            refusal,
        });
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(|algorithms| verify_tls12_signature(message, cert, dss, algorithms))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(|algorithms| verify_tls13_signature(message, cert, dss, algorithms))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
