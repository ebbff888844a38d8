//! Names that address an object are exact (issue 9 item 12), and Windows names that would
//! become a device instead of a file or folder are refused (item 10): through both release
//! binaries and their peers, asserting nothing reached the peer or nothing changed there.

use e2e::hyperv::{Cost, Hv, UUID, VM};
use e2e::proxmox::{Payload, World};
use serde_json::{Value, json};

/// Names with whitespace around them, as a user may type or paste them.
const SPACED: [&str; 4] = [" k1", "k1 ", "\tk1", "k1\u{a0}"];

#[test]
fn proxmox_snapshot_names_are_never_trimmed() {
    let w = World::new();
    let (_, payload) = w.marked_vm(
        "running",
        json!({"scsi0": "local-lvm:vm-100-disk-0,size=8G"}),
    );
    let act = |action: &str, params: Value| w.run(action, &payload.clone().custom(action, params));
    act("CreateSnapshot", json!({"snap_name": "k1"})).assert_success();
    let before = w.pve.vm(100).unwrap().snapshots;
    for spaced in SPACED {
        w.pve.reset_requests();
        for action in ["DeleteSnapshot", "RestoreSnapshot", "CreateSnapshot"] {
            let err = act(action, json!({"snap_name": spaced})).assert_error();
            assert!(
                err.contains("'snap_name' = '")
                    && err.contains("has leading or trailing whitespace")
                    && err.contains("refused rather than trimmed"),
                "{action} {spaced:?}: {err}"
            );
        }
        assert!(
            w.pve.requests().is_empty(),
            "{spaced:?}: refused before any request"
        );
    }
    assert_eq!(
        w.pve.vm(100).unwrap().snapshots,
        before,
        "k1 is still there"
    );
    act("DeleteSnapshot", json!({"snap_name": "k1"})).assert_success();
    assert!(!w.pve.vm(100).unwrap().snapshots.contains_key("k1"));
}

#[test]
fn proxmox_vm_name_detail_is_never_trimmed() {
    let w = World::new();
    let (_, payload) = w.marked_vm("running", json!({}));
    w.pve.reset_requests();
    let spaced: Payload = payload.vm_detail("vm_name", Some(" web1"));
    let err = w.run("status", &spaced).assert_error();
    assert!(
        err.contains("'vm_name' = ' web1'") && err.contains("leading or trailing whitespace"),
        "{err}"
    );
    assert!(w.pve.requests().is_empty());
}

#[test]
fn hyperv_checkpoint_names_are_never_trimmed() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let snap = |name: &str| {
        let mut s = p.clone();
        s["parameters"] = json!({"snapshot_name": name});
        s
    };
    hv.run("CreateSnapshot", &snap("k1")).success();
    let before = hv.state().vms;
    for spaced in SPACED {
        for action in ["DeleteSnapshot", "RestoreSnapshot", "CreateSnapshot"] {
            let (run, cost) = hv.run_counted(action, &snap(spaced));
            let err = run.failure(1);
            assert!(
                err.contains("'snapshot_name' = '")
                    && err.contains("has leading or trailing whitespace")
                    && err.contains("nothing was changed"),
                "{action} {spaced:?}: {err}"
            );
            assert_eq!(cost, Cost::NONE, "{action} {spaced:?}");
        }
    }
    assert_eq!(hv.state().vms, before, "k1 is still there, and alone");
    hv.run("DeleteSnapshot", &snap("k1")).success();
    assert!(hv.state().vms[0].checkpoints.is_empty());
}

#[test]
fn hyperv_switch_and_vm_names_are_never_trimmed() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let switch = hv.host.info.switch.clone();
    let spaced_switch = hv.with_host(&p, |h| h["network_switch"] = json!(format!("{switch} ")));
    let (run, cost) = hv.run_counted("create", &spaced_switch);
    let err = run.failure(1);
    assert!(
        err.contains("'network_switch' = '") && err.contains("leading or trailing whitespace"),
        "{err}"
    );
    assert_eq!(cost, Cost::NONE);

    let mut spaced_vm = p.clone();
    spaced_vm["virtualmachinename"] = json!(format!(" {VM}"));
    let (run, cost) = hv.run_counted("create", &spaced_vm);
    let err = run.failure(1);
    assert!(err.contains("VM name ' i-2-45-VM' must be"), "{err}");
    assert_eq!(cost, Cost::NONE);
    assert!(hv.state().vms.is_empty());
}

#[test]
fn hyperv_windows_device_names_are_refused_before_connecting() {
    let hv = Hv::start();
    for name in ["CON", "nul", "Aux.vm", "COM1", "lpt9", "PRN.x.y"] {
        let p = hv.payload(name, UUID);
        for action in ["create", "delete", "status"] {
            let (run, cost) = hv.run_counted(action, &p);
            let err = run.failure(1);
            assert!(
                err.contains(&format!("VM name '{name}' is a Windows device name")),
                "{action} {name}: {err}"
            );
            assert_eq!(cost, Cost::NONE, "{action} {name}");
        }
    }
    let p = hv.payload(VM, UUID);
    let i = hv.host.info.clone();
    let cases: [(&str, String); 8] = [
        ("vhd_path", "C:\\Hyper-V\\NUL\\Disks".into()),
        ("vhd_path", "C:\\Hyper-V\\com\u{b9}".into()),
        ("vm_path", "C:\\PRN.dir".into()),
        ("vm_path", "C:\\Hyper-V\\Virtual Machines.".into()),
        ("vm_path", "C:\\Hyper-V\\Virtual Machines \\x".into()),
        ("template_path", "C:\\Templates\\con.vhdx".into()),
        ("template_path", format!("{}\\LPT1.vhdx", i.vhd_path)),
        ("iso_path", "C:\\ISO\\aux.iso".into()),
    ];
    for (key, value) in cases {
        let mut bad = p.clone();
        match key {
            "vhd_path" | "vm_path" => bad["externaldetails"]["host"][key] = json!(value),
            "iso_path" => {
                bad["externaldetails"]["virtualmachine"] = json!({
                    "template_type": "iso", "iso_path": value, "vhd_size_gb": "8",
                });
            }
            _ => bad["externaldetails"]["virtualmachine"][key] = json!(value),
        }
        let (run, cost) = hv.run_counted("create", &bad);
        let err = run.failure(1);
        assert!(
            err.contains(&format!("'{key}'"))
                && (err.contains("a Windows device name") || err.contains("trailing dot or space")),
            "{key}={value:?}: {err}"
        );
        assert_eq!(cost, Cost::NONE, "{key}={value:?}");
    }
    // Names that merely contain a device name are fine.
    let fine = hv.payload("CONSOLE-1", UUID);
    hv.run("create", &fine).success();
    assert_eq!(hv.state().vms[0].name, "CONSOLE-1");
}
