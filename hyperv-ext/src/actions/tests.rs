//! The actions against a scripted host ([`FakeHost`]): what each sends, how it reads each
//! answer, and what it makes of failures and interruptions, without sshd. The e2e suites
//! run the same actions over real SSH against the test host.

use std::path::PathBuf;
use std::time::Duration;

use ext_sdk::{Action, Deadline, Invocation, Payload};
use hyperv_protocol::Script;
use serde_json::{Value, json};

use super::dispatch;
use crate::fake::{Answer, FakeHost};
use crate::transport::{Exit, Output, Sent};

const VM: &str = "i-2-45-VM";
const UUID: &str = "126f4562-1f0f-4313-875e-6150cabeb72f";

/// This test process's state directory (the UUIDs the actions have seen).
static STATE_DIR: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("a temporary directory"));

fn payload() -> Value {
    json!({
        "externaldetails": {
            "host": {
                "state_dir": STATE_DIR.path(),
                "url": "hv1.example", "port": "2222", "username": "hvadmin", "password": "pw-1234",
                "host_key_fingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "network_switch": "External", "vhd_path": "D:\\VHD", "vm_path": "D:\\VMs",
                "stop_timeout": "5",
            },
            "virtualmachine": {
                "template_type": "template", "generation": "2",
                "template_path": "D:\\Templates\\ubuntu.vhdx",
            },
        },
        "virtualmachineid": UUID,
        "virtualmachinename": VM,
        "cloudstack.vm.details": {
            "name": VM, "uuid": UUID, "cpus": 2, "minRam": 536_870_912u64,
            "nics": [
                {"deviceId": 1, "mac": "02:01:00:cc:00:02", "broadcastUri": "vlan://untagged"},
                {"deviceId": 0, "mac": "02:01:00:cc:00:01", "broadcastUri": "vlan://1577"},
            ],
        },
        "parameters": {"snapshot_name": "before-upgrade"},
    })
}

fn invocation(action: &str, payload: &Value) -> Invocation {
    Invocation {
        id: "0a1b2c3d".into(),
        action: Action::parse(action),
        payload: Payload::from_slice(payload.to_string().as_bytes(), "test").expect("payload"),
        payload_path: PathBuf::from("test.json"),
        deadline: Deadline::after(Duration::from_secs(60)),
    }
}

/// Runs `action` against a host answering `answers`; the host shows what it received.
fn run(
    action: &str,
    answers: impl IntoIterator<Item = Answer>,
) -> (Result<Value, String>, FakeHost) {
    run_with(action, &payload(), answers)
}

fn run_with(
    action: &str,
    payload: &Value,
    answers: impl IntoIterator<Item = Answer>,
) -> (Result<Value, String>, FakeHost) {
    let host = FakeHost::answering(answers);
    let result = dispatch(&invocation(action, payload), &host)
        .map(|r| r.to_json())
        .map_err(|e| e.to_string());
    (result, host)
}

fn done(v: Value) -> Answer {
    Answer::Done(v)
}

fn fail(v: Value) -> Answer {
    Answer::Fail(v)
}

#[test]
fn stop_sends_the_vm_and_policy_once_and_says_how_it_stopped() {
    let (doc, host) = run(
        "stop",
        [done(
            json!({"found": true, "how": "graceful", "state": "Off"}),
        )],
    );
    let doc = doc.unwrap();
    assert_eq!(
        doc["message"],
        "VM i-2-45-VM stopped (shut down by the guest)"
    );
    assert_eq!(doc["state"], "Off");
    let received = host.received();
    assert_eq!(received.len(), 1, "one connection, one PowerShell start");
    assert_eq!(received[0].script, Script::Stop);
    assert_eq!(received[0].to, "hvadmin@hv1.example:2222");
    assert_eq!(
        received[0].data,
        json!({"name": VM, "uuid": UUID, "turnoff": false, "wait": 5, "fallback": true,
               "id": "0a1b2c3d"})
    );
}

#[test]
fn stop_of_a_vm_that_is_gone_succeeds() {
    let (doc, _) = run("stop", [done(json!({"found": false, "how": "none"}))]);
    assert_eq!(
        doc.unwrap()["message"],
        "VM i-2-45-VM does not exist on the host: nothing to stop"
    );
}

#[test]
fn a_reply_missing_a_field_fails_loudly_instead_of_defaulting() {
    for (action, reply) in [
        ("status", json!({"found": true})),
        ("stop", json!({"found": true, "state": "Off"})),
        ("start", json!({"state": "Running"})),
        ("statuses", json!({"vms": [{"name": VM}]})),
        ("ListSnapshots", json!({})),
        ("status", json!({"state": "Running"})),
    ] {
        let (result, _) = run(action, [done(reply.clone())]);
        let err = result.expect_err(&format!("{action} accepted {reply}"));
        assert!(
            err.contains("the remote result line is malformed"),
            "{action}: {err}"
        );
    }
    let (result, _) = run(
        "stop",
        [done(
            json!({"found": true, "how": "sideways", "state": "Off"}),
        )],
    );
    assert!(result.unwrap_err().contains("sideways"));
}

