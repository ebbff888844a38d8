//! A minimal TLS trust configuration: the CA certificates of a PEM file. Callers with richer
//! trust settings (system store, pinning) build their own [`rustls::ClientConfig`].

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// rustls with the ring provider (the one the workspace's other TLS user, ureq, uses) and its
/// safe default protocol versions.
pub fn builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// Trusts exactly the certificates in the PEM file at `path` as roots.
pub fn ca_file(path: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ca_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// Trusts exactly the certificates of this PEM text as roots (a CA, or a self-signed server
/// certificate itself).
pub fn ca_pem(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("a certificate is not usable: {e}"))?;
    }
    Ok(Arc::new(
        builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The operating system's trust store (rustls-platform-verifier: on Linux the system's CA
/// bundle).
pub fn system() -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    Ok(Arc::new(
        builder()
            .with_platform_verifier()
            .map_err(|e| format!("cannot load the system's trust store: {e}"))?
            .with_no_client_auth(),
    ))
}

/// Trusts exactly the server certificate whose DER has this SHA-256 (any issuer, any name,
/// any validity: the pin is the whole decision), as with `host_key_fingerprint` for SSH.
pub fn pinned(sha256: [u8; 32]) -> Arc<rustls::ClientConfig> {
    with_verifier(Arc::new(Verifier {
        pin: Some(sha256),
        algorithms: provider().signature_verification_algorithms,
    }))
}

/// Trusts any certificate (upstream's `verify_tls_certificate=false`): the connection is
/// encrypted but the server is not authenticated. The caller warns in its log.
pub fn insecure() -> Arc<rustls::ClientConfig> {
    with_verifier(Arc::new(Verifier {
        pin: None,
        algorithms: provider().signature_verification_algorithms,
    }))
}

/// Parses a SHA-256 fingerprint: 64 hex digits, colons allowed, optional `SHA256:` prefix.
pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected the certificate's SHA-256 fingerprint: 64 hex digits (colons allowed), e.g. from 'openssl x509 -noout -fingerprint -sha256'".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digits");
    }
    Ok(out)
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn with_verifier(verifier: Arc<Verifier>) -> Arc<rustls::ClientConfig> {
    Arc::new(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct Verifier {
    /// `None`: accept any certificate.
    pin: Option<[u8; 32]>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
struct PinMismatch(String);

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate (SHA-256 {}) is not the pinned one",
            self.0
        )
    }
}

impl std::error::Error for PinMismatch {}

impl rustls::client::danger::ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest as _;
        let seen: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        match self.pin {
            Some(pin) if pin != seen => {
                let hex: String = seen.iter().map(|b| format!("{b:02x}")).collect();
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch(hex)))),
                ))
            }
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_the_usual_spellings() {
        let hex = "2ae8dcead40c21b14b797e7c60ac93110fe4e0a1a82bf605d537aa165fa7f960";
        let colons: String = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let want = parse_sha256(hex).unwrap();
        assert_eq!(want[0], 0x2a);
        assert_eq!(parse_sha256(&colons).unwrap(), want);
        assert_eq!(parse_sha256(&format!("SHA256:{hex}")).unwrap(), want);
        assert!(parse_sha256("SHA256:abc").is_err());
        assert!(parse_sha256(&hex.replace('a', "g")).is_err());
    }
}
