//! Safe VM identity: VMIDs concurrent deploys never share, the ownership mark checked before
//! every change, VMs made before marks existed adopted, VMs found on the node HA moved them to,
//! and `statuses` of a busy node within CloudStack's output limit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::time::Instant;

use e2e::proxmox::{Outcome, Payload, TestVm, World, state_dir, tag_text};
use e2e::pve::{NODE, Options, TEMPLATE_VMID, Vm};
use serde_json::{Value, json};

fn run_custom(w: &World, payload: &Payload, action: &str, params: Value) -> Outcome {
    w.run(action, &payload.clone().custom(action, params))
}

/// What a VM is, as far as any action could change it.
fn state(vm: &Vm) -> (String, String, String, Value, Value) {
    (
        vm.name.clone(),
        vm.node.clone(),
        vm.status.clone(),
        json!(vm.config),
        json!(vm.snapshots),
    )
}

#[test]
fn concurrent_deploys_never_share_a_vmid() {
    // Tasks take time (time_scale > 0) and every clone and start worker sits `running` for a
    // while, so the 32 deploys overlap; every prepare starts at the same moment.
    let w = World::with(Options { time_scale: 0.01 });
    w.pve.task_delay(&[("qmclone", 0.3), ("qmstart", 0.2)]);
    let vms: Vec<TestVm> = (0..32).map(|_| TestVm::new()).collect();
    let barrier = Barrier::new(vms.len());
    let started = Instant::now();
    let results: Vec<(u32, Outcome)> = std::thread::scope(|s| {
        let pairs: Vec<_> = vms
            .iter()
            .map(|vm| {
                let (w, barrier) = (&w, &barrier);
                s.spawn(move || {
                    let payload = Payload::vm(&w.pve, vm);
                    barrier.wait();
                    // Two processes, as CloudStack runs them: prepare, then create.
                    let vmid = w.prepare(&payload);
                    (vmid, w.run("create", &payload.vmid(vmid)))
                })
            })
            .collect();
        pairs.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    eprintln!("32 concurrent prepare+create pairs took {elapsed:.2?}");

    for (_, created) in &results {
        assert_eq!(created.assert_success().message(), "Instance created");
    }
    let ids: BTreeSet<u32> = results.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 32, "distinct VMIDs: {ids:?}");

    // The simulator holds 32 running VMs, each marked as its own CloudStack VM.
    assert_eq!(w.pve.vms().len(), 33, "32 VMs and the template");
    for (vm, (vmid, _)) in vms.iter().zip(&results) {
        let made = w.pve.vm(*vmid).expect("the VM exists");
        assert_eq!(
            (made.name.as_str(), made.node.as_str(), made.status.as_str()),
            (vm.name.as_str(), NODE, "running")
        );
        let tags = made.conf("tags").unwrap_or_default();
        for part in [
            format!("cs-uuid.{}", vm.uuid),
            format!("cs-name.{}", tag_text(&vm.name)),
            format!("cs-vmid.{vmid}"),
        ] {
            assert!(
                tags.split(';').any(|t| t == part),
                "VM {vmid}: {part} in {tags}"
            );
        }
    }

    // What PVE received: one clone per id (none refused), every id confirmed free before it
    // was handed out, no DELETE at all.
    let requests = w.pve.requests();
    assert!(
        requests.iter().all(|r| r.method != "DELETE"),
        "{:?}",
        w.pve.write_lines()
    );
    let cloned: BTreeSet<u32> = requests
        .iter()
        .filter(|r| r.line() == format!("POST /nodes/{NODE}/qemu/{TEMPLATE_VMID}/clone"))
        .map(|r| r.form["newid"].parse().unwrap())
        .collect();
    assert_eq!(cloned, ids);
    let confirmed: BTreeSet<u32> = requests
        .iter()
        .filter(|r| r.api_path() == "/cluster/nextid")
        .filter_map(|r| r.query.strip_prefix("vmid=")?.parse().ok())
        .collect();
    assert!(
        ids.is_subset(&confirmed),
        "confirmed {confirmed:?}, handed out {ids:?}"
    );
    let tasks = w.pve.tasks();
    for kind in ["qmclone", "qmstart"] {
        let ok = tasks
            .iter()
            .filter(|t| t.kind == kind && t.exitstatus.as_deref() == Some("OK"))
            .count();
        assert_eq!(ok, 32, "{kind} tasks that ended OK");
    }
    // The management server's ledger holds every id handed out.
    let ledger = std::fs::read_to_string(state_dir(w.pve.dir()).join("vmid-ledger")).unwrap();
    let recorded: BTreeSet<u32> = ledger
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(recorded, ids);
    // The deploys overlapped rather than ran one after the other: several clones were sent
    // before any VM was started (read from the request order, not the clock, so a loaded CI
    // machine cannot make this fail or pass by accident).
    let first_start = requests
        .iter()
        .position(|r| r.method == "POST" && r.api_path().ends_with("/status/start"))
        .expect("a start request");
    let clones_before_first_start = requests[..first_start]
        .iter()
        .filter(|r| r.method == "POST" && r.api_path().ends_with("/clone"))
        .count();
    eprintln!("{clones_before_first_start} of 32 clones were sent before the first start");
    assert!(
        clones_before_first_start >= 2,
        "only {clones_before_first_start} clone(s) before the first start: the deploys did not overlap"
    );
}

#[test]
fn a_foreign_vm_on_the_stored_vmid_is_never_touched() {
    let w = World::new();
    // CloudStack VM `owner` holds the VMID, with a snapshot ...
    let owner = TestVm::new();
    let vmid = w.deploy(&owner);
    let owner_payload = Payload::vm(&w.pve, &owner).vmid(vmid);
    run_custom(
        &w,
        &owner_payload,
        "CreateSnapshot",
        json!({"snap_name": "base"}),
    )
    .assert_success();
    // ... while another CloudStack VM's proxmox_vmid still points at it (a stale record).
    let stale = TestVm::new();
    let payload = Payload::vm(&w.pve, &stale).vmid(vmid);
    let before = state(&w.pve.vm(vmid).unwrap());
    w.pve.reset_requests();

    let refusal = format!(
        "refusing to touch Proxmox VM {vmid} on node {NODE}: it is marked as CloudStack VM {}, not {}; it does not look like this CloudStack VM, so nothing was changed (check the instance detail proxmox_vmid)",
        owner.uuid, stale.uuid
    );
    for (action, params) in [
        ("stop", json!({})),
        ("delete", json!({})),
        ("start", json!({})),
        ("reboot", json!({})),
        ("status", json!({})),
        ("getconsole", json!({})),
        ("Suspend", json!({})),
        ("Resume", json!({})),
        ("CreateSnapshot", json!({"snap_name": "mine"})),
        ("RestoreSnapshot", json!({"snap_name": "base"})),
        ("DeleteSnapshot", json!({"snap_name": "base"})),
        ("ListSnapshots", json!({})),
    ] {
        let err = run_custom(&w, &payload, action, params).assert_error();
        assert_eq!(err, refusal, "{action}");
    }
    assert!(
        w.pve.requests().iter().all(|r| r.method == "GET"),
        "only reads: {:?}",
        w.pve.write_lines()
    );
    assert_eq!(
        state(&w.pve.vm(vmid).unwrap()),
        before,
        "the VM is unchanged"
    );

    // Its owner still acts on it.
    w.run("stop", &owner_payload).assert_success();
    assert_eq!(w.pve.vm(vmid).unwrap().status, "stopped");
}

#[test]
fn a_vmid_taken_between_prepare_and_create_fails_clearly_and_deletes_nothing() {
    let w = World::with(Options { time_scale: 0.01 });
    // Two management servers without vmid_range, each with its own ledger, deploy into the
    // same cluster: both get the lowest free id.
    let (first, second) = (TestVm::new(), TestVm::new());
    let other_server = w.pve.dir().join("other-management-server");
    let first_payload = Payload::vm(&w.pve, &first);
    let second_payload =
        Payload::vm(&w.pve, &second).host_detail("state_dir", Some(other_server.to_str().unwrap()));
    let vmid = w.prepare(&first_payload);
    assert_eq!(w.prepare(&second_payload), vmid);
    w.run("create", &first_payload.clone().vmid(vmid))
        .assert_success();
    let before = state(&w.pve.vm(vmid).unwrap());
    w.pve.reset_requests();

    let err = w
        .run("create", &second_payload.clone().vmid(vmid))
        .assert_error();
    assert_eq!(
        err,
        format!(
            "Proxmox VMID {vmid} is already taken (unable to create VM {vmid}: config file already exists): another deploy (another management server, or a VM made outside CloudStack) took it after prepare handed it out. Nothing was changed and nothing was deleted. Deploy the instance again: prepare hands out a new id. If this repeats, give each management server or zone deploying into this Proxmox cluster its own vmid_range"
        )
    );
    assert_eq!(
        w.pve.write_lines(),
        [format!("POST /nodes/{NODE}/qemu/{TEMPLATE_VMID}/clone")],
        "the refused clone and nothing else: no DELETE"
    );
    assert_eq!(
        state(&w.pve.vm(vmid).unwrap()),
        before,
        "the first deploy's VM is untouched"
    );

    // CloudStack deploys again: prepare hands out another id, and create succeeds.
    let retry = w.prepare(&second_payload);
    assert_ne!(retry, vmid);
    w.run("create", &second_payload.clone().vmid(retry))
        .assert_success();

    // The same when a VM made outside CloudStack takes the id.
    let third = TestVm::new();
    let third_payload = Payload::vm(&w.pve, &third);
    let vmid = w.prepare(&third_payload);
    w.pve
        .add_vm(vmid, "made-by-hand", NODE, "stopped", json!({}));
    w.pve.reset_requests();
    let err = w.run("create", &third_payload.vmid(vmid)).assert_error();
    assert!(
        err.starts_with(&format!("Proxmox VMID {vmid} is already taken")),
        "{err}"
    );
    assert!(w.pve.requests().iter().all(|r| r.method != "DELETE"));
    let by_hand = w.pve.vm(vmid).unwrap();
    assert_eq!(
        (by_hand.name.as_str(), by_hand.status.as_str()),
        ("made-by-hand", "stopped")
    );
}

#[test]
fn a_vm_moved_to_another_node_is_found_and_acted_on_there() {
    let w = World::new();
    w.pve.add_node("pve2");
    let vm = TestVm::new();
    let vmid = w.deploy(&vm);
    // HA (or an operator) moved it; CloudStack still sends the host's node, pve1.
    w.pve.move_vm(vmid, "pve2");
    let payload = Payload::vm(&w.pve, &vm).vmid(vmid);
    let pve1 = Payload::host(&w.pve);
    let pve2 = Payload::host(&w.pve).host_detail("node", Some("pve2"));
    w.pve.reset_requests();

    let out = w.run("status", &payload);
    assert_eq!(out.assert_success().json["power_state"], "poweron");
    assert_eq!(
        w.pve.request_lines(),
        [
            format!("GET /nodes/pve1/qemu/{vmid}/status/current"),
            "GET /cluster/resources".to_string(),
            format!("GET /nodes/pve2/qemu/{vmid}/status/current"),
        ]
    );

    // The new node's host reports it by instance name; the old node's does not.
    let on = |host: &Payload| w.run("statuses", host).assert_success().json["power_state"].clone();
    assert_eq!(on(&pve2), json!({vm.name.clone(): "poweron"}));
    assert_eq!(on(&pve1), json!({}));

    w.pve.reset_requests();
    w.run("stop", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        [format!("POST /nodes/pve2/qemu/{vmid}/status/shutdown")]
    );
    let stopped = w.pve.vm(vmid).unwrap();
    assert_eq!(
        (stopped.node.as_str(), stopped.status.as_str()),
        ("pve2", "stopped")
    );
    assert_eq!(on(&pve2), json!({vm.name.clone(): "poweroff"}));

    w.pve.reset_requests();
    w.run("delete", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        [format!("DELETE /nodes/pve2/qemu/{vmid}")]
    );
    assert!(w.pve.vm(vmid).is_none());

    // A node failure: pve1 goes down with a VM on it. Until HA moves the VM, the node's
    // error is reported and nothing is sent; once it runs on pve2, it is acted on there.
    let vm = TestVm::new();
    let vmid = w.deploy(&vm);
    let payload = Payload::vm(&w.pve, &vm).vmid(vmid);
    w.pve.node_offline("pve1", true);
    w.pve.reset_requests();
    let err = w.run("stop", &payload).assert_error();
    assert!(err.contains("No route to host"), "{err}");
    assert!(w.pve.write_lines().is_empty());
    w.pve.move_vm(vmid, "pve2");
    assert_eq!(
        w.run("status", &payload).assert_success().json["power_state"],
        "poweron"
    );
    w.pve.reset_requests();
    w.run("stop", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        [format!("POST /nodes/pve2/qemu/{vmid}/status/shutdown")]
    );
    assert_eq!(w.pve.vm(vmid).unwrap().status, "stopped");
}

#[test]
fn statuses_of_a_busy_node_stay_within_the_output_limit_or_fail_on_purpose() {
    let w = World::new();
    // 3,000 VMs on the node: 2,000 of CloudStack's (marked), 1,000 that are not.
    let cloudstack = |n: u32| {
        let vmid = 10_000 + n;
        let name = format!("i-2-{vmid}-VM");
        let tags = format!(
            "cloudstack;cs-uuid.{:08x}-0000-4000-8000-000000000000;cs-name.{};cs-vmid.{vmid}",
            n,
            tag_text(&name)
        );
        let status = if n.is_multiple_of(3) {
            "stopped"
        } else {
            "running"
        };
        (
            name.clone(),
            status,
            json!({"vmid": vmid, "name": format!("web-{n}"), "status": status,
                   "config": {"tags": tags}}),
        )
    };
    let marked: Vec<_> = (0..2000).map(cloudstack).collect();
    let mut specs: Vec<Value> = marked.iter().map(|(_, _, spec)| spec.clone()).collect();
    specs.extend((0..1000).map(|n| {
        json!({"vmid": 30_000 + n, "name": format!("other-{n}"), "status": "running",
               "config": {"tags": "prod"}})
    }));
    assert_eq!(w.pve.add_vms(specs), 3001);
    w.pve.reset_requests();

    let out = w.run("statuses", &Payload::host(&w.pve));
    out.assert_success();
    let expected: BTreeMap<String, Value> = marked
        .iter()
        .map(|(name, status, _)| {
            let state = if *status == "running" {
                "poweron"
            } else {
                "poweroff"
            };
            (name.clone(), json!(state))
        })
        .collect();
    assert_eq!(out.json["power_state"], json!(expected));
    eprintln!(
        "statuses of 2,000 CloudStack VMs among 3,000: {} bytes in {:.2?}",
        out.stdout.len(),
        out.elapsed
    );
    assert!(out.stdout.len() <= ext_sdk::MAX_OUTPUT_BYTES);
    assert_eq!(w.pve.request_lines(), [format!("GET /nodes/{NODE}/qemu")]);

    // 1,000 more CloudStack VMs: the answer would not fit, so statuses fails on purpose and
    // CloudStack falls back to each VM's status, which still works.
    let more: Vec<Value> = (2000..3000).map(|n| cloudstack(n).2).collect();
    assert_eq!(w.pve.add_vms(more), 4001);
    let err = w.run("statuses", &Payload::host(&w.pve)).assert_error();
    assert!(
        err.starts_with(&format!("node {NODE} runs 3000 CloudStack VMs: their statuses take "))
            && err.ends_with(&format!(
                "bytes, more than the {} bytes an extension may print, so this fails on purpose and CloudStack asks each VM's status separately",
                ext_sdk::MAX_OUTPUT_BYTES
            )),
        "{err}"
    );
    let one = TestVm {
        id: 10_001,
        name: "i-2-10001-VM".into(),
        uuid: "00000001-0000-4000-8000-000000000000".into(),
    };
    let status = w.run("status", &Payload::vm(&w.pve, &one).vmid(10_001));
    assert_eq!(status.assert_success().json["power_state"], "poweron");
}

#[test]
fn vms_made_before_marks_existed_are_adopted() {
    let w = World::new();
    let vm = TestVm::new();
    // Made by upstream's scripts: the instance name, an operator's tag, no mark.
    w.pve.add_vm(
        100,
        &vm.name,
        NODE,
        "running",
        json!({"tags": "prod", "scsi0": "local-lvm:vm-100-disk-0,size=8G"}),
    );
    let payload = Payload::vm(&w.pve, &vm).vmid(100);
    let mark = format!("prod;{}", vm.mark(100));
    // statuses already reports it, by its name.
    let out = w.run("statuses", &Payload::host(&w.pve));
    assert_eq!(
        out.assert_success().json["power_state"],
        json!({vm.name.clone(): "poweron"})
    );

    // A failed action adopts nothing.
    w.pve.reset_requests();
    let err = run_custom(
        &w,
        &payload,
        "RestoreSnapshot",
        json!({"snap_name": "nope"}),
    )
    .assert_error();
    assert!(err.contains("snapshot 'nope' does not exist"), "{err}");
    assert_eq!(w.pve.vm(100).unwrap().conf("tags").as_deref(), Some("prod"));
    assert!(
        w.pve.write_lines().iter().all(|l| !l.starts_with("PUT")),
        "{:?}",
        w.pve.write_lines()
    );

    // A snapshot taken before the mark, for later.
    w.pve.reset_requests();
    run_custom(&w, &payload, "CreateSnapshot", json!({"snap_name": "old"})).assert_success();
    assert_eq!(
        w.pve.vm(100).unwrap().conf("tags").as_deref(),
        Some(mark.as_str())
    );
    assert_eq!(
        w.pve.write_lines(),
        [
            "POST /nodes/pve1/qemu/100/snapshot",
            "PUT /nodes/pve1/qemu/100/config",
        ],
        "the first successful action adds the mark"
    );

    // Marked now: no further writes of the mark.
    w.pve.reset_requests();
    w.run("stop", &payload).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        ["POST /nodes/pve1/qemu/100/status/shutdown"]
    );

    // Rolling back to the snapshot brings back its unmarked tags: marked again at once.
    w.pve.reset_requests();
    run_custom(&w, &payload, "RestoreSnapshot", json!({"snap_name": "old"})).assert_success();
    assert_eq!(
        w.pve.write_lines(),
        [
            "POST /nodes/pve1/qemu/100/snapshot/old/rollback",
            "PUT /nodes/pve1/qemu/100/config",
        ]
    );
    assert_eq!(
        w.pve.vm(100).unwrap().conf("tags").as_deref(),
        Some(mark.as_str())
    );

    // An unmarked VM with another name is never adopted (nor touched).
    w.pve.add_vm(101, "payroll-db", NODE, "running", json!({}));
    let err = w
        .run("status", &Payload::vm(&w.pve, &TestVm::new()).vmid(101))
        .assert_error();
    assert!(err.contains("it is named 'payroll-db'"), "{err}");
    assert_eq!(w.pve.vm(101).unwrap().conf("tags"), None);
}

