//! One meaning of "this VM is gone" (issue 9 item 15, the rule in docs/reliability.md "What
//! 'gone' means"), through the release binary and the test host: a VM no VM of the host
//! answers to is `poweroff` to `status` and absent from `statuses`; a host that cannot be
//! checked fails both (CloudStack: PowerUnknown, then falls back to `status`); a VM that is
//! not this instance's is refused by `status`, saying whose it is, and left out of `statuses`.

use e2e::hyperv::{Cost, Hv, UUID, VM};
use hyperv_testhost::Knobs;
use serde_json::{Value, json};

const OTHER: &str = "00000000-1111-2222-3333-444444444444";

fn statuses(hv: &Hv, p: &Value) -> Value {
    hv.run("statuses", p).success()["power_state"].clone()
}

#[test]
fn a_vm_absent_from_the_host_is_poweroff_and_missing_from_statuses() {
    let hv = Hv::start();
    let other = hv.payload("i-2-46-VM", OTHER);
    hv.run("create", &other).success();
    let p = hv.payload(VM, UUID);
    let (run, cost) = hv.run_counted("status", &p);
    let doc = run.success();
    assert_eq!(
        (doc["power_state"].clone(), doc["message"].clone()),
        (
            json!("poweroff"),
            json!("VM i-2-45-VM does not exist on the host")
        )
    );
    assert_eq!(cost, Cost::ONE, "the host was asked");
    assert_eq!(statuses(&hv, &p), json!({"i-2-46-VM": "poweron"}));

    // Deleted: gone the same way.
    hv.run("delete", &other).success();
    assert_eq!(
        hv.run("status", &other).success()["power_state"],
        "poweroff"
    );
    assert_eq!(statuses(&hv, &p), json!({}));
}

#[test]
fn a_host_that_cannot_be_checked_fails_status_and_statuses() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let before = hv.state().vms;

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = hv.with_host(&p, |h| h["port"] = json!(port.to_string()));
    // Another host key: the host cannot be trusted, so it is not asked.
    let untrusted = hv.with_host(&p, |h| {
        h["host_key_fingerprint"] = json!("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik");
    });
    for (why, payload, needle) in [
        ("unreachable", &unreachable, "cannot connect to 127.0.0.1:"),
        ("untrusted", &untrusted, "host key mismatch"),
    ] {
        for action in ["status", "statuses"] {
            let err = hv.run(action, payload).failure(1);
            assert!(err.contains(needle), "{why} {action}: {err}");
        }
    }
    // Reached, but it cannot say: no Hyper-V rights, or an answer that cannot be read.
    for (knobs, needle) in [
        (
            Knobs {
                permission_denied: true,
                ..Knobs::default()
            },
            "has no Hyper-V rights",
        ),
        (
            Knobs {
                garbage: true,
                ..Knobs::default()
            },
            "printed no result line",
        ),
    ] {
        hv.host.knobs(&knobs);
        for action in ["status", "statuses"] {
            let err = hv.run(action, &p).failure(1);
            assert!(err.contains(needle), "{action}: {err}");
        }
    }
    hv.host.knobs(&Knobs::default());
    assert_eq!(hv.state().vms, before, "nothing changed");
    assert_eq!(statuses(&hv, &p), json!({VM: "poweron"}));
}

#[test]
fn a_same_named_vm_of_another_uuid_is_refused_by_status_and_left_out_of_statuses() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.seed_vm(VM, &format!("cloudstack-vm-uuid={OTHER}"), "Running");
    let before = hv.state().vms;
    // Before this management server has seen the instance, statuses cannot tell (it has no
    // UUIDs): the VM is reported by its name, as before.
    assert_eq!(statuses(&hv, &p), json!({VM: "poweron"}));
    let err = hv.run("status", &p).failure(1);
    assert!(
        err.contains(&format!(
            "it is not CloudStack VM {UUID} (it is marked as CloudStack VM {OTHER}, not {UUID}"
        )) && err.contains("refusing to touch it"),
        "{err}"
    );
    // status told it which UUID CloudStack's i-2-45-VM has: the other VM is left out now.
    assert_eq!(statuses(&hv, &p), json!({}));
    // Ours beside it is reported, as status finds it.
    let mut ours = p.clone();
    ours["cloudstack.vm.details"]["nics"][0]["mac"] = json!("02:01:00:cc:09:01");
    hv.host.update(|s| s.vms[0].name = "parked".into());
    hv.run("create", &ours).success();
    hv.host.update(|s| s.vms[0].name = VM.into());
    hv.run("stop", &ours).success();
    assert_eq!(statuses(&hv, &p), json!({VM: "poweroff"}));
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    assert_eq!(
        hv.state().vms[0],
        before[0],
        "the other VM was never touched"
    );
}

#[test]
fn a_foreign_unmarked_vm_of_the_name_is_refused_and_never_reported() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.seed_vm(VM, "made by hand", "Running");
    let before = hv.state().vms;
    let err = hv.run("status", &p).failure(1);
    assert!(
        err.contains("carries no ownership line") && err.contains("adopt_unmarked_vms=true"),
        "{err}"
    );
    assert_eq!(statuses(&hv, &p), json!({}));
    assert_eq!(hv.state().vms, before);
}

/// The same rule over WinRM (upstream's details): gone, unknown (credentials refused, an
/// unreadable answer) and another UUID's VM.
#[test]
fn over_winrm_gone_unknown_and_foreign_follow_the_same_rule() {
    let hv = Hv::start_winrm();
    let p = hv.payload(VM, UUID);
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    assert_eq!(statuses(&hv, &p), json!({}));

    hv.seed_vm(VM, &format!("cloudstack-vm-uuid={OTHER}"), "Running");
    let before = hv.state().vms;
    let wrong = hv.with_host(&p, |h| h["password"] = json!("Wrong-Password-31"));
    for action in ["status", "statuses"] {
        let err = hv.run(action, &wrong).failure(1);
        assert!(err.contains("rejected the credentials"), "{action}: {err}");
    }
    hv.host.knobs(&Knobs {
        garbage: true,
        ..Knobs::default()
    });
    for action in ["status", "statuses"] {
        let err = hv.run(action, &p).failure(1);
        assert!(err.contains("printed no result line"), "{action}: {err}");
    }
    hv.host.knobs(&Knobs::default());
    let err = hv.run("status", &p).failure(1);
    assert!(
        err.contains(&format!(
            "it is marked as CloudStack VM {OTHER}, not {UUID}"
        )),
        "{err}"
    );
    assert_eq!(statuses(&hv, &p), json!({}), "status told it the UUID");
    assert_eq!(hv.state().vms, before, "the other VM untouched");
}
