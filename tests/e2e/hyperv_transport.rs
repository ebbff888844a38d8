//! The SSH side, through the release binary and a real sshd: both authentication methods,
//! host-key verification before any credential, deadlines, and Windows' output quirks.

use std::time::{Duration, Instant};

use e2e::hyperv::{Cost, Hv, UUID, VM};
use hyperv_testhost::Knobs;
use serde_json::{Value, json};

/// `userauth-request` lines sshd logged (LogLevel DEBUG1): any authentication attempt.
fn auth_requests(log: &str) -> usize {
    log.matches("userauth-request for user").count()
}

fn created(hv: &Hv) -> Value {
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    p
}

#[test]
fn key_auth_from_a_file_and_inline() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let key_path = hv.host.info.private_key.clone();
    let by_file = hv.with_host(&p, |h| {
        h.as_object_mut().unwrap().remove("password");
        h["private_key"] = json!(key_path);
    });
    let (run, cost) = hv.run_counted("create", &by_file);
    run.success();
    assert_eq!(cost, Cost::ONE);

    let pem = std::fs::read_to_string(&hv.host.info.private_key).unwrap();
    // As pasted into a one-line field: literal \n sequences.
    for key in [pem.clone(), pem.trim_end().replace('\n', "\\n")] {
        let inline = hv.with_host(&p, |h| {
            h.as_object_mut().unwrap().remove("password");
            h["private_key"] = json!(key);
        });
        assert_eq!(
            hv.run("status", &inline).success()["power_state"],
            "poweron"
        );
    }
    let log = hv.host.sshd_log();
    assert_eq!(
        log.matches("Accepted publickey for hvtest").count(),
        3,
        "{log}"
    );
    assert!(!log.contains("Accepted password"));
    // The key never reaches our log.
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    assert!(
        !hv.scratch.log().contains(&body),
        "private key material in the log"
    );
}

#[test]
fn password_auth_and_a_wrong_password() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    assert!(hv.host.sshd_log().contains("Accepted password for hvtest"));

    let wrong = hv.with_host(&p, |h| h["password"] = json!("not-the-password"));
    let (run, cost) = hv.run_counted("status", &wrong);
    let err = run.failure(1);
    assert!(
        err.contains("authentication as 'hvtest' by password failed"),
        "{err}"
    );
    assert_eq!(cost, Cost::CONNECTED_ONLY);
    assert!(
        !hv.scratch.log().contains("not-the-password"),
        "the password is redacted"
    );
}

#[test]
fn a_wrong_host_key_is_refused_before_any_credential_is_sent() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let real = hv.host.info.host_key_fingerprint.clone();
    let wrong_fp = hv.with_host(&p, |h| {
        h["host_key_fingerprint"] = json!("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik");
    });
    let before = hv.host.sshd_log();
    let (run, cost) = hv.run_counted("delete", &wrong_fp);
    let err = run.failure(1);
    assert!(
        err.contains("host key mismatch") && err.contains(&real),
        "{err}"
    );
    assert_eq!(cost, Cost::CONNECTED_ONLY);
    let after = hv.host.sshd_log();
    let this_connection = &after[before.len()..];
    assert!(
        this_connection.contains("Connection from 127.0.0.1"),
        "{this_connection}"
    );
    assert_eq!(
        auth_requests(this_connection),
        0,
        "no authentication attempt at all: {this_connection}"
    );
    assert!(!this_connection.contains("password"), "{this_connection}");

    // A known_hosts file with another key for this host: refused the same way.
    let other = hv.scratch.path().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let port = hv.host.info.port;
    let known = hv.scratch.write(
        "known_hosts",
        format!("[127.0.0.1]:{port} {other_pub}").as_bytes(),
    );
    let by_known = hv.with_host(&p, |h| {
        h.as_object_mut().unwrap().remove("host_key_fingerprint");
        h["known_hosts"] = json!(known);
    });
    let before = hv.host.sshd_log();
    let err = hv.run("status", &by_known).failure(1);
    assert!(
        err.contains("host key mismatch") && err.contains("known_hosts"),
        "{err}"
    );
    assert_eq!(auth_requests(&hv.host.sshd_log()[before.len()..]), 0);
    // Even with accept-new: a changed key is never accepted.
    let accept_new = hv.with_host(&by_known, |h| h["host_key_check"] = json!("accept-new"));
    assert!(
        hv.run("status", &accept_new)
            .failure(1)
            .contains("host key mismatch")
    );
    assert_eq!(hv.state().invocations, 0, "PowerShell never ran");
}