#[test]
fn vmid_range_partitions_the_id_space_and_the_ledger_skips_handed_out_ids() {
    let w = World::new();
    let payload = |range: &str| {
        Payload::vm(&w.pve, &TestVm::new()).extension_detail("vmid_range", Some(range))
    };
    // Someone else's VM inside the range.
    w.pve
        .add_vm(20_001, "someone-else", NODE, "stopped", json!({}));
    w.pve.reset_requests();
    // Handed out but not created yet: the ledger keeps the next prepare off them.
    assert_eq!(w.prepare(&payload("20000-20003")), 20_000);
    assert_eq!(w.prepare(&payload("20000-20003")), 20_002);
    assert_eq!(w.prepare(&payload("20000-20003")), 20_003);
    let err = w.run("prepare", &payload("20000-20003")).assert_error();
    assert_eq!(
        err,
        "asking Proxmox for a free VMID: no free VMID from 20000 to 20003: 1 are used in the Proxmox cluster and 3 were handed out by this management server in the last 30 minutes (widen the vmid_range detail)"
    );
    // Each id was confirmed by Proxmox; the lowest free id of the cluster was never asked for.
    let confirmations: Vec<String> = w
        .pve
        .requests()
        .iter()
        .filter(|r| r.api_path() == "/cluster/nextid")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(confirmations, ["vmid=20000", "vmid=20002", "vmid=20003"]);
    assert!(w.pve.write_lines().is_empty(), "prepare changes nothing");

    // Another zone's range is separate.
    assert_eq!(w.prepare(&payload("30000-39999")), 30_000);

    // Bad settings are errors before any request.
    w.pve.reset_requests();
    let err = w.run("prepare", &payload("30000-20000")).assert_error();
    assert!(
        err.contains("vmid_range") && err.contains("30000 is above 20000"),
        "{err}"
    );
    let err = w.run("prepare", &payload("lots")).assert_error();
    assert!(
        err.contains("vmid_range") && err.contains("20000-29999"),
        "{err}"
    );
    let not_a_dir = w.pve.dir().join("a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let err = w
        .run(
            "prepare",
            &Payload::vm(&w.pve, &TestVm::new())
                .host_detail("state_dir", Some(not_a_dir.to_str().unwrap())),
        )
        .assert_error();
    assert!(
        err.starts_with(&format!(
            "cannot use the state directory {} (from the state_dir detail)",
            not_a_dir.display()
        )),
        "{err}"
    );
    assert!(w.pve.requests().is_empty(), "{:?}", w.pve.request_lines());
}

#[test]
fn rollback_checks_the_mark_and_recognises_a_clone_of_a_marked_template() {
    let w = World::new();
    // The template was made from a CloudStack VM and still carries that VM's mark.
    let ancestor = TestVm::new();
    w.pve
        .set_config(TEMPLATE_VMID, json!({"tags": ancestor.mark(TEMPLATE_VMID)}));
    // Configuring the clone fails, before create could write its own mark.
    let vm = TestVm::new();
    w.pve.fail(
        "POST",
        "/nodes/pve1/qemu/100/config",
        500,
        "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
        None,
    );
    let err = w
        .run("create", &Payload::vm(&w.pve, &vm).vmid(100))
        .assert_error();
    assert!(
        err.ends_with("rolled back: removed Proxmox VM 100 that this run had created"),
        "{err}"
    );
    assert!(w.pve.vm(100).is_none());
    assert_eq!(
        w.pve.write_lines(),
        [
            format!("POST /nodes/pve1/qemu/{TEMPLATE_VMID}/clone"),
            "POST /nodes/pve1/qemu/100/config".to_string(),
            "DELETE /nodes/pve1/qemu/100".to_string(),
        ]
    );
}

#[test]
fn gone_unknown_and_foreign_follow_the_shared_rule() {
    let w = World::new();
    let host = Payload::host(&w.pve);
    let statuses = |host: &Payload| w.run("statuses", host);

    // Gone: on no node and not in the cluster's resources. status answers poweroff (CloudStack
    // marks the instance Stopped), statuses leaves it out.
    let gone = TestVm::new();
    let vmid = w.deploy(&gone);
    let payload = Payload::vm(&w.pve, &gone).vmid(vmid);
    w.pve.command(json!({"cmd": "remove_vm", "vmid": vmid}));
    let out = w.run("status", &payload);
    assert_eq!(
        out.assert_success().json,
        json!({"status": "success", "power_state": "poweroff",
               "message": format!("Proxmox VM {vmid} does not exist on node {NODE} or elsewhere in its cluster: it is gone")})
    );
    assert_eq!(
        statuses(&host).assert_success().json["power_state"],
        json!({})
    );

    // Unknown: it cannot be checked. status fails (CloudStack's PowerUnknown), and so does
    // statuses (CloudStack then asks status).
    let vm = TestVm::new();
    let vmid = w.deploy(&vm);
    let payload = Payload::vm(&w.pve, &vm).vmid(vmid);
    w.pve.node_offline(NODE, true);
    let err = w.run("status", &payload).assert_error();
    assert!(err.contains("No route to host"), "{err}");
    let err = statuses(&host).assert_error();
    assert!(err.contains("No route to host"), "{err}");
    w.pve.node_offline(NODE, false);
    let refused = payload
        .clone()
        .host_detail("secret", Some("not-the-secret"));
    let err = w.run("status", &refused).assert_error();
    assert!(err.starts_with("authentication failed"), "{err}");
    let err = statuses(&host.clone().host_detail("secret", Some("not-the-secret"))).assert_error();
    assert!(err.starts_with("authentication failed"), "{err}");

    // Foreign: the VMID holds another CloudStack VM. status refuses naming whose it is;
    // statuses reports that VM under its own instance name, never as this one.
    let stale = TestVm::new();
    let stale_payload = Payload::vm(&w.pve, &stale).vmid(vmid);
    let err = w.run("status", &stale_payload).assert_error();
    assert!(
        err.starts_with(&format!(
            "refusing to touch Proxmox VM {vmid} on node {NODE}: it is marked as CloudStack VM {}, not {}",
            vm.uuid, stale.uuid
        )),
        "{err}"
    );
    let report = statuses(&host).assert_success().json["power_state"].clone();
    assert_eq!(report, json!({vm.name.clone(): "poweron"}));
    assert!(report.get(&stale.name).is_none());
}
