//! The WinRM transport: the same `powershell.exe ... -EncodedCommand` line as over SSH, run
//! by the `winrm` crate in one WinRM shell (Create, Command, Receive until done, Signal,
//! Delete) over HTTPS with NTLM or Basic.

use ext_sdk::Deadline;
use hyperv_protocol::CommandLine;

use crate::transport::{Exit, Output, Progress, Sent, Step, Transport, TransportError, Trust};

/// A Hyper-V host reached over WinRM.
#[derive(Debug, Clone)]
pub struct WinrmTarget {
    pub config: winrm::Config,
    /// The transport was not chosen by a `transport` detail but because no SSH detail was
    /// set; said in connection errors, for operators who meant SSH.
    pub defaulted: bool,
    /// Whose certificates `config.tls` trusts, for `check` to say.
    pub trust: ext_tls::Trust,
    /// Where the address comes from (`url 'hv1' (host detail) and the default port`).
    pub origin: String,
}

/// A failed WinRM run as the operator reads it: what went wrong, where (the URL and the
/// details it came from), and what to set when the operator can fix it.
#[derive(Debug)]
pub struct WinrmFailure {
    pub error: winrm::Error,
    url: String,
    origin: String,
    hint: Option<&'static str>,
}

impl std::fmt::Display for WinrmFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (error, url, origin) = (&self.error, &self.url, &self.origin);
        if error.stage <= winrm::Stage::Tls {
            // Not connected, or not to a trusted server: say how this host is reached.
            write!(
                f,
                "{error}; hyperv-ext connects to this host over WinRM at {url}, from {origin}"
            )?;
        } else {
            write!(f, "{error}; WinRM to {url}, from {origin}")?;
        }
        if let Some(hint) = self.hint {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WinrmFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

fn hint(error: &winrm::Error, defaulted: bool) -> Option<&'static str> {
    use winrm::{ErrorKind, Stage};
    match (&error.kind, error.stage) {
        (ErrorKind::Tls(failure), _)
            if matches!(
                &failure.peer,
                Some(ext_tls::PeerCertificate {
                    refusal: Some(ext_tls::Refusal::NotPinned { .. }),
                    ..
                })
            ) =>
        {
            Some(
                "if the host's WinRM certificate was renewed, check the new fingerprint on the \
                 host (docs/hyperv-windows-checklist.md, step 6b) and update tls_fingerprint",
            )
        }
        (ErrorKind::Tls(_), _) => Some(
            "set ca_certificate (the CA's or the host's own certificate: a PEM file, or the PEM \
             itself) or tls_fingerprint (the fingerprint above, once checked on the host: \
             docs/hyperv-windows-checklist.md, step 6b), or verify_tls_certificate=false to \
             skip the check",
        ),
        (ErrorKind::Connect(_), _) | (ErrorKind::Deadline(_), Stage::Connect | Stage::Tls)
            if defaulted =>
        {
            Some(
                "WinRM was chosen because no SSH detail is set; set \
                 transport=ssh and host_key_fingerprint to use SSH",
            )
        }
        (ErrorKind::Connect(_), _) => Some(
            "is WinRM over HTTPS enabled on the host (winrm quickconfig -transport:https) and \
             port 5986 open?",
        ),
        _ => None,
    }
}

impl Transport for WinrmTarget {
    fn name(&self) -> &'static str {
        "WinRM"
    }

    fn host(&self) -> &str {
        &self.config.endpoint.host
    }

    fn port(&self) -> u16 {
        self.config.endpoint.port
    }

    fn username(&self) -> &str {
        &self.config.username
    }

    /// The WinRM client tells no steps as it goes: they are told afterwards, as far as the
    /// stage a failure stopped at shows they passed (without the peer's address), with the
    /// certificate the server presented and whose certificates trusted it.
    fn run_with_progress(
        &self,
        command: &CommandLine,
        deadline: &Deadline,
        progress: &mut dyn Progress,
    ) -> Result<Output, TransportError> {
        use winrm::Stage;
        let result = self.run(command, deadline);
        let stopped = result.as_ref().err().map(|e| {
            e.error()
                .downcast_ref::<WinrmFailure>()
                .map_or(Stage::Connect, |f| f.error.stage)
        });
        let passed = |stage: Stage| stopped.is_none_or(|at| at > stage);
        if passed(Stage::Connect) {
            progress.step(Step::Connected { peer: None });
        }
        if passed(Stage::Tls) {
            progress.step(Step::ServerTrusted {
                fingerprint: self.config.tls.peer().map(|p| p.fingerprint.to_string()),
                trust: match &self.trust {
                    ext_tls::Trust::Pinned(_) => Trust::Pinned,
                    ext_tls::Trust::Insecure => Trust::Unverified,
                    ext_tls::Trust::Ca(ca) => Trust::Issued {
                        by: format!("{ca} (ca_certificate)"),
                    },
                    ext_tls::Trust::System(_) => Trust::Issued {
                        by: "the system's trust store".into(),
                    },
                },
            });
        }
        if passed(Stage::Authenticate) {
            progress.step(Step::Authenticated {
                method: match self.config.auth {
                    winrm::Auth::Ntlm => "NTLM",
                    winrm::Auth::Basic => "Basic",
                },
            });
        }
        result
    }

    fn run(&self, command: &CommandLine, deadline: &Deadline) -> Result<Output, TransportError> {
        match winrm::run_command(&self.config, command.as_str(), deadline) {
            Ok(out) => {
                log::debug!(
                    "winrm: {} round trips over {} connection(s)",
                    out.round_trips,
                    out.connections
                );
                Ok(Output {
                    stdout: out.stdout,
                    stderr: out.stderr,
                    stderr_dropped: out.stderr_dropped,
                    exit: Exit::Status(out.exit_code),
                })
            }
            Err(error) => {
                let sent = if error.command_may_have_run() {
                    Sent::Maybe
                } else {
                    Sent::No
                };
                let hint = hint(&error, self.defaulted);
                Err(TransportError::new(
                    sent,
                    WinrmFailure {
                        error,
                        url: self.config.endpoint.url(),
                        origin: self.origin.clone(),
                        hint,
                    },
                ))
            }
        }
    }
}