#[test]
fn known_hosts_and_trust_on_first_use() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let known = hv.scratch.path().join("tofu").join("known_hosts");
    let unknown = hv.with_host(&p, |h| {
        h.as_object_mut().unwrap().remove("host_key_fingerprint");
        h["known_hosts"] = json!(known);
    });
    // Strict by default: an unknown host is refused, nothing is recorded.
    let err = hv.run("status", &unknown).failure(1);
    assert!(
        err.contains("is not in") && err.contains("accept-new"),
        "{err}"
    );
    assert!(!known.exists());

    let tofu = hv.with_host(&unknown, |h| h["host_key_check"] = json!("accept-new"));
    assert_eq!(hv.run("status", &tofu).success()["power_state"], "poweroff");
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", hv.host.info.port)),
        "{recorded}"
    );
    // Now known: strict checking accepts it.
    assert_eq!(
        hv.run("status", &unknown).success()["power_state"],
        "poweroff"
    );

    // No way to authenticate the server at all: refused before connecting.
    let none = hv.with_host(&p, |h| {
        h.as_object_mut().unwrap().remove("host_key_fingerprint");
    });
    let (run, cost) = hv.run_counted("status", &none);
    let err = run.failure(1);
    assert!(
        err.contains("host_key_fingerprint") && err.contains("accept-new"),
        "{err}"
    );
    assert_eq!(cost, Cost::NONE);

    // host_key_check=off connects without verification (an explicit operator choice).
    let off = hv.with_host(&none, |h| h["host_key_check"] = json!("off"));
    assert_eq!(hv.run("status", &off).success()["power_state"], "poweroff");
    assert!(hv.scratch.log().contains("host key NOT verified"));
}

#[test]
fn a_command_past_the_deadline_is_answered_in_time_and_never_runs() {
    let hv = Hv::start();
    let p = created(&hv);
    hv.host.knobs(&Knobs {
        sleep_before_ms: 30_000,
        ..Knobs::default()
    });
    let before = hv.state();
    let run = hv.run_with_timeout("stop", &p, "4");
    let err = run.failure_within(1, Duration::from_secs(4));
    assert!(err.contains("deadline reached"), "{err}");
    // The session closed, so Windows would kill the job: the stop never happened. The fake
    // notices the hang-up within ~20 ms; allow a loaded machine far longer to record it.
    let killed = |s: &hyperv_testhost::State| {
        s.launches.last().map(|l| l.outcome.as_str()) == Some("killed")
    };
    let waiting = Instant::now();
    let mut after = hv.state();
    while !killed(&after) && waiting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        after = hv.state();
    }
    assert!(killed(&after), "{:#?}", after.launches);
    assert_eq!(after.vms, before.vms, "nothing changed");
}

#[test]
fn a_create_cut_off_by_the_deadline_is_cleaned_up() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    // The create completes on the host, but its answer comes too late.
    hv.host.knobs(&Knobs {
        sleep_after_ms: 30_000,
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let run = hv.run_with_timeout("create", &p, "5");
    let err = run.failure_within(1, Duration::from_secs(5));
    assert!(
        err.contains("deadline reached") && err.contains("cleaned up: VM removed: true"),
        "{err}"
    );
    let state = hv.state();
    assert!(state.vms.is_empty(), "{:#?}", state.vms);
    assert!(!hv.exists(&e2e::hyperv::disk_of(&hv, VM)));
    let scripts: Vec<_> = state
        .launches
        .iter()
        .map(|l| (l.script.clone().unwrap(), l.outcome.clone()))
        .collect();
    assert_eq!(
        scripts,
        vec![
            ("create".into(), "ok".into()),
            ("cleanup-create".into(), "ok".into())
        ]
    );
}

#[test]
fn garbage_or_no_exit_status_or_a_stderr_flood() {
    let hv = Hv::start();
    let p = created(&hv);

    hv.host.knobs(&Knobs {
        garbage: true,
        ..Knobs::default()
    });
    let (run, cost) = hv.run_counted("status", &p);
    let err = run.failure(1);
    assert!(
        err.contains("printed no result line") && err.contains("exit status 1"),
        "{err}"
    );
    assert_eq!(cost, Cost::ONE);

    // The answer was complete when PowerShell died: it counts, the exit status does not.
    hv.host.knobs(&Knobs {
        kill_after_output: true,
        ..Knobs::default()
    });
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweron");

    // 4 MiB of CLIXML on stderr must not stall the channel.
    hv.host.knobs(&Knobs {
        stderr_flood: 4 << 20,
        ..Knobs::default()
    });
    let run = hv.run("status", &p);
    assert_eq!(run.success()["power_state"], "poweron");
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn without_hyper_v_rights_nothing_is_reported_gone() {
    let hv = Hv::start();
    let p = created(&hv);
    hv.host.knobs(&Knobs {
        permission_denied: true,
        ..Knobs::default()
    });
    let before = hv.state().vms;
    for action in ["delete", "stop", "status", "statuses", "start"] {
        let err = hv.run(action, &p).failure(1);
        assert!(err.contains("has no Hyper-V rights"), "{action}: {err}");
    }
    assert_eq!(
        hv.state().vms,
        before,
        "a permission problem never becomes a false 'deleted'"
    );
}

#[test]
fn getconsole_is_a_clear_error_without_a_connection() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let (run, cost) = hv.run_counted("getconsole", &p);
    assert!(run.failure(1).contains("not supported on Hyper-V"));
    assert_eq!(cost, Cost::NONE);
    let (run, cost) = hv.run_counted("MigrateVM", &p);
    assert!(run.failure(1).contains("unknown action 'MigrateVM'"));
    assert_eq!(cost, Cost::NONE);
}

#[test]
fn a_server_that_never_answers_is_bounded_by_the_deadline() {
    let hv = Hv::start();
    // Accepts TCP, never speaks SSH: the handshake would block forever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let p = hv.with_host(&hv.payload(VM, UUID), |h| {
        h["port"] = json!(port.to_string());
    });
    let run = hv.run_with_timeout("status", &p, "3");
    let err = run.failure_within(1, Duration::from_secs(3));
    // Whether libssh2's own timeout or our socket watchdog ends the handshake (they race),
    // the operator reads the same thing: the deadline, and where it was spent.
    assert!(
        err.contains(&format!(
            "deadline reached while in the SSH handshake on 127.0.0.1:{port}"
        )),
        "{err}"
    );
    // Issue 10 item 4: the address, the details it came from, and the transport.
    assert!(
        err.ends_with(&format!(
            "; hyperv-ext connects to this host over SSH at 127.0.0.1:{port}, from url \
             '127.0.0.1' (host detail) and port '{port}' (host detail)"
        )),
        "{err}"
    );
    drop(keep);
}

