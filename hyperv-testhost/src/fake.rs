//! The fake `powershell.exe`: sshd's ForceCommand. It receives the client's command line in
//! `SSH_ORIGINAL_COMMAND`, exactly as Windows OpenSSH hands it to the DefaultShell, and
//! answers the way Windows PowerShell 5.1 does: login noise on stdout before the result line,
//! a CLIXML envelope on stderr, exit code 0 or 1.
//!
//! It refuses (and counts as `rejected`) anything but the exact flag set hyperv-ext must send
//! and a script text that is byte for byte one of hyperv-ext's constant scripts.

use std::fmt::Write as _;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyperv_protocol::{Script, decode_command};
use serde_json::Value;

use crate::control::Knobs;
use crate::hyperv::HyperV;
use crate::ops;
use crate::state::{Launch, StateFile};

/// Written independently of hyperv-ext's constant on purpose: a drift in what the client
/// sends must fail the tests, not silently move both sides.
const EXPECTED_FLAGS: &str = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -InputFormat None -EncodedCommand ";

/// What Windows OpenSSH prints before the command runs (MOTD), with decoy frames: the client
/// must take only the line framed with its own invocation id.
const MOTD: &str = "Microsoft Windows Server 2022 Datacenter (fake Hyper-V host for tests)\r\n\
    HVX1:{\"ok\":false,\"code\":\"MOTD_DECOY\"}\r\n\
    HVX1:00000000:{\"ok\":true,\"code\":\"MOTD_DECOY\"}\r\n\
    Authorized use only.\r\n";

const PROGRESS_CLIXML: &str = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj></Objs>";

pub struct Paths {
    pub state: PathBuf,
    pub control: PathBuf,
    pub fs_root: PathBuf,
    pub rejected_dir: PathBuf,
}

impl Paths {
    pub fn in_home(home: &Path) -> Paths {
        Paths {
            state: home.join("state.json"),
            control: home.join("control.json"),
            fs_root: home.join("fs"),
            rejected_dir: home.join("rejected"),
        }
    }
}

/// Runs one invocation; returns the process exit code.
pub fn main(home: &Path) -> i32 {
    let paths = Paths::in_home(home);
    let states = StateFile::new(&paths.state);
    let mut knobs = Knobs::load(&paths.control);
    let command = std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default();
    let _ = states.update(|s| s.invocations += 1);

    let (script, data) = match accept(&command) {
        Ok(found) => found,
        Err(why) => {
            let _ = std::fs::create_dir_all(&paths.rejected_dir);
            let _ = std::fs::write(
                paths
                    .rejected_dir
                    .join(format!("{}.txt", std::process::id())),
                &command,
            );
            let _ = states.update(|s| {
                s.rejected += 1;
                s.launches.push(Launch {
                    script: None,
                    outcome: format!("refused: {why}"),
                    ..Launch::default()
                });
            });
            // What powershell.exe would print for a command line it cannot run.
            let _ = std::io::stderr().write_all(
                clixml_error(&format!("refused by the fake PowerShell: {why}")).as_bytes(),
            );
            return 1;
        }
    };

    if !knobs.only_scripts.is_empty() && !knobs.only_scripts.iter().any(|s| s == script.name()) {
        knobs = Knobs::default();
    }

    if knobs.sleep_before_ms > 0
        && !sleep_unless_hung_up(Duration::from_millis(knobs.sleep_before_ms))
    {
        let _ = states.update(|s| {
            s.launches.push(Launch {
                script: Some(script.name().into()),
                outcome: "killed".into(),
                data: data.clone(),
                read_only: script.is_read_only(),
                changes: Vec::new(),
            });
        });
        return 137;
    }

    let hung_up = std::cell::Cell::new(false);
    let mut sleep = |d: Duration| {
        let alive = sleep_unless_hung_up(d);
        if !alive {
            hung_up.set(true);
        }
        alive
    };
    let killed = std::cell::Cell::new(false);
    let (answer, code) = match states.update(|state| {
        let before = state.clone();
        let files_before = script.is_read_only().then(|| files(&paths.fs_root));
        let mut hv = HyperV::new(state, &paths.fs_root, &knobs);
        let (answer, code) = ops::answer(ops::run(script, &data, &mut hv, &mut sleep));
        killed.set(hv.killed);
        let mut outcome = if code == 0 {
            "ok".to_owned()
        } else {
            answer["code"].as_str().unwrap_or("?").to_owned()
        };
        if hung_up.get() {
            // Killed mid-way (a long graceful stop): what came after the kill never happened.
            *state = before.clone();
            outcome = "killed".into();
        } else if killed.get() {
            // Died at `kill_at`: what ran before it stays done.
            outcome = "killed".into();
        }
        // A read-only script must leave the host as it found it: say so when it did not.
        let mut changes = Vec::new();
        if state.host_only() != before.host_only() {
            changes.push("the host's VMs, switches or ids changed".to_owned());
        }
        if let Some(files_before) = files_before {
            let files_after = files(&paths.fs_root);
            changes.extend(
                files_before
                    .symmetric_difference(&files_after)
                    .map(|f| format!("file changed: {f}")),
            );
        }
        let read_only = script.is_read_only();
        if !read_only {
            changes.clear();
        }
        state.launches.push(Launch {
            script: Some(script.name().into()),
            outcome,
            data: data.clone(),
            read_only,
            changes,
        });
        (answer, code)
    }) {
        Ok(done) => done,
        Err(e) => {
            let _ = std::io::stderr()
                .write_all(clixml_error(&format!("fake host state: {e}")).as_bytes());
            return 1;
        }
    };
    if hung_up.get() || killed.get() {
        return 137;
    }
    if knobs.sleep_after_ms > 0
        && !sleep_unless_hung_up(Duration::from_millis(knobs.sleep_after_ms))
    {
        return 137;
    }

    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(PROGRESS_CLIXML.as_bytes());
    if knobs.stderr_flood > 0 {
        let chunk = PROGRESS_CLIXML.as_bytes();
        let mut left = knobs.stderr_flood;
        while left > 0 {
            let n = left.min(chunk.len());
            if stderr.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n;
        }
    }
    if code != 0 {
        let message = answer["detail"].as_str().unwrap_or("failed");
        let _ = stderr.write_all(clixml_error(message).as_bytes());
    }
    let _ = stderr.flush();

    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(MOTD.as_bytes());
    if knobs.garbage {
        let _ =
            stdout.write_all(b"\x1b[?1h\x1b=garbage \xff\xfe not a result\r\n{\"ok\":true}\r\n");
        let _ = stdout.flush();
        return 1;
    }
    // `Emit` writes "HVX1:$($P.id):": the id the client put in the data.
    let id = data["id"].as_str().unwrap_or_default();
    let frame = format!("HVX1:{id}:{}\r\n", ascii_json(&answer));
    let _ = stdout.write_all(frame.as_bytes());
    let _ = stdout.flush();
    if knobs.kill_after_output {
        #[expect(
            unsafe_code,
            reason = "std cannot die from a signal; the knob imitates that"
        )]
        // SAFETY: raise(2) only takes a signal number.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    code
}

