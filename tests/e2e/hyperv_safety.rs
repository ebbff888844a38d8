//! Never touching what is not ours, Hyper-V's semantics, and failing cleanly: through the
//! release binary, asserting the answer and the host's state.

use e2e::hyperv::{Cost, Hv, UUID, VM, disk_of};
use hyperv_testhost::Knobs;
use hyperv_testhost::state::{Checkpoint, Vm};
use serde_json::{Value, json};

/// A VM someone else made, with a disk file under our vhd_path.
fn foreign(hv: &Hv, name: &str, notes: &str, state: &str) -> Vm {
    hv.seed_vm(name, notes, state)
}

#[test]
fn a_vm_that_is_not_ours_is_never_touched() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let other_uuid = "00000000-1111-2222-3333-444444444444";
    let theirs = foreign(
        &hv,
        VM,
        &format!("cloudstack-vm-uuid={other_uuid}"),
        "Running",
    );
    let before = hv.state().vms;
    let mut snap = p.clone();
    snap["parameters"] = json!({"snapshot_name": "x"});
    for (action, payload) in [
        ("stop", &p),
        ("delete", &p),
        ("start", &p),
        ("reboot", &p),
        ("Suspend", &p),
        ("status", &p),
        ("CreateSnapshot", &snap),
        ("RestoreSnapshot", &snap),
    ] {
        let err = hv.run(action, payload).failure(1);
        assert!(
            err.contains("is not CloudStack VM") && err.contains("refusing to touch it"),
            "{action}: {err}"
        );
    }
    let err = hv.run("create", &p).failure(1);
    assert!(
        err.contains("already exists") && err.contains("nothing was created"),
        "{err}"
    );
    assert_eq!(hv.state().vms, before, "nothing changed");
    assert!(hv.exists(&theirs.disks[0]));
    assert!(!hv.exists(&disk_of(&hv, VM)), "create made no disk");
    // Nor does statuses report it as this instance's: the actions above told this management
    // server that CloudStack's i-2-45-VM has another UUID than the VM's mark.
    assert_eq!(hv.run("statuses", &p).success()["power_state"], json!({}));
}

#[test]
fn statuses_reports_every_cloudstack_vm_in_one_call_and_nothing_else() {
    let hv = Hv::start();
    let mut names = Vec::new();
    for (i, uuid) in [
        "aaaaaaaa-0000-0000-0000-000000000001",
        "aaaaaaaa-0000-0000-0000-000000000002",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("i-2-{}-VM", 50 + i);
        let mut p = hv.payload(&name, uuid);
        // distinct MACs per VM, as CloudStack assigns them
        p["cloudstack.vm.details"]["nics"][0]["mac"] = json!(format!("02:01:00:cc:0{i}:01"));
        p["cloudstack.vm.details"]["nics"][1]["mac"] = json!(format!("02:01:00:cc:0{i}:02"));
        hv.run("create", &p).success();
        names.push((name, p));
    }
    hv.run("stop", &names[1].1).success();
    foreign(&hv, "web-frontend", "", "Running");
    foreign(&hv, "backup-appliance", "managed by someone else", "Off");
    let (run, cost) = hv.run_counted("statuses", &names[0].1);
    assert_eq!(cost, Cost::ONE);
    assert_eq!(
        run.success(),
        json!({"status": "success", "power_state": {"i-2-50-VM": "poweron", "i-2-51-VM": "poweroff"}})
    );
}

#[test]
fn duplicates_are_refused_not_guessed() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let marker = format!("cloudstack-vm-uuid={UUID}");
    foreign(&hv, VM, &marker, "Running");
    foreign(&hv, VM, &marker, "Running");
    let before = hv.state().vms;
    for action in ["stop", "delete", "status"] {
        let err = hv.run(action, &p).failure(1);
        assert!(
            err.contains("2 VMs named") && err.contains("remove the duplicate"),
            "{action}: {err}"
        );
    }
    assert_eq!(hv.state().vms, before);
    assert_eq!(
        hv.run("statuses", &p).success()["power_state"],
        json!({VM: "unknown"})
    );
}

#[test]
fn create_rolls_back_and_reports_the_original_error() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    for step in ["network", "media", "start"] {
        hv.host.knobs(&Knobs {
            throw_at: Some(step.into()),
            ..Knobs::default()
        });
        let err = hv.run("create", &p).failure(1);
        assert!(
            err.contains(&format!("failed at step '{step}'")) && err.contains("injected fault"),
            "{err}"
        );
        assert!(
            err.contains("everything created so far was removed"),
            "{err}"
        );
        assert!(hv.state().vms.is_empty(), "{step}: rolled back");
        assert!(!hv.exists(&disk_of(&hv, VM)), "{step}: disk removed");
    }
    // When the rollback fails too, the original error still comes first.
    hv.host.knobs(&Knobs {
        throw_at: Some("network".into()),
        rollback_throws: true,
        ..Knobs::default()
    });
    let err = hv.run("create", &p).failure(1);
    let original = err
        .find("failed at step 'network'")
        .expect("original error");
    let rollback = err.find("the rollback failed too").expect("rollback error");
    assert!(original < rollback, "{err}");
    assert_eq!(
        hv.state().vms.len(),
        1,
        "what could not be undone is reported, and left"
    );
    hv.host.knobs(&Knobs::default());
    assert!(hv.exists(&hv.host.info.template_path));
    // PowerShell's stderr (CLIXML) reached the log decoded, and only the log.
    let log = hv.scratch.log();
    assert!(
        log.contains("stderr (") && log.contains("injected fault at step 'network'"),
        "{log}"
    );
    assert!(!log.contains("<Objs") && !log.contains("_x000D_"), "{log}");
}

