//! The `winrm` client crate against the test host's WinRM peer (real TLS, NTLM checked by
//! pyspnego with the channel binding required): one shell and one command per run, the shell
//! deleted whatever happens, the certificate checked before any credential, every wait
//! bounded by the deadline.

use std::time::{Duration, Instant};

use e2e::hyperv::{Hv, UUID, VM};
use e2e::winrm::{assert_one_clean_run, status_line};
use ext_sdk::{Deadline, Secret};
use ext_tls::{CaCertificate, ClientTls, Trust};
use hyperv_testhost::{Knobs, WinrmKnobs};
use winrm::{Auth, Config, Endpoint, ErrorKind, Stage};

fn config(hv: &Hv) -> Config {
    let w = &hv.host.info.winrm;
    Config::new(
        Endpoint::parse(&w.winrm_url).unwrap(),
        Auth::Ntlm,
        w.winrm_username.clone(),
        Secret::new(w.winrm_password.clone()),
        trusting(&w.winrm_ca_certificate),
    )
}

/// Trusts only the certificates of this PEM file.
fn trusting(pem: &str) -> ClientTls {
    ClientTls::new(&Trust::Ca(CaCertificate::File(pem.into()))).unwrap()
}

fn deadline(seconds: u64) -> Deadline {
    Deadline::for_timeout(Instant::now(), Duration::from_secs(seconds))
}

#[test]
fn one_shell_one_command_six_round_trips() {
    let hv = Hv::start();
    hv.run("create", &hv.payload(VM, UUID)).success();
    let out = winrm::run_command(&config(&hv), &status_line("rs1"), &deadline(30)).unwrap();
    assert_eq!(out.exit_code, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(r#"HVX1:rs1:{"found":true,"state":"Running","ok":true}"#),
        "{stdout}"
    );
    assert!(out.stderr.starts_with(b"#< CLIXML"));
    assert!(out.cleanup_error.is_none());
    // NTLM negotiate + (authenticate with Create), Command, Receive (one more for each further
    // part the output came in: the peer answers with what the script has printed so far, so a
    // loaded machine sees two or three), Signal, Delete.
    let c = hv.host.winrm_counters();
    assert!(c.receives >= 1 && c.timed_out_receives == 0, "{c:?}");
    assert_eq!(
        (u64::from(out.round_trips), out.connections),
        (5 + c.receives, 1)
    );
    assert_one_clean_run(&c);
    assert_eq!(c.requests, 5 + c.receives);
    assert_eq!(
        c.unauthenticated, 0,
        "no request went without credentials first"
    );
    // The service deletes the shell by itself a minute after the last request (Windows'
    // minimum; our longest silence with the default timeouts is 40 s) should our Delete
    // never arrive.
    assert_eq!(c.events_of("create")[0]["idle_timeout"], "PT60.000S");
    let command = c.events_of("command")[0];
    assert_eq!(command["program"], "powershell.exe");
    assert_eq!(command["options"]["WINRS_SKIP_CMD_SHELL"], "FALSE");
    assert_eq!(
        hv.state().launches.last().unwrap().script.as_deref(),
        Some("status")
    );
}

#[test]
fn a_domain_qualified_username_and_basic_over_https() {
    let hv = Hv::start();
    let mut cfg = config(&hv);
    cfg.username = format!("HV-TEST\\{}", cfg.username);
    let out = winrm::run_command(&cfg, &status_line("rs2"), &deadline(30)).unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        hv.host.winrm_counters().events[0]["user"],
        "HV-TEST\\hvtest"
    );

    // Basic while the service does not offer it (Windows' default): refused, nothing run.
    let mut basic = config(&hv);
    basic.auth = Auth::Basic;
    let err = winrm::run_command(&basic, &status_line("rs3"), &deadline(30)).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::AuthNotOffered {
                method: "Basic",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("offers: Negotiate"), "{err}");
    hv.host.winrm_knobs(&WinrmKnobs {
        basic: true,
        ..Default::default()
    });
    let before = hv.host.winrm_counters();
    let out = winrm::run_command(&basic, &status_line("rs4"), &deadline(30)).unwrap();
    let c = hv.host.winrm_counters();
    // Create, Command, Receive(s), Signal, Delete: Basic on each, no handshake.
    let receives = c.receives - before.receives;
    assert_eq!(
        (out.exit_code, u64::from(out.round_trips)),
        (0, 4 + receives)
    );
    assert_eq!(
        c.basic_authenticated - before.basic_authenticated,
        4 + receives
    );
    assert_eq!(c.ntlm_negotiates, before.ntlm_negotiates);
    assert_eq!(c.shells_deleted, 2);
    assert!(c.open_shells.is_empty());
}

