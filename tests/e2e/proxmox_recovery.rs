//! `create` under lost answers, deadlines and failed rollbacks, through the fault proxy in
//! front of the simulator (issue 9 items 1-3): what the binary answers, and what PVE holds
//! afterwards. No test may leave a VM behind that nothing removes, or touch another's VM.

use std::time::Duration;

use e2e::proxmox::{Outcome, Payload, TestVm, World};
use e2e::pve::{Fault, ISO_VOLUME, NODE, TEMPLATE_VMID};
use serde_json::json;

const CLONE: &str = r"/qemu/9000/clone$";

/// VM `vmid` as a finished `create` leaves it: running, sized, its NIC on the host's bridge
/// and VLAN, the mark without `cs-creating`, no note in its description, no lock.
fn assert_finished(w: &World, vm: &TestVm, vmid: u32) {
    let made = w.pve.vm(vmid).expect("the VM exists");
    assert_eq!(made.status, "running", "{made:?}");
    assert_eq!(made.conf("tags"), Some(vm.mark(vmid)), "{made:?}");
    assert_eq!(made.conf("memory").as_deref(), Some("1024"));
    assert_eq!(made.conf("cores").as_deref(), Some("2"));
    // A property string: PVE may order its keys its own way (an ISO install's are rewritten).
    let properties = |value: &str| {
        let mut keys: Vec<String> = value.split(',').map(str::to_string).collect();
        keys.sort();
        keys
    };
    let mac = format!("02:01:00:CC:{:02X}:01", vm.id % 256);
    assert_eq!(
        properties(&made.conf("net0").unwrap_or_default()),
        properties(&format!("virtio={mac},bridge=vmbr1,tag=1577,firewall=0"))
    );
    assert_eq!(made.conf("description"), None, "{made:?}");
    assert_eq!(made.lock, None);
}

/// The VMs besides the template: what a test leaves (nothing it did not mean to).
fn vms_left(w: &World) -> Vec<u32> {
    w.pve
        .vms()
        .iter()
        .map(|vm| vm.vmid)
        .filter(|&id| id != TEMPLATE_VMID)
        .collect()
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// The beginning of the description `create` gives a clone while it makes it.
fn creating_note(vm: &TestVm, vmid: u32) -> String {
    format!("{};cs-creating.", vm.mark(vmid))
}

#[test]
fn a_clone_whose_answer_is_lost_after_pve_made_it_is_finished() {
    let w = World::new();
    let clone_line = format!("POST /nodes/{NODE}/qemu/{TEMPLATE_VMID}/clone");
    for (n, (fault, saw)) in [
        (Fault::drop(), "connection closed, no answer"),
        (Fault::truncate(None), "answer cut off after"),
        (
            Fault::status(596, "Connection timed out"),
            "HTTP 596 Connection timed out",
        ),
        (Fault::html(502), "HTTP 502 HTML page"),
    ]
    .into_iter()
    .enumerate()
    {
        let vmid = 100 + u32::try_from(n).unwrap();
        let vm = TestVm::new();
        w.pve.reset_requests();
        let rule = w.pve.fault(fault.method("POST").path(CLONE));
        let out = w.run("create", &Payload::vm(&w.pve, &vm).vmid(vmid));
        out.assert_success();
        assert_eq!(out.message(), "Instance created", "{saw}");
        // PVE made the clone; the binary never saw its answer.
        let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
        assert!(
            event.forwarded && event.pve_status == Some(200),
            "{event:?}"
        );
        assert!(event.pve_data().as_str().is_some(), "a UPID: {event:?}");
        assert!(
            event.client_saw.as_deref().unwrap_or("").starts_with(saw),
            "{event:?}"
        );
        // The clone it made is finished, not made twice, nothing deleted.
        assert_finished(&w, &vm, vmid);
        let writes = w.pve.write_lines();
        assert_eq!(count(&writes, &clone_line), 1, "{saw}: {writes:?}");
        assert!(
            writes.iter().all(|l| !l.starts_with("DELETE")),
            "{writes:?}"
        );
        assert!(
            w.log()
                .contains("carries this run's mark: the lost request made it"),
            "{saw}"
        );
    }
    assert_eq!(vms_left(&w), [100, 101, 102, 103]);
}

#[test]
fn an_iso_install_whose_answer_is_lost_is_finished() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm)
        .vm_detail("template_type", Some("iso"))
        .vm_detail("iso_path", Some(ISO_VOLUME))
        .vmid(100);
    let rule = w
        .pve
        .fault(Fault::drop().method("POST").path(r"/nodes/pve1/qemu$"));
    let out = w.run("create", &payload);
    assert_eq!(out.assert_success().message(), "Instance created");
    let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
    assert!(event.forwarded && event.pve_status == Some(200));
    // The create request carried the mark saying this run makes it.
    let create = w.pve.request_ending("/nodes/pve1/qemu");
    let tags = create.form.get("tags").cloned().unwrap_or_default();
    assert!(
        tags.starts_with(&creating_note(&vm, 100)),
        "{tags} / {}",
        vm.mark(100)
    );
    assert_finished(&w, &vm, 100);
    assert_eq!(count(&w.pve.write_lines(), "POST /nodes/pve1/qemu"), 1);
    assert_eq!(vms_left(&w), [100]);
}

