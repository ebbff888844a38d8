//! Server authentication, done right after the key exchange and before any credential is
//! sent: a pinned SHA-256 fingerprint, a known_hosts file, or (only when the operator asked
//! for it) trust on first use or no check at all.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};

use crate::transport::Trust;

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
    /// Nothing says how to trust the server: every key is refused, after the handshake, with
    /// the key it presented (what `check` shows to pin). Actions never get this far: a
    /// missing host key detail stops them before they connect.
    Unset,
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
    /// The key is on an `@revoked` line.
    Revoked {
        path: PathBuf,
        line: usize,
        actual: Fingerprint,
    },
    /// The host is vouched for only by a certificate authority.
    CertAuthority {
        path: PathBuf,
        line: usize,
        actual: Fingerprint,
    },
    KnownHostsFile {
        path: PathBuf,
        error: String,
    },
    /// No host key detail is set ([`HostKeyPolicy::Unset`]).
    NotConfigured {
        actual: Fingerprint,
    },
}

impl HostKeyError {
    /// The key the server presented, where the error knows it.
    pub fn presented(&self) -> Option<&Fingerprint> {
        match self {
            HostKeyError::Mismatch { actual, .. }
            | HostKeyError::Unknown { actual, .. }
            | HostKeyError::Changed { actual, .. }
            | HostKeyError::Revoked { actual, .. }
            | HostKeyError::CertAuthority { actual, .. }
            | HostKeyError::NotConfigured { actual } => Some(actual),
            HostKeyError::NoKey | HostKeyError::KnownHostsFile { .. } => None,
        }
    }
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
            HostKeyError::Revoked { path, line, actual } => write!(
                f,
                "host key revoked: the server presented {actual}, which line {line} of {} marks \
                 @revoked; refusing to send credentials (a revoked key is refused even where \
                 another line lists it)",
                path.display()
            ),
            HostKeyError::CertAuthority { path, line, actual } => write!(
                f,
                "line {line} of {} trusts a certificate authority (@cert-authority) for this \
                 host, but hyperv-ext cannot verify SSH host certificates; the server presented \
                 the plain key {actual}, which no line lists, so it is refused: add the host's \
                 own key (ssh-keyscan) or set host_key_fingerprint",
                path.display()
            ),
            HostKeyError::KnownHostsFile { path, error } => {
                write!(f, "known_hosts file {}: {error}", path.display())
            }
            HostKeyError::NotConfigured { actual } => write!(
                f,
                "no host key detail is set, so the server cannot be trusted; it presented \
                 {actual}: compare it with the host's own key (ssh-keygen -lf on the host) and \
                 set host_key_fingerprint={actual}, or set known_hosts, or host_key_check"
            ),
        }
    }
}

impl std::error::Error for HostKeyError {}

