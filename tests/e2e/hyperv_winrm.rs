//! hyperv-ext over WinRM, through the release binary and the test host's WinRM peer: an
//! upstream-shaped payload (upstream `hyperv.py`'s host details only, plus the CA
//! certificate) runs the whole life cycle with one shell and one command per action; the
//! certificate is checked before any credential; a wrong password is one clear refusal;
//! the deadline, garbage and faults end with the shell deleted.

use std::time::Duration;

use e2e::hyperv::{Cost, Hv, UUID, VM, disk_of};
use hyperv_testhost::{Knobs, WinrmKnobs};
use serde_json::{Value, json};

/// The upstream-shaped payload: no `transport`, no port, no SSH detail.
fn upstream(hv: &Hv) -> Value {
    let p = hv.payload(VM, UUID);
    let host = p["externaldetails"]["host"].as_object().unwrap();
    let mut keys: Vec<&str> = host.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ca_certificate",
            "network_switch",
            "password",
            "url",
            "username",
            "vhd_path",
            "vm_path"
        ]
    );
    assert!(
        !host["url"].as_str().unwrap().contains(':'),
        "a bare host, as upstream"
    );
    p
}

fn snapshot(p: &Value, name: &str) -> Value {
    let mut p = p.clone();
    p["parameters"] = json!({"snapshot_name": name});
    p
}

#[test]
fn an_upstream_payload_runs_the_whole_life_cycle_over_winrm() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    let steps: [(&str, Value); 14] = [
        ("create", p.clone()),
        ("status", p.clone()),
        ("statuses", p.clone()),
        ("stop", p.clone()),
        ("start", p.clone()),
        ("reboot", p.clone()),
        ("Suspend", p.clone()),
        ("Resume", p.clone()),
        ("CreateSnapshot", snapshot(&p, "before-upgrade")),
        ("ListSnapshots", p.clone()),
        ("RestoreSnapshot", snapshot(&p, "before-upgrade")),
        ("DeleteSnapshot", snapshot(&p, "before-upgrade")),
        ("start", p.clone()),
        ("delete", p.clone()),
    ];
    for (action, payload) in &steps {
        let (run, cost) = hv.run_counted(action, payload);
        let doc = run.success();
        assert_eq!(cost, Cost::ONE, "{action}: {doc}");
        match *action {
            "status" => assert_eq!(doc["power_state"], "poweron"),
            "statuses" => assert_eq!(doc["power_state"][VM], "poweron", "{doc}"),
            "ListSnapshots" => assert_eq!(doc["message"][0]["name"], "before-upgrade"),
            _ => {}
        }
    }
    let c = hv.host.winrm_counters();
    let n = steps.len() as u64;
    assert_eq!(
        (
            c.connections,
            c.ntlm_authenticated,
            c.shells_created,
            c.commands,
            c.signals,
            c.shells_deleted
        ),
        (n, n, n, n, n, n),
        "{c:?}"
    );
    // Per action: NTLM negotiate, authenticate + Create, Command, Receive (more than one
    // when output came in parts), Signal, Delete.
    assert!(c.receives >= n);
    assert_eq!(c.requests, 5 * n + c.receives, "round trips per action");
    assert_eq!(hv.host.connections(), 0, "nothing went over SSH");
    assert!(hv.state().vms.is_empty());
    assert!(!hv.exists(&disk_of(&hv, VM)));
    assert_eq!(hv.state().rejected, 0);
    // Every command line was hyperv-ext's, started through cmd like pywinrm does.
    for e in c.events_of("command") {
        assert_eq!(e["program"], "powershell.exe");
    }
}

#[test]
fn a_wrong_password_is_one_clear_error_and_no_retry() {
    let hv = Hv::start_winrm();
    let mut p = upstream(&hv);
    p["externaldetails"]["host"]["password"] = json!("Wrong-Password-9");
    let (run, cost) = hv.run_counted("status", &p);
    let err = run.failure(1);
    assert!(
        err.contains("rejected the credentials (NTLM): check the username and password"),
        "{err}"
    );
    assert!(!err.contains("Wrong-Password-9"));
    assert!(
        !hv.scratch.log().contains("Wrong-Password-9"),
        "password in the log"
    );
    assert_eq!(cost.launches, 0);
    let c = hv.host.winrm_counters();
    assert_eq!(
        (
            c.connections,
            c.ntlm_negotiates,
            c.auth_failures,
            c.shells_created
        ),
        (1, 1, 1, 0),
        "{c:?}"
    );
}