#[test]
fn a_clone_request_lost_before_pve_saw_it_is_sent_again() {
    let w = World::new();
    let vm = TestVm::new();
    let rule = w
        .pve
        .fault(Fault::drop().forward(false).method("POST").path(CLONE));
    let out = w.run("create", &Payload::vm(&w.pve, &vm).vmid(100));
    assert_eq!(out.assert_success().message(), "Instance created");
    let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
    assert!(!event.forwarded, "{event:?}");
    // Nothing at VMID 100 after the lost answer: the clone is asked for once more.
    let clones: Vec<_> = w
        .pve
        .requests()
        .into_iter()
        .filter(|r| r.api_path().ends_with("/clone"))
        .collect();
    assert_eq!(clones.len(), 2);
    assert_eq!(clones[0].form, clones[1].form, "the same request again");
    assert_finished(&w, &vm, 100);
    assert_eq!(vms_left(&w), [100]);
}

#[test]
fn a_lost_answer_while_the_clone_still_runs_waits_for_the_task_making_it() {
    let w = World::new();
    let vm = TestVm::new();
    w.pve.hold_tasks("qmclone", 1, Some(1.0));
    w.pve.fault(Fault::drop().method("POST").path(CLONE));
    let out = w.run("create", &Payload::vm(&w.pve, &vm).vmid(100));
    assert_eq!(out.assert_success().message(), "Instance created");
    // The clone's task was found by its log (its id names only the template) and waited for.
    let listed = w
        .pve
        .requests()
        .into_iter()
        .filter(|r| r.api_path() == "/nodes/pve1/tasks")
        .count();
    assert!(listed >= 1, "{:?}", w.pve.request_lines());
    let held = w.pve.held_tasks();
    assert_eq!(held[0].ended.as_deref(), Some("timed out"), "{held:?}");
    assert_finished(&w, &vm, 100);
    assert_eq!(vms_left(&w), [100]);
}

#[test]
fn a_lost_answer_next_to_another_deploys_vm_touches_nothing() {
    let w = World::new();
    let other = TestVm::new();
    w.pve.add_vm(
        100,
        &other.name,
        NODE,
        "stopped",
        json!({"tags": other.mark(100), "memory": "2048"}),
    );
    let before = w.pve.vm(100).unwrap();
    w.pve.reset_requests();
    let vm = TestVm::new();
    let rule = w.pve.fault(Fault::drop().method("POST").path(CLONE));
    let err = w
        .run("create", &Payload::vm(&w.pve, &vm).vmid(100))
        .assert_error();
    // PVE refused the clone (the VMID is taken); the binary only knows the answer was lost.
    let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
    assert!(
        event
            .pve_body
            .as_deref()
            .unwrap_or("")
            .contains("config file already exists"),
        "{event:?}"
    );
    assert!(
        err.starts_with("Proxmox VMID 100 is already taken (")
            && err.contains("its answer was lost")
            && err.contains("Nothing was changed and nothing was deleted"),
        "{err}"
    );
    assert_eq!(
        w.pve.write_lines(),
        [format!("POST /nodes/{NODE}/qemu/{TEMPLATE_VMID}/clone")]
    );
    let after = w.pve.vm(100).unwrap();
    assert_eq!(
        (after.name, after.status, after.config),
        (before.name, before.status, before.config),
        "the other deploy's VM is untouched"
    );
}

#[test]
fn a_lost_answer_after_the_vm_exists_rolls_it_back() {
    let w = World::new();
    let failed = format!(
        "connection to the Proxmox API at {} (host detail 'url') failed",
        w.pve.url()
    );
    for (path, said) in [
        (r"/qemu/100/config$", failed.clone()),
        (
            r"/qemu/100/status/start$",
            format!("VM 100 was created but did not start: {failed}"),
        ),
    ] {
        let vm = TestVm::new();
        w.pve.reset_requests();
        let rule = w.pve.fault(Fault::drop().method("POST").path(path));
        let err = w
            .run("create", &Payload::vm(&w.pve, &vm).vmid(100))
            .assert_error();
        assert!(
            err.starts_with(&said)
                && err.ends_with("rolled back: removed Proxmox VM 100 that this run had created"),
            "{err}"
        );
        let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
        assert!(event.forwarded, "PVE acted: {event:?}");
        assert!(vms_left(&w).is_empty(), "{path}");
        assert_eq!(
            w.pve.write_lines().last().map(String::as_str),
            Some("DELETE /nodes/pve1/qemu/100")
        );
    }
}

