//! What can go wrong, where, and whether the command may have run.

use std::fmt;

use ext_sdk::DeadlineExceeded;

pub use crate::soap::Fault;

/// The step a run was at, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Checking the configuration, resolving and connecting.
    Connect,
    /// The TLS handshake and the certificate check.
    Tls,
    /// HTTP authentication (NTLM handshake or Basic).
    Authenticate,
    CreateShell,
    Command,
    Receive,
    Signal,
    DeleteShell,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connecting",
            Stage::Tls => "in the TLS handshake",
            Stage::Authenticate => "authenticating",
            Stage::CreateShell => "creating the remote shell",
            Stage::Command => "starting the command",
            Stage::Receive => "waiting for the command's output",
            Stage::Signal => "terminating the command",
            Stage::DeleteShell => "deleting the remote shell",
        })
    }
}

#[derive(Debug)]
pub enum ErrorKind {
    /// Refused before connecting (plain HTTP, an unusable username).
    Config(String),
    /// Resolving or connecting failed.
    Connect(ext_sdk::tcp::ConnectError),
    /// The TLS handshake failed, typically because the certificate was not trusted. Nothing
    /// was sent.
    Tls(Box<TlsFailure>),
    /// The service rejected the credentials (a 401 after a complete handshake, or to Basic).
    AuthRejected {
        method: &'static str,
    },
    /// The service offers no authentication this client does (its `WWW-Authenticate`s).
    AuthNotOffered {
        method: &'static str,
        offered: String,
    },
    /// The NTLM implementation failed to make a message.
    Ntlm(String),
    /// An HTTP status that is not a SOAP fault.
    Http {
        status: u16,
        excerpt: String,
    },
    Fault(Fault),
    /// The reply was not the WS-Management answer expected.
    Protocol(String),
    /// The connection failed mid-exchange.
    Io(std::io::Error),
    /// The action's deadline (or a round trip's own limit) passed.
    Deadline(DeadlineExceeded),
}

/// A TLS handshake that failed.
#[derive(Debug)]
pub struct TlsFailure {
    /// `host:port`.
    pub server: String,
    pub error: rustls::Error,
    /// What the server presented, with the reason it was refused (`None` when it presented
    /// nothing before the handshake failed).
    pub peer: Option<ext_tls::PeerCertificate>,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TlsFailure {
            server,
            error,
            peer,
        } = self;
        write!(f, "the TLS handshake with {server} failed: ")?;
        match peer {
            Some(ext_tls::PeerCertificate {
                fingerprint,
                refusal: Some(ext_tls::Refusal::NotPinned { pinned }),
            }) => write!(
                f,
                "it presented a certificate with SHA-256 fingerprint {fingerprint}, not the \
                 pinned {pinned}"
            )?,
            Some(ext_tls::PeerCertificate {
                fingerprint,
                refusal: Some(refusal),
            }) => write!(
                f,
                "its certificate was refused: {refusal}; it presented SHA-256 fingerprint \
                 {fingerprint}"
            )?,
            Some(ext_tls::PeerCertificate { fingerprint, .. }) => {
                write!(
                    f,
                    "{error} (it presented SHA-256 fingerprint {fingerprint})"
                )?;
            }
            None => write!(f, "{error}")?,
        }
        f.write_str("; no credential was sent")
    }
}

/// A failed run: what, at which step, and whether the command may have started.
#[derive(Debug)]
pub struct Error {
    pub stage: Stage,
    pub kind: ErrorKind,
    /// The Command request was sent (at least in part): the command may be running or have
    /// run on the host. `false` means it certainly did not start.
    pub command_sent: bool,
    /// Deleting the shell after this error failed too.
    pub cleanup: Option<Box<Error>>,
}

impl Error {
    pub(crate) fn new(stage: Stage, kind: ErrorKind) -> Error {
        Error {
            stage,
            kind,
            command_sent: false,
            cleanup: None,
        }
    }

    /// Whether the command may have run (or be running) on the host.
    pub fn command_may_have_run(&self) -> bool {
        self.command_sent
    }

    pub fn is_deadline(&self) -> bool {
        matches!(self.kind, ErrorKind::Deadline(_))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Config(why) => f.write_str(why),
            ErrorKind::Connect(e) => e.fmt(f),
            ErrorKind::Tls(failure) => failure.fmt(f),
            ErrorKind::AuthRejected { method } => write!(
                f,
                "the WinRM service rejected the credentials ({method}): check the username \
                 and password"
            ),
            ErrorKind::AuthNotOffered { method, offered } => write!(
                f,
                "the WinRM service does not offer {method} authentication (it offers: {})",
                if offered.is_empty() {
                    "nothing"
                } else {
                    offered
                }
            ),
            ErrorKind::Ntlm(e) => f.write_str(e),
            ErrorKind::Http { status, excerpt } if excerpt.is_empty() => {
                write!(f, "HTTP status {status}")
            }
            ErrorKind::Http { status, excerpt } => write!(f, "HTTP status {status}: {excerpt}"),
            ErrorKind::Fault(fault) => {
                write!(f, "the WinRM service answered with a fault: {fault}")
            }
            ErrorKind::Protocol(why) => write!(f, "unexpected answer: {why}"),
            ErrorKind::Io(e) => write!(f, "connection error: {e}"),
            ErrorKind::Deadline(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Says itself what it was doing.
            ErrorKind::Deadline(_)
            | ErrorKind::Config(_)
            | ErrorKind::Connect(_)
            | ErrorKind::Tls(_) => write!(f, "WinRM: {}", self.kind)?,
            kind => write!(f, "WinRM: {} failed: {kind}", self.stage)?,
        }
        if let Some(cleanup) = &self.cleanup {
            write!(
                f,
                "; deleting the remote shell failed too: {}",
                cleanup.kind
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Connect(e) => Some(e),
            ErrorKind::Tls(failure) => Some(&failure.error),
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Deadline(e) => Some(e),
            _ => None,
        }
    }
}