#[test]
fn a_wrong_password_is_one_clear_refusal() {
    let hv = Hv::start();
    let mut cfg = config(&hv);
    cfg.password = Secret::new("Not-The-Password-1");
    let err = winrm::run_command(&cfg, &status_line("rs5"), &deadline(30)).unwrap_err();
    assert_eq!(err.stage, Stage::Authenticate);
    assert!(
        matches!(err.kind, ErrorKind::AuthRejected { method: "NTLM" }),
        "{err}"
    );
    assert!(!err.command_may_have_run());
    assert!(
        err.to_string().contains("rejected the credentials (NTLM)"),
        "{err}"
    );
    assert!(!err.to_string().contains("Not-The-Password-1"));
    let c = hv.host.winrm_counters();
    // One handshake, no retry.
    assert_eq!(
        (c.ntlm_negotiates, c.auth_failures, c.requests),
        (1, 1, 2),
        "{c:?}"
    );
    assert_eq!((c.shells_created, c.commands), (0, 0));
    assert_eq!(hv.state().invocations, 0);
}

#[test]
fn an_untrusted_certificate_is_refused_before_any_http() {
    let hv = Hv::start();
    let mut cfg = config(&hv);
    cfg.tls = trusting(&hv.host.info.winrm.winrm_other_ca_certificate);
    let err = winrm::run_command(&cfg, &status_line("rs6"), &deadline(30)).unwrap_err();
    assert_eq!(err.stage, Stage::Tls);
    let ErrorKind::Tls(failure) = &err.kind else {
        panic!("{err}")
    };
    let winrm::TlsFailure { server, peer, .. } = &**failure;
    assert_eq!(*server, format!("{}:5986", hv.host.info.winrm.winrm_host));
    let peer = peer.clone().expect("what the server presented");
    assert_eq!(
        peer.fingerprint,
        hv.host.info.winrm.winrm_certificate_sha256.parse().unwrap()
    );
    assert!(peer.refusal.is_some());
    assert!(err.to_string().contains("no credential was sent"), "{err}");
    let c = hv.host.winrm_counters_when(|c| c.tls_failures > 0);
    assert_eq!(
        (c.connections, c.tls_failures, c.requests),
        (1, 1, 0),
        "{c:?}"
    );
}

#[test]
fn plain_http_is_refused_before_connecting() {
    let hv = Hv::start();
    let mut cfg = config(&hv);
    cfg.endpoint = Endpoint::parse(&format!(
        "http://{}:{}/wsman",
        hv.host.info.winrm.winrm_host, hv.host.info.winrm.winrm_port
    ))
    .unwrap();
    let err = winrm::run_command(&cfg, &status_line("rs7"), &deadline(30)).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Config(_)), "{err}");
    assert!(err.to_string().contains("only over HTTPS"), "{err}");
    assert_eq!(hv.host.winrm_counters().connections, 0);
}

#[test]
fn a_slow_command_is_polled_until_done() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        sleep_before_ms: 1500,
        ..Default::default()
    });
    hv.host.winrm_knobs(&WinrmKnobs {
        max_operation_timeout_ms: Some(300),
        ..Default::default()
    });
    let out = winrm::run_command(&config(&hv), &status_line("rs8"), &deadline(60)).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("HVX1:rs8:"));
    let c = hv.host.winrm_counters();
    assert!(c.timed_out_receives >= 1, "{c:?}");
    // Some Receives may bring part of the output (stderr comes first) before the last.
    assert!(c.receives > c.timed_out_receives, "{c:?}");
    assert_eq!(out.round_trips as u64, 5 + c.receives);
    assert_one_clean_run(&c);
}

#[test]
fn the_deadline_while_the_command_runs_terminates_it_and_deletes_the_shell() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        sleep_before_ms: 60_000,
        ..Default::default()
    });
    hv.host.winrm_knobs(&WinrmKnobs {
        max_operation_timeout_ms: Some(500),
        ..Default::default()
    });
    let started = Instant::now();
    let deadline = deadline(5);
    let err = winrm::run_command(&config(&hv), &status_line("rs9"), &deadline).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(Instant::now() < deadline.hard_end());
    assert_eq!(err.stage, Stage::Receive);
    assert!(err.is_deadline(), "{err}");
    assert!(err.command_may_have_run());
    assert!(err.cleanup.is_none(), "{err}");
    let c = hv.host.winrm_counters();
    assert_eq!(c.signals, 1);
    assert_eq!(c.events_of("signal")[0]["was_running"], true);
    assert_eq!(c.events_of("done").len(), 0);
    assert_eq!((c.shells_created, c.shells_deleted), (1, 1));
    assert!(c.open_shells.is_empty());
    // The fake saw its client go away and did nothing.
    let launch = hv.state().launches.last().cloned().unwrap();
    assert_eq!(launch.outcome, "killed");
}

