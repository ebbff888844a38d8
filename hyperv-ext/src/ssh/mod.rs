//! One SSH connection running one command, bounded by the action's deadline.
//!
//! Order of events: resolve and connect (bounded), key exchange, host-key verification,
//! and only then authentication (a password never reaches an unverified server), one
//! `exec` on a session channel without a PTY (a PTY would merge stderr into stdout and add
//! escape sequences), EOF straight after `exec` (powershell.exe may otherwise wait for
//! stdin), then stdout and stderr drained together in non-blocking mode so a chatty stderr
//! cannot stall the channel window.

mod hostkey;
mod watchdog;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ext_sdk::tcp::ConnectError;
use ext_sdk::{Deadline, DeadlineExceeded, Secret};
use hyperv_protocol::CommandLine;
use ssh2::{BlockDirections, Channel, Session};

pub use hostkey::{Fingerprint, HostKeyError, HostKeyPolicy};
use watchdog::Watchdog;

use crate::transport::{Exit, Output, Progress, Sent, Silent, Step, Transport, TransportError};

/// Most we keep of each stream; the rest is drained and dropped. Results are a few KiB.
const MAX_STDOUT: usize = 1024 * 1024;
const MAX_STDERR: usize = 256 * 1024;
/// Per-address TCP connect bound (the deadline may shorten it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// libssh2's "would block" (`LIBSSH2_ERROR_EAGAIN`), "timed out" and "authentication failed"
/// codes.
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
const LIBSSH2_ERROR_AUTHENTICATION_FAILED: i32 = -18;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Where `host` and `port` came from, for messages: `url 'hv1' (host detail) and the
    /// default port`.
    pub origin: String,
    pub username: String,
    pub credential: Credential,
    pub host_key: HostKeyPolicy,
}

impl Target {
    /// `host:port`, an IPv6 address in brackets.
    pub fn address(&self) -> String {
        ext_sdk::HostPort {
            host: self.host.clone(),
            port: Some(self.port),
        }
        .to_string()
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    Password(Secret),
    Key {
        key: PrivateKey,
        passphrase: Option<Secret>,
    },
}

#[derive(Debug, Clone)]
pub enum PrivateKey {
    /// A key file on the management server.
    File(PathBuf),
    /// The key itself (PEM / OpenSSH format).
    Inline(Secret),
}

impl Credential {
    pub fn method(&self) -> &'static str {
        match self {
            Credential::Password(_) => "password",
            Credential::Key {
                key: PrivateKey::File(_),
                ..
            } => "public key (file)",
            Credential::Key {
                key: PrivateKey::Inline(_),
                ..
            } => "public key (inline)",
        }
    }
}

#[derive(Debug)]
pub enum SshError {
    Resolve {
        host: String,
        error: String,
    },
    Connect {
        host: String,
        port: u16,
        error: std::io::Error,
    },
    Handshake {
        host: String,
        port: u16,
        error: ssh2::Error,
    },
    HostKey(HostKeyError),
    Auth {
        username: String,
        method: &'static str,
        error: ssh2::Error,
    },
    KeyFile {
        path: PathBuf,
        error: std::io::Error,
    },
    Session(ssh2::Error),
    Io(std::io::Error),
    Deadline(DeadlineExceeded),
}

