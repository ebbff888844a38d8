//! Power actions, the console, Suspend/Resume, task outcomes (WARNINGS, failures with their
//! log) and the refusal to touch a VM that is not CloudStack's.

use e2e::proxmox::{Payload, TestVm, World};
use e2e::pve::NODE;
use serde_json::json;

/// VM 100 in `status`, carrying the identity (and mark) of a fresh CloudStack VM.
fn vm_in(w: &World, status: &str) -> (TestVm, Payload) {
    w.marked_vm(status, json!({"memory": "512", "cores": 1}))
}

#[test]
fn start_and_stop_are_idempotent() {
    let w = World::new();
    let (vm, payload) = vm_in(&w, "stopped");
    assert_eq!(
        w.run("start", &payload).assert_success().message(),
        "Instance started"
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/start"]
    );
    // task status polled on the UPID's node, the UPID percent-encoded
    let poll = w
        .pve
        .requests()
        .into_iter()
        .find(|r| r.api_path().contains("/tasks/"))
        .unwrap();
    assert!(
        poll.raw_path
            .starts_with("/api2/extjs/nodes/pve1/tasks/UPID%3Apve1%3A"),
        "{}",
        poll.raw_path
    );
    assert!(
        poll.raw_path
            .ends_with("%3Aqmstart%3A100%3Aroot%40pam%21cs%3A/status"),
        "{}",
        poll.raw_path
    );

    // start of a running VM: success, nothing sent
    w.pve.reset_requests();
    assert_eq!(
        w.run("start", &payload).assert_success().message(),
        "Instance already running"
    );
    assert!(w.pve.write_lines().is_empty());

    // PVE's own "already running" task error (a race with another start) is a success too
    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    w.pve.fail_named(
        "POST",
        "/nodes/pve1/qemu/100/status/start",
        "already_running",
        Some(1),
    );
    w.run("start", &payload).assert_success();

    // stop: an ACPI shutdown that Proxmox forces if the guest does not react
    w.pve.set_vm(
        100,
        json!({"status": "running", "qmpstatus": "running", "acpi": false}),
    );
    w.pve.reset_requests();
    assert_eq!(
        w.run("stop", &payload).assert_success().message(),
        "Instance stopped"
    );
    let shutdown = w
        .pve
        .requests()
        .into_iter()
        .find(e2e::pve::Request::is_write)
        .unwrap();
    assert_eq!(shutdown.line(), "POST /nodes/pve1/qemu/100/status/shutdown");
    assert_eq!(
        shutdown.form.get("forceStop").map(String::as_str),
        Some("1")
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");

    // stop of a stopped VM, and of a VM that is gone: success without a change
    w.pve.reset_requests();
    assert_eq!(
        w.run("stop", &payload).assert_success().message(),
        "Instance already stopped"
    );
    w.pve.command(json!({"cmd": "remove_vm", "vmid": 100}));
    assert_eq!(
        w.run("stop", &payload).assert_success().message(),
        "Instance already absent"
    );
    assert!(w.pve.write_lines().is_empty());
    // status of a VM that is gone: powered off (the shared "gone" rule), and why
    let status = w.run("status", &payload);
    status.assert_success();
    assert_eq!(status.json["power_state"], "poweroff");
    assert_eq!(
        status.json["message"],
        "Proxmox VM 100 does not exist on node pve1 or elsewhere in its cluster: it is gone"
    );
    // start of a VM that is gone is an error
    let err = w.run("start", &payload).assert_error();
    assert_eq!(
        err,
        format!(
            "Proxmox VM 100 ('{}') does not exist on node pve1 or elsewhere in its cluster",
            vm.name
        )
    );
}

#[test]
fn short_timeouts_stop_hard() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "running");
    // 10 s leave no room for a graceful shutdown.
    w.run_with_timeout("stop", &payload, 10).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/stop"]
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
}

#[test]
fn reboot_falls_back_to_reset_and_starts_a_stopped_vm() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "running");
    w.run("reboot", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/reboot"]
    );

    // A guest that ignores ACPI: PVE's reboot times out, the VM is reset instead.
    w.pve.set_vm(100, json!({"acpi": false}));
    w.pve.reset_requests();
    let out = w.run("reboot", &payload);
    assert!(
        out.assert_success().message().contains("hard reset"),
        "{}",
        out.stdout
    );
    assert_eq!(
        w.pve.write_lines(),
        [
            "POST /nodes/pve1/qemu/100/status/reboot",
            "POST /nodes/pve1/qemu/100/status/reset"
        ]
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");

    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    w.pve.reset_requests();
    w.run("reboot", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/start"]
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
}

#[test]
fn a_reboot_that_waited_for_the_lock_is_no_ignored_acpi_request() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "running");
    // Another task holds the VM's config lock: PVE's reboot task fails waiting for it.
    w.pve.hold_config_lock(100, None);
    let err = w.run("reboot", &payload).assert_error();
    assert!(
        err.starts_with(
            "VM 100 was not rebooted: another task holds its lock (nothing was reset; reboot again once that task ended): rebooting VM 100 failed: can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
        ),
        "{err}"
    );
    assert!(!err.contains("ACPI"), "{err}");
    // No hard reset was tried; the guest was never asked anything.
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/reboot"]
    );
    let task = w
        .pve
        .tasks()
        .into_iter()
        .find(|t| t.kind == "qmreboot")
        .unwrap();
    assert_eq!(
        task.exitstatus.as_deref(),
        Some("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout")
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");

    // The guest ignoring ACPI is still reset: reboot_falls_back_to_reset_and_starts_a_stopped_vm.
}