#[test]
fn bad_input_is_refused_before_connecting_naming_every_problem() {
    let hv = Hv::start();
    let mut p = hv.payload(VM, UUID);
    p["cloudstack.vm.details"]["minRam"] = json!(4077u64 * 1024 * 1024);
    p["cloudstack.vm.details"]["cpus"] = json!(0);
    p["cloudstack.vm.details"]["nics"][0]["mac"] = json!("25:b6:84:17:8c:63");
    p["cloudstack.vm.details"]["nics"][1]["broadcastUri"] = json!("vxlan://5000");
    p["externaldetails"]["virtualmachine"]["secure_boot"] = json!("on");
    p["externaldetails"]["virtualmachine"]["generation"] = json!("1");
    p["externaldetails"]["host"]["vhd_path"] = json!("Hyper-V\\Disks");
    p["externaldetails"]["host"]
        .as_object_mut()
        .unwrap()
        .remove("network_switch");
    let (run, cost) = hv.run_counted("create", &p);
    let err = run.failure(1);
    for needle in [
        "'network_switch'",
        "vhd_path",
        "secure boot needs generation 2",
        "4077 MiB is odd",
        "0 CPUs",
        "multicast",
        "vxlan://5000",
        "nothing was changed",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert_eq!(cost, Cost::NONE);
}

#[test]
fn iso_install_generation_2_with_the_uefi_ca_template() {
    let hv = Hv::start();
    let mut p = hv.payload(VM, UUID);
    p["externaldetails"]["virtualmachine"] = json!({
        "template_type": "iso", "generation": 2, "iso_path": hv.host.info.iso_path,
        "vhd_size_gb": "20", "secure_boot": "on-uefi-ca",
    });
    hv.run("create", &p).success();
    let vm = hv.state().vms[0].clone();
    assert_eq!(vm.dvds, vec![hv.host.info.iso_path.clone()]);
    let fw = vm.firmware.unwrap();
    assert_eq!(
        (
            fw.secure_boot.as_str(),
            fw.secure_boot_template.as_str(),
            fw.first_boot.as_str()
        ),
        ("On", "MicrosoftUEFICertificateAuthority", "dvd")
    );
    let disk = std::fs::metadata(hv.host.local(&disk_of(&hv, VM))).unwrap();
    assert_eq!(disk.len(), 20 << 30, "a dynamic disk of vhd_size_gb");
    // Delete removes the disk but never the shared ISO.
    hv.run("delete", &p).success();
    assert!(!hv.exists(&disk_of(&hv, VM)));
    assert!(hv.exists(&hv.host.info.iso_path));
}

#[test]
fn stop_falls_back_to_power_off_or_refuses_as_configured() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let hang = |hv: &Hv| hv.host.update(|s| s.vms[0].guest_shutdown = "hangs".into());
    hang(&hv);
    let quick = hv.with_host(&p, |h| h["stop_timeout"] = json!("1"));
    let doc = hv.run("stop", &quick).success();
    assert!(
        doc["message"].as_str().unwrap().contains("powered off"),
        "{doc}"
    );
    let vm = hv.state().vms[0].clone();
    assert_eq!(
        (vm.state.as_str(), vm.last_stop.as_deref()),
        ("Off", Some("turnoff"))
    );
    let waited = hv.state().launches.last().unwrap().data.clone();
    assert_eq!(
        (waited["wait"].clone(), waited["fallback"].clone()),
        (json!(1), json!(true))
    );

    hv.run("start", &p).success();
    let graceful_only = hv.with_host(&quick, |h| h["stop_mode"] = json!("graceful"));
    let err = hv.run("stop", &graceful_only).failure(1);
    assert!(
        err.contains("did not shut down") && err.contains("stop_mode=graceful"),
        "{err}"
    );
    assert_eq!(
        hv.state().vms[0].state,
        "Running",
        "left running, as configured"
    );

    hv.host.update(|s| s.vms[0].guest_shutdown = "fails".into());
    hv.run("stop", &quick).success();
    assert_eq!(hv.state().vms[0].last_stop.as_deref(), Some("turnoff"));

    hv.run("start", &p).success();
    let turnoff = hv.with_host(&p, |h| h["stop_mode"] = json!("turnoff"));
    hv.run("stop", &turnoff).success();
    assert_eq!(
        hv.state().launches.last().unwrap().data["turnoff"],
        json!(true)
    );
    assert_eq!(hv.state().vms[0].last_stop.as_deref(), Some("turnoff"));
}

