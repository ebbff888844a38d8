//! Setting up and running the test host: a dedicated OpenSSH `sshd` on a free loopback port,
//! with its own host key, a test user that has a password and an authorized key, and the
//! fake PowerShell as `ForceCommand`. Needs root (it creates the user and runs sshd the way a
//! real server does); CI runs as root.

use std::fs::File;
use std::io::{Read, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::state::{State, StateFile, Switch};
use crate::winpath::WinPath;

pub const SSHD: &str = "/usr/sbin/sshd";
pub const USER: &str = "hvtest";
/// Where the test user's password is kept between runs (root only).
const PASSWORD_DIR: &str = "/var/lib/hyperv-testhost";

pub const SWITCH: &str = "External vSwitch";
pub const VHD_PATH: &str = "C:\\Hyper-V\\Virtual Hard Disks";
pub const VM_PATH: &str = "C:\\Hyper-V\\Virtual Machines";
pub const TEMPLATE_PATH: &str = "C:\\Templates\\ubuntu-22.04.vhdx";
pub const ISO_PATH: &str = "C:\\ISO\\ubuntu-22.04-live-server-amd64.iso";

/// The line `hyperv-testhost` prints once the host accepts connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// Path of an OpenSSH-format ed25519 private key authorized for `username`.
    pub private_key: String,
    pub host_key_fingerprint: String,
    /// The state file (JSON, see [`crate::state::State`]).
    pub state: String,
    pub switch: String,
    pub vhd_path: String,
    pub vm_path: String,
    pub template_path: String,
    pub iso_path: String,
    /// The fault-knob file (see [`crate::control::Knobs`]).
    pub control: String,
    /// sshd's own log (LogLevel DEBUG1: connections and every authentication request).
    pub sshd_log: String,
    /// Where `C:\...` lives on this machine (`<fs_root>/C/...`).
    pub fs_root: String,
    /// The WinRM endpoint beside sshd (`winrm_url`, ...).
    #[serde(flatten)]
    pub winrm: crate::winrm::WinrmInfo,
}

/// A started host: sshd is running until [`Running::stop`].
pub struct Running {
    pub info: Info,
    sshd: Child,
    winrm: crate::winrm::WinrmPeer,
}

impl Running {
    pub fn sshd_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.sshd.try_wait().ok().flatten()
    }

    /// Stops sshd and every session it started (its process group), and the WinRM peer.
    pub fn stop(mut self) {
        self.winrm.stop();
        stop_group(&mut self.sshd);
    }
}

/// Ends the process group `child` leads (it was spawned with `process_group(0)`): SIGTERM,
/// up to 3 s for the leader to exit, then SIGKILL for anything of the group still there.
pub(crate) fn stop_group(child: &mut Child) {
    // A pid always fits pid_t (Linux caps it far below i32::MAX).
    let pgid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    signal_group(pgid, libc::SIGTERM);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // ESRCH when the whole group is gone already.
    signal_group(pgid, libc::SIGKILL);
    let _ = child.wait();
}

/// Signals the process group `pgid` (one we spawned as the leader of a new group).
fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    #[expect(
        unsafe_code,
        reason = "std signals single processes only, and only with SIGKILL"
    )]
    // SAFETY: kill(2) only takes a pid and a signal number; the leader is our unreaped child
    // and leads its own group, so the group id cannot name anyone else's processes.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    #[expect(unsafe_code, reason = "std has no geteuid")]
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts a host in `dir` (created if needed), with `fake_powershell` as the ForceCommand.
pub fn start(dir: &Path, fake_powershell: &Path) -> Result<Running, String> {
    if !Path::new(SSHD).is_file() {
        return Err(format!(
            "{SSHD} is missing: install openssh-server (scripts/setup.sh does)"
        ));
    }
    if !is_root() {
        return Err("hyperv-testhost needs root: it creates the test user and runs sshd".into());
    }
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
    let password = ensure_user()?;
    let (uid, gid) = ids(USER)?;

    let dir = std::path::absolute(dir).map_err(|e| e.to_string())?;
    let ssh = dir.join("ssh");
    let bin = dir.join("bin");
    let home = dir.join("hv");
    for d in [&dir, &ssh, &bin, &home] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        // The test user must reach authorized_keys, the fake and its state.
        std::fs::set_permissions(d, PermissionsExt::from_mode(0o755)).map_err(|e| e.to_string())?;
    }

    let host_key = ssh.join("host_ed25519");
    let client_key = ssh.join("client_ed25519");
    for (key, comment) in [
        (&host_key, "hyperv-testhost host key"),
        (&client_key, "hyperv-testhost client key"),
    ] {
        if !key.exists() {
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    comment,
                    "-f",
                    &key.to_string_lossy(),
                ],
            )?;
        }
    }
    let authorized = ssh.join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&authorized, PermissionsExt::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    let fingerprint = run(
        "ssh-keygen",
        &[
            "-l",
            "-E",
            "sha256",
            "-f",
            &host_key.with_extension("pub").to_string_lossy(),
        ],
    )?
    .split_whitespace()
    .nth(1)
    .map(str::to_owned)
    .ok_or("cannot read the host key fingerprint")?;

    // A copy the test user can execute wherever the build tree is.
    let fake = bin.join("powershell");
    std::fs::copy(fake_powershell, &fake)
        .map_err(|e| format!("copy {}: {e}", fake_powershell.display()))?;
    std::fs::set_permissions(&fake, PermissionsExt::from_mode(0o755)).map_err(|e| e.to_string())?;

    let paths = crate::fake::Paths::in_home(&home);
    seed(&paths.state, &paths.fs_root)?;
    for f in [paths.state.clone(), paths.state.with_extension("lock")] {
        File::options()
            .create(true)
            .append(true)
            .open(&f)
            .map_err(|e| e.to_string())?;
    }
    chown_tree(&home, uid, gid)?;

    let log = ssh.join("sshd.log");
    let (winrm, winrm_info) = crate::winrm::start(&dir, &fake, &home, (uid, gid), USER, &password)?;
    let (sshd, port) = match spawn_sshd(&ssh, &host_key, &authorized, &fake, &home, &log) {
        Ok(started) => started,
        Err(e) => {
            winrm.stop();
            return Err(e);
        }
    };
    Ok(Running {
        info: Info {
            host: "127.0.0.1".into(),
            port,
            username: USER.into(),
            password,
            private_key: client_key.to_string_lossy().into_owned(),
            host_key_fingerprint: fingerprint,
            state: paths.state.to_string_lossy().into_owned(),
            switch: SWITCH.into(),
            vhd_path: VHD_PATH.into(),
            vm_path: VM_PATH.into(),
            template_path: TEMPLATE_PATH.into(),
            iso_path: ISO_PATH.into(),
            control: paths.control.to_string_lossy().into_owned(),
            sshd_log: log.to_string_lossy().into_owned(),
            fs_root: paths.fs_root.to_string_lossy().into_owned(),
            winrm: winrm_info,
        },
        sshd,
        winrm,
    })
}

