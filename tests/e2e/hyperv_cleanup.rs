//! The clean-up after an interrupted `create` removes only what that very run created (issue 9
//! item 7): a create re-sent for a VM that exists is refused on the host, and a late or
//! garbled answer to that refusal must not make the clean-up remove the existing VM. The mark
//! and the clean-up are the scripts' own, so they hold over both transports (SSH and WinRM).

use std::time::Duration;

use e2e::hyperv::{Hv, UUID, VM, Via, disk_of};
use hyperv_testhost::Knobs;

/// The launches of the host so far: (script, outcome).
fn launches(hv: &Hv) -> Vec<(String, String)> {
    hv.state()
        .launches
        .iter()
        .map(|l| (l.script.clone().unwrap_or_default(), l.outcome.clone()))
        .collect()
}

#[test]
fn a_garbled_answer_to_a_refused_create_never_removes_the_existing_vm() {
    garbled_answer_to_a_refused_create(Via::Ssh);
}

#[test]
fn over_winrm_a_garbled_answer_to_a_refused_create_never_removes_the_existing_vm() {
    garbled_answer_to_a_refused_create(Via::Winrm);
}

fn garbled_answer_to_a_refused_create(via: Via) {
    let hv = Hv::start_via(via);
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let before = hv.state().vms;
    let disk = disk_of(&hv, VM);
    let disk_bytes = hv.file(&disk).expect("the VM's disk");

    // CloudStack sends the create again (a retried job); the host refuses it (the VM exists)
    // but the answer arrives garbled, so the binary cannot know what happened.
    hv.host.knobs(&Knobs {
        garbage: true,
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let err = hv.run("create", &p).failure(1);
    assert_eq!(
        hv.state().vms,
        before,
        "the existing VM is untouched: {err}"
    );
    assert_eq!(hv.file(&disk), Some(disk_bytes), "and so is its disk");
    assert!(err.contains("printed no result line"), "{err}");
    assert!(
        err.contains("was not created by this run") && err.contains("left alone"),
        "{err}"
    );
    assert!(err.contains("VM removed: false"), "{err}");
    assert_eq!(
        launches(&hv)[1..],
        [
            ("create".to_owned(), "VM_EXISTS".to_owned()),
            ("cleanup-create".to_owned(), "ok".to_owned())
        ]
    );
    // It still works.
    hv.host.knobs(&Knobs::default());
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweron");
    // Every run went over the transport asked for (the clean-up in a shell of its own).
    let winrm_commands = hv.host.winrm_counters().commands;
    let expected = if via == Via::Winrm { 4 } else { 0 };
    assert_eq!(winrm_commands, expected);
}

#[test]
fn a_late_answer_to_a_refused_create_never_removes_the_existing_vm() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    hv.run("create", &p).success();
    let before = hv.state().vms;
    let disk = disk_of(&hv, VM);
    // The refusal comes after the deadline.
    hv.host.knobs(&Knobs {
        sleep_after_ms: 30_000,
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let run = hv.run_with_timeout("create", &p, "5");
    let err = run.failure_within(1, Duration::from_secs(5));
    assert_eq!(
        hv.state().vms,
        before,
        "the existing VM is untouched: {err}"
    );
    assert!(hv.exists(&disk), "and so is its disk");
    assert!(
        err.contains("deadline reached") && err.contains("was not created by this run"),
        "{err}"
    );
}

#[test]
fn the_cleanup_removes_its_own_vm_but_no_partial_copy_of_another_run() {
    cleanup_of_its_own_vm(Via::Ssh);
}

#[test]
fn over_winrm_the_cleanup_removes_its_own_vm_but_no_partial_copy_of_another_run() {
    cleanup_of_its_own_vm(Via::Winrm);
}

fn cleanup_of_its_own_vm(via: Via) {
    let hv = Hv::start_via(via);
    let p = hv.payload(VM, UUID);
    // Other creates of this VM are copying the template right now (one named as before this
    // fix, one named after its run): their partial copies must survive our clean-up.
    let disk = disk_of(&hv, VM);
    let others = [
        format!("{disk}.partial"),
        format!("{disk}.0badc0de.partial"),
    ];
    for other in &others {
        std::fs::write(hv.host.local(other), b"another run's copy").unwrap();
    }
    // Our create completes on the host, but its answer is garbled.
    hv.host.knobs(&Knobs {
        garbage: true,
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let err = hv.run("create", &p).failure(1);
    for other in &others {
        assert!(hv.exists(other), "{other} kept: {err}");
    }
    assert!(
        err.contains("cleaned up: VM removed: true, files removed: 1"),
        "{err}"
    );
    assert!(!err.contains("left alone"), "{err}");
    assert!(hv.state().vms.is_empty(), "our VM removed");
    assert!(!hv.exists(&disk), "our disk removed");
}

/// Every file under the test host's `C:\` (folders left out: Remove-VM leaves the VM's
/// folder, as Hyper-V does), by path.
fn host_files(hv: &Hv) -> std::collections::BTreeSet<String> {
    let root = hv.host.local("C:\\");
    let mut out = std::collections::BTreeSet::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.insert(path.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn a_create_killed_mid_way_is_cleaned_up_as_far_as_its_id_proves() {
    let hv = Hv::start();
    let p = hv.payload(VM, UUID);
    let disk = disk_of(&hv, VM);
    let files_before = host_files(&hv);
    // Killed while copying the template (before the move): only this run's partial copy.
    hv.host.knobs(&Knobs {
        kill_at: Some("MoveItemCommand".into()),
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let err = hv.run("create", &p).failure(1);
    assert!(
        err.contains("cleaned up: VM removed: false, files removed: 1"),
        "{err}"
    );
    let cleanup = hv.state().launches.last().cloned().unwrap();
    assert_eq!(cleanup.script.as_deref(), Some("cleanup-create"));
    let id = cleanup.data["id"].as_str().unwrap().to_owned();
    assert!(
        !hv.exists(&format!("{disk}.{id}.partial")),
        "its copy removed"
    );
    assert!(hv.state().vms.is_empty());
    assert_eq!(host_files(&hv), files_before, "nothing left");

    // Killed after New-VM, before the Set-VM that marks and names the VM: New-VM made it
    // under this run's creating name, which proves it is this run's, so the clean-up
    // removes it and its disk.
    hv.host.knobs(&Knobs {
        kill_at: Some("SetVM".into()),
        only_scripts: vec!["create".into()],
        ..Knobs::default()
    });
    let err = hv.run("create", &p).failure(1);
    assert!(
        err.contains("cleaned up: VM removed: true, files removed: 1")
            && !err.contains("left alone"),
        "{err}"
    );
    let launches = hv.state().launches;
    let [.., killed, cleanup] = launches.as_slice() else {
        panic!("{launches:?}")
    };
    assert_eq!(
        (killed.script.as_deref(), killed.outcome.as_str()),
        (Some("create"), "killed")
    );
    assert_eq!(
        (cleanup.script.as_deref(), cleanup.outcome.as_str()),
        (Some("cleanup-create"), "ok")
    );
    assert_eq!(hv.state().vms, [], "no VM left");
    assert!(!hv.exists(&disk), "its disk removed");
    assert_eq!(host_files(&hv), files_before, "nothing left");

    // Nothing stands in the way of the create sent again.
    hv.host.knobs(&Knobs::default());
    hv.run("create", &p).success();
    let vms = hv.state().vms;
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].name, VM);
    assert!(
        vms[0]
            .notes
            .starts_with(&format!("cloudstack-vm-uuid={UUID}\r\n"))
    );
    assert_eq!(hv.run("status", &p).success()["power_state"], "poweron");
}