impl SshError {
    fn is_libssh2_timeout(&self) -> bool {
        match self {
            SshError::Handshake { error, .. }
            | SshError::Auth { error, .. }
            | SshError::Session(error) => {
                error.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
            }
            SshError::Io(e) => e.kind() == ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// What the connection was doing when this error ended it, for a deadline message.
    fn stage(&self) -> &'static str {
        match self {
            SshError::Handshake { .. } | SshError::HostKey(_) => "in the SSH handshake",
            SshError::Auth { .. } | SshError::KeyFile { .. } => "authenticating over SSH",
            _ => "running PowerShell over SSH",
        }
    }
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::Resolve { host, error } => write!(f, "cannot resolve {host}: {error}"),
            SshError::Connect { host, port, error } => {
                write!(f, "cannot connect to {host}:{port}: {error}")
            }
            SshError::Handshake { host, port, error } => {
                write!(f, "SSH handshake with {host}:{port} failed: {error}")
            }
            SshError::HostKey(e) => e.fmt(f),
            SshError::Auth {
                username,
                method,
                error,
            } => write!(
                f,
                "SSH authentication as '{username}' by {method} failed ({error}); check the \
                 username and password/private_key host details"
            ),
            SshError::KeyFile { path, error } => {
                write!(
                    f,
                    "cannot read private_key file {}: {error}",
                    path.display()
                )
            }
            SshError::Session(e) => write!(f, "SSH session error: {e}"),
            SshError::Io(e) => write!(f, "SSH connection error: {e}"),
            SshError::Deadline(e) => e.fmt(f),
        }
    }
}

impl From<ConnectError> for SshError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Resolve { host, error } => SshError::Resolve { host, error },
            ConnectError::Connect { host, port, error } => SshError::Connect { host, port, error },
            ConnectError::Deadline(e) => SshError::Deadline(e),
            ConnectError::Io(e) => SshError::Io(e),
        }
    }
}

impl std::error::Error for SshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SshError::Deadline(e) => Some(e),
            SshError::HostKey(e) => Some(e),
            _ => None,
        }
    }
}

/// An SSH run's failure as the operator reads it: what went wrong, where (the address and
/// the details it came from), and, before the session was up, that this host is reached over
/// SSH and what to check on it.
#[derive(Debug)]
pub struct SshFailure {
    pub error: SshError,
    address: String,
    port: u16,
    origin: String,
}

impl SshFailure {
    fn new(target: &Target, error: SshError) -> SshFailure {
        SshFailure {
            error,
            address: target.address(),
            port: target.port,
            origin: target.origin.clone(),
        }
    }
}

impl std::fmt::Display for SshFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (error, address, origin) = (&self.error, &self.address, &self.origin);
        let via = format!("hyperv-ext connects to this host over SSH at {address}, from {origin}");
        match error {
            SshError::Resolve { .. } => write!(
                f,
                "{error}; {via}: set url to the host's DNS name or IP address"
            ),
            SshError::Connect { .. } => write!(
                f,
                "{error}; {via}: check that the host's OpenSSH server is running and that its \
                 firewall lets TCP port {} in (docs/hyperv-ext.md, 'Enabling the OpenSSH \
                 server')",
                self.port
            ),
            SshError::Handshake { .. } => write!(
                f,
                "{error}; {via}: is the host's OpenSSH server what listens there?"
            ),
            SshError::Deadline(_) => write!(f, "{error}; {via}"),
            _ => write!(f, "{error}; SSH to {address}, from {origin}"),
        }
    }
}

impl std::error::Error for SshFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The SSH transport: the connection settings are all it needs.
impl Transport for Target {
    fn name(&self) -> &'static str {
        "SSH"
    }

    fn host(&self) -> &str {
        &self.host
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn username(&self) -> &str {
        &self.username
    }

    fn run(&self, command: &CommandLine, deadline: &Deadline) -> Result<Output, TransportError> {
        self.run_with_progress(command, deadline, &mut Silent)
    }

    fn run_with_progress(
        &self,
        command: &CommandLine,
        deadline: &Deadline,
        progress: &mut dyn Progress,
    ) -> Result<Output, TransportError> {
        run_command(self, command.as_str(), deadline, progress)
            .map_err(|(sent, error)| TransportError::new(sent, SshFailure::new(self, error)))
    }
}