#[test]
fn status_maps_the_state_and_absent_is_off() {
    let (doc, _) = run("status", [done(json!({"found": true, "state": "Paused"}))]);
    let doc = doc.unwrap();
    assert_eq!(
        (doc["power_state"].clone(), doc["state"].clone()),
        (json!("poweron"), json!("Paused"))
    );
    let (doc, _) = run("status", [done(json!({"found": false}))]);
    let doc = doc.unwrap();
    assert_eq!(doc["power_state"], "poweroff");
    assert_eq!(doc["message"], "VM i-2-45-VM does not exist on the host");
}

#[test]
fn statuses_sends_no_vm_and_marks_duplicate_names_unknown() {
    let (doc, host) = run(
        "statuses",
        [done(json!({"vms": {"value": [
            {"name": "a", "state": "Running", "uuid": "u1"},
            {"name": "b", "state": "Off", "uuid": "u2"},
            {"name": "a", "state": "Off", "uuid": "u3"},
            {"name": "c", "state": "Running", "uuid": ""},
        ], "Count": 4}}))],
    );
    assert_eq!(
        doc.unwrap()["power_state"],
        json!({"a": "unknown", "b": "poweroff"})
    );
    assert_eq!(host.received()[0].data, json!({"id": "0a1b2c3d"}));
}

#[test]
fn failures_become_sentences_naming_the_vm_host_and_transport() {
    let cases = [
        (
            json!({"code": "NOT_OURS", "detail": 1, "marked": []}),
            "is not CloudStack VM 126f4562",
        ),
        (
            json!({"code": "NOT_OURS", "detail": 1, "marked": ["0000-1111"]}),
            "is not CloudStack VM 126f4562-1f0f-4313-875e-6150cabeb72f (it is marked as \
             CloudStack VM 0000-1111, not 126f4562-1f0f-4313-875e-6150cabeb72f: its Notes lack",
        ),
        (
            json!({"code": "UNMARKED", "detail": 1}),
            "carries no ownership line ('cloudstack-vm-uuid=126f4562-1f0f-4313-875e-6150cabeb72f' \
             in its Notes), as VMs made by upstream's hyperv.py; refusing to touch it. If it is \
             this instance's, set adopt_unmarked_vms=true",
        ),
        (
            json!({"code": "ACCESS_DENIED", "detail": "denied"}),
            "the SSH user 'hvadmin' has no Hyper-V rights on hv1.example:2222 (Get-VMHost failed: denied)",
        ),
        (
            json!({"code": "VM_AMBIGUOUS", "detail": 2}),
            "2 VMs named i-2-45-VM on hv1.example:2222",
        ),
        (
            json!({"code": "INVALID_STATE", "detail": "Saved"}),
            "VM i-2-45-VM is Saved, which does not allow this",
        ),
        (
            json!({"code": "PS_ERROR", "detail": "boom", "fqid": "X,Y"}),
            "PowerShell on hv1.example:2222 failed: boom [X,Y]",
        ),
        (
            json!({"code": "VM_NOT_FOUND", "detail": null}),
            "there is no VM named i-2-45-VM",
        ),
    ];
    for (failure, expected) in cases {
        let (result, host) = run("start", [fail(failure.clone())]);
        let err = result.unwrap_err();
        assert!(err.starts_with("starting VM i-2-45-VM: "), "{err}");
        assert!(err.contains(expected), "{failure}: {err}");
        assert_eq!(host.scripts(), [Script::Start]);
    }
    // A code no script sends is a protocol error, not a guess.
    let (result, _) = run("start", [fail(json!({"code": "NEW_CODE", "detail": "x"}))]);
    assert!(result.unwrap_err().contains("malformed"));
}

#[test]
fn start_suspend_resume_read_the_state_before_and_after() {
    for (action, before, after, expected) in [
        ("start", "Off", "Running", "VM i-2-45-VM started"),
        (
            "start",
            "Running",
            "Running",
            "VM i-2-45-VM was already running",
        ),
        (
            "Suspend",
            "Paused",
            "Paused",
            "VM i-2-45-VM was already suspended",
        ),
        ("Resume", "Paused", "Running", "VM i-2-45-VM resumed"),
    ] {
        let answer = done(json!({"before": before, "state": after}));
        let doc = run(action, [answer]).0.unwrap();
        assert_eq!(
            (doc["message"].as_str(), doc["state"].as_str()),
            (Some(expected), Some(after))
        );
    }
}