/// Checks the key `session` received during the handshake against `policy`: its fingerprint
/// and why it is trusted. With `record` false, a key trusted on first use is not written to
/// the known_hosts file (`check` records nothing).
pub fn verify(
    session: &Session,
    host: &str,
    port: u16,
    policy: &HostKeyPolicy,
    record: bool,
) -> Result<(Fingerprint, Trust), HostKeyError> {
    let hash = session
        .host_key_hash(HashType::Sha256)
        .ok_or(HostKeyError::NoKey)?;
    let actual = Fingerprint::of(hash);
    match policy {
        HostKeyPolicy::Pinned(expected) => {
            if expected.same_as(&actual) {
                Ok((actual, Trust::Pinned))
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
            Ok((actual, Trust::Unverified))
        }
        HostKeyPolicy::KnownHosts { path, accept_new } => {
            check_known_hosts(session, host, port, path, *accept_new, record, actual)
        }
        HostKeyPolicy::Unset => Err(HostKeyError::NotConfigured { actual }),
    }
}

fn check_known_hosts(
    session: &Session,
    host: &str,
    port: u16,
    path: &Path,
    accept_new: bool,
    record: bool,
    actual: Fingerprint,
) -> Result<(Fingerprint, Trust), HostKeyError> {
    let file_error = |error: String| HostKeyError::KnownHostsFile {
        path: path.into(),
        error,
    };
    let (key, _) = session.host_key().ok_or(HostKeyError::NoKey)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(format!("cannot read it: {e}"))),
    };
    match judge(session, &text, host, port, key).map_err(file_error)? {
        Verdict::Known => Ok((actual, Trust::Listed { path: path.into() })),
        Verdict::Changed => Err(HostKeyError::Changed {
            path: path.into(),
            actual,
        }),
        Verdict::Revoked { line } => Err(HostKeyError::Revoked {
            path: path.into(),
            line,
            actual,
        }),
        Verdict::CertAuthority { line } => Err(HostKeyError::CertAuthority {
            path: path.into(),
            line,
            actual,
        }),
        Verdict::Unknown if !accept_new => Err(HostKeyError::Unknown {
            path: path.into(),
            actual,
        }),
        Verdict::Unknown if !record => {
            log::warn!(
                "{host}:{port} is not in {} (its key is {actual}); trusted on first use \
                 (accept-new) without recording it: this run records nothing",
                path.display()
            );
            Ok((
                actual,
                Trust::FirstUse {
                    path: path.into(),
                    recorded: false,
                },
            ))
        }
        Verdict::Unknown => {
            let name = host_field(host, port);
            let line = entry_line(&name, key)
                .ok_or_else(|| file_error("the server's key blob is malformed".into()))?;
            append_entry(path, &text, &line)
                .map_err(|e| file_error(format!("cannot add {name}: {e}")))?;
            log::warn!(
                "trusting {name} on first use: recorded {actual} in {}",
                path.display()
            );
            Ok((
                actual,
                Trust::FirstUse {
                    path: path.into(),
                    recorded: true,
                },
            ))
        }
    }
}

/// What a known_hosts file says about the key a host presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A line lists this key for this host.
    Known,
    /// Lines list this host, with other keys of this type.
    Changed,
    /// Nothing about this host (a candidate for accept-new).
    Unknown,
    /// An `@revoked` line (1-based number) lists this key.
    Revoked { line: usize },
    /// Only an `@cert-authority` line (1-based number) vouches for this host: it expects a
    /// host certificate, which libssh2 cannot verify.
    CertAuthority { line: usize },
}

/// A marker in front of a known_hosts line (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

/// OpenSSH's rules, over the file's text: a key on an `@revoked` line is refused whatever
/// other lines say (and for any host: a revoked key is never good); then the plain lines
/// decide (libssh2 matches plain and hashed `|1|salt|hash` names, `[host]:port` forms);
/// a host known only through `@cert-authority` is refused clearly rather than trusted on
/// first use. A line that cannot be read is an error naming it, never skipped: skipping could
/// turn a changed key into an unknown one.
fn judge(
    session: &Session,
    text: &str,
    host: &str,
    port: u16,
    key: &[u8],
) -> Result<Verdict, String> {
    let mut plain = session.known_hosts().map_err(|e| e.to_string())?;
    let mut authorities = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let (marker, rest) = match entry.split_once([' ', '\t']) {
            Some(("@revoked", rest)) => (Some(Marker::Revoked), rest.trim_start()),
            Some(("@cert-authority", rest)) => (Some(Marker::CertAuthority), rest.trim_start()),
            _ if entry.starts_with('@') => {
                return Err(format!(
                    "line {line}: unknown marker {}",
                    entry.split_whitespace().next().unwrap_or(entry)
                ));
            }
            _ => (None, entry),
        };
        match marker {
            Some(Marker::Revoked) => {
                if key_blob(rest).ok_or_else(|| format!("line {line}: no readable key"))? == key {
                    return Ok(Verdict::Revoked { line });
                }
            }
            Some(Marker::CertAuthority) => authorities.push((line, rest)),
            None => plain
                .read_str(rest, KnownHostFileKind::OpenSSH)
                .map_err(|e| format!("line {line}: libssh2 cannot read it ({e})"))?,
        }
    }
    match plain.check_port(host, port, key) {
        CheckResult::Match => return Ok(Verdict::Known),
        CheckResult::Mismatch => return Ok(Verdict::Changed),
        CheckResult::Failure => return Err("libssh2 could not check the host key".into()),
        CheckResult::NotFound => {}
    }
    for (line, rest) in authorities {
        let unreadable = |e: String| format!("line {line}: libssh2 cannot read it ({e})");
        let mut one = session.known_hosts().map_err(|e| e.to_string())?;
        one.read_str(rest, KnownHostFileKind::OpenSSH)
            .map_err(|e| unreadable(e.to_string()))?;
        // Asked with the authority's own key, the line matches exactly when its names do.
        let ca_key = key_blob(rest).ok_or_else(|| unreadable("no key".into()))?;
        if matches!(one.check_port(host, port, &ca_key), CheckResult::Match) {
            return Ok(Verdict::CertAuthority { line });
        }
    }
    Ok(Verdict::Unknown)
}

