//! The seam under remote execution: a [`Transport`] runs one PowerShell command line on the
//! Hyper-V host and hands back what the process left (stdout, stderr, exit status), or says
//! how far it got. Everything above it is shared by every transport: building the command
//! line (`hyperv_protocol`), reading the framed result line, deciding what a failure means
//! (`remote`). SSH (`ssh`) is one transport; WinRM runs the same command line in a WinRM
//! shell; unit tests use a fake.

use std::net::SocketAddr;
use std::path::PathBuf;

use ext_sdk::Deadline;
use hyperv_protocol::CommandLine;

use crate::settings::HostTarget;

/// Runs command lines on one Hyper-V host.
///
/// What every implementation guarantees:
/// - [`Transport::run`] opens one connection and starts the command once; nothing is retried.
/// - Every wait (name resolution, connect, handshake, authentication, the command's output)
///   ends by `deadline`; past it, `run` returns an error that says whether the command may
///   have started (`TransportError::sent`).
/// - The server is authenticated before any credential is sent.
/// - Nothing is read from or written to this process's stdin, stdout or stderr.
/// - An error's text names the transport and the address it was for.
pub trait Transport {
    /// The transport's name for messages: `SSH`, `WinRM`.
    fn name(&self) -> &'static str;
    /// The host as the operator configured it.
    fn host(&self) -> &str;
    fn port(&self) -> u16;
    /// The account the command runs as.
    fn username(&self) -> &str;
    /// Runs `command` once on the host and returns what it left.
    fn run(&self, command: &CommandLine, deadline: &Deadline) -> Result<Output, TransportError>;

    /// [`Transport::run`], telling `progress` each [`Step`] as it passes (what `check` reports
    /// row by row) and recording nothing on this machine when `progress` says so. The default
    /// reports no steps; the run is the same.
    fn run_with_progress(
        &self,
        command: &CommandLine,
        deadline: &Deadline,
        progress: &mut dyn Progress,
    ) -> Result<Output, TransportError> {
        let _ = progress;
        self.run(command, deadline)
    }
}

/// A step a run passed on its way to starting the command, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Connected over TCP to `peer`, the address the host's name resolved to (when the
    /// transport knows it).
    Connected { peer: Option<SocketAddr> },
    /// The server proved it is the host the settings name: its key's fingerprint
    /// (`SHA256:...`, when the transport knows it) and why it was trusted. No credential was
    /// sent before this step.
    ServerTrusted {
        fingerprint: Option<String>,
        trust: Trust,
    },
    /// The host accepted the credentials (`method`: password, public key).
    Authenticated { method: &'static str },
}

/// Why a server was trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Its fingerprint is pinned in the settings (`host_key_fingerprint`, `tls_fingerprint`).
    Pinned,
    /// A known_hosts file lists its key.
    Listed { path: PathBuf },
    /// No file lists it and the settings trust a first key seen (`accept-new`); `recorded`
    /// says whether it was written to `path` (a run that may not record leaves it out).
    FirstUse { path: PathBuf, recorded: bool },
    /// The settings turned verification off.
    Unverified,
    /// A TLS certificate chains to a trusted CA, and names the host: `by` says whose
    /// certificates were trusted (`CA file '/etc/...' (ca_certificate)`, the system's store).
    Issued { by: String },
}

/// Hears how far a run gets.
pub trait Progress {
    fn step(&mut self, step: Step);

    /// Whether the run may record what it learns on this machine (a host key trusted on
    /// first use). `check` changes nothing anywhere, so it answers no.
    fn may_record(&self) -> bool {
        true
    }
}

/// Hears nothing, records what it may: a plain run.
pub struct Silent;

impl Progress for Silent {
    fn step(&mut self, _: Step) {}
}

/// Turns a host's connection settings into the transport that reaches it: SSH or WinRM in
/// the binary ([`Hosts`]), a fake in unit tests.
pub trait Connector {
    fn transport(&self, target: HostTarget) -> Box<dyn Transport + '_>;
}

/// Reaches each host over the transport its settings chose.
pub struct Hosts;

impl Connector for Hosts {
    fn transport(&self, target: HostTarget) -> Box<dyn Transport + '_> {
        match target {
            HostTarget::Ssh(ssh) => Box::new(ssh),
            HostTarget::Winrm(winrm) => Box::new(winrm),
        }
    }
}

/// What the remote command left behind.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes of stderr dropped beyond the transport's cap.
    pub stderr_dropped: usize,
    pub exit: Exit,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Exit {
    Status(i32),
    /// The process died from a signal (e.g. killed), with no exit status.
    Signal(String),
    #[default]
    Unknown,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Status(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => write!(f, "killed by signal {sig}"),
            Exit::Unknown => f.write_str("no exit status"),
        }
    }
}

/// How far the command got when the transport failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The command never reached the host's shell (resolve, connect, handshake, host key,
    /// authentication, opening the channel or shell): nothing ran, so retrying is safe.
    No,
    /// The command was handed to the host (or the request to start it may have arrived), then
    /// the transport failed: it may have run, in part or in full.
    Maybe,
}

/// A transport that did not bring back the command's output, with its own error inside
/// (`SshError` for SSH), whose text is the message.
#[derive(Debug)]
pub struct TransportError {
    sent: Sent,
    error: Box<dyn std::error::Error + Send + Sync>,
}

#[allow(
    dead_code,
    reason = "the seam's API for every transport; the WinRM transport (issue 13) needs what SSH does not"
)]
impl TransportError {
    pub fn new(sent: Sent, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError {
            sent,
            error: error.into(),
        }
    }

    /// Failed before the command could start.
    pub fn not_sent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError::new(Sent::No, error)
    }

    /// Failed after the command was handed to the host.
    pub fn after_sending(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError::new(Sent::Maybe, error)
    }

    pub fn sent(&self) -> Sent {
        self.sent
    }

    /// The transport's own error, e.g. to `downcast_ref::<SshError>()`.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}
