//! The whole VM lifecycle through the release binary against fakepve, and what PVE holds
//! after each step.

use e2e::proxmox::{Payload, TestVm, World, nic};
use e2e::pve::{ISO_VOLUME, NODE, TEMPLATE_VMID};
use serde_json::json;

#[test]
fn prepare_create_status_snapshots_reboot_stop_delete() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm);

    // prepare: a VMID from /cluster/nextid, as a merge patch of the VM details
    let prepared = w.run("prepare", &payload);
    prepared.assert_success_or_patch();
    assert_eq!(prepared.json, json!({"details": {"proxmox_vmid": "100"}}));
    // the lowest free id, the ids in use, then Proxmox confirms 100 is free
    assert_eq!(
        w.pve.request_lines(),
        [
            "GET /cluster/nextid",
            "GET /cluster/resources",
            "GET /cluster/nextid"
        ]
    );
    assert_eq!(w.pve.requests()[2].query, "vmid=100");
    let payload = payload.vmid(100);

    // create: linked clone of the template, sized, NIC with MAC/bridge/VLAN, started
    w.pve.reset_requests();
    w.run("create", &payload).assert_success();
    let created = w.pve.vm(100).expect("VM 100 exists");
    assert_eq!(created.status, "running");
    assert_eq!(created.name, vm.name);
    assert_eq!(created.conf("cores").as_deref(), Some("2"));
    assert_eq!(created.conf("memory").as_deref(), Some("1024"));
    let mac = format!("02:01:00:CC:{:02X}:01", vm.id % 256);
    assert_eq!(
        created.conf("net0").unwrap(),
        format!("virtio={mac},bridge=vmbr1,tag=1577,firewall=0")
    );
    let tags = created.conf("tags").unwrap();
    assert!(tags.contains(&format!("cs-uuid.{}", vm.uuid)), "{tags}");
    assert!(tags.contains("cs-name.i-2-"), "{tags}");
    assert!(
        created
            .conf("scsi0")
            .unwrap()
            .starts_with("local-lvm:vm-100-disk-0")
    );
    let requests = w.pve.requests();
    let clone = requests
        .iter()
        .find(|r| r.api_path().ends_with("/clone"))
        .expect("clone request");
    assert_eq!(
        clone.line(),
        format!("POST /nodes/{NODE}/qemu/{TEMPLATE_VMID}/clone")
    );
    assert_eq!(clone.form.get("full").map(String::as_str), Some("0"));
    assert!(
        !clone.form.contains_key("storage"),
        "linked clone without storage: {:?}",
        clone.form
    );
    assert!(requests.iter().all(|r| r.path.starts_with("/api2/extjs/")));
    assert!(
        requests
            .iter()
            .all(|r| r.token.as_deref() == Some("root@pam!cs"))
    );
    w.pve.assert_clean_paths();

    // status
    let status = w.run("status", &payload);
    assert_eq!(
        status.json,
        json!({"status": "success", "power_state": "poweron"})
    );

    // snapshots: create, list (no `current`, ISO 8601 times), restore, delete
    let snap = |action: &str, params: serde_json::Value| {
        w.run(action, &payload.clone().custom(action, params))
    };
    snap("CreateSnapshot", json!({"snap_name": "before-upgrade", "snap_description": "pre", "snap_save_memory": false}))
        .assert_success();
    assert!(
        w.pve
            .vm(100)
            .unwrap()
            .snapshots
            .contains_key("before-upgrade")
    );
    let listed = snap("ListSnapshots", json!({}));
    listed.assert_success();
    assert_eq!(listed.json["printmessage"], "true");
    let rows = listed.json["message"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "before-upgrade");
    assert_eq!(rows[0]["description"], "pre");
    let time = rows[0]["snaptime"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    snap("RestoreSnapshot", json!({"snap_name": "before-upgrade"})).assert_success();
    assert_eq!(
        w.pve.vm(100).unwrap().status,
        "running",
        "running again after the rollback"
    );
    snap("DeleteSnapshot", json!({"snap_name": "before-upgrade"})).assert_success();
    assert!(w.pve.vm(100).unwrap().snapshots.is_empty());

    // reboot, stop
    w.pve.reset_requests();
    w.run("reboot", &payload).assert_success();
    assert!(
        w.pve
            .request_lines()
            .contains(&"POST /nodes/pve1/qemu/100/status/reboot".to_string())
    );
    w.run("stop", &payload).assert_success();
    assert_eq!(w.pve.vm(100).unwrap().status, "stopped");
    assert_eq!(w.run("status", &payload).json["power_state"], "poweroff");

    // delete, then delete again: a VM that is gone is a success
    w.run("delete", &payload).assert_success();
    assert!(w.pve.vm(100).is_none());
    assert!(
        w.pve
            .volumes("local-lvm")
            .iter()
            .all(|v| !v.contains("vm-100-")),
        "disks removed"
    );
    w.pve.reset_requests();
    w.run("delete", &payload).assert_success();
    w.run("stop", &payload).assert_success();
    assert!(
        w.pve.requests().iter().all(|r| !r.is_write()),
        "nothing to change: {:?}",
        w.pve.request_lines()
    );
    w.pve.assert_clean_paths();
}

#[test]
fn iso_install_with_two_nics() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm)
        .vm_detail("template_type", Some("iso"))
        .vm_detail("template_id", None)
        .vm_detail("iso_path", Some(ISO_VOLUME))
        .vm_detail("disk_size_gb", Some("16"))
        .vm_detail("vm_name", Some("web01"))
        .nics(vec![
            nic(0, "02:01:00:cc:00:0a", "vlan://untagged"),
            nic(1, "02:01:00:cc:00:0b", "vlan://42"),
        ]);
    let vmid = w.deploy_with(payload.clone());
    let created = w.pve.vm(vmid).unwrap();
    assert_eq!(created.name, "web01");
    assert_eq!(created.status, "running");
    assert!(
        created
            .conf("ide2")
            .unwrap()
            .starts_with(&format!("{ISO_VOLUME},media=cdrom"))
    );
    assert!(
        created
            .conf("scsi0")
            .unwrap()
            .starts_with(&format!("local-lvm:vm-{vmid}-disk-0"))
    );
    assert!(created.conf("scsi0").unwrap().contains("size=16G"));
    assert_eq!(created.conf("ostype").as_deref(), Some("l26"));
    assert_eq!(
        created.conf("net0").unwrap(),
        "virtio=02:01:00:CC:00:0A,bridge=vmbr1,firewall=0"
    );
    assert_eq!(
        created.conf("net1").unwrap(),
        "virtio=02:01:00:CC:00:0B,bridge=vmbr1,firewall=0,tag=42"
    );
    let create = w
        .pve
        .requests()
        .into_iter()
        .find(|r| r.line() == "POST /nodes/pve1/qemu")
        .expect("create");
    assert!(
        !create.form["net0"].contains("tag="),
        "untagged NIC: {}",
        create.form["net0"]
    );

    // statuses keys by CloudStack instance name, even though Proxmox calls it web01
    let statuses = w.run("statuses", &Payload::host(&w.pve));
    statuses.assert_success();
    assert_eq!(
        statuses.json["power_state"],
        json!({ vm.name.clone(): "poweron" })
    );
    w.pve.assert_clean_paths();
}