#[test]
fn suspend_and_resume() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "running");
    let custom = |name: &str| payload.clone().custom(name, json!({}));
    assert_eq!(
        w.run("Suspend", &custom("Suspend"))
            .assert_success()
            .message(),
        "Instance suspended"
    );
    assert_eq!(w.pve.vm(100).unwrap().qmpstatus, "paused");
    assert_eq!(w.run("status", &payload).json["power_state"], "poweron");
    w.run("suspend", &custom("suspend")).assert_success(); // any case, already paused
    assert_eq!(
        w.run("Resume", &custom("Resume"))
            .assert_success()
            .message(),
        "Instance resumed"
    );
    assert_eq!(w.pve.vm(100).unwrap().qmpstatus, "running");
    assert_eq!(
        w.pve.write_lines(),
        [
            "POST /nodes/pve1/qemu/100/status/suspend",
            "POST /nodes/pve1/qemu/100/status/resume"
        ]
    );
    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    let err = w.run("Suspend", &custom("Suspend")).assert_error();
    assert_eq!(err, "cannot suspend Proxmox VM 100: it is not running");
    let err = w.run("Resume", &custom("Resume")).assert_error();
    assert!(err.contains("stopped, not suspended"), "{err}");
}

#[test]
fn console_ticket_and_node_address() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "running");
    let out = w.run("getconsole", &payload);
    out.assert_success();
    let console = &out.json["console"];
    assert_eq!(console["host"], "192.0.2.11");
    assert_eq!(
        console["port"], 5900,
        "PVE's string port parsed to a number"
    );
    assert_eq!(console["passwordonetimeuseonly"], true);
    assert_eq!(console["protocol"], "vnc");
    assert!(
        console["password"].as_str().unwrap().starts_with("PVEVNC:"),
        "{console}"
    );
    assert_eq!(w.pve.write_lines(), ["POST /nodes/pve1/qemu/100/vncproxy"]);
    assert!(
        !w.log().contains(console["password"].as_str().unwrap()),
        "the ticket is not logged"
    );

    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    let err = w.run("getconsole", &payload).assert_error();
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn warnings_are_success_and_failures_quote_the_task_log() {
    let w = World::new();
    let (_, payload) = vm_in(&w, "stopped");
    w.pve.warnings(&[("qmstart", 2)]);
    w.run("start", &payload).assert_success();
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
    let task = w
        .pve
        .tasks()
        .into_iter()
        .find(|t| t.kind == "qmstart")
        .unwrap();
    assert_eq!(
        task.exitstatus.as_deref(),
        Some("WARNINGS: 2"),
        "the harness made PVE warn"
    );
    assert!(
        w.log().contains("harness warning 2 of 2"),
        "warnings are logged:\n{}",
        w.log()
    );

    w.pve.set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped", "start_error": "QEMU exited with code 1"}));
    let err = w.run("start", &payload).assert_error();
    assert_eq!(
        err,
        "starting VM 100 failed: QEMU exited with code 1 (task qmstart on node pve1)"
    );

    // A locked VM: PVE's message, unchanged VM.
    w.pve.set_vm(100, json!({"start_error": null}));
    w.pve.snapshot_lock(100, "backup");
    let err = w.run("start", &payload).assert_error();
    assert!(err.contains("VM is locked (backup)"), "{err}");
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
}

#[test]
fn a_vm_that_is_not_ours_is_never_touched() {
    let w = World::new();
    let vm = TestVm::new();
    // Someone else's VM sits on the VMID CloudStack stored.
    w.pve
        .add_vm(100, "payroll-db", NODE, "running", json!({"memory": "512"}));
    w.pve.reset_requests();
    let payload = Payload::vm(&w.pve, &vm).vmid(100);
    for action in [
        "stop",
        "reboot",
        "delete",
        "getconsole",
        "Suspend",
        "CreateSnapshot",
    ] {
        let p = payload.clone().custom(action, json!({"snap_name": "x1"}));
        let err = w.run(action, &p).assert_error();
        assert!(
            err.starts_with(
                "refusing to touch Proxmox VM 100 on node pve1: it is named 'payroll-db', not '"
            ),
            "{action}: {err}"
        );
    }
    assert!(w.pve.write_lines().is_empty(), "{:?}", w.pve.write_lines());
    let other = w.pve.vm(100).unwrap();
    assert_eq!(
        (other.status.as_str(), other.snapshots.len()),
        ("running", 0)
    );

    // A VM marked as another CloudStack VM is refused even when the name matches.
    w.pve.set_config(
        100,
        json!({"name": vm.name, "tags": "cloudstack;cs-uuid.0000-other"}),
    );
    let err = w.run("stop", &payload).assert_error();
    assert!(err.contains("marked as CloudStack VM 0000-other"), "{err}");
    assert_eq!(w.pve.vm(100).unwrap().status, "running");
}
