//! A VM's whole life through the release binary against a real sshd and the fake Hyper-V
//! host, asserting each answer AND the host's state, and that every action cost exactly one
//! SSH connection and one PowerShell start.

use e2e::hyperv::{Cost, Hv, UUID, VM, disk_of};
use serde_json::json;

const ONE: Cost = Cost::ONE;

fn vm(hv: &Hv) -> hyperv_testhost::state::Vm {
    let state = hv.state();
    let found: Vec<_> = state.vms.iter().filter(|v| v.name == VM).cloned().collect();
    assert_eq!(found.len(), 1, "exactly one VM {VM}: {:#?}", state.vms);
    found[0].clone()
}

#[test]
fn full_lifecycle_by_password() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);

    let (run, cost) = hv.run_counted("create", &p);
    let doc = run.success();
    assert_eq!(cost, ONE, "create");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("created and started"),
        "{doc}"
    );
    let v = vm(&hv);
    assert_eq!(v.state, "Running");
    assert_eq!(
        (v.generation, v.cpus, v.memory_bytes),
        (2, 2, 512 * 1024 * 1024)
    );
    // The ownership line, and the line naming the run that made it (for its clean-up).
    let (mark, made_by) = v.notes.split_once("\r\n").expect("two lines");
    assert_eq!(mark, format!("cloudstack-vm-uuid={UUID}"));
    let create = &hv.state().launches[0];
    assert_eq!(
        made_by,
        format!(
            "cloudstack-create-id={}",
            create.data["id"].as_str().unwrap()
        )
    );
    let disk = disk_of(&hv, VM);
    assert_eq!(v.disks, vec![disk.clone()]);
    assert_eq!(
        hv.file(&disk),
        hv.file(&hv.host.info.template_path),
        "the template was copied"
    );
    assert!(!hv.exists(&format!("{disk}.partial")));
    let adapters: Vec<(String, String, Option<String>, Option<u16>)> = v
        .adapters
        .iter()
        .map(|a| (a.name.clone(), a.mac.clone(), a.switch.clone(), a.vlan))
        .collect();
    assert_eq!(
        adapters,
        vec![
            (
                "nic0".into(),
                "020100CC0001".into(),
                Some(hv.host.info.switch.clone()),
                Some(1577)
            ),
            (
                "nic1".into(),
                "020100CC0002".into(),
                Some(hv.host.info.switch.clone()),
                None
            ),
        ],
        "default adapter replaced, NICs in device order, static MACs, VLAN and untagged"
    );
    let fw = v.firmware.clone().expect("generation 2 firmware");
    assert_eq!(fw.secure_boot, "Off", "secure boot is off by default");

    let (run, cost) = hv.run_counted("status", &p);
    assert_eq!(run.success()["power_state"], "poweron");
    assert_eq!(cost, ONE, "status");

    let (run, cost) = hv.run_counted("stop", &p);
    assert!(
        run.success()["message"]
            .as_str()
            .unwrap()
            .contains("shut down by the guest")
    );
    assert_eq!(cost, ONE, "stop");
    assert_eq!(
        (vm(&hv).state.as_str(), vm(&hv).last_stop.as_deref()),
        ("Off", Some("graceful"))
    );
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweroff");

    let (run, cost) = hv.run_counted("start", &p);
    run.success();
    assert_eq!(cost, ONE, "start");
    assert_eq!(vm(&hv).state, "Running");

    let (run, cost) = hv.run_counted("reboot", &p);
    assert!(
        run.success()["message"]
            .as_str()
            .unwrap()
            .contains("rebooted")
    );
    assert_eq!(cost, ONE, "reboot");
    assert_eq!(vm(&hv).state, "Running");

    let (run, cost) = hv.run_counted("Suspend", &p);
    run.success();
    assert_eq!(cost, ONE, "Suspend");
    assert_eq!(vm(&hv).state, "Paused");
    assert_eq!(
        hv.run("status", &p).success()["power_state"],
        "poweron",
        "paused is on, as KVM reports it"
    );
    let (run, cost) = hv.run_counted("Resume", &p);
    run.success();
    assert_eq!(cost, ONE, "Resume");
    assert_eq!(vm(&hv).state, "Running");

    // Snapshots: none yet is an empty array, not an error.
    let (run, cost) = hv.run_counted("ListSnapshots", &p);
    let doc = run.success();
    assert_eq!(cost, ONE, "ListSnapshots");
    assert_eq!(
        (doc["printmessage"].clone(), doc["message"].clone()),
        (json!("true"), json!([]))
    );

    let mut snap = p.clone();
    snap["parameters"] = json!({"snapshot_name": "before-upgrade"});
    let (run, cost) = hv.run_counted("CreateSnapshot", &snap);
    run.success();
    assert_eq!(cost, ONE, "CreateSnapshot");
    assert_eq!(vm(&hv).checkpoints.len(), 1);

    let doc = hv.run("ListSnapshots", &p).success();
    let rows = doc["message"].as_array().expect("array");
    assert_eq!(rows.len(), 1, "one checkpoint is still an array: {doc}");
    assert_eq!(rows[0]["name"], "before-upgrade");
    assert_eq!(rows[0]["id"], vm(&hv).checkpoints[0].id.as_str());
    assert!(rows[0]["created"].as_str().unwrap().ends_with('Z'));
    // A root checkpoint's parent is an empty string, as on Proxmox, never null.
    assert_eq!(rows[0]["parent"], "");

    // A production checkpoint holds no memory: after restore the VM is off, and we say so.
    let (run, cost) = hv.run_counted("RestoreSnapshot", &snap);
    let doc = run.success();
    assert_eq!(cost, ONE, "RestoreSnapshot");
    assert_eq!(
        (doc["power_state"].as_str(), doc["state"].as_str()),
        (Some("poweroff"), Some("Off")),
        "{doc}"
    );
    assert_eq!(vm(&hv).state, "Off");

    let (run, cost) = hv.run_counted("DeleteSnapshot", &snap);
    run.success();
    assert_eq!(cost, ONE, "DeleteSnapshot");
    assert!(vm(&hv).checkpoints.is_empty());

    let (run, cost) = hv.run_counted("statuses", &p);
    assert_eq!(run.success()["power_state"], json!({VM: "poweroff"}));
    assert_eq!(cost, ONE, "statuses");

    let (run, cost) = hv.run_counted("delete", &p);
    let doc = run.success();
    assert_eq!(cost, ONE, "delete");
    assert!(hv.state().vms.is_empty(), "the VM is gone");
    assert!(!hv.exists(&disk), "its disk went with it");
    assert!(hv.exists(&hv.host.info.template_path), "the template stays");
    assert_eq!(doc["removed_disks"], json!([disk]));

    // Gone is gone: delete and stop again succeed without touching anything.
    assert!(
        hv.run("delete", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert!(
        hv.run("stop", &p).success()["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let state = hv.state();
    assert_eq!(state.rejected, 0, "every script was one of ours");
    // sshd's view: one session per connection, each a single exec, never a PTY or a shell.
    let log = hv.host.sshd_log();
    let connections = hv.host.connections();
    assert_eq!(
        log.matches("session_input_channel_req: session 0 req exec")
            .count(),
        connections
    );
    assert_eq!(
        log.matches("session_new: session 1").count(),
        0,
        "one channel per connection"
    );
    assert!(
        !log.contains("pty-req") && !log.contains("req shell"),
        "no PTY, no shell"
    );
    assert_eq!(
        usize::try_from(state.invocations).ok(),
        Some(connections),
        "one PowerShell start per connection"
    );
    assert!(state.launches.iter().all(|l| l.script.is_some()));
}
