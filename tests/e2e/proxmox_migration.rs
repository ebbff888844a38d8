//! Moving from the built-in `Proxmox` extension: the payloads it gets (the fixtures, with its
//! details unchanged but for where the simulator listens) work as they are, and a VM upstream's
//! proxmox.sh made (named by `vm_name`, no mark) is adopted by its first successful action.

use e2e::fixture;
use e2e::proxmox::{Payload, World};
use e2e::pve::NODE;
use serde_json::{Value, json};

/// The secret of the fixtures' token (`root@pam!cloudstack`).
const SECRET: &str = "0f5c3e0a-5b7e-4c55-9d1e-7a1f4c2b9e10";

/// A fixture as the built-in extension would get it, pointed at the simulator.
fn upstream(w: &World, name: &str) -> Payload {
    let mut value: Value = fixture(name);
    value["externaldetails"]["host"]["url"] = json!(w.pve.url());
    Payload { value }
}

#[test]
fn upstream_details_work_unchanged_and_its_vms_are_adopted() {
    let w = World::new();
    w.pve.add_token("root@pam!cloudstack", SECRET);
    // What upstream's create leaves: the vm_name as the name, CloudStack's MAC and VLAN, no tags.
    w.pve.add_vm(
        103,
        "web01",
        NODE,
        "running",
        json!({"cores": 1, "memory": "512", "net0": "virtio=02:01:00:CC:00:01,bridge=vmbr1,tag=1577,firewall=0",
               "scsi0": "local-lvm:vm-103-disk-0,size=8G"}),
    );
    let stop = upstream(&w, "stop");
    let statuses = upstream(&w, "statuses");

    // Not yet adopted, a VM named by vm_name is not known as an instance: statuses leaves it out.
    let out = w.run("statuses", &statuses);
    assert_eq!(out.assert_success().json["power_state"], json!({}));

    // Its first successful action adopts it by name.
    let out = w.run("status", &stop);
    assert_eq!(out.assert_success().json["power_state"], "poweron");
    let tags = w.pve.vm(103).unwrap().conf("tags").unwrap_or_default();
    assert_eq!(
        tags,
        "cloudstack;cs-uuid.126f4562-1f0f-4313-875e-6150cabeb72f;cs-name.i-2-45-+v+m;cs-vmid.103"
    );
    let out = w.run("statuses", &statuses);
    assert_eq!(
        out.assert_success().json["power_state"],
        json!({"i-2-45-VM": "poweron"})
    );

    // Upstream's custom actions, with upstream's parameter names.
    w.run("CreateSnapshot", &upstream(&w, "custom-createsnapshot"))
        .assert_success();
    assert!(
        w.pve
            .vm(103)
            .unwrap()
            .snapshots
            .contains_key("before-upgrade")
    );
    w.run("stop", &stop).assert_success();
    assert_eq!(w.pve.vm(103).unwrap().status, "stopped");

    // The check finds nothing misspelt in the built-in's details (it warns about TLS).
    let out = w.run("check", &stop);
    let rows = out.assert_success().json["message"]
        .as_array()
        .unwrap()
        .clone();
    let result = |probe: &str| {
        rows.iter()
            .find(|r| r["probe"] == probe)
            .map(|r| r["result"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(result("details"), "ok", "{}", out.stdout);
    assert_eq!(result("tls"), "warn", "{}", out.stdout);
    assert_eq!(result("token"), "ok", "{}", out.stdout);
}