#[test]
fn the_certificate_is_checked_before_any_credential() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    let w = hv.host.info.winrm.clone();
    let presented: ext_tls::Fingerprint = w.winrm_certificate_sha256.parse().unwrap();
    let address = format!("{}:5986", w.winrm_host);
    let wrong_pin = "AB:".repeat(31) + "AB";
    let cases = [
        // The system store does not know the test CA.
        (
            "system store",
            json!({"ca_certificate": null}),
            "not issued by a certificate authority of the system trust store",
        ),
        (
            "another CA",
            json!({"ca_certificate": w.winrm_other_ca_certificate}),
            "not issued by a certificate of the CA file",
        ),
        (
            "a wrong pin",
            json!({"ca_certificate": null, "tls_fingerprint": wrong_pin}),
            "not the pinned AB:AB:",
        ),
    ];
    for (i, (what, change, why)) in (1u64..).zip(cases.iter()) {
        let q = hv.with_host(&p, |h| {
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    h.as_object_mut().unwrap().remove(k);
                } else {
                    h[k] = v.clone();
                }
            }
        });
        let run = hv.run("status", &q);
        let err = run.failure(1);
        assert!(
            err.contains(&format!("the TLS handshake with {address} failed")),
            "{what}: {err}"
        );
        assert!(err.contains(why), "{what}: {err}");
        // What the host presented, ready to pin once checked on the host.
        assert!(
            err.contains(&format!("fingerprint {presented}")),
            "{what}: {err}"
        );
        assert!(err.contains("no credential was sent"), "{what}: {err}");
        let fix = if *what == "a wrong pin" {
            "update tls_fingerprint"
        } else {
            "set ca_certificate"
        };
        assert!(err.contains(fix), "{what}: {err}");
        let c = hv.host.winrm_counters_when(|c| c.tls_failures >= i);
        assert_eq!(c.tls_failures, i, "{what}: {c:?}");
        assert_eq!(
            c.requests, 0,
            "{what}: an HTTP request passed a refused certificate"
        );
    }
    assert_eq!(hv.state().invocations, 0);
}

#[test]
fn pinned_inline_or_unchecked_the_host_is_reached() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    let w = hv.host.info.winrm.clone();
    let presented: ext_tls::Fingerprint = w.winrm_certificate_sha256.parse().unwrap();
    let without_ca = |h: &mut Value| {
        h.as_object_mut().unwrap().remove("ca_certificate");
    };
    let status = |payload: &Value| hv.run("status", payload).success()["power_state"].clone();

    // tls_fingerprint, as the error prints it, on the host or the extension (as for
    // Proxmox), and under its first name; a pin wins over a CA that would refuse.
    let pinned = hv.with_host(&p, |h| {
        h["ca_certificate"] = json!(w.winrm_other_ca_certificate);
        h["tls_fingerprint"] = json!(presented.to_string());
    });
    assert_eq!(status(&pinned), "poweroff");
    let mut on_extension = hv.with_host(&p, without_ca);
    on_extension["externaldetails"]["extension"] =
        json!({"tls_fingerprint": presented.to_string()});
    assert_eq!(status(&on_extension), "poweroff");
    let old_name = hv.with_host(&p, |h| {
        without_ca(h);
        h["certificate_fingerprint"] = json!(w.winrm_certificate_sha256);
    });
    assert_eq!(status(&old_name), "poweroff");

    // ca_certificate may be the PEM itself, also as pasted into a one-line field.
    let pem = std::fs::read_to_string(&w.winrm_ca_certificate).unwrap();
    for value in [pem.clone(), pem.trim_end().replace('\n', "\\n")] {
        let inline = hv.with_host(&p, |h| h["ca_certificate"] = json!(value));
        assert_eq!(status(&inline), "poweroff");
    }

    // Upstream's verify_tls_certificate=false checks nothing, whatever CA is set (the rule
    // proxmox-ext follows too), with a warning in the log.
    let unchecked = hv.with_host(&p, |h| {
        h["ca_certificate"] = json!(w.winrm_other_ca_certificate);
        h["verify_tls_certificate"] = json!("false");
    });
    assert_eq!(status(&unchecked), "poweroff");
    let log = hv.scratch.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("verify_tls_certificate=false"))
            .count(),
        1,
        "{log}"
    );
    let c = hv.host.winrm_counters();
    assert_eq!((c.tls_failures, c.shells_created), (0, 6), "{c:?}");
}

#[test]
fn the_deadline_while_a_script_runs_is_answered_in_time_with_the_shell_deleted() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    hv.host.knobs(&Knobs {
        only_scripts: vec!["status".into()],
        sleep_before_ms: 60_000,
        ..Default::default()
    });
    hv.host.winrm_knobs(&WinrmKnobs {
        max_operation_timeout_ms: Some(500),
        ..Default::default()
    });
    let run = hv.run_with_timeout("status", &p, "6");
    let err = run.failure_within(1, Duration::from_secs(6));
    assert!(err.contains("deadline reached"), "{err}");
    let c = hv.host.winrm_counters();
    assert_eq!(
        (c.shells_created, c.signals, c.shells_deleted),
        (1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.events_of("signal")[0]["was_running"], true);
    assert!(c.open_shells.is_empty());
    assert_eq!(hv.state().launches.last().unwrap().outcome, "killed");
}

