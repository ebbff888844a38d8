//! The test host's WinRM endpoint, next to its sshd: `winrm/peer.py` (embedded here, run with
//! the project venv's Python, which has `pyspnego`) serves WS-Management over HTTPS on a free
//! loopback port with its own certificate and NTLM authentication, and runs the same fake
//! PowerShell as sshd's ForceCommand, as the same test user, with the command line in
//! `SSH_ORIGINAL_COMMAND`.
//!
//! What it did is in its counters file ([`Counters`]); its fault knobs ([`WinrmKnobs`]) are in
//! a control file of its own (the fake PowerShell's [`crate::Knobs`] apply too).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::handle::TestHost;

const PEER_PY: &str = include_str!("../winrm/peer.py");

/// The peer's part of the line `hyperv-testhost` prints (flattened into [`crate::Info`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinrmInfo {
    /// `https://<winrm_host>:5986/wsman`.
    pub winrm_url: String,
    /// A loopback address of this host's own (127.a.b.c): WinRM's port 5986 is free there,
    /// so an upstream-shaped `url` (a bare host) reaches it.
    pub winrm_host: String,
    pub winrm_port: u16,
    /// The NTLM account (also `HV-TEST\<user>`), the SSH test user's name and password.
    pub winrm_username: String,
    pub winrm_password: String,
    /// The server certificate (PEM); signed by `winrm_ca_certificate`.
    pub winrm_certificate: String,
    pub winrm_ca_certificate: String,
    /// A CA that signed nothing the peer presents: trusting only it must fail.
    pub winrm_other_ca_certificate: String,
    /// SHA-256 of the server certificate's DER, lowercase hex.
    pub winrm_certificate_sha256: String,
    /// [`WinrmKnobs`] file.
    pub winrm_control: String,
    /// [`Counters`] file.
    pub winrm_counters: String,
    /// The peer's own log (HTTP requests, authentication failures).
    pub winrm_log: String,
}

/// Fault knobs of the WinRM peer; absent file or field = normal behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WinrmKnobs {
    /// Accept (and offer) Basic authentication; Windows has it off by default.
    pub basic: bool,
    /// Answer this operation (`create`, `command`, `receive`, `signal`, `delete`) with a
    /// SOAP fault (HTTP 500).
    pub fault_at: Option<String>,
    /// The fault's WSManFault code and message (defaults: a generic internal error).
    pub fault_code: Option<u64>,
    pub fault_message: Option<String>,
    /// Answer this operation with HTTP 200 and a body that is not XML.
    pub garbage_at: Option<String>,
    /// Wait at most this long in a Receive before the `w:TimedOut` fault, whatever the
    /// request's OperationTimeout (so tests see the client poll again).
    pub max_operation_timeout_ms: Option<u64>,
    /// Expire an idle shell after at most this long, whatever IdleTimeOut its Create asked
    /// for (so tests see a shell go away without waiting a minute). A shell created without
    /// IdleTimeOut never expires.
    pub max_idle_timeout_ms: Option<u64>,
}

/// What the peer has done so far (its counters file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: u64,
    /// TLS handshakes that failed (the client refused the certificate): nothing else happened
    /// on those connections.
    pub tls_failures: u64,
    /// HTTP requests received (after a successful TLS handshake).
    pub requests: u64,
    /// Requests answered 401 because they carried no credentials.
    pub unauthenticated: u64,
    pub ntlm_negotiates: u64,
    pub ntlm_authenticated: u64,
    pub basic_authenticated: u64,
    pub auth_failures: u64,
    pub shells_created: u64,
    pub shells_deleted: u64,
    /// Shells the peer deleted itself after their IdleTimeOut without any request.
    pub shells_expired: u64,
    pub commands: u64,
    pub receives: u64,
    pub timed_out_receives: u64,
    pub signals: u64,
    pub faults: u64,
    pub garbage: u64,
    /// Shells created and neither deleted nor expired.
    pub open_shells: Vec<String>,
    /// Every operation in order: `{"op": "create" | "command" | "done" | "signal" | "delete" |
    /// "expired" | "receive_timed_out" | "authenticated" | "auth_failure" | "tls_failure" |
    /// "fault" | "garbage", "shell": ..., ...}` (a create also has `idle_timeout`, the
    /// IdleTimeOut it asked for, or null).
    pub events: Vec<serde_json::Value>,
}

impl Counters {
    pub fn load(path: &Path) -> Counters {
        crate::control::load_json(path)
    }

