//! Settings as operators write them, `statuses`, and secrets kept out of output and logs.

use e2e::proxmox::{Payload, TestVm, World};
use e2e::pve::NODE;
use serde_json::json;

#[test]
fn every_url_form_reaches_the_api() {
    let w = World::new();
    let host = w.pve.host.clone();
    for url in [
        host.clone(),
        format!("{host}:8006"),
        format!("https://{host}"),
        format!("https://{host}:8006/"),
        format!("https://{host}:8006/api2/json"),
        format!("{host}/api2/json/"),
    ] {
        w.pve.reset_requests();
        let payload = Payload::host(&w.pve).host_detail("url", Some(&url));
        let out = w.run("statuses", &payload);
        assert_eq!(out.code, 0, "{url}: {}", out.stdout);
        assert_eq!(w.pve.request_lines(), ["GET /nodes/pve1/qemu"], "{url}");
    }
    // The host level wins over the extension level; the extension level is the fallback.
    let from_extension = Payload::host(&w.pve)
        .host_detail("url", None)
        .extension_detail("url", Some(&w.pve.url()));
    w.run("statuses", &from_extension).assert_success();
}

#[test]
fn token_in_user_and_missing_settings() {
    let w = World::new();
    // user@realm!tokenid in `user` works without `token`.
    let combined = Payload::host(&w.pve)
        .host_detail("user", Some("root@pam!cs"))
        .host_detail("token", None);
    w.run("statuses", &combined).assert_success();
    assert_eq!(w.pve.requests()[0].token.as_deref(), Some("root@pam!cs"));

    w.pve.reset_requests();
    let broken = Payload::host(&w.pve)
        .host_detail("secret", None)
        .host_detail("node", Some("pve_1"))
        .host_detail("user", Some("root"))
        .host_detail("token", None)
        .extension_detail("url", None)
        .host_detail("url", Some("http://pve1"))
        .host_detail("verify_tls_certificate", Some("maybe"));
    let err = w.run("statuses", &broken).assert_error();
    for part in [
        "'secret' (host detail or extension detail",
        "'token'",
        "'url' = 'http://pve1'",
        "HTTPS",
        "'node' = 'pve_1'",
        "'user' = 'root'",
        "'verify_tls_certificate' = 'maybe'",
    ] {
        assert!(err.contains(part), "expected {part:?} in {err}");
    }
    assert!(
        w.pve.requests().is_empty(),
        "nothing sent with bad settings"
    );
}

#[test]
fn statuses_key_by_instance_name_and_leave_templates_out() {
    let w = World::new();
    let renamed = TestVm::new();
    let plain = TestVm::new();
    let stopped = TestVm::new();
    w.deploy_with(Payload::vm(&w.pve, &renamed).vm_detail("vm_name", Some("web01")));
    w.deploy(&plain);
    let stopped_id = w.deploy(&stopped);
    w.run("stop", &Payload::vm(&w.pve, &stopped).vmid(stopped_id))
        .assert_success();
    // A VM made by upstream's scripts (no mark): reported under its Proxmox name.
    w.pve.add_vm(500, "i-2-99-VM", NODE, "running", json!({}));
    // A VM on another node is that host's business.
    w.pve.add_vm(600, "elsewhere", "pve2", "running", json!({}));
    w.pve.reset_requests();

    let out = w.run("statuses", &Payload::host(&w.pve));
    out.assert_success();
    assert_eq!(
        out.json["power_state"],
        json!({
            renamed.name.clone(): "poweron",
            plain.name.clone(): "poweron",
            stopped.name.clone(): "poweroff",
            "i-2-99-VM": "poweron",
        })
    );
    assert_eq!(
        w.pve.request_lines(),
        ["GET /nodes/pve1/qemu"],
        "one request for the whole node"
    );
}

#[test]
fn secrets_stay_out_of_output_and_logs() {
    let w = World::new();
    let vm = TestVm::new();
    let vmid = w.deploy(&vm);
    let payload = Payload::vm(&w.pve, &vm).vmid(vmid);
    let console = w.run("getconsole", &payload);
    let ticket = console.json["console"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    // A failing run whose error could echo the request.
    w.pve.fail(
        "POST",
        &format!("/nodes/pve1/qemu/{vmid}/status/reboot"),
        500,
        "boom",
        None,
    );
    w.run("reboot", &payload).assert_error();
    let log = w.log();
    assert!(
        log.contains("POST /nodes/pve1/qemu"),
        "the log has the requests:\n{log}"
    );
    assert!(!log.contains(&w.pve.secret), "token secret in the log");
    assert!(!log.contains(&ticket), "console ticket in the log");
    assert!(
        !log.contains("uHQHQ4niy8f4ogwCM1k-rw"),
        "VNC password in the log"
    );
}