#[test]
fn a_clone_unanswered_at_the_deadline_is_rolled_back() {
    let w = World::new();
    let vm = TestVm::new();
    let rule = w
        .pve
        .fault(Fault::hang(None).then_drop().method("POST").path(CLONE));
    let out = w.run_with_timeout("create", &Payload::vm(&w.pve, &vm).vmid(100), 8);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    assert!(
        err.contains(
            "the request may have reached Proxmox, but its answer was lost: deadline reached while waiting for POST /nodes/pve1/qemu/9000/clone"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("rolled back: removed Proxmox VM 100 that this run had created"),
        "{err}"
    );
    let event = w.pve.faults().into_iter().find(|e| e.rule == rule).unwrap();
    assert!(event.forwarded, "PVE made the clone: {event:?}");
    assert!(w.pve.vm(100).is_none(), "rolled back");
    assert!(vms_left(&w).is_empty());
    assert_eq!(w.pve.release(Some(rule)), 1);
}

#[test]
fn a_deadline_during_a_slow_clone_stops_the_clone() {
    let w = World::new();
    let vm = TestVm::new();
    w.pve.hold_tasks("qmclone", 1, None);
    let out = w.run_with_timeout("create", &Payload::vm(&w.pve, &vm).vmid(100), 8);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    assert!(
        err.starts_with(
            "deadline reached while linked clone of template 9000 into VM 100 (task UPID:pve1:"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("rolled back: Proxmox VM 100 is gone (after stopping its qmclone task)"),
        "{err}"
    );
    let held = w.pve.held_tasks();
    assert_eq!(
        (held[0].ended.as_deref(), held[0].stopped),
        (Some("stopped"), true)
    );
    let task = w.pve.task(&held[0].upid).unwrap();
    assert_eq!(
        task.exitstatus.as_deref(),
        Some("clone failed: received interrupt")
    );
    assert!(vms_left(&w).is_empty(), "the stopped clone took its VM");
    assert!(
        w.pve
            .write_lines()
            .iter()
            .any(|l| l.starts_with("DELETE /nodes/pve1/tasks/UPID:pve1:")),
        "{:?}",
        w.pve.write_lines()
    );
}

#[test]
fn a_deadline_during_a_slow_start_stops_the_start_and_removes_the_vm() {
    let w = World::new();
    let vm = TestVm::new();
    w.pve.hold_tasks("qmstart", 1, None);
    let out = w.run_with_timeout("create", &Payload::vm(&w.pve, &vm).vmid(100), 8);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    assert!(
        err.starts_with(
            "VM 100 was created but did not start: deadline reached while starting VM 100"
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            "rolled back: removed Proxmox VM 100 that this run had created (after stopping its qmstart task)"
        ),
        "{err}"
    );
    let held = w.pve.held_tasks();
    assert_eq!(held[0].ended.as_deref(), Some("stopped"));
    assert!(vms_left(&w).is_empty());
}

/// The config step fails (PVE's own answer), and so does the rollback's destroy: the clone
/// stays as the template's copy, half-made. Returns the error `create` answered.
fn leave_a_half_made_clone(w: &World, payload: &Payload) -> String {
    let lock = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";
    w.pve
        .fail("POST", "/nodes/pve1/qemu/100/config", 500, lock, Some(1));
    w.pve
        .fail("DELETE", "/nodes/pve1/qemu/100", 500, lock, None);
    let err = w.run("create", payload).assert_error();
    w.pve.command(json!({"cmd": "clear_failures"}));
    err
}

fn run_custom(w: &World, payload: &Payload, action: &str, params: serde_json::Value) -> Outcome {
    w.run(action, &payload.clone().custom(action, params))
}

#[test]
fn a_half_made_vm_never_passes_for_an_instance_and_a_retried_create_finishes_it() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm).vmid(100);
    let err = leave_a_half_made_clone(&w, &payload);
    assert!(
        err.starts_with("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout; rolling back did not finish (")
            && err.contains("Proxmox VM 100 on node pve1 is left half-made and marked as this deploy's (create run ")
            && err.ends_with(
                "deploying the instance again finishes it, deleting (expunging) the instance removes it"
            ),
        "{err}"
    );
    // What is left: the template's copy (its NIC on vmbr0, its 512 MiB), marked as being made.
    let half = w.pve.vm(100).unwrap();
    assert_eq!(half.conf("memory").as_deref(), Some("512"));
    assert!(half.conf("net0").unwrap().contains("bridge=vmbr0"));
    assert!(
        half.conf("description")
            .unwrap_or_default()
            .starts_with(&creating_note(&vm, 100)),
        "{half:?}"
    );
    let before = (half.status.clone(), half.config.clone());
    w.pve.reset_requests();

    // status: not a usable instance, so not running; nothing adopted.
    let status = w.run("status", &payload);
    status.assert_success();
    assert_eq!(status.json["power_state"], "poweroff");
    let message = status.json["message"].as_str().unwrap_or_default();
    assert!(message.contains("is not a usable instance"), "{message}");
    // stop: it is off, and stays unadopted.
    let stop = w.run("stop", &payload);
    assert!(
        stop.assert_success()
            .message()
            .contains("not a usable instance"),
        "{}",
        stop.stdout
    );
    // Everything that would use it as the instance refuses.
    for (action, params) in [
        ("start", json!({})),
        ("reboot", json!({})),
        ("getconsole", json!({})),
        ("Suspend", json!({})),
        ("Resume", json!({})),
        ("ListSnapshots", json!({})),
        ("CreateSnapshot", json!({"snap_name": "s1"})),
        ("RestoreSnapshot", json!({"snap_name": "s1"})),
        ("DeleteSnapshot", json!({"snap_name": "s1"})),
    ] {
        let err = run_custom(&w, &payload, action, params).assert_error();
        assert!(
            err.starts_with("Proxmox VM 100 on node pve1 is not a usable instance: create (run ")
                && err.ends_with("Deploying the instance again finishes it; deleting (expunging) the instance removes it"),
            "{action}: {err}"
        );
    }
    assert!(
        w.pve.write_lines().is_empty(),
        "nothing ran, nothing adopted: {:?}",
        w.pve.write_lines()
    );
    let half = w.pve.vm(100).unwrap();
    assert_eq!((half.status.clone(), half.config.clone()), before);

    // CloudStack deploys again: the retried create recognises its own half-made clone.
    let out = w.run("create", &payload);
    assert_eq!(
        out.assert_success().message(),
        "Instance created (finished Proxmox VM 100 that an earlier create of this instance had left half-made)"
    );
    assert_finished(&w, &vm, 100);
    assert_eq!(
        w.pve.write_lines(),
        [
            "POST /nodes/pve1/qemu/9000/clone",
            "POST /nodes/pve1/qemu/100/config",
            "POST /nodes/pve1/qemu/100/status/start",
            "PUT /nodes/pve1/qemu/100/config",
        ]
    );
    assert_eq!(vms_left(&w), [100]);
}