/// Creates the test user when missing; its password is generated once and kept root-only,
/// so parallel hosts agree on it.
fn ensure_user() -> Result<String, String> {
    std::fs::create_dir_all(PASSWORD_DIR).map_err(|e| format!("mkdir {PASSWORD_DIR}: {e}"))?;
    std::fs::set_permissions(PASSWORD_DIR, PermissionsExt::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let lock = File::options()
        .create(true)
        .append(true)
        .open(Path::new(PASSWORD_DIR).join("lock"))
        .map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    let password_file = Path::new(PASSWORD_DIR).join(format!("{USER}.password"));
    let exists = run("id", &["-u", USER]).is_ok();
    if !exists {
        run(
            "useradd",
            &[
                "--create-home",
                "--shell",
                "/bin/sh",
                "--comment",
                "hyperv-testhost",
                USER,
            ],
        )?;
    }
    if exists && let Ok(saved) = std::fs::read_to_string(&password_file) {
        return Ok(saved.trim().to_owned());
    }
    let mut random = [0u8; 18];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| e.to_string())?;
    let password = format!("Hv-{}", STANDARD.encode(random));
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("chpasswd: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("chpasswd stdin")?
        .write_all(format!("{USER}:{password}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("chpasswd failed".into());
    }
    std::fs::write(&password_file, &password).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&password_file, PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok(password)
}

fn ids(user: &str) -> Result<(u32, u32), String> {
    let num = |flag| -> Result<u32, String> {
        run("id", &[flag, user])?
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    Ok((num("-u")?, num("-g")?))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| e.to_string())? {
            chown_tree(&entry.map_err(|e| e.to_string())?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// A fresh host: one switch, the storage folders, a template VHDX and an ISO.
fn seed(state_path: &Path, fs_root: &Path) -> Result<(), String> {
    let states = StateFile::new(state_path);
    if state_path.exists() && states.read().is_ok_and(|s| !s.switches.is_empty()) {
        return Ok(());
    }
    for dir in [VHD_PATH, VM_PATH] {
        let local = WinPath::parse(dir)?.local(fs_root);
        std::fs::create_dir_all(&local).map_err(|e| format!("mkdir {}: {e}", local.display()))?;
    }
    for (file, content) in [
        (
            TEMPLATE_PATH,
            b"vhdx\0fake template disk: ubuntu 22.04\n".as_slice(),
        ),
        (ISO_PATH, b"CD001 fake installer image\n".as_slice()),
    ] {
        let local = WinPath::parse(file)?.local(fs_root);
        std::fs::create_dir_all(local.parent().expect("has parent")).map_err(|e| e.to_string())?;
        std::fs::write(&local, content).map_err(|e| e.to_string())?;
    }
    let mut state = State {
        host_name: "HV-TEST".into(),
        ..State::default()
    };
    let id = state.new_id();
    state.switches.push(Switch {
        id,
        name: SWITCH.into(),
    });
    states.update(|s| *s = state).map_err(|e| e.to_string())
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

fn spawn_sshd(
    ssh: &Path,
    host_key: &Path,
    authorized: &Path,
    fake: &Path,
    home: &Path,
    log: &Path,
) -> Result<(Child, u16), String> {
    let mut last_error = String::new();
    for _ in 0..8 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = ssh.join("sshd_config");
        let text = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host_key}\n\
             PidFile none\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication yes\n\
             PubkeyAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin no\n\
             AllowUsers {USER}\n\
             PermitTTY no\n\
             X11Forwarding no\n\
             AllowTcpForwarding no\n\
             AllowAgentForwarding no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             UseDNS no\n\
             MaxStartups 100\n\
             LogLevel DEBUG1\n\
             ForceCommand {fake} --home {home}\n",
            host_key = host_key.display(),
            authorized = authorized.display(),
            fake = sh_quote(fake),
            home = sh_quote(home),
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(log);
        let mut child = Command::new(SSHD)
            .args(["-D", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawn {SSHD}: {e}"))?;
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(&format!("Server listening on 127.0.0.1 port {port}")) {
                return Ok((child, port));
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("sshd exited ({status}): {}", text.trim());
                break;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                last_error = format!("sshd did not start listening within 10 s: {}", text.trim());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(last_error)
}
