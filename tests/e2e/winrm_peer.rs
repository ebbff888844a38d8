//! The test host's WinRM peer speaks real WinRM: pywinrm, the client upstream's `hyperv.py`
//! uses (configured as it is: NTLM, certificate validation on), runs a command through it and
//! reaches the same simulated Hyper-V host as the SSH transport.

use std::process::Command;

use e2e::hyperv::{Hv, UUID, VM};
use e2e::pve::venv_python;
use e2e::winrm::{assert_one_clean_run, status_line};
use serde_json::Value;

/// Runs `command` through the peer with pywinrm (`tests/winrm/pywinrm_run.py`).
fn pywinrm(hv: &Hv, password: &str, ca_file: &str, command: &str) -> Value {
    let w = &hv.host.info.winrm;
    let script = e2e::repo_root().join("tests/winrm/pywinrm_run.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .args([&w.winrm_url, &w.winrm_username, password, ca_file, command])
        .output()
        .expect("run pywinrm (scripts/setup.sh installs it into the venv)");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "pywinrm printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn pywinrm_runs_a_command_through_the_peer() {
    let hv = Hv::start();
    // Created over SSH; read back over WinRM: one host behind both transports.
    hv.run("create", &hv.payload(VM, UUID)).success();
    let launches = hv.state().invocations;

    let w = hv.host.info.winrm.clone();
    let r = pywinrm(
        &hv,
        &w.winrm_password,
        &w.winrm_ca_certificate,
        &status_line("pyw1"),
    );
    assert_eq!(r["status_code"], 0, "{r}");
    let stdout = r["std_out"].as_str().unwrap();
    assert!(
        stdout.contains(r#"HVX1:pyw1:{"found":true,"state":"Running","ok":true}"#),
        "{stdout}"
    );
    assert!(
        r["std_err"].as_str().unwrap().starts_with("#< CLIXML"),
        "{r}"
    );
    assert_eq!(hv.state().invocations, launches + 1);
    assert_eq!(
        hv.state().launches.last().unwrap().script.as_deref(),
        Some("status")
    );

    let c = hv.host.winrm_counters();
    assert_one_clean_run(&c);
    // What one of upstream's run_ps calls costs (hyperv.py makes one per cmdlet group): the
    // Create goes first without credentials (401), then NTLM's negotiate and authenticate
    // (carrying the Create again); then Command, Receive(s), Signal, Delete. hyperv-ext
    // needs one request fewer: it starts with the negotiate.
    assert_eq!(c.unauthenticated, 1, "{c:?}");
    assert_eq!(c.requests, 6 + c.receives, "{c:?}");
    assert_eq!(c.events[0]["user"], "hvtest");
    let command = &c.events_of("command")[0];
    assert_eq!(command["program"], "powershell.exe");
    assert_eq!(command["options"]["WINRS_SKIP_CMD_SHELL"], "FALSE");
}

#[test]
fn pywinrm_sees_the_fake_refuse_a_foreign_script() {
    let hv = Hv::start();
    let w = hv.host.info.winrm.clone();
    // What upstream's run_ps sends: not one of hyperv-ext's scripts, so the fake refuses it.
    let r = pywinrm(
        &hv,
        &w.winrm_password,
        &w.winrm_ca_certificate,
        "powershell -encodedcommand RwBlAHQALQBWAE0A",
    );
    assert_eq!(r["status_code"], 1, "{r}");
    assert!(
        r["std_err"]
            .as_str()
            .unwrap()
            .contains("refused by the fake PowerShell"),
        "{r}"
    );
    assert_eq!(hv.state().rejected, 1);
    assert!(hv.host.winrm_counters().open_shells.is_empty());
}

#[test]
fn pywinrm_with_a_wrong_password_or_an_untrusted_certificate_gets_nothing_run() {
    let hv = Hv::start();
    let w = hv.host.info.winrm.clone();
    let r = pywinrm(
        &hv,
        "not-the-password",
        &w.winrm_ca_certificate,
        &status_line("pyw2"),
    );
    assert_eq!(r["exception"], "InvalidCredentialsError", "{r}");
    let c = hv.host.winrm_counters();
    assert_eq!((c.auth_failures, c.ntlm_authenticated), (1, 0), "{c:?}");

    let r = pywinrm(
        &hv,
        &w.winrm_password,
        &w.winrm_other_ca_certificate,
        &status_line("pyw3"),
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("CERTIFICATE_VERIFY_FAILED"),
        "{r}"
    );
    let after = hv.host.winrm_counters_when(|c| c.tls_failures > 0);
    assert_eq!(after.tls_failures, 1, "{after:?}");
    assert_eq!(
        after.requests, c.requests,
        "a request passed the refused handshake"
    );
    assert_eq!((after.shells_created, after.commands), (0, 0));
    assert_eq!(hv.state().invocations, 0);
}