/// Opens one connection to `target`, runs `command` once, and closes the connection. An
/// error says whether `command` may have started ([`Sent`]).
fn run_command(
    target: &Target,
    command: &str,
    deadline: &Deadline,
    progress: &mut dyn Progress,
) -> Result<Output, (Sent, SshError)> {
    let started = Instant::now();
    let until = Instant::now() + deadline.remaining();
    let not_sent = |e| (Sent::No, e);
    let tcp = ext_sdk::tcp::connect(&target.host, target.port, CONNECT_TIMEOUT, deadline)
        .map_err(|e| not_sent(SshError::from(e)))?;
    if let Ok(peer) = tcp.peer_addr() {
        progress.step(Step::Connected { peer: Some(peer) });
    }
    let watchdog = tcp
        .try_clone()
        .and_then(|socket| Watchdog::arm(socket, until))
        .map_err(|e| not_sent(SshError::Io(e)))?;
    let result = session(target, command, tcp, deadline, progress);
    match result {
        // Any failure after the watchdog fired is the deadline's doing, whatever libssh2 says;
        // so is a libssh2 timeout, since every `set_timeout` is the time left. The two race:
        // libssh2 may give up a moment before the watchdog wakes.
        Err((sent, e)) if watchdog.fired() || e.is_libssh2_timeout() => Err((
            sent,
            SshError::Deadline(deadline.exceeded(&format!(
                "{} on {}:{}",
                e.stage(),
                target.host,
                target.port
            ))),
        )),
        other => {
            log::debug!(
                "ssh: {}:{} done in {} ms",
                target.host,
                target.port,
                started.elapsed().as_millis()
            );
            other
        }
    }
}

/// The SSH session on `tcp`: everything up to the channel is [`Sent::No`], `exec` and after
/// [`Sent::Maybe`].
fn session(
    target: &Target,
    command: &str,
    tcp: TcpStream,
    deadline: &Deadline,
    progress: &mut dyn Progress,
) -> Result<Output, (Sent, SshError)> {
    let poll_socket = tcp.try_clone().map_err(|e| (Sent::No, SshError::Io(e)))?;
    let (session, channel) = open(target, tcp, deadline, progress).map_err(|e| (Sent::No, e))?;
    exec(&session, channel, command, &poll_socket, deadline).map_err(|e| (Sent::Maybe, e))
}

/// Connects, verifies the host key, then authenticates, and opens a session channel.
fn open(
    target: &Target,
    tcp: TcpStream,
    deadline: &Deadline,
    progress: &mut dyn Progress,
) -> Result<(Session, Channel), SshError> {
    let mut session = Session::new().map_err(SshError::Session)?;
    session.set_tcp_stream(tcp);
    session.set_timeout(millis(deadline.remaining()));
    session.handshake().map_err(|error| SshError::Handshake {
        host: target.host.clone(),
        port: target.port,
        error,
    })?;
    let (fingerprint, trust) = hostkey::verify(
        &session,
        &target.host,
        target.port,
        &target.host_key,
        progress.may_record(),
    )
    .map_err(SshError::HostKey)?;
    log::debug!(
        "ssh: {}:{} host key {fingerprint} accepted",
        target.host,
        target.port
    );
    progress.step(Step::ServerTrusted {
        fingerprint: Some(fingerprint.to_string()),
        trust,
    });

    session.set_timeout(millis(deadline.remaining()));
    authenticate(&session, target)?;
    progress.step(Step::Authenticated {
        method: target.credential.method(),
    });
    // Long commands (a graceful stop may take minutes) pass through NAT and firewalls.
    session.set_keepalive(false, 30);

    let channel = session.channel_session().map_err(SshError::Session)?;
    Ok((session, channel))
}

