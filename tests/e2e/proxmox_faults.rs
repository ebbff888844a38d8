//! The fault proxy in front of the simulator, proved through the real binary: answers lost,
//! cut off, held back or replaced after PVE acted, redirects, and tasks that stay running.

use std::time::Duration;

use e2e::eventually;
use e2e::proxmox::World;
use e2e::pve::{Fault, NODE};
use serde_json::json;

/// A running CloudStack VM 100 and the payload addressing it.
fn running_vm(w: &World) -> e2e::proxmox::Payload {
    w.marked_vm("running", json!({"memory": "512", "cores": 1}))
        .1
}

const STATUS_READ: &str = r"/qemu/100/status/current$";

fn count(w: &World, line: &str) -> usize {
    w.pve.request_lines().iter().filter(|l| *l == line).count()
}

#[test]
fn a_read_whose_answer_is_lost_after_pve_answered_is_retried() {
    let w = World::new();
    let payload = running_vm(&w);
    let status_line = format!("GET /nodes/{NODE}/qemu/100/status/current");
    for (fault, saw) in [
        (Fault::drop(), "connection closed, no answer"),
        (Fault::truncate(None), "answer cut off after"),
        (Fault::truncate(Some(0)), "answer cut off after 0 of"),
        (
            Fault::status(596, "Connection timed out"),
            "HTTP 596 Connection timed out",
        ),
        (Fault::html(502), "HTTP 502 HTML page"),
    ] {
        w.pve.reset_requests();
        let rule = w.pve.fault(fault.method("GET").path(STATUS_READ));
        let out = w.run("status", &payload);
        out.assert_success();
        assert_eq!(out.json["power_state"], "poweron", "{saw}: {}", out.stdout);
        let event = w
            .pve
            .faults()
            .into_iter()
            .find(|e| e.rule == rule)
            .unwrap_or_else(|| panic!("{saw}: the proxy did nothing"));
        assert!(
            event.forwarded && event.pve_status == Some(200),
            "{event:?}"
        );
        assert_eq!(event.pve_data()["status"], "running", "{event:?}");
        assert!(
            event.client_saw.as_deref().unwrap_or("").starts_with(saw),
            "{event:?}"
        );
        assert_eq!(count(&w, &status_line), 2, "asked again once: {saw}");
    }
    assert_eq!(w.pve.faults().len(), 5);
}

#[test]
fn a_hang_after_forwarding_is_bounded_by_the_deadline_and_can_be_released() {
    let w = World::new();
    let payload = running_vm(&w);
    // A late answer within the request's patience is simply late.
    w.pve
        .fault(Fault::hang(Some(0.3)).method("GET").path(STATUS_READ));
    w.run("status", &payload).assert_success();
    let late = w.pve.faults().pop().unwrap();
    assert!(
        late.client_saw
            .as_deref()
            .unwrap()
            .ends_with("then the answer"),
        "{late:?}"
    );

    // An answer held until released: the binary gives up at its deadline, with margin.
    let rule = w
        .pve
        .fault(Fault::hang(None).method("GET").path(STATUS_READ));
    let out = w.run_with_timeout("status", &payload, 4);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert!(err.contains("deadline"), "{err}");
    let event = w.pve.faults().pop().unwrap();
    assert_eq!((event.rule, event.forwarded), (rule, true), "{event:?}");
    assert_eq!(event.client_saw.as_deref(), Some("no answer (hanging)"));
    assert_eq!(w.pve.release(Some(rule)), 1, "still holding the answer");
    assert!(eventually(Duration::from_secs(20), || {
        w.pve.faults().last().unwrap().client_saw.as_deref() != Some("no answer (hanging)")
    }));
}

#[test]
fn faults_pick_requests_by_method_path_skip_and_count() {
    let w = World::new();
    let payload = running_vm(&w);
    // The second status read only, then never again.
    w.pve.fault(
        Fault::drop()
            .method("GET")
            .path(STATUS_READ)
            .skip(1)
            .times(1),
    );
    // Never matches: the method differs.
    w.pve.fault(Fault::drop().method("POST").path(STATUS_READ));
    for _ in 0..3 {
        w.run("status", &payload).assert_success();
    }
    let events = w.pve.faults();
    assert_eq!(events.len(), 1, "{events:?}");
    let status_line = format!("GET /nodes/{NODE}/qemu/100/status/current");
    assert_eq!(count(&w, &status_line), 4, "three runs, one retry");
    let requests = w.pve.requests();
    let hit: Vec<_> = requests
        .iter()
        .filter(|r| r.fault.is_some())
        .map(|r| (r.line(), r.status.clone()))
        .collect();
    assert_eq!(hit, [(status_line, json!("dropped"))]);
    // The POST rule is still armed; clearing disarms it.
    w.pve.clear_faults();
    w.run("status", &payload).assert_success();
    assert_eq!(w.pve.faults().len(), 1);
}