#[test]
fn create_sends_typed_data_and_reports_the_new_vm() {
    let (doc, host) = run("create", [done(json!({"id": "vm-guid-1"}))]);
    let doc = doc.unwrap();
    assert_eq!(
        doc["message"],
        "VM i-2-45-VM created and started on hv1.example"
    );
    assert_eq!(doc["vm_id"], "vm-guid-1");
    assert_eq!(doc["disk"], "D:\\VHD\\i-2-45-VM.vhdx");
    assert_eq!(host.scripts(), [Script::Create]);
    assert_eq!(
        host.received()[0].data,
        json!({
            "name": VM, "uuid": UUID, "gen": 2, "mem": 536_870_912u64, "cpus": 2,
            "sw": "External", "disk": "D:\\VHD\\i-2-45-VM.vhdx",
            "tpl": "D:\\Templates\\ubuntu.vhdx", "dir": "D:\\VMs", "sb": "Off",
            // In device order; the untagged NIC has no VLAN.
            "nics": ["020100CC0001:1577", "020100CC0002:"],
            "id": "0a1b2c3d",
        })
    );
}

#[test]
fn a_failed_create_reports_its_step_and_rollback_and_is_not_cleaned_up_again() {
    let (result, host) = run(
        "create",
        [fail(
            json!({"code": "CREATE_FAILED", "step": "network", "detail": "no such switch",
                     "rollback": {"value": ["disk in use"], "Count": 1}}),
        )],
    );
    let err = result.unwrap_err();
    assert!(
        err.contains("failed at step 'network': no such switch; the rollback failed too, check the host for leftovers: disk in use"),
        "{err}"
    );
    assert_eq!(
        host.scripts(),
        [Script::Create],
        "the script rolled back itself"
    );

    let (result, _) = run(
        "create",
        [fail(
            json!({"code": "CREATE_FAILED", "step": "vm", "detail": "x", "rollback": []}),
        )],
    );
    assert!(
        result
            .unwrap_err()
            .contains("everything created so far was removed")
    );
}

#[test]
fn a_refused_create_names_what_is_in_the_way() {
    let err = |failure: Value| run("create", [fail(failure)]).0.unwrap_err();
    assert!(
        err(json!({"code": "VM_EXISTS", "detail": null}))
            .contains("a VM named i-2-45-VM already exists on hv1.example; nothing was created")
    );
    assert!(
        err(json!({"code": "SWITCH_NOT_FOUND", "detail": 0}))
            .contains("has no virtual switch named 'External' (network_switch)")
    );
    assert!(
        err(json!({"code": "SWITCH_NOT_FOUND", "detail": 2}))
            .contains("2 virtual switches on hv1.example are named 'External'")
    );
    assert!(
        err(json!({"code": "DISK_EXISTS", "detail": null}))
            .contains("the disk D:\\VHD\\i-2-45-VM.vhdx already exists")
    );
}

#[test]
fn a_create_cut_off_after_sending_is_cleaned_up_within_the_reserve() {
    let cleaned =
        done(json!({"removed_vm": true, "removed": ["D:\\VHD\\i-2-45-VM.vhdx"], "kept": 0}));
    for interruption in [
        Answer::Broken(
            Sent::Maybe,
            "deadline reached while running PowerShell".into(),
        ),
        // PowerShell died without a result line.
        Answer::Raw(Output {
            stdout: b"Welcome\r\n".to_vec(),
            exit: Exit::Signal("KILL".into()),
            ..Output::default()
        }),
    ] {
        let (result, host) = run("create", [interruption, cleaned.clone()]);
        let err = result.unwrap_err();
        assert!(
            err.starts_with("creating VM i-2-45-VM on hv1.example:2222: ")
                && err.ends_with("; cleaned up: VM removed: true, files removed: 1"),
            "{err}"
        );
        let received = host.received();
        assert_eq!(host.scripts(), [Script::Create, Script::CleanupCreate]);
        assert_eq!(
            received[1].data,
            json!({"name": VM, "uuid": UUID, "disk": "D:\\VHD\\i-2-45-VM.vhdx", "id": "0a1b2c3d"})
        );
    }
}

#[test]
fn the_cleanup_names_the_vms_it_left_alone() {
    // A create sent again for a VM that exists: refused on the host, the answer lost.
    let left = done(json!({"removed_vm": false, "removed": [], "kept": 1}));
    let lost = Answer::Raw(Output {
        stdout: b"garbage\r\n".to_vec(),
        exit: Exit::Status(1),
        ..Output::default()
    });
    let (result, _) = run("create", [lost, left]);
    let err = result.unwrap_err();
    assert!(
        err.ends_with(
            "; cleaned up: VM removed: false, files removed: 0; 1 VM(s) named i-2-45-VM on \
             hv1.example was not created by this run (no 'cloudstack-create-id=0a1b2c3d' line in \
             the Notes) and was left alone"
        ),
        "{err}"
    );
}