#[test]
fn a_create_cut_off_by_the_deadline_is_cleaned_up_in_a_second_shell() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    // The create completes on the host, but its answer comes too late.
    hv.host.knobs(&Knobs {
        sleep_after_ms: 30_000,
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    hv.host.winrm_knobs(&WinrmKnobs {
        max_operation_timeout_ms: Some(500),
        ..Default::default()
    });
    let run = hv.run_with_timeout("create", &p, "6");
    let err = run.failure_within(1, Duration::from_secs(6));
    assert!(
        err.contains("deadline reached") && err.contains("cleaned up: VM removed: true"),
        "{err}"
    );
    // Nothing of the half-made VM is left: no VM, no disk.
    let state = hv.state();
    assert!(state.vms.is_empty(), "{:#?}", state.vms);
    assert!(!hv.exists(&disk_of(&hv, VM)));
    let scripts: Vec<_> = state
        .launches
        .iter()
        .map(|l| l.script.clone().unwrap())
        .collect();
    assert_eq!(scripts, ["create", "cleanup-create"]);
    // Two runs of one shell and one command each: the create's shell terminated and deleted
    // at the deadline, the cleanup's after it finished; none left open.
    let c = hv.host.winrm_counters();
    assert_eq!(
        (
            c.connections,
            c.shells_created,
            c.commands,
            c.signals,
            c.shells_deleted
        ),
        (2, 2, 2, 2, 2),
        "{c:?}"
    );
    assert_eq!(c.events_of("signal")[0]["was_running"], true);
    assert_eq!(c.events_of("done").len(), 1, "only the cleanup finished");
    assert!(c.open_shells.is_empty());
}

#[test]
fn garbage_or_a_soap_fault_fails_the_action_and_the_shell_is_deleted() {
    for (knobs, expect) in [
        (
            WinrmKnobs {
                garbage_at: Some("receive".into()),
                ..Default::default()
            },
            "unexpected answer: the reply is not",
        ),
        (
            WinrmKnobs {
                fault_at: Some("command".into()),
                fault_message: Some("The WS-Management service cannot process the request.".into()),
                ..Default::default()
            },
            "answered with a fault: The WS-Management service cannot process the request.",
        ),
    ] {
        let hv = Hv::start_winrm();
        hv.host.winrm_knobs(&knobs);
        let (run, cost) = hv.run_counted("status", &upstream(&hv));
        let err = run.failure(1);
        assert!(err.contains(expect), "{knobs:?}: {err}");
        assert_eq!(cost.connections, 1, "{knobs:?}: no retry");
        let c = hv.host.winrm_counters();
        assert_eq!((c.shells_created, c.shells_deleted), (1, 1), "{c:?}");
    }
}

#[test]
fn plain_http_and_an_ssh_detail_choose_as_documented() {
    let hv = Hv::start_winrm();
    let p = upstream(&hv);
    // An http:// URL is refused before connecting.
    let http = hv.with_host(&p, |h| {
        h["url"] = json!(format!("http://{}", hv.host.info.winrm.winrm_host));
    });
    let (run, cost) = hv.run_counted("status", &http);
    assert!(run.failure(1).contains("plain HTTP"));
    assert_eq!(cost, Cost::NONE);
    // transport=ssh with the SSH details reaches the same host over SSH.
    let i = hv.host.info.clone();
    let ssh = hv.with_host(&p, |h| {
        h["transport"] = json!("ssh");
        h["url"] = json!(format!("{}:{}", i.host, i.port));
        h["host_key_fingerprint"] = json!(i.host_key_fingerprint);
    });
    assert_eq!(hv.run("status", &ssh).success()["power_state"], "poweroff");
    assert_eq!(hv.host.connections(), 1);
    assert_eq!(hv.host.winrm_counters().connections, 0);
}

#[test]
fn basic_when_chosen_and_offered_and_no_secret_in_a_trace_log() {
    use base64::Engine as _;
    let hv = Hv::start_winrm();
    let w = hv.host.info.winrm.clone();
    let basic = hv.with_host(&upstream(&hv), |h| {
        h["winrm_auth"] = json!("basic");
        h["log_level"] = json!("trace");
    });
    // Windows' default: Basic off. A clear refusal, nothing run.
    let err = hv.run("status", &basic).failure(1);
    assert!(err.contains("does not offer Basic authentication"), "{err}");
    assert_eq!(hv.state().invocations, 0);

    hv.host.winrm_knobs(&WinrmKnobs {
        basic: true,
        ..Default::default()
    });
    let (run, cost) = hv.run_counted("status", &basic);
    assert_eq!(run.success()["power_state"], "poweroff");
    assert_eq!(cost, Cost::ONE);
    let c = hv.host.winrm_counters();
    assert_eq!(
        (c.basic_authenticated, c.ntlm_negotiates),
        (4 + c.receives, 0),
        "{c:?}"
    );

    // The same with NTLM at trace level: neither the password nor the Basic header's
    // encoding of it reaches the log.
    let ntlm = hv.with_host(&upstream(&hv), |h| h["log_level"] = json!("trace"));
    hv.run("status", &ntlm).success();
    let log = hv.scratch.log();
    assert!(
        log.contains("winrm:"),
        "trace log has the WinRM steps: {log}"
    );
    let header = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", w.winrm_username, w.winrm_password));
    assert!(!log.contains(&w.winrm_password), "password in the log");
    assert!(!log.contains(&header), "Basic credentials in the log");
}