/// Every file and folder under `root` with what a write would change (size, modification
/// time, permissions), for telling whether a read-only script touched anything.
fn files(root: &Path) -> std::collections::BTreeSet<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path.clone());
            }
            out.insert(format!(
                "{} size {} mtime {}.{} mode {:o}",
                path.strip_prefix(root).unwrap_or(&path).display(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.mode()
            ));
        }
    }
    out
}

/// The exact flags, then base64 of UTF-16LE text that is one of hyperv-ext's scripts.
fn accept(command: &str) -> Result<(Script, Value), String> {
    let encoded = command.strip_prefix(EXPECTED_FLAGS).ok_or_else(|| {
        format!(
            "unexpected command line (want '{EXPECTED_FLAGS}<base64>'): {}",
            command.chars().take(200).collect::<String>()
        )
    })?;
    let text = decode_command(encoded)?;
    let (script, json) =
        Script::identify(&text).ok_or("the script is not one of hyperv-ext's constant scripts")?;
    let data: Value =
        serde_json::from_slice(&json).map_err(|e| format!("data blob is not JSON: {e}"))?;
    if !data.is_object() {
        return Err("data blob is not a JSON object".into());
    }
    Ok((script, data))
}

/// Sleeps `d`; `false` as soon as sshd closed our stdout (the client went away). Windows
/// kills the session's job object at that point, so nothing after it may happen.
fn sleep_unless_hung_up(d: Duration) -> bool {
    let end = Instant::now() + d;
    let fd = std::io::stdout().as_raw_fd();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        #[expect(unsafe_code, reason = "std has no poll(2) to notice a hang-up")]
        // SAFETY: one valid pollfd on our own stdout, borrowed for the call.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, 0) };
        if rc > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// JSON with every non-ASCII character as `\uXXXX`, as the scripts' `Emit` writes it.
pub fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// An error record as Windows PowerShell writes it to a redirected stderr.
fn clixml_error(message: &str) -> String {
    let mut escaped = String::new();
    for c in message.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '\r' => escaped.push_str("_x000D_"),
            '\n' => escaped.push_str("_x000A_"),
            c => escaped.push(c),
        }
    }
    format!(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">{escaped}_x000D__x000A_</S></Objs>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperv_protocol::call::STATUS;
    use hyperv_protocol::data::{NoFields, VmData};
    use hyperv_protocol::encode_command;

    fn vm1() -> VmData {
        VmData {
            name: "vm1".into(),
            uuid: "u1".into(),
            adopt: false,
            fields: NoFields {},
        }
    }

    #[test]
    fn accepts_exactly_what_hyperv_ext_sends() {
        let line = STATUS.command(&vm1(), "id1").unwrap();
        let (script, data) = accept(line.as_str()).unwrap();
        assert_eq!(script, Script::Status);
        assert_eq!((&data["name"], &data["id"]), (&"vm1".into(), &"id1".into()));
    }

    #[test]
    fn refuses_other_flags_and_foreign_scripts() {
        let text = Script::Status.render(&vm1(), "id1").unwrap();
        let encoded = encode_command(&text);
        assert!(
            accept(&format!(
                "powershell.exe -NoProfile -EncodedCommand {encoded}"
            ))
            .is_err()
        );
        assert!(accept(&format!("pwsh -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -InputFormat None -EncodedCommand {encoded}")).is_err());
        assert!(accept(&format!("{EXPECTED_FLAGS}{encoded} & calc.exe")).is_err());
        assert!(
            accept(&format!(
                "{EXPECTED_FLAGS}{}",
                encode_command("Get-VM | Stop-VM")
            ))
            .is_err()
        );
        let tampered = text.replace("Need-Rights;", "");
        assert!(accept(&format!("{EXPECTED_FLAGS}{}", encode_command(&tampered))).is_err());
    }

    /// The fake's check answer is what hyperv-ext reads (`HostFacts`), and each knob breaks
    /// its probe.
    #[test]
    fn the_check_answer_reads_as_host_facts() {
        use hyperv_protocol::reply::{Folder, HostFacts, Probed};
        let root = tempfile::tempdir().unwrap();
        let vhd = crate::winpath::WinPath::parse("C:\\VHD")
            .unwrap()
            .local(root.path());
        std::fs::create_dir_all(&vhd).unwrap();
        let mut state = crate::State {
            host_name: "HV-TEST".into(),
            switches: vec![crate::state::Switch {
                id: "s1".into(),
                name: "External".into(),
            }],
            ..crate::State::default()
        };
        let data = serde_json::json!({"vhd_path": "C:\\VHD", "vm_path": "C:\\Nope",
                                      "template": "C:\\t.vhdx", "id": "x"});
        let facts = |state: &mut crate::State, knobs: &Knobs| -> HostFacts {
            let mut hv = HyperV::new(state, root.path(), knobs);
            let (answer, code) =
                ops::answer(ops::run(Script::Check, &data, &mut hv, &mut |_| true));
            assert_eq!(code, 0, "{answer}");
            serde_json::from_value(answer).unwrap()
        };
        let healthy = facts(&mut state, &Knobs::default());
        assert_eq!(healthy.switches, Some(vec!["External".to_owned()]));
        assert_eq!(
            healthy.vm_path,
            Some(Folder {
                exists: false,
                acl: None
            })
        );
        assert_eq!((healthy.template, healthy.iso), (Some(false), None));
        let Some(Folder {
            acl: Some(Probed::Found(acl)),
            ..
        }) = healthy.vhd_path
        else {
            panic!("an ACL: {healthy:?}")
        };
        assert!(acl.missing_for_vms().is_empty());

        let no_rights = facts(
            &mut state,
            &Knobs {
                permission_denied: true,
                ..Knobs::default()
            },
        );
        assert!(matches!(no_rights.vmhost, Some(Probed::Failed { .. })));
        assert_eq!((no_rights.switches, no_rights.hyperv_admin), (None, false));
        let no_module = facts(
            &mut state,
            &Knobs {
                no_hyperv_module: true,
                ..Knobs::default()
            },
        );
        assert_eq!((no_module.module, no_module.vmhost), (None, None));
        let old = facts(
            &mut state,
            &Knobs {
                powershell_version: Some("4.0".into()),
                ..Knobs::default()
            },
        );
        assert_eq!(old.powershell, "4.0");
    }

    #[test]
    fn the_file_listing_sees_a_new_file_a_write_and_a_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("C/x.vhdx");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let before = files(root.path());
        std::fs::write(&file, b"disk").unwrap();
        let written = files(root.path());
        assert_ne!(written, before);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(files(root.path()), written);
    }

    #[test]
    fn ascii_json_escapes_like_the_scripts() {
        assert_eq!(
            ascii_json(&serde_json::json!("\u{e9}\u{1F600}")),
            "\"\\u00e9\\ud83d\\ude00\""
        );
    }
}