#[test]
fn a_create_that_never_left_is_not_cleaned_up() {
    let (result, host) = run(
        "create",
        [Answer::Broken(
            Sent::No,
            "SSH handshake with hv1.example:2222 failed".into(),
        )],
    );
    let err = result.unwrap_err();
    assert_eq!(
        err,
        "creating VM i-2-45-VM on hv1.example:2222: SSH handshake with hv1.example:2222 failed"
    );
    assert_eq!(host.scripts(), [Script::Create], "no cleanup connection");
}

#[test]
fn a_failed_cleanup_says_what_to_check() {
    let (result, _) = run(
        "create",
        [
            Answer::Broken(Sent::Maybe, "connection lost".into()),
            Answer::Broken(Sent::No, "cannot connect".into()),
        ],
    );
    assert!(
        result.unwrap_err().ends_with(
            "the cleanup failed as well (cannot connect); check the host for a VM named i-2-45-VM and D:\\VHD\\i-2-45-VM.vhdx"
        )
    );
}

#[test]
fn delete_reports_removed_and_kept_disks() {
    let (doc, host) = run(
        "delete",
        [done(
            json!({"found": true, "removed": ["D:\\VHD\\a.vhdx"], "kept": ["E:\\b.vhdx"]}),
        )],
    );
    let doc = doc.unwrap();
    assert_eq!(
        doc["message"],
        "VM i-2-45-VM deleted with 1 disk(s); kept 1 disk(s) outside vhd_path or in use: E:\\b.vhdx"
    );
    assert_eq!(doc["removed_disks"], json!(["D:\\VHD\\a.vhdx"]));
    assert_eq!(doc["kept_disks"], json!(["E:\\b.vhdx"]));
    assert_eq!(host.received()[0].data["vhd_path"], "D:\\VHD");
    let (doc, _) = run("delete", [done(json!({"found": false}))]);
    assert_eq!(
        doc.unwrap()["message"],
        "VM i-2-45-VM does not exist on the host: nothing to delete"
    );
}

#[test]
fn list_snapshots_is_a_table_and_a_root_checkpoint_has_an_empty_parent() {
    let row = |name: &str, parent: &str| {
        json!({"name": name, "id": format!("id-{name}"), "created": "2026-01-01T00:00:00Z",
               "parent": parent, "type": "Production"})
    };
    let (doc, _) = run(
        "ListSnapshots",
        [done(
            json!({"snapshots": [row("base", ""), row("next", "base")]}),
        )],
    );
    let doc = doc.unwrap();
    assert_eq!(doc["printmessage"], "true");
    assert_eq!(
        doc["message"],
        json!([row("base", ""), row("next", "base")])
    );
    // A null parent is not what the script sends: refused, never shown as "null".
    let mut null_parent = row("base", "");
    null_parent["parent"] = Value::Null;
    let (result, _) = run("ListSnapshots", [done(json!({"snapshots": [null_parent]}))]);
    assert!(result.unwrap_err().contains("malformed"));
}

#[test]
fn checkpoint_actions_send_the_name_and_restore_reports_the_power_state() {
    let row = json!({"name": "before-upgrade", "id": "c1", "created": "2026-01-01T00:00:00Z",
                     "parent": "", "type": "Production"});
    let (doc, host) = run(
        "RestoreSnapshot",
        [done(json!({"snapshot": row, "state": "Off"}))],
    );
    let doc = doc.unwrap();
    assert_eq!(
        (doc["power_state"].clone(), doc["state"].clone()),
        (json!("poweroff"), json!("Off"))
    );
    assert_eq!(host.received()[0].data["snapshot"], "before-upgrade");
    let (doc, _) = run(
        "CreateSnapshot",
        [done(json!({"snapshot": row, "state": "Running"}))],
    );
    assert_eq!(doc.unwrap()["snapshot"], row);
    let (result, _) = run(
        "DeleteSnapshot",
        [fail(json!({"code": "SNAPSHOT_AMBIGUOUS", "detail": 2}))],
    );
    assert!(
        result
            .unwrap_err()
            .contains("2 checkpoints of VM i-2-45-VM have that name")
    );
}

#[test]
fn bad_input_never_reaches_the_host() {
    let mut p = payload();
    p["externaldetails"]["host"]["url"] = json!("");
    p["virtualmachinename"] = json!("bad name;");
    for action in ["create", "stop", "status", "statuses", "ListSnapshots"] {
        let (result, host) = run_with(action, &p, []);
        let err = result.unwrap_err();
        assert!(
            err.contains("nothing was changed on the host"),
            "{action}: {err}"
        );
        assert!(host.received().is_empty(), "{action}");
    }
}
