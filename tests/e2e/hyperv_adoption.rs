//! VMs made by upstream's hyperv.py carry no ownership line (issue 10 item 6): one named
//! `<instance name>-<uuid>` (upstream's documented naming) is adopted, one with only the bare
//! instance name only when the operator opts in with `adopt_unmarked_vms=true`; adoption
//! writes the mark on the first successful action. Through the release binary and the test
//! host.

use e2e::hyperv::{Cost, Hv, UUID, VM};
use serde_json::{Value, json};

const OTHER: &str = "00000000-1111-2222-3333-444444444444";

fn mark() -> String {
    format!("cloudstack-vm-uuid={UUID}")
}

fn notes(hv: &Hv, name: &str) -> String {
    hv.state()
        .vms
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.notes.clone())
        .unwrap_or_default()
}

fn statuses(hv: &Hv, p: &Value) -> Value {
    hv.run("statuses", p).success()["power_state"].clone()
}

#[test]
fn an_upstream_vm_named_with_its_uuid_is_adopted_on_its_first_successful_action() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let upstream = format!("{VM}-{UUID}");
    let seeded = hv.seed_vm(&upstream, "deployed by hyperv.py", "Running");
    // Reported under its instance name before it is adopted: CloudStack must not take a
    // running VM for a stopped one after the switch.
    assert_eq!(statuses(&hv, &p), json!({VM: "poweron"}));
    assert_eq!(
        notes(&hv, &upstream),
        "deployed by hyperv.py",
        "statuses writes nothing"
    );

    // Its first successful action (a Resume: it runs already) adopts it.
    let doc = hv.run("Resume", &p).success();
    assert!(doc["message"].as_str().unwrap().contains("already running"));
    assert_eq!(
        notes(&hv, &upstream),
        format!("deployed by hyperv.py\r\n{}", mark()),
        "the first successful action wrote the mark, after the Notes that were there"
    );
    let log = hv.scratch.log();
    assert!(log.contains("adopted the VM"), "{log}");

    // From now on it is ours like any other: one launch per action, the mark kept.
    let (run, cost) = hv.run_counted("stop", &p);
    assert!(
        run.success()["message"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
    assert_eq!(cost, Cost::ONE);
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    assert_eq!(statuses(&hv, &p), json!({VM: "poweroff"}));
    hv.run("start", &p).success();
    assert_eq!(notes(&hv, &upstream).matches(&mark()).count(), 1);

    // delete removes it and its disk under vhd_path.
    hv.run("delete", &p).success();
    assert!(hv.state().vms.is_empty());
    assert!(!hv.exists(&seeded.disks[0]));
}

#[test]
fn a_failed_action_adopts_nothing() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let upstream = format!("{VM}-{UUID}");
    hv.seed_vm(&upstream, "", "Off");
    let err = hv.run("Suspend", &p).failure(1);
    assert!(err.contains("is Off"), "{err}");
    assert_eq!(notes(&hv, &upstream), "");
    // Then status succeeds, and adopts it (the mark alone: the Notes were empty).
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    assert_eq!(notes(&hv, &upstream), mark());
}

#[test]
fn a_vm_with_the_bare_instance_name_is_adopted_only_when_the_operator_opts_in() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let seeded = hv.seed_vm(VM, "", "Running");
    let before = hv.state().vms;
    for action in ["status", "stop", "delete", "start"] {
        let (run, cost) = hv.run_counted(action, &p);
        let err = run.failure(1);
        assert!(
            err.contains("carries no ownership line")
                && err.contains("as VMs made by upstream's hyperv.py")
                && err.contains("set adopt_unmarked_vms=true"),
            "{action}: {err}"
        );
        assert_eq!(cost, Cost::ONE);
    }
    assert_eq!(statuses(&hv, &p), json!({}));
    assert_eq!(hv.state().vms, before, "nothing changed");

    // Opted in on the extension: statuses reports it, the first success adopts it.
    let mut opted = p.clone();
    opted["externaldetails"]["extension"] = json!({"adopt_unmarked_vms": "true"});
    assert_eq!(statuses(&hv, &opted), json!({VM: "poweron"}));
    assert!(
        hv.run("stop", &opted).success()["message"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
    assert_eq!(notes(&hv, VM), mark());
    // Marked now: found without the opt-in too.
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    hv.run("delete", &p).success();
    assert!(!hv.exists(&seeded.disks[0]));
}

#[test]
fn the_opt_in_never_adopts_a_vm_that_is_not_alone_with_its_name_or_is_marked() {
    let hv = Hv::start();
    let mut p = hv.payload(VM, UUID);
    p["externaldetails"]["host"]["adopt_unmarked_vms"] = json!("true");
    // Two unmarked VMs of the name: which would be CloudStack's?
    hv.seed_vm(VM, "", "Running");
    hv.seed_vm(VM, "", "Off");
    let err = hv.run("stop", &p).failure(1);
    assert!(
        err.contains("2 VMs named i-2-45-VM") && err.contains("only VM of the name"),
        "{err}"
    );
    assert_eq!(statuses(&hv, &p), json!({VM: "unknown"}));
    // One unmarked beside one marked for another UUID: refused as well.
    hv.host.update(|s| {
        s.vms[1].notes = format!("cloudstack-vm-uuid={OTHER}");
    });
    let err = hv.run("stop", &p).failure(1);
    assert!(err.contains("not CloudStack VM"), "{err}");
    // An upstream-named VM marked for another UUID is not this instance's either.
    hv.host.update(|s| s.vms.clear());
    hv.seed_vm(
        &format!("{VM}-{UUID}"),
        &format!("cloudstack-vm-uuid={OTHER}"),
        "Off",
    );
    let err = hv.run("start", &p).failure(1);
    assert!(
        err.contains(&format!("marked as CloudStack VM {OTHER}")),
        "{err}"
    );
    let vms = hv.state().vms;
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].state, "Off");
}

/// What upstream's users have: its VMs and its host details (WinRM, no SSH detail).
#[test]
fn over_winrm_with_upstreams_details_an_upstream_vm_is_adopted() {
    let hv = Hv::start_winrm();
    let p = hv.payload(VM, UUID);
    let upstream = format!("{VM}-{UUID}");
    hv.seed_vm(&upstream, "deployed by hyperv.py", "Running");
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweron");
    assert_eq!(
        notes(&hv, &upstream),
        format!("deployed by hyperv.py\r\n{}", mark()),
        "the first successful action wrote the mark"
    );
    hv.run("stop", &p).success();
    assert_eq!(statuses(&hv, &p), json!({VM: "poweroff"}));
    assert_eq!(
        hv.state().vms.len(),
        1,
        "the VM kept its name, nothing else made"
    );
    assert_eq!(hv.host.winrm_counters().commands, 3, "every run over WinRM");
}