#[test]
fn a_task_held_running_keeps_its_lock_until_released() {
    let w = World::new();
    let (_, payload) = w.marked_vm("stopped", json!({"memory": "512", "cores": 1}));
    w.pve.hold_tasks("qmstart", 1, None);
    let out = w.run_with_timeout("start", &payload, 4);
    let err = out.assert_error();
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert!(err.contains("deadline"), "{err}");
    let held = w.pve.held_tasks();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].kind.as_str(), held[0].ended.as_deref()),
        ("qmstart", None)
    );
    let task = w.pve.task(&held[0].upid).unwrap();
    assert_eq!(task.status, "running");
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped", "not started yet");
    // It holds the VM's config lock, as a real start worker does.
    let (_, answer) = w.pve.api(
        "PUT",
        &format!("/nodes/{NODE}/qemu/100/config"),
        &[("description", "x")],
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("got timeout"),
        "{answer}"
    );

    assert_eq!(w.pve.release_tasks(Some("qmstart")), 1);
    assert!(eventually(Duration::from_secs(20), || {
        w.pve.vm(100).unwrap().status == "running"
    }));
    let task = w.pve.task(&held[0].upid).unwrap();
    assert_eq!(task.exitstatus.as_deref(), Some("OK"));
    assert_eq!(w.pve.held_tasks()[0].ended.as_deref(), Some("released"));
}

#[test]
fn a_held_clone_is_stopped_through_the_api_and_leaves_nothing() {
    let w = World::new();
    w.pve.hold_tasks("qmclone", 1, None);
    let (status, answer) = w.pve.api(
        "POST",
        &format!("/nodes/{NODE}/qemu/9000/clone"),
        &[("newid", "123"), ("name", "slow-clone")],
    );
    assert_eq!(status, 200, "{answer}");
    let upid = answer["data"].as_str().unwrap().to_string();
    // The half-made VM exists at once, locked for the clone, while the task runs.
    let vm = w
        .pve
        .vm(123)
        .expect("the clone's target exists during the task");
    assert_eq!(vm.lock.as_deref(), Some("clone"));
    let task_path = format!("/nodes/{NODE}/tasks/{}", e2e_encode(&upid));
    let (_, running) = w.pve.api("GET", &format!("{task_path}/status"), &[]);
    assert_eq!(running["data"]["status"], "running", "{running}");

    let (status, _) = w.pve.api("DELETE", &task_path, &[]);
    assert_eq!(status, 200);
    assert!(eventually(Duration::from_secs(20), || {
        w.pve.api("GET", &format!("{task_path}/status"), &[]).1["data"]["status"] == "stopped"
    }));
    let (_, ended) = w.pve.api("GET", &format!("{task_path}/status"), &[]);
    assert_eq!(
        ended["data"]["exitstatus"], "clone failed: received interrupt",
        "{ended}"
    );
    assert!(w.pve.vm(123).is_none(), "a stopped clone leaves no VM");
    let held = w.pve.held_tasks();
    assert_eq!(
        (held[0].ended.as_deref(), held[0].stopped),
        (Some("stopped"), true)
    );

    // Held for a while: it ends by itself and the clone is complete.
    w.pve.hold_tasks("qmclone", 1, Some(0.2));
    let (_, answer) = w.pve.api(
        "POST",
        &format!("/nodes/{NODE}/qemu/9000/clone"),
        &[("newid", "124"), ("name", "slower-clone")],
    );
    assert!(answer["data"].as_str().is_some(), "{answer}");
    assert!(eventually(Duration::from_secs(20), || {
        w.pve.vm(124).is_some_and(|vm| vm.lock.is_none())
    }));
    assert_eq!(w.pve.held_tasks()[1].ended.as_deref(), Some("timed out"));
}

/// Percent-encodes a UPID for a path (`:` `@` `!`).
fn e2e_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn a_redirect_is_refused_naming_its_target_and_never_followed() {
    let w = World::new();
    let payload = running_vm(&w);
    // The decoy would say the VM is stopped: nothing of it may be believed.
    let decoy = w
        .pve
        .decoy_answer(json!({"status": "stopped", "vmid": 100}));
    for (action, code) in [
        ("status", 302),
        ("statuses", 301),
        ("status", 307),
        ("stop", 308),
    ] {
        w.pve.reset_requests();
        w.pve.fault(Fault::redirect(code).times(0));
        let out = w.run(action, &payload);
        let err = out.assert_error();
        assert!(
            err.contains(&format!(
                "redirect (HTTP {code} to {}/api2/extjs/",
                decoy.url
            )) && err.contains("never redirects"),
            "{action} {code}: {err}"
        );
        let requests = w.pve.requests();
        assert_eq!(
            requests.len(),
            1,
            "not retried: {:?}",
            w.pve.request_lines()
        );
        assert!(!requests[0].fault.as_ref().unwrap().forwarded);
        w.pve.clear_faults();
    }
    assert!(
        w.pve.decoy().requests.is_empty(),
        "the other host got nothing: {:?}",
        w.pve.decoy().requests
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "running", "nothing changed");
}