#[test]
fn a_create_that_never_reached_powershell_is_not_cleaned_up() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let hv = Hv::start();
    // Accepts TCP, never speaks SSH, and counts the connections.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let port = silent.local_addr().unwrap().port();
    let (stop, accepted) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (stopping, counting) = (Arc::clone(&stop), Arc::clone(&accepted));
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        loop {
            // After `stop`, one last pass takes what is still queued.
            let last = stopping.load(Ordering::SeqCst);
            while let Ok((stream, _)) = silent.accept() {
                counting.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
            if last {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let p = hv.with_host(&hv.payload(VM, UUID), |h| {
        h["port"] = json!(port.to_string());
    });
    let run = hv.run_with_timeout("create", &p, "3");
    let err = run.failure_within(1, Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    // Nothing was sent, so nothing can be left over: no cleanup connection.
    assert!(
        err.contains("deadline reached while in the SSH handshake") && !err.contains("clean"),
        "{err}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Runs `command` on the test host with the OpenSSH client, key auth, as a person would.
fn openssh(i: &hyperv_testhost::Info, command: &str) -> std::process::Output {
    std::process::Command::new("ssh")
        .args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-i", &i.private_key])
        .args([
            "-p",
            &i.port.to_string(),
            &format!("{}@{}", i.username, i.host),
        ])
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the OpenSSH client")
}

#[test]
fn the_fake_refuses_anything_but_our_scripts() {
    use base64::Engine as _;
    let hv = Hv::start();
    let i = &hv.host.info;
    let encode = |script: &str| {
        let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
        base64::engine::general_purpose::STANDARD.encode(utf16)
    };
    let flags = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -InputFormat None -EncodedCommand";
    let real = hyperv_protocol::Script::Statuses
        .render(&json!({}), "x")
        .unwrap();
    for command in [
        format!(
            "{flags} {}",
            encode("Hyper-V\\Get-VM | Hyper-V\\Remove-VM -Force")
        ),
        format!(
            "{flags} {}",
            encode(&real.replace("Need-Rights", "Need-Rights;Stop-Computer"))
        ),
        format!("powershell.exe -Command {}", encode(&real)),
        "cmd.exe /c dir".to_owned(),
    ] {
        let out = openssh(i, &command);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("HVX1:x:"));
    }
    let state = hv.state();
    assert_eq!((state.invocations, state.rejected), (4, 4));
    // The same text, sent exactly as hyperv-ext sends it, is accepted.
    let line = hyperv_protocol::command_line(hyperv_protocol::Script::Statuses, &real).unwrap();
    let out = openssh(i, line.as_str());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HVX1:x:{"));
    assert_eq!(hv.state().rejected, 4);
}