    /// The events of one kind (`op`).
    pub fn events_of(&self, op: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e["op"] == op).collect()
    }
}

impl WinrmKnobs {
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::control::save_json(self, path)
    }
}

/// The running peer; stopped with the test host.
pub struct WinrmPeer {
    child: Child,
}

impl WinrmPeer {
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Ends the peer and every fake PowerShell it started (its process group).
    pub fn stop(mut self) {
        crate::host::stop_group(&mut self.child);
    }
}

/// The Python that has `pyspnego`: `$HYPERV_TESTHOST_PYTHON`, else `$CSEXT_VENV/bin/python`,
/// else the repository's `.venv` (where `scripts/setup.sh` puts it).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HYPERV_TESTHOST_PYTHON") {
        return p.into();
    }
    let venv = std::env::var_os("CSEXT_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
        PathBuf::from,
    );
    venv.join("bin/python")
}

#[derive(Deserialize)]
struct Ready {
    address: String,
    port: u16,
    ca_certificate: String,
    other_ca_certificate: String,
    certificate: String,
    certificate_sha256: String,
    control: String,
    counters: String,
    log: String,
}

/// Starts the peer in `<dir>/winrm`, running `fake --home home` as `uid:gid` for each command.
pub fn start(
    dir: &Path,
    fake: &Path,
    home: &Path,
    (uid, gid): (u32, u32),
    user: &str,
    password: &str,
) -> Result<(WinrmPeer, WinrmInfo), String> {
    let python = python();
    if !python.exists() {
        return Err(format!(
            "{} is missing: the WinRM peer needs the project venv with pyspnego (run \
             scripts/setup.sh, or set CSEXT_VENV or HYPERV_TESTHOST_PYTHON)",
            python.display()
        ));
    }
    let work = dir.join("winrm");
    std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
    std::fs::set_permissions(&work, PermissionsExt::from_mode(0o700)).map_err(|e| e.to_string())?;
    let script = work.join("peer.py");
    std::fs::write(&script, PEER_PY).map_err(|e| e.to_string())?;
    let password_file = work.join("password");
    std::fs::write(&password_file, password).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&password_file, PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;

    let mut child = Command::new(&python)
        .arg(&script)
        .arg("--dir")
        .arg(&work)
        .arg("--fake")
        .arg(fake)
        .arg("--home")
        .arg(home)
        .args(["--user", user, "--password-file"])
        .arg(&password_file)
        .args(["--uid", &uid.to_string(), "--gid", &gid.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(work.join("peer.stderr")).map_err(|e| e.to_string())?,
        ))
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", python.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let fail = |mut child: Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(work.join("peer.stderr")).unwrap_or_default();
        Err(format!(
            "the WinRM peer did not start: {why}: {}",
            stderr.trim()
        ))
    };
    let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
        return fail(child, "no line within 30 s".into());
    };
    let ready: Ready = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => return fail(child, format!("{e}: {line:?}")),
    };
    let info = WinrmInfo {
        winrm_url: format!("https://{}:{}/wsman", ready.address, ready.port),
        winrm_host: ready.address,
        winrm_port: ready.port,
        winrm_username: user.into(),
        winrm_password: password.into(),
        winrm_certificate: ready.certificate,
        winrm_ca_certificate: ready.ca_certificate,
        winrm_other_ca_certificate: ready.other_ca_certificate,
        winrm_certificate_sha256: ready.certificate_sha256,
        winrm_control: ready.control,
        winrm_counters: ready.counters,
        winrm_log: ready.log,
    };
    Ok((WinrmPeer { child }, info))
}

impl TestHost {
    /// What the WinRM peer has done so far.
    pub fn winrm_counters(&self) -> Counters {
        Counters::load(Path::new(&self.info.winrm.winrm_counters))
    }

    /// The counters once `ready` holds of them (polled for up to 10 s; then as they are), for
    /// what the peer records after the client has gone (a TLS handshake the client refused).
    pub fn winrm_counters_when(&self, ready: impl Fn(&Counters) -> bool) -> Counters {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let counters = self.winrm_counters();
            if ready(&counters) || Instant::now() > end {
                return counters;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sets the WinRM peer's fault knobs (all of them).
    pub fn winrm_knobs(&self, knobs: &WinrmKnobs) {
        knobs
            .save(Path::new(&self.info.winrm.winrm_control))
            .expect("write the WinRM control file");
    }

    pub fn winrm_log(&self) -> String {
        std::fs::read_to_string(&self.info.winrm.winrm_log).unwrap_or_default()
    }
}