#[test]
fn power_transitions_follow_hyper_v() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    assert!(
        hv.run("start", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("already running")
    );
    assert!(
        hv.run("Resume", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("already running")
    );
    hv.run("Suspend", &p).success();
    assert!(
        hv.run("Suspend", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("already suspended")
    );
    let err = hv.run("reboot", &p).failure(1);
    assert!(err.contains("is Paused"), "{err}");
    assert!(
        hv.run("start", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("resumed")
    );
    hv.run("stop", &p).success();
    let err = hv.run("Suspend", &p).failure(1);
    assert!(err.contains("VM i-2-45-VM is Off"), "{err}");
    let err = hv.run("Resume", &p).failure(1);
    assert!(err.contains("is Off"), "{err}");
    assert!(
        hv.run("stop", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("already off")
    );
    // Saved counts as off for CloudStack and starts again.
    hv.host.update(|s| s.vms[0].state = "Saved".into());
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");
    hv.run("start", &p).success();
    assert_eq!(hv.state().vms[0].state, "Running");
    hv.host
        .update(|s| s.vms[0].state = "RunningCritical".into());
    assert_eq!(hv.run("status", &p).success()["power_state"], "unknown");
    assert_eq!(hv.state().rejected, 0);
}

#[test]
fn checkpoints_by_exact_name_or_id_and_restore_reports_the_state() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let snap = |name: &str| {
        let mut s = p.clone();
        s["parameters"] = json!({"snapshot_name": name});
        s
    };
    hv.run("CreateSnapshot", &snap("base")).success();
    let err = hv.run("CreateSnapshot", &snap("base")).failure(1);
    assert!(
        err.contains("already has a checkpoint with that name"),
        "{err}"
    );
    // Hyper-V itself allows duplicates: someone made a second "base" by hand.
    let first = hv.host.update(|s| {
        let vm = &mut s.vms[0];
        let first = vm.checkpoints[0].clone();
        vm.checkpoints.push(Checkpoint {
            id: "ffffffff-0000-4000-8000-000000000001".into(),
            ..first.clone()
        });
        first
    });
    let err = hv.run("RestoreSnapshot", &snap("base")).failure(1);
    assert!(
        err.contains("2 checkpoints") && err.contains("by its id"),
        "{err}"
    );
    let err = hv.run("DeleteSnapshot", &snap("bas*")).failure(1);
    assert!(
        err.contains("no checkpoint with that name"),
        "no wildcards: {err}"
    );
    assert_eq!(hv.state().vms[0].checkpoints.len(), 2);

    // By id, in any case.
    let doc = hv
        .run("RestoreSnapshot", &snap(&first.id.to_uppercase()))
        .success();
    assert_eq!(
        (doc["power_state"].clone(), doc["state"].clone()),
        (json!("poweroff"), json!("Off"))
    );
    hv.run("DeleteSnapshot", &snap(&first.id)).success();
    let left: Vec<String> = hv.state().vms[0]
        .checkpoints
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(
        left,
        vec!["ffffffff-0000-4000-8000-000000000001".to_owned()]
    );

    // A standard checkpoint of a running VM keeps its memory: restored, the VM is Saved.
    hv.run("RestoreSnapshot", &snap("base")).success();
    hv.run("start", &p).success();
    hv.host
        .update(|s| s.vms[0].checkpoint_type = "Standard".into());
    hv.run("CreateSnapshot", &snap("with-memory")).success();
    let doc = hv.run("RestoreSnapshot", &snap("with-memory")).success();
    assert_eq!(
        (doc["power_state"].clone(), doc["state"].clone()),
        (json!("poweroff"), json!("Saved")),
        "{doc}"
    );
    let rows = hv.run("ListSnapshots", &p).success()["message"].clone();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "with-memory"]);
    assert_eq!(rows[1]["parent"], Value::String("base".into()));
}

#[test]
fn delete_removes_only_this_vms_disks_under_vhd_path() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    // A data disk someone attached from outside vhd_path: Remove-VM keeps every disk, and we
    // delete only what lies under vhd_path.
    let outside = "C:\\Elsewhere\\data.vhdx";
    std::fs::create_dir_all(hv.host.local("C:\\Elsewhere")).unwrap();
    std::fs::write(hv.host.local(outside), b"data").unwrap();
    hv.host.update(|s| s.vms[0].disks.push(outside.into()));
    let doc = hv.run("delete", &p).success();
    assert_eq!(doc["removed_disks"], json!([disk_of(&hv, VM)]));
    assert_eq!(doc["kept_disks"], json!([outside]));
    assert!(
        doc["message"].as_str().unwrap().contains("kept 1 disk(s)"),
        "{doc}"
    );
    assert!(hv.state().vms.is_empty());
    assert!(!hv.exists(&disk_of(&hv, VM)));
    assert!(hv.exists(outside), "Remove-VM kept it and so did we");
}
