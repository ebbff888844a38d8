//! A blocking WinRM client that runs one command on a Windows host: WS-Management's Windows
//! Remote Shell ([MS-WSMV]) over HTTPS, with NTLM (v2, MIC and TLS channel binding, through
//! `sspi`) or Basic authentication.
//!
//! [`run_command`] does exactly one shell and one command: Create shell, Command, Receive
//! until done, Signal terminate, Delete shell. The shell is deleted even when something
//! failed after it was created. Every wait is bounded by the [`ext_sdk::Deadline`]: connect,
//! each HTTP round trip, and the output polling (each Receive asks the service to answer
//! before the deadline). The TLS handshake and certificate check complete before the first
//! byte of HTTP, so no credential reaches an unverified server. The trust decision is the
//! caller's: it hands in an [`ext_tls::ClientTls`] (system store, CA certificate, pinned
//! fingerprint, or none), whose record of what the server presented makes the error of a
//! refused certificate name the fingerprint to pin.
//!
//! Plain HTTP (5985) is refused: without NTLM sealing, which this client does not do, the
//! commands and their output would travel in clear.
//!
//! ```no_run
//! # use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = winrm::Config::new(
//!     winrm::Endpoint::parse("hv1.example.org")?, // https://hv1.example.org:5986/wsman
//!     winrm::Auth::Ntlm,
//!     "HV1\\cloudstack",
//!     ext_sdk::Secret::new("password"),
//!     ext_tls::ClientTls::new(&ext_tls::Trust::Ca(ext_tls::CaCertificate::File(
//!         "/etc/cloudstack/hv1-ca.pem".into(),
//!     )))?,
//! );
//! let deadline = ext_sdk::Deadline::after(Duration::from_secs(60));
//! let out = winrm::run_command(&config, "hostname", &deadline)?;
//! println!("{} (exit {})", String::from_utf8_lossy(&out.stdout), out.exit_code);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod endpoint;
mod error;
mod http;
mod ntlm;
mod shell;
mod soap;
mod transport;

use std::time::Duration;

use ext_sdk::Secret;
use ext_tls::ClientTls;

pub use endpoint::{Endpoint, EndpointError, Scheme};
pub use error::{Error, ErrorKind, Fault, Stage, TlsFailure};
pub use shell::{Output, run_command};

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// NTLM, WinRM's default for local and domain accounts without Kerberos (what upstream's
    /// `hyperv.py` uses).
    Ntlm,
    /// Basic: the password itself in every request (HTTPS only; local accounts only, and off
    /// by default on Windows).
    Basic,
}

/// Where, as whom, and how long each step may take.
#[derive(Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub auth: Auth,
    /// `user`, `DOMAIN\user` or `user@domain`.
    pub username: String,
    pub password: Secret,
    /// Decides which server certificates are trusted, and records what the server presented.
    pub tls: ClientTls,
    /// Start the command without `cmd.exe /c` (`WINRS_SKIP_CMD_SHELL`): its 8191-character
    /// limit no longer applies, CreateProcess's 32767 does. Default off (as pywinrm).
    pub skip_cmd_shell: bool,
    /// How long one Receive may wait for output before the service answers "no output yet"
    /// (OperationTimeout); default 20 s (as pywinrm). Shortened to fit the deadline.
    pub operation_timeout: Duration,
    /// How long any other round trip may take; default 30 s.
    pub request_timeout: Duration,
    /// How long a TCP connect to one address may take; default 15 s.
    pub connect_timeout: Duration,
}

impl Config {
    pub fn new(
        endpoint: Endpoint,
        auth: Auth,
        username: impl Into<String>,
        password: Secret,
        tls: ClientTls,
    ) -> Config {
        Config {
            endpoint,
            auth,
            username: username.into(),
            password,
            tls,
            skip_cmd_shell: false,
            operation_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}