#[test]
fn delete_removes_a_half_made_vm() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm).vmid(100);
    leave_a_half_made_clone(&w, &payload);
    assert_eq!(vms_left(&w), [100]);
    let out = w.run("delete", &payload);
    assert_eq!(out.assert_success().message(), "Instance deleted");
    assert!(vms_left(&w).is_empty());
    assert!(
        w.pve
            .volumes("local-lvm")
            .iter()
            .all(|v| !v.contains("vm-100-")),
        "{:?}",
        w.pve.volumes("local-lvm")
    );
}

#[test]
fn a_rollback_that_cannot_finish_leaves_it_to_delete() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm).vmid(100);
    // A slow start runs into the deadline, and stopping it is refused.
    w.pve.hold_tasks("qmstart", 1, None);
    let refused = w.pve.fault(
        Fault::status(403, "Permission check failed")
            .forward(false)
            .method("DELETE")
            .path(r"/nodes/pve1/tasks/"),
    );
    let out = w.run_with_timeout("create", &payload, 8);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    assert!(
        err.contains("; rolling back did not finish (")
            && err.ends_with(
                "Proxmox VM 100 on node pve1 may be left half-made; if it is, it carries this deploy's mark: deploying the instance again finishes it, deleting (expunging) the instance removes it"
            ),
        "{err}"
    );
    assert!(w.pve.faults().iter().any(|e| e.rule == refused));
    w.pve.clear_faults();
    // Left: configured, never started, still marked as being made, its start task running.
    let half = w.pve.vm(100).unwrap();
    assert!(
        half.conf("tags")
            .unwrap_or_default()
            .starts_with(&creating_note(&vm, 100)),
        "{half:?}"
    );
    assert_eq!(w.pve.held_tasks()[0].ended, None);

    // It is no instance: status says so, statuses leaves it out.
    assert_eq!(w.run("status", &payload).json["power_state"], "poweroff");
    let statuses = w.run("statuses", &Payload::host(&w.pve));
    assert_eq!(
        statuses.json,
        json!({"status": "success", "power_state": {}}),
        "{}",
        statuses.stdout
    );
    // CloudStack expunges the failed deploy: delete stops the start task and removes it.
    let out = w.run("delete", &payload);
    assert_eq!(out.assert_success().message(), "Instance deleted");
    assert!(vms_left(&w).is_empty());
    assert_eq!(w.pve.held_tasks()[0].ended.as_deref(), Some("stopped"));
}
