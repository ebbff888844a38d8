//! What a `ca_certificate` setting names: a PEM file on this machine, or the PEM text itself
//! (a CloudStack detail is a string, so the certificate can travel with the host's details
//! instead of being copied to every management server).

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The certificates to trust instead of the system store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaCertificate {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Pem(String),
}

impl CaCertificate {
    /// Reads a setting's value: PEM text when it starts with `-----BEGIN` (a value pasted
    /// into a one-line field may carry literal `\n` sequences for its line breaks), else a
    /// path.
    pub fn from_setting(value: &str) -> CaCertificate {
        let value = value.trim();
        if !value.starts_with("-----BEGIN") {
            return CaCertificate::File(PathBuf::from(value));
        }
        let mut pem = if value.contains('\n') {
            value.to_owned()
        } else {
            value.replace("\\n", "\n")
        };
        pem.push('\n');
        CaCertificate::Pem(pem)
    }

    /// Every certificate it holds (other PEM items, such as keys, are skipped).
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, SetupError> {
        let error = |problem| SetupError {
            ca: self.clone(),
            problem,
        };
        let pem = match self {
            CaCertificate::File(path) => {
                std::fs::read(path).map_err(|e| error(CaProblem::Unreadable(e)))?
            }
            CaCertificate::Pem(text) => text.as_bytes().to_vec(),
        };
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(CaProblem::BadPem(e.to_string())))?;
        if certs.is_empty() {
            return Err(error(CaProblem::NoCertificate));
        }
        Ok(certs)
    }
}

impl CaCertificate {
    /// How a refusal names these certificates: "the CA file" or "the inline CA certificate".
    pub(crate) fn anchor_name(&self) -> &'static str {
        match self {
            CaCertificate::File(_) => "the CA file",
            CaCertificate::Pem(_) => "the inline CA certificate",
        }
    }
}

impl fmt::Display for CaCertificate {
    /// `CA file '<path>'` or `the inline CA certificate`, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaCertificate::File(path) => write!(f, "CA file '{}'", path.display()),
            CaCertificate::Pem(_) => f.write_str("the inline CA certificate (PEM)"),
        }
    }
}

/// Why a [`crate::Trust`] could not be turned into a configuration (nothing was sent): its
/// CA certificate is not usable.
#[derive(Debug)]
pub struct SetupError {
    pub ca: CaCertificate,
    pub problem: CaProblem,
}

/// What is wrong with a CA certificate.
#[derive(Debug)]
pub enum CaProblem {
    /// The file cannot be read.
    Unreadable(std::io::Error),
    /// It is not valid PEM.
    BadPem(String),
    /// It holds no certificate.
    NoCertificate,
    /// No certificate of it is usable as a trust anchor.
    NoUsableCertificate(String),
}

impl SetupError {
    /// The CA file concerned; `None` for an inline certificate.
    pub fn path(&self) -> Option<&Path> {
        match &self.ca {
            CaCertificate::File(path) => Some(path),
            CaCertificate::Pem(_) => None,
        }
    }
}

impl SetupError {
    /// The message with the CA certificate named as the caller's operator knows it (e.g.
    /// `ca_certificate '/etc/pve/pve-root-ca.pem'`); [`fmt::Display`] says `CA file '...'`.
    pub fn message_for(&self, what: &str) -> String {
        match &self.problem {
            CaProblem::Unreadable(e) => format!("cannot read {what}: {e}"),
            CaProblem::BadPem(reason) => format!("{what} is not valid PEM: {reason}"),
            CaProblem::NoCertificate => {
                format!("{what} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")
            }
            CaProblem::NoUsableCertificate(reason) => {
                format!("{what} holds no certificate usable as a trust anchor: {reason}")
            }
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message_for(&self.ca.to_string()))
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            CaProblem::Unreadable(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----";

    #[test]
    fn a_setting_is_pem_text_or_a_path() {
        assert_eq!(
            CaCertificate::from_setting(" /etc/pve/pve-root-ca.pem "),
            CaCertificate::File("/etc/pve/pve-root-ca.pem".into())
        );
        let want = CaCertificate::Pem(format!("{PEM}\n"));
        assert_eq!(CaCertificate::from_setting(PEM), want);
        // As pasted into a one-line field.
        assert_eq!(CaCertificate::from_setting(&PEM.replace('\n', "\\n")), want);
        assert_eq!(
            want.certificates().unwrap(),
            [CertificateDer::from(vec![0x30, 0x00])]
        );
    }

    #[test]
    fn problems_name_what_was_given() {
        let missing = CaCertificate::File("/nonexistent/ca.pem".into());
        let err = missing.certificates().unwrap_err();
        assert!(matches!(err.problem, CaProblem::Unreadable(_)));
        assert_eq!(err.path(), Some(Path::new("/nonexistent/ca.pem")));
        assert!(
            err.to_string()
                .starts_with("cannot read CA file '/nonexistent/ca.pem': "),
            "{err}"
        );
        let key = CaCertificate::from_setting(
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----",
        );
        let err = key.certificates().unwrap_err();
        assert_eq!(err.path(), None);
        assert_eq!(
            err.to_string(),
            "the inline CA certificate (PEM) holds no PEM certificate (expected -----BEGIN \
             CERTIFICATE-----)"
        );
        let broken = CaCertificate::from_setting("-----BEGIN CERTIFICATE-----\nMAA=\n");
        assert!(matches!(
            broken.certificates().unwrap_err().problem,
            CaProblem::BadPem(_)
        ));
    }
}