/// Runs `command` on `channel` and drains its output until it closes.
fn exec(
    session: &Session,
    mut channel: Channel,
    command: &str,
    poll_socket: &TcpStream,
    deadline: &Deadline,
) -> Result<Output, SshError> {
    channel.exec(command).map_err(SshError::Session)?;
    channel.send_eof().map_err(SshError::Session)?;

    session.set_blocking(false);
    let mut out = Output::default();
    let mut stdout_done = false;
    let mut stderr_done = false;
    let mut buf = vec![0u8; 32 * 1024];
    let mut idle = Idle::default();
    while !(stdout_done && stderr_done) {
        let eof_before = channel.eof();
        let mut progressed = false;
        if !stdout_done {
            match channel.read(&mut buf) {
                Ok(0) => stdout_done = true,
                Ok(n) => {
                    progressed = true;
                    let room = MAX_STDOUT.saturating_sub(out.stdout.len());
                    out.stdout.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(SshError::Io(e)),
            }
        }
        if !stderr_done {
            match channel.stderr().read(&mut buf) {
                Ok(0) => stderr_done = true,
                Ok(n) => {
                    progressed = true;
                    let room = MAX_STDERR.saturating_sub(out.stderr.len());
                    out.stderr.extend_from_slice(&buf[..n.min(room)]);
                    out.stderr_dropped += n - n.min(room);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(SshError::Io(e)),
            }
        }
        if progressed || channel.eof() != eof_before {
            idle.reset();
        } else {
            idle.wait(session, poll_socket, deadline)?;
        }
    }
    idle.reset();
    loop {
        match channel.wait_close() {
            Ok(()) => break,
            Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN) => {
                idle.wait(session, poll_socket, deadline)?;
            }
            Err(e) => return Err(SshError::Session(e)),
        }
    }
    let signal = channel.exit_signal().ok().and_then(|s| s.exit_signal);
    out.exit = match signal {
        Some(sig) => Exit::Signal(sig),
        None => channel
            .exit_status()
            .map(Exit::Status)
            .unwrap_or(Exit::Unknown),
    };
    session.set_blocking(true);
    session.set_timeout(millis(deadline.bound(Duration::from_secs(2))));
    let _ = session.disconnect(None, "done", None);
    Ok(out)
}

fn authenticate(session: &Session, target: &Target) -> Result<(), SshError> {
    let user = target.username.as_str();
    let result = match &target.credential {
        Credential::Password(password) => session.userauth_password(user, password.expose()),
        Credential::Key { key, passphrase } => {
            let passphrase = passphrase.as_ref().map(Secret::expose);
            match key {
                PrivateKey::File(path) => {
                    // libssh2's own error for an unreadable file is vague; say which file.
                    std::fs::metadata(path).map_err(|error| SshError::KeyFile {
                        path: path.clone(),
                        error,
                    })?;
                    session.userauth_pubkey_file(user, None, path, passphrase)
                }
                PrivateKey::Inline(pem) => {
                    session.userauth_pubkey_memory(user, None, pem.expose(), passphrase)
                }
            }
        }
    };
    match result {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err(SshError::Auth {
            username: user.into(),
            method: target.credential.method(),
            error: ssh2::Error::from_errno(ssh2::ErrorCode::Session(
                LIBSSH2_ERROR_AUTHENTICATION_FAILED,
            )),
        }),
        Err(error) => Err(SshError::Auth {
            username: user.into(),
            method: target.credential.method(),
            error,
        }),
    }
}

/// Waiting for the server without stalling. libssh2 decodes one packet per call and keeps
/// the rest of what it received in its own buffer, so "would block" does not mean the socket
/// has nothing for us: a few calls in a row must make no progress before we sleep in poll(2).
#[derive(Default)]
struct Idle(u32);

impl Idle {
    fn reset(&mut self) {
        self.0 = 0;
    }

    fn wait(
        &mut self,
        session: &Session,
        socket: &TcpStream,
        deadline: &Deadline,
    ) -> Result<(), SshError> {
        self.0 += 1;
        if self.0 < 3 {
            return Ok(());
        }
        self.0 = 0;
        let _ = session.keepalive_send();
        wait_socket(session, socket, deadline)
    }
}

/// Waits until the socket is ready in the direction libssh2 is blocked on, at most until the
/// deadline and at most 250 ms (a bound on any stall the buffering above could still cause).
fn wait_socket(session: &Session, socket: &TcpStream, deadline: &Deadline) -> Result<(), SshError> {
    let remaining = deadline.remaining();
    if remaining.is_zero() {
        return Err(SshError::Deadline(
            deadline.exceeded("waiting for the remote PowerShell"),
        ));
    }
    let events = match session.block_directions() {
        BlockDirections::Inbound => libc::POLLIN,
        BlockDirections::Outbound => libc::POLLOUT,
        BlockDirections::Both | BlockDirections::None => libc::POLLIN | libc::POLLOUT,
    };
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    };
    // At most 250: always fits.
    let timeout = libc::c_int::try_from(remaining.min(Duration::from_millis(250)).as_millis())
        .unwrap_or(250)
        .max(1);
    #[expect(
        unsafe_code,
        reason = "std has no poll(2); libssh2 leaves the waiting to us"
    )]
    // SAFETY: one valid pollfd, borrowed for the duration of the call, for a socket we own.
    let rc = unsafe { libc::poll(&raw mut fd, 1, timeout) };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() != ErrorKind::Interrupted {
            return Err(SshError::Io(error));
        }
    }
    Ok(())
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            host: "hv1.example".into(),
            port: 22,
            origin: "url 'hv1.example' (host detail) and the default port".into(),
            username: "cloud".into(),
            credential: Credential::Password(Secret::new("pw")),
            host_key: HostKeyPolicy::Unset,
        }
    }

    fn text(error: SshError) -> String {
        SshFailure::new(&target(), error).to_string()
    }

    /// Item 4 of issue 10: every SSH failure names the address, the details it came from and
    /// the transport, in plain ASCII; before the session is up it says what to check.
    #[test]
    fn every_failure_names_the_address_its_details_and_ssh() {
        let io = || std::io::Error::from(ErrorKind::ConnectionRefused);
        let timeout =
            ext_sdk::Deadline::after(Duration::ZERO).exceeded("connecting to hv1.example:22");
        let ssh2_error = || ssh2::Error::from_errno(ssh2::ErrorCode::Session(-13));
        let cases = [
            (
                text(SshError::Resolve {
                    host: "hv1.example".into(),
                    error: "failed to lookup address information: Name or service not known".into(),
                }),
                "cannot resolve hv1.example: failed to lookup address information: Name or \
                 service not known; hyperv-ext connects to this host over SSH at hv1.example:22, \
                 from url 'hv1.example' (host detail) and the default port: set url to the \
                 host's DNS name or IP address",
            ),
            (
                text(SshError::Connect {
                    host: "hv1.example".into(),
                    port: 22,
                    error: io(),
                }),
                "cannot connect to hv1.example:22: connection refused; hyperv-ext connects to \
                 this host over SSH at hv1.example:22, from url 'hv1.example' (host detail) and \
                 the default port: check that the host's OpenSSH server is running and that \
                 its firewall lets TCP port 22 in (docs/hyperv-ext.md, 'Enabling the OpenSSH \
                 server')",
            ),
            (
                text(SshError::Deadline(timeout)),
                "deadline reached while connecting to hv1.example:22",
            ),
            (
                text(SshError::Handshake {
                    host: "hv1.example".into(),
                    port: 22,
                    error: ssh2_error(),
                }),
                "is the host's OpenSSH server what listens there?",
            ),
        ];
        for (message, expected) in &cases {
            assert!(message.contains(expected), "{message}\n  lacks: {expected}");
            assert!(
                message
                    .contains("over SSH at hv1.example:22, from url 'hv1.example' (host detail)"),
                "{message}"
            );
        }
        let later = [
            text(SshError::HostKey(HostKeyError::NotConfigured {
                actual: Fingerprint::parse("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik")
                    .unwrap(),
            })),
            text(SshError::Auth {
                username: "cloud".into(),
                method: "password",
                error: ssh2_error(),
            }),
            text(SshError::Session(ssh2_error())),
            text(SshError::Io(io())),
        ];
        for message in &later {
            assert!(
                message.ends_with(
                    "; SSH to hv1.example:22, from url 'hv1.example' (host detail) and the \
                     default port"
                ),
                "{message}"
            );
        }
        for message in cases.iter().map(|(m, _)| m).chain(&later) {
            assert!(message.is_ascii(), "{message}");
        }
        assert!(
            later[0].contains("set host_key_fingerprint=SHA256:rR6i"),
            "{}",
            later[0]
        );
    }
}
