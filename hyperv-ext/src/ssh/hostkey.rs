//! Server authentication, done right after the key exchange and before any credential is
//! sent: a pinned SHA-256 fingerprint, a known_hosts file, or (only when the operator asked
//! for it) trust on first use or no check at all.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};

/// How the server's host key is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key's `SHA256:<base64>` fingerprint, as `ssh-keygen -lf` prints it.
    Pinned(Fingerprint),
    /// An OpenSSH known_hosts file; with `accept_new`, an unknown host is trusted and
    /// recorded (a changed key is still refused).
    KnownHosts { path: PathBuf, accept_new: bool },
    /// No verification (the operator set `host_key_check=off`).
    Off,
}

/// A host key fingerprint, `SHA256:` followed by 43 unpadded base64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let body = text
            .strip_prefix("SHA256:")
            .ok_or("expected SHA256:<base64>, as printed by ssh-keygen -lf")?;
        let body = body.trim_end_matches('=');
        let decoded = STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| "the part after SHA256: is not base64")?;
        if decoded.len() != 32 {
            return Err("a SHA256 fingerprint has 32 bytes (43 base64 characters)".into());
        }
        Ok(Fingerprint(format!("SHA256:{body}")))
    }

    fn of(hash: &[u8]) -> Fingerprint {
        Fingerprint(format!("SHA256:{}", STANDARD_NO_PAD.encode(hash)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Equality without an early exit on the first differing byte.
    fn same_as(&self, other: &Fingerprint) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the server was not trusted.
#[derive(Debug)]
pub enum HostKeyError {
    /// The server presented no key (cannot happen after a successful handshake).
    NoKey,
    Mismatch {
        expected: Fingerprint,
        actual: Fingerprint,
    },
    Unknown {
        path: PathBuf,
        actual: Fingerprint,
    },
    Changed {
        path: PathBuf,
        actual: Fingerprint,
    },
    KnownHostsFile {
        path: PathBuf,
        error: String,
    },
}

impl std::fmt::Display for HostKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeyError::NoKey => f.write_str("the server presented no host key"),
            HostKeyError::Mismatch { expected, actual } => write!(
                f,
                "host key mismatch: the server presented {actual} but host_key_fingerprint is \
                 {expected}; refusing to send credentials (if the host was reinstalled, update \
                 host_key_fingerprint)"
            ),
            HostKeyError::Unknown { path, actual } => write!(
                f,
                "the host is not in {} (its key is {actual}); add it (ssh-keyscan) or set \
                 host_key_fingerprint, or host_key_check=accept-new to trust it on first use",
                path.display()
            ),
            HostKeyError::Changed { path, actual } => write!(
                f,
                "host key mismatch: the server presented {actual}, which differs from its entry \
                 in {}; refusing to send credentials",
                path.display()
            ),
            HostKeyError::KnownHostsFile { path, error } => {
                write!(f, "known_hosts file {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for HostKeyError {}

/// Checks the key `session` received during the handshake against `policy`.
pub fn verify(
    session: &Session,
    host: &str,
    port: u16,
    policy: &HostKeyPolicy,
) -> Result<Fingerprint, HostKeyError> {
    let hash = session
        .host_key_hash(HashType::Sha256)
        .ok_or(HostKeyError::NoKey)?;
    let actual = Fingerprint::of(hash);
    match policy {
        HostKeyPolicy::Pinned(expected) => {
            if expected.same_as(&actual) {
                Ok(actual)
            } else {
                Err(HostKeyError::Mismatch {
                    expected: expected.clone(),
                    actual,
                })
            }
        }
        HostKeyPolicy::Off => {
            log::warn!(
                "host key NOT verified (host_key_check=off): {host}:{port} presented {actual}"
            );
            Ok(actual)
        }
        HostKeyPolicy::KnownHosts { path, accept_new } => {
            check_known_hosts(session, host, port, path, *accept_new, actual)
        }
    }
}

fn check_known_hosts(
    session: &Session,
    host: &str,
    port: u16,
    path: &Path,
    accept_new: bool,
    actual: Fingerprint,
) -> Result<Fingerprint, HostKeyError> {
    let file_error = |error: String| HostKeyError::KnownHostsFile {
        path: path.into(),
        error,
    };
    let (key, key_type) = session.host_key().ok_or(HostKeyError::NoKey)?;
    let mut known = session
        .known_hosts()
        .map_err(|e| file_error(e.to_string()))?;
    let exists = path.exists();
    if exists {
        known
            .read_file(path, KnownHostFileKind::OpenSSH)
            .map_err(|e| file_error(format!("cannot read it: {e}")))?;
    }
    match known.check_port(host, port, key) {
        CheckResult::Match => Ok(actual),
        CheckResult::Mismatch => Err(HostKeyError::Changed {
            path: path.into(),
            actual,
        }),
        CheckResult::Failure => Err(file_error("libssh2 could not check the host key".into())),
        CheckResult::NotFound if !accept_new => Err(HostKeyError::Unknown {
            path: path.into(),
            actual,
        }),
        CheckResult::NotFound => {
            // OpenSSH writes non-default ports as [host]:port.
            let name = if port == 22 {
                host.to_owned()
            } else {
                format!("[{host}]:{port}")
            };
            known
                .add(
                    &name,
                    key,
                    "added by hyperv-ext (host_key_check=accept-new)",
                    key_type.into(),
                )
                .map_err(|e| file_error(format!("cannot add {name}: {e}")))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
            }
            known
                .write_file(path, KnownHostFileKind::OpenSSH)
                .map_err(|e| file_error(format!("cannot write it: {e}")))?;
            log::warn!(
                "trusting {name} on first use: recorded {actual} in {}",
                path.display()
            );
            Ok(actual)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_compare() {
        let text = "SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik";
        let a = Fingerprint::parse(text).unwrap();
        assert_eq!(a.as_str(), text);
        assert_eq!(Fingerprint::parse(&format!("{text}=")).unwrap(), a);
        assert!(a.same_as(&Fingerprint::parse(text).unwrap()));
        let b = Fingerprint::parse("SHA256:sR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik").unwrap();
        assert!(!a.same_as(&b));
        for bad in [
            "",
            "MD5:aa:bb",
            "SHA256:",
            "SHA256:abc",
            "SHA256:$(x);'\u{2019}",
            text.trim_start_matches("SHA256:"),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }
}
