//! The snapshot custom actions with upstream's parameters.

use e2e::proxmox::{Outcome, Payload, World};
use serde_json::{Value, json};

fn setup(status: &str) -> (World, Payload) {
    let w = World::new();
    let (_, payload) = w.marked_vm(status, json!({"scsi0": "local-lvm:vm-100-disk-0,size=8G"}));
    (w, payload)
}

fn act(w: &World, payload: &Payload, action: &str, params: Value) -> Outcome {
    w.run(action, &payload.clone().custom(action, params))
}

#[test]
fn create_list_restore_delete() {
    let (w, payload) = setup("running");
    act(
        &w,
        &payload,
        "CreateSnapshot",
        json!({"snap_name": "first", "snap_save_memory": true}),
    )
    .assert_success();
    act(
        &w,
        &payload,
        "createsnapshot",
        json!({"snap_name": "second", "snap_description": "after  "}),
    )
    .assert_success();
    let requests = w.pve.requests();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.line() == "POST /nodes/pve1/qemu/100/snapshot")
        .collect();
    assert_eq!(
        creates[0].form.get("vmstate").map(String::as_str),
        Some("1"),
        "RAM saved from a running VM"
    );
    assert_eq!(
        creates[1].form.get("vmstate").map(String::as_str),
        Some("0")
    );
    assert_eq!(
        creates[1].form.get("description").map(String::as_str),
        Some("after")
    );

    let listed = act(&w, &payload, "ListSnapshots", json!({}));
    listed.assert_success();
    let rows = listed.json["message"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["first", "second"], "no `current` pseudo-snapshot");
    assert_eq!(rows[0]["vmstate"], true);
    assert_eq!(rows[1]["parent"], "first");
    assert_eq!(rows[1]["description"], "after");
    for row in rows {
        let t = row["snaptime"].as_str().unwrap();
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.len() == 20,
            "ISO 8601 UTC: {t}"
        );
    }

    // Restore: PVE leaves the VM stopped (no RAM in "second"); it was running, so it is
    // started again.
    w.pve.reset_requests();
    act(
        &w,
        &payload,
        "RestoreSnapshot",
        json!({"snap_name": "second"}),
    )
    .assert_success();
    let writes: Vec<String> = w
        .pve
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(e2e::pve::Request::line)
        .collect();
    assert_eq!(
        writes,
        [
            "POST /nodes/pve1/qemu/100/snapshot/second/rollback",
            "POST /nodes/pve1/qemu/100/status/start"
        ]
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running");

    // A stopped VM stays stopped after a restore.
    w.pve
        .set_vm(100, json!({"status": "stopped", "qmpstatus": "stopped"}));
    act(
        &w,
        &payload,
        "RestoreSnapshot",
        json!({"snap_name": "first"}),
    )
    .assert_success();
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");

    act(
        &w,
        &payload,
        "DeleteSnapshot",
        json!({"snap_name": "second"}),
    )
    .assert_success();
    act(
        &w,
        &payload,
        "DeleteSnapshot",
        json!({"snap_name": "first"}),
    )
    .assert_success();
    assert!(w.pve.vm(100).unwrap().snapshots.is_empty());
    let listed = act(&w, &payload, "ListSnapshots", json!({}));
    assert_eq!(listed.json["message"], json!([]));
}

#[test]
fn a_restore_that_cannot_restart_says_the_snapshot_was_restored_and_the_vm_is_stopped() {
    let (w, payload) = setup("running");
    act(
        &w,
        &payload,
        "CreateSnapshot",
        json!({"snap_name": "first"}),
    )
    .assert_success();
    // Changed after the snapshot: the rollback takes it back.
    w.pve.set_config(100, json!({"memory": "4096"}));
    // PVE's own in-task start failure, from fakepve's catalogue.
    w.pve.fail_named(
        "POST",
        "/nodes/pve1/qemu/100/status/start",
        "start_failed",
        None,
    );
    w.pve.reset_requests();
    let err = act(
        &w,
        &payload,
        "RestoreSnapshot",
        json!({"snap_name": "first"}),
    )
    .assert_error();
    assert!(
        err.starts_with(
            "Instance Snapshot 'first' was restored, but starting Proxmox VM 100 again failed, so it is now stopped (start the instance once the cause is fixed): starting VM 100 failed: start failed: unexpected error"
        ),
        "{err}"
    );
    let after = w.pve.vm(100).unwrap();
    assert_eq!(after.status, "stopped");
    assert_ne!(after.conf("memory").as_deref(), Some("4096"), "rolled back");
    assert_eq!(
        w.pve
            .requests()
            .iter()
            .filter(|r| r.is_write())
            .map(e2e::pve::Request::line)
            .collect::<Vec<_>>(),
        [
            "POST /nodes/pve1/qemu/100/snapshot/first/rollback",
            "POST /nodes/pve1/qemu/100/status/start"
        ]
    );
}

#[test]
fn memory_of_a_stopped_vm_and_pve_errors() {
    let (w, payload) = setup("stopped");
    let out = act(
        &w,
        &payload,
        "CreateSnapshot",
        json!({"snap_name": "cold", "snap_save_memory": "true"}),
    );
    assert!(
        out.assert_success().message().contains("without memory"),
        "{}",
        out.stdout
    );
    // Same name again: PVE's in-task error.
    let err = act(&w, &payload, "CreateSnapshot", json!({"snap_name": "cold"})).assert_error();
    assert!(err.contains("snapshot name 'cold' already used"), "{err}");
    // Deleting one that does not exist: PVE answers with a task that fails.
    let err = act(&w, &payload, "DeleteSnapshot", json!({"snap_name": "nope"})).assert_error();
    assert!(err.contains("snapshot 'nope' does not exist"), "{err}");
    assert_eq!(w.pve.vm(100).unwrap().snapshots.len(), 1);
}

#[test]
fn bad_names_and_missing_parameters_are_refused_before_any_request() {
    let (w, payload) = setup("running");
    for (params, part) in [
        (json!({}), "missing required parameters: 'snap_name'"),
        (
            json!({"snap_name": ""}),
            "missing required parameters: 'snap_name'",
        ),
        (json!({"snap_name": "bad.name"}), "'snap_name' = 'bad.name'"),
        (json!({"snap_name": "current"}), "reserved"),
        (json!({"snap_name": "9lives"}), "starts with a letter"),
        (
            json!({"snap_name": "ok-name", "snap_save_memory": "perhaps"}),
            "snap_save_memory",
        ),
    ] {
        let err = act(&w, &payload, "CreateSnapshot", params.clone()).assert_error();
        assert!(err.contains(part), "{params}: {err}");
    }
    for action in ["RestoreSnapshot", "DeleteSnapshot"] {
        let err = act(&w, &payload, action, json!({})).assert_error();
        assert!(err.contains("'snap_name'"), "{err}");
    }
    assert!(w.pve.requests().is_empty(), "{:?}", w.pve.request_lines());
}