#[test]
fn faults_and_garbage_fail_the_step_and_the_shell_is_still_deleted() {
    for (knobs, stage) in [
        (
            WinrmKnobs {
                fault_at: Some("command".into()),
                ..Default::default()
            },
            Stage::Command,
        ),
        (
            WinrmKnobs {
                fault_at: Some("receive".into()),
                fault_message: Some("Access is denied.".into()),
                fault_code: Some(5),
                ..Default::default()
            },
            Stage::Receive,
        ),
        (
            WinrmKnobs {
                garbage_at: Some("command".into()),
                ..Default::default()
            },
            Stage::Command,
        ),
        (
            WinrmKnobs {
                garbage_at: Some("receive".into()),
                ..Default::default()
            },
            Stage::Receive,
        ),
    ] {
        let hv = Hv::start();
        hv.host.winrm_knobs(&knobs);
        let err =
            winrm::run_command(&config(&hv), &status_line("rs10"), &deadline(30)).unwrap_err();
        assert_eq!(err.stage, stage, "{knobs:?}: {err}");
        if knobs.fault_at.is_some() {
            assert!(matches!(err.kind, ErrorKind::Fault(_)), "{err}");
        } else {
            assert!(matches!(err.kind, ErrorKind::Protocol(_)), "{err}");
        }
        if knobs.fault_code == Some(5) {
            assert!(
                err.to_string()
                    .contains("Access is denied. (InternalError, WSManFault 5)"),
                "{err}"
            );
        }
        assert!(err.command_may_have_run());
        let c = hv.host.winrm_counters();
        assert_eq!(
            (c.shells_created, c.shells_deleted),
            (1, 1),
            "{knobs:?}: {c:?}"
        );
        assert!(c.open_shells.is_empty());
        assert!(err.cleanup.is_none(), "{err}");
    }
}

#[test]
fn a_fault_on_create_leaves_nothing_and_one_on_delete_keeps_the_output() {
    let hv = Hv::start();
    hv.host.winrm_knobs(&WinrmKnobs {
        fault_at: Some("create".into()),
        ..Default::default()
    });
    let err = winrm::run_command(&config(&hv), &status_line("rs11"), &deadline(30)).unwrap_err();
    assert_eq!(err.stage, Stage::CreateShell);
    assert!(!err.command_may_have_run());
    let c = hv.host.winrm_counters();
    assert_eq!((c.shells_created, c.commands, c.shells_deleted), (0, 0, 0));

    let hv = Hv::start();
    hv.host.winrm_knobs(&WinrmKnobs {
        fault_at: Some("delete".into()),
        ..Default::default()
    });
    let out = winrm::run_command(&config(&hv), &status_line("rs12"), &deadline(30)).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("HVX1:rs12:"));
    let cleanup = out.cleanup_error.expect("the failed delete is reported");
    assert_eq!(cleanup.stage, Stage::DeleteShell);
    assert_eq!(hv.host.winrm_counters().open_shells.len(), 1);

    // A signal that fails does not stop the delete.
    let hv = Hv::start();
    hv.host.winrm_knobs(&WinrmKnobs {
        garbage_at: Some("signal".into()),
        ..Default::default()
    });
    let out = winrm::run_command(&config(&hv), &status_line("rs13"), &deadline(30)).unwrap();
    assert!(out.cleanup_error.is_none());
    let c = hv.host.winrm_counters();
    assert_eq!((c.shells_deleted, c.garbage), (1, 1));
    assert!(c.open_shells.is_empty());
}

#[test]
fn a_shell_that_could_not_be_deleted_idles_out_on_the_host() {
    let hv = Hv::start();
    // The Delete fails; the peer keeps the IdleTimeOut we asked for, but at most 500 ms.
    hv.host.winrm_knobs(&WinrmKnobs {
        fault_at: Some("delete".into()),
        max_idle_timeout_ms: Some(500),
        ..Default::default()
    });
    let out = winrm::run_command(&config(&hv), &status_line("rs14"), &deadline(30)).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("HVX1:rs14:"));
    assert!(out.cleanup_error.is_some());
    let c = hv.host.winrm_counters_when(|c| c.shells_expired > 0);
    assert_eq!((c.shells_deleted, c.shells_expired), (0, 1), "{c:?}");
    assert!(c.open_shells.is_empty(), "{c:?}");
    let created = &c.events_of("create")[0]["shell"];
    assert_eq!(&c.events_of("expired")[0]["shell"], created);
}

#[test]
fn exit_code_and_stderr_of_a_failing_command() {
    let hv = Hv::start();
    // Not one of hyperv-ext's scripts: the fake refuses it like powershell.exe would fail.
    let out = winrm::run_command(
        &config(&hv),
        "powershell.exe -NoProfile -Command Get-VM",
        &deadline(30),
    )
    .unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused by the fake PowerShell"),
        "{out:?}"
    );
    assert_eq!(hv.state().rejected, 1);
    assert_one_clean_run(&hv.host.winrm_counters());
}
