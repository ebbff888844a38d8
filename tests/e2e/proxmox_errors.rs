//! Errors readable in every shape PVE (or what sits in front of it) answers, and retries that
//! never repeat a change that may have happened.

use e2e::proxmox::{Payload, TestVm, World};
use serde_json::json;

/// A running CloudStack VM 100 that carries this payload's identity (and mark).
fn with_running_vm(w: &World) -> Payload {
    w.marked_vm("running", json!({"memory": "512"})).1
}

fn count(w: &World, line: &str) -> usize {
    w.pve.request_lines().iter().filter(|l| *l == line).count()
}

#[test]
fn authentication_failure_with_an_empty_401() {
    let w = World::new();
    let payload = Payload::host(&w.pve).host_detail("secret", Some("wrong-secret"));
    let out = w.run("statuses", &payload);
    let err = out.assert_error();
    assert!(
        err.starts_with("authentication failed: check user, token id and secret"),
        "{err}"
    );
    assert!(err.contains("root@pam!cs"), "names the token id: {err}");
    assert!(!err.contains("wrong-secret") && !out.stdout.contains("wrong-secret"));
    assert!(
        !out.stdout.contains("\\u"),
        "plain ASCII, nothing escaped: {}",
        out.stdout
    );
    let requests = w.pve.requests();
    assert_eq!(requests.len(), 1, "a refused token is not retried");
    assert_eq!(requests[0].status, json!(401));
    assert!(
        !w.log().contains("wrong-secret"),
        "the secret never reaches the log"
    );

    // fakepve's own 401 (a JSON body) reads the same.
    w.pve.quirks(json!({"real_401": false}));
    let err = w.run("statuses", &payload).assert_error();
    assert!(err.starts_with("authentication failed: "), "{err}");
}

#[test]
fn pre_5_2_error_bodies_still_give_the_message() {
    // Before libpve-http-server-perl 5.2.0, /api2/json error bodies had no `message`; this
    // client reads the extjs envelope, which always carries it.
    let w = World::new();
    let payload = with_running_vm(&w);
    w.pve.quirks(json!({"legacy_errors": true}));
    w.pve.fail(
        "POST",
        "/nodes/pve1/qemu/100/status/suspend",
        500,
        "VM 100 qmp command 'stop' failed - got timeout",
        None,
    );
    let err = w
        .run("Suspend", &payload.clone().custom("Suspend", json!({})))
        .assert_error();
    assert_eq!(err, "VM 100 qmp command 'stop' failed - got timeout");
    assert_eq!(w.pve.vm(100).unwrap().qmpstatus, "running");
    assert!(
        w.pve
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/api2/extjs/"))
    );
}

#[test]
fn per_field_errors_and_permission_errors() {
    let w = World::new();
    let payload = with_running_vm(&w);
    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    w.pve.fail_named(
        "POST",
        "/nodes/pve1/qemu/100/status/start",
        "param_targetstorage_failed_parse_storage",
        None,
    );
    let err = w.run("start", &payload).assert_error();
    assert!(
        err.starts_with("Parameter verification failed: targetstorage: "),
        "{err}"
    );
    assert_eq!(
        count(&w, "POST /nodes/pve1/qemu/100/status/start"),
        1,
        "a 400 is not retried"
    );

    w.pve.command(json!({"cmd": "clear_failures"}));
    w.pve.fail_named(
        "POST",
        "/nodes/pve1/qemu/100/status/start",
        "permission_denied",
        None,
    );
    let err = w.run("start", &payload).assert_error();
    assert!(
        err.starts_with("Permission check failed (/vms/100, VM.PowerMgmt)"),
        "{err}"
    );
    assert!(err.contains("privilege separation"), "{err}");
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
}

#[test]
fn html_from_a_proxy() {
    let w = World::new();
    let payload = with_running_vm(&w);
    // On a read, a 502 page is transient: retried, and the action succeeds.
    w.pve.inject(Some("GET"), "/status/current", "html", 502, 1);
    let out = w.run("status", &payload);
    assert_eq!(out.json["power_state"], "poweron");
    assert_eq!(count(&w, "GET /nodes/pve1/qemu/100/status/current"), 2);

    // On a write it may have reached PVE: not repeated, and the error says what came back.
    w.pve.reset_requests();
    w.pve
        .inject(Some("POST"), "/status/shutdown", "html", 502, 1);
    let err = w.run("stop", &payload).assert_error();
    assert_eq!(
        err,
        "HTTP 502 from a proxy in front of the Proxmox API (page: \"502 Bad Gateway\")"
    );
    assert_eq!(count(&w, "POST /nodes/pve1/qemu/100/status/shutdown"), 1);
    assert_eq!(w.pve.vm(100).unwrap().status, "running");

    // Reads give up after a few attempts, with the last error.
    w.pve.reset_requests();
    w.pve
        .inject(Some("GET"), "/cluster/nextid", "html", 503, 10);
    let err = w.run("prepare", &payload).assert_error();
    assert!(err.contains("HTTP 503 from a proxy"), "{err}");
    assert_eq!(count(&w, "GET /cluster/nextid"), 4);
}

