//! Tasks that take time (`time_scale` > 0): polling and overlapping invocations.

use e2e::proxmox::{Payload, TestVm, World};
use e2e::pve::{NODE, Options};
use serde_json::json;

fn status_polls(w: &World) -> usize {
    w.pve
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.api_path().contains("/tasks/")
                && r.api_path().ends_with("/status")
        })
        .count()
}

#[test]
fn polling_is_quick_for_short_tasks_and_at_most_every_250_ms_on_long_ones() {
    // 1 PVE second = 10 ms.
    let w = World::with(Options { time_scale: 0.01 });
    let vm = TestVm::new();
    w.pve.add_vm(
        100,
        &vm.name,
        NODE,
        "stopped",
        json!({"tags": vm.mark(100)}),
    );
    let payload = Payload::vm(&w.pve, &vm).vmid(100);

    // A start that takes 0.2 s is seen within a few polls (at once, then 250 ms ...).
    w.pve.set_vm(100, json!({"start_secs": 20}));
    w.pve.reset_requests();
    w.run("start", &payload).assert_success();
    let short = status_polls(&w);
    assert!((2..=5).contains(&short), "{short} polls for a 0.2 s task");

    // A stop that takes 3 s: polled on a 250 ms grid, never more often (pvedaemon is shared
    // by every client of the node), however long the invocation took on a loaded machine.
    w.pve.set_vm(100, json!({"stop_secs": 300}));
    w.pve.reset_requests();
    let began = std::time::Instant::now();
    w.run_with_timeout("stop", &payload, 10).assert_success();
    let most = usize::try_from(began.elapsed().as_millis() / 250).unwrap_or(usize::MAX) + 1;
    let long = status_polls(&w);
    assert!(
        (5..=most).contains(&long),
        "{long} polls for a 3 s task (at most {most})"
    );
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
}

#[test]
fn concurrent_invocations_do_not_interfere() {
    let w = World::with(Options { time_scale: 0.01 });
    let vms: Vec<TestVm> = (0..4).map(|_| TestVm::new()).collect();
    std::thread::scope(|s| {
        for (i, vm) in (200..).zip(&vms) {
            let w = &w;
            s.spawn(move || {
                let payload = Payload::vm(&w.pve, vm).vmid(i);
                w.run("create", &payload).assert_success();
            });
        }
        // statuses while the creates run
        let w = &w;
        s.spawn(move || {
            w.run("statuses", &Payload::host(&w.pve)).assert_success();
        });
    });
    for (i, vm) in (200..).zip(&vms) {
        let created = w.pve.vm(i).unwrap();
        assert_eq!(
            (created.name.as_str(), created.status.as_str()),
            (vm.name.as_str(), "running")
        );
        assert!(created.conf("tags").unwrap().contains(&vm.uuid));
    }
}