/// The key blob of `hosts keytype base64 [comment]`.
fn key_blob(entry: &str) -> Option<Vec<u8>> {
    let encoded = entry.split_whitespace().nth(2)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')))
        .ok()
}

/// The host field OpenSSH writes: the name alone on port 22, else `[host]:port`.
fn host_field(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `name keytype base64 comment`, the key type read from the blob itself (its first field).
fn entry_line(name: &str, key: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    let kind = std::str::from_utf8(key.get(4..4 + len)?).ok()?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(format!(
        "{name} {kind} {} added by hyperv-ext (host_key_check=accept-new)\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// Appends `line` to the file (whose current text is `text`), creating it 0600 and its
/// directories 0700 whatever the umask, as OpenSSH keeps `~/.ssh`. Appending, unlike
/// libssh2's rewrite of the whole file, keeps every comment, marker and line it cannot read.
fn append_entry(path: &Path, text: &str, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let separator = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    file.write_all(format!("{separator}{line}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_compare() {
        let text = "SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik";
        let a = Fingerprint::parse(text).unwrap();
        assert_eq!(a.to_string(), text);
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

    /// An ed25519 public key blob (type name, then 32 key bytes of `seed`).
    fn blob(seed: u8) -> Vec<u8> {
        let mut b = Vec::new();
        for part in [&b"ssh-ed25519"[..], &[seed; 32][..]] {
            b.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            b.extend_from_slice(part);
        }
        b
    }

    fn line(hosts: &str, seed: u8) -> String {
        entry_line(hosts, &blob(seed)).unwrap()
    }

    fn verdict(text: &str, host: &str, port: u16, seed: u8) -> Result<Verdict, String> {
        judge(&Session::new().unwrap(), text, host, port, &blob(seed))
    }

    const HOST: &str = "127.0.0.1";
    const PORT: u16 = 2222;
    const NAME: &str = "[127.0.0.1]:2222";

    #[test]
    fn plain_lines_match_change_or_say_nothing() {
        let file = format!(
            "# comment\n\n{}other.test,10.0.0.9 {}",
            line(NAME, 1),
            &line("x", 5)[2..]
        );
        assert_eq!(verdict(&file, HOST, PORT, 1), Ok(Verdict::Known));
        assert_eq!(verdict(&file, HOST, PORT, 2), Ok(Verdict::Changed));
        assert_eq!(verdict(&file, HOST, 22, 1), Ok(Verdict::Unknown));
        assert_eq!(verdict(&file, "10.0.0.9", 22, 5), Ok(Verdict::Known));
        assert_eq!(verdict("", HOST, PORT, 1), Ok(Verdict::Unknown));
    }

    #[test]
    fn a_revoked_key_is_refused_even_where_another_line_lists_it() {
        let listed = line(NAME, 1);
        for file in [
            format!("{listed}@revoked {}", line(NAME, 1)),
            format!("@revoked {}{listed}", line(NAME, 1)),
            // Revoked for any host: never good.
            format!("{listed}@revoked {}", line("*", 1)),
            format!("{listed}@revoked\t{}", line("elsewhere.test", 1)),
        ] {
            let found = verdict(&file, HOST, PORT, 1).unwrap();
            assert!(
                matches!(found, Verdict::Revoked { .. }),
                "{file}: {found:?}"
            );
        }
        let file = format!("{listed}@revoked {}", line(NAME, 3));
        assert_eq!(verdict(&file, HOST, PORT, 1), Ok(Verdict::Known));
        assert_eq!(
            verdict(&file, HOST, PORT, 3),
            Ok(Verdict::Revoked { line: 2 })
        );
    }

    #[test]
    fn a_certificate_authority_alone_is_refused_clearly() {
        let ca = format!(
            "@cert-authority {}",
            line("[127.0.0.1]:*,[127.0.0.1]:2222", 9)
        );
        assert_eq!(
            verdict(&ca, HOST, PORT, 1),
            Ok(Verdict::CertAuthority { line: 1 })
        );
        // The host's own key listed as well: that line decides.
        let both = format!("{ca}{}", line(NAME, 1));
        assert_eq!(verdict(&both, HOST, PORT, 1), Ok(Verdict::Known));
        assert_eq!(verdict(&both, HOST, PORT, 2), Ok(Verdict::Changed));
        // An authority for other hosts says nothing about this one.
        let other = format!("@cert-authority {}", line("other.test", 9));
        assert_eq!(verdict(&other, HOST, PORT, 1), Ok(Verdict::Unknown));
    }

    #[test]
    fn hashed_host_names_match() {
        // HMAC-SHA1 of the name under the salt 00 01 .. 13, as `ssh-keygen -H` writes it.
        let hashed = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|zKYaAqmSav3Qxr2sffNqWFIcbe4=";
        let file = line(hashed, 1);
        assert_eq!(verdict(&file, HOST, PORT, 1), Ok(Verdict::Known));
        assert_eq!(verdict(&file, HOST, PORT, 2), Ok(Verdict::Changed));
        assert_eq!(verdict(&file, HOST, 2223, 1), Ok(Verdict::Unknown));
        let port22 = line(
            "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|d0hCUhtedqDmZe+GOclev4GRnCg=",
            1,
        );
        assert_eq!(verdict(&port22, "example.test", 22, 1), Ok(Verdict::Known));
        let revoked = format!("{file}@revoked {}", line(hashed, 1));
        assert_eq!(
            verdict(&revoked, HOST, PORT, 1),
            Ok(Verdict::Revoked { line: 2 })
        );
    }

    #[test]
    fn unreadable_lines_are_named_never_skipped() {
        let file = format!("{}@trusted {}", line(NAME, 1), line(NAME, 1));
        assert_eq!(
            verdict(&file, HOST, PORT, 1),
            Err("line 2: unknown marker @trusted".into())
        );
        let file = format!("{}garbage\n", line("other.test", 1));
        let err = verdict(&file, HOST, PORT, 1).unwrap_err();
        assert!(err.starts_with("line 2: libssh2 cannot read it"), "{err}");
        let err = verdict("@revoked [127.0.0.1]:2222 ssh-ed25519\n", HOST, PORT, 1).unwrap_err();
        assert_eq!(err, "line 1: no readable key");
    }

    #[test]
    fn first_use_lines_are_appended_in_openssh_form() {
        assert_eq!(host_field("h.test", 22), "h.test");
        assert_eq!(host_field(HOST, PORT), NAME);
        let entry = line(NAME, 1);
        assert!(
            entry.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{entry}"
        );
        assert!(entry.ends_with(" added by hyperv-ext (host_key_check=accept-new)\n"));
        assert_eq!(entry_line(NAME, b"\0\0"), None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/.ssh/known_hosts");
        append_entry(&path, "", &entry).unwrap();
        let kept = "# mine\n@revoked * ssh-ed25519 AAAA";
        std::fs::write(&path, kept).unwrap();
        append_entry(&path, kept, &entry).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{kept}\n{entry}")
        );
    }
}