#[test]
fn pveproxy_pseudo_statuses_and_dropped_connections() {
    let w = World::new();
    let payload = with_running_vm(&w);
    // 595: pveproxy could not even connect to the daemon, so the write never arrived: retried.
    w.pve
        .inject(Some("POST"), "/status/shutdown", "status", 595, 1);
    w.run("stop", &payload).assert_success();
    assert_eq!(count(&w, "POST /nodes/pve1/qemu/100/status/shutdown"), 2);
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");

    // 596: the connection broke after the request went out: a write is not repeated.
    w.pve.reset_requests();
    w.pve
        .inject(Some("POST"), "/status/start", "status", 596, 1);
    let err = w.run("start", &payload).assert_error();
    assert_eq!(
        err,
        "pveproxy lost the connection to the node (596): Connection timed out"
    );
    assert_eq!(count(&w, "POST /nodes/pve1/qemu/100/status/start"), 1);
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");

    // A dropped connection on a write: maybe sent, not repeated.
    w.pve.reset_requests();
    w.pve.inject(Some("POST"), "/status/start", "drop", 0, 1);
    let err = w.run("start", &payload).assert_error();
    assert!(
        err.starts_with(&format!(
            "connection to the Proxmox API at {} (host detail 'url') failed",
            w.pve.url()
        )),
        "{err}"
    );
    assert_eq!(count(&w, "POST /nodes/pve1/qemu/100/status/start"), 1);

    // The same on reads is retried.
    w.pve.reset_requests();
    w.pve.inject(Some("GET"), "/status/current", "drop", 0, 1);
    w.pve
        .inject(Some("GET"), "/status/current", "status", 596, 1);
    assert_eq!(w.run("status", &payload).json["power_state"], "poweroff");
    assert_eq!(count(&w, "GET /nodes/pve1/qemu/100/status/current"), 3);
}

#[test]
fn no_worker_upid_is_retried() {
    let w = World::new();
    let payload = with_running_vm(&w);
    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    w.pve.fail(
        "POST",
        "/nodes/pve1/qemu/100/status/start",
        500,
        "got no worker upid - start worker failed",
        Some(2),
    );
    w.run("start", &payload).assert_success();
    assert_eq!(count(&w, "POST /nodes/pve1/qemu/100/status/start"), 3);
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
}

#[test]
fn unreachable_api_and_untrusted_certificates() {
    let w = World::new();
    let payload = with_running_vm(&w);
    // Nothing listens on this port: a connect error (never sent), retried, then reported.
    let closed =
        Payload::host(&w.pve).host_detail("url", Some(&format!("https://{}:8007", w.pve.host)));
    let err = w.run("statuses", &closed).assert_error();
    assert!(
        err.starts_with(&format!(
            "cannot connect to the Proxmox API at https://{}:8007 (host detail 'url'): ",
            w.pve.host
        )) && err.contains("nothing listens on that port (check the port in 'url'"),
        "{err}"
    );

    // The system trust store does not know fakepve's self-signed certificate.
    let system = payload.clone().host_detail("ca_certificate", None);
    let err = w.run("status", &system).assert_error();
    assert!(
        err.starts_with(&format!(
            "TLS handshake with the Proxmox API at {} (host detail 'url') failed",
            w.pve.url()
        )),
        "{err}"
    );
    assert!(
        err.contains("ca_certificate") && err.contains("pve-root-ca.pem"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty(), "no request got through");

    // A CA file that is not there is a settings error, before any connection.
    let missing = payload
        .clone()
        .host_detail("ca_certificate", Some("/nonexistent/pve-root-ca.pem"));
    let err = w.run("status", &missing).assert_error();
    assert!(
        err.contains("'ca_certificate' = '/nonexistent/pve-root-ca.pem'")
            && err.contains("cannot read it"),
        "{err}"
    );

    // verify_tls_certificate=false needs no CA.
    let insecure = system.host_detail("verify_tls_certificate", Some("false"));
    assert_eq!(w.run("status", &insecure).json["power_state"], "poweron");
    assert_eq!(
        w.pve.request_lines(),
        ["GET /nodes/pve1/qemu/100/status/current"]
    );
}

#[test]
fn no_free_vmid() {
    let w = World::new();
    let vm = TestVm::new();
    w.pve.fail(
        "GET",
        "/cluster/nextid",
        500,
        "unable to get any free VMID in range [100, 1000000)",
        None,
    );
    let out = w.run("prepare", &Payload::vm(&w.pve, &vm));
    let err = out.assert_error();
    assert_eq!(
        err,
        "asking Proxmox for a free VMID: unable to get any free VMID in range [100, 1000000)"
    );
    assert_eq!(
        w.pve.request_lines(),
        ["GET /cluster/nextid"],
        "PVE's definitive answer is not retried"
    );
    // fakepve's own request log saw the same single request
    let raw = w.pve.command(json!({"cmd": "pve_requests"}));
    assert_eq!(raw.as_array().unwrap().len(), 1, "{raw}");
}
