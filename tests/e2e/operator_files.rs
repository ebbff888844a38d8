//! What the packages give an operator besides the binary: a sample payload for every action
//! (usable as `<exe> <action> examples/<action>.json 60` once the connection details are
//! edited), and the default state directory in the running user's home.

use std::ffi::OsStr;
use std::path::PathBuf;

use e2e::proxmox::{Payload, TestVm, World};
use e2e::{Invoke, Scratch, actions_of, binary, repo_root, run_action, set};
use serde_json::{Value, json};

fn example(exe: &str, action: &str) -> Value {
    let path = repo_root()
        .join("packaging/examples")
        .join(exe)
        .join(format!("{action}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{exe} has no example for {action} ({}): {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every example is complete: with the host pointed at a closed port, each action gets as far
/// as connecting (no missing or invalid detail), and nothing is left in the examples folder
/// that no action reads.
#[test]
fn every_action_has_a_complete_example() {
    for (exe, closed, connect_error) in [
        (
            "proxmox-ext",
            "https://127.0.0.1:1",
            "cannot connect to the Proxmox API",
        ),
        ("hyperv-ext", "127.0.0.1:1", "cannot connect to 127.0.0.1:1"),
    ] {
        let actions = actions_of(exe);
        assert!(actions.len() >= 15, "{actions:?}");
        let dir = repo_root().join("packaging/examples").join(exe);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut expected: Vec<String> = actions.iter().map(|a| format!("{a}.json")).collect();
        expected.sort();
        assert_eq!(files, expected, "one example per action of {exe}");

        let scratch = Scratch::new();
        for action in &actions {
            let mut payload = example(exe, action);
            set(&mut payload, "/externaldetails/host/url", json!(closed));
            let file = scratch.payload(&format!("{action}.json"), &payload);
            let run = run_action(&binary(exe), &scratch, action, &file, "20");
            let doc = run.json();
            let answered_without_connecting = match (exe, action.as_str()) {
                ("hyperv-ext", "prepare") => Some(true),
                ("hyperv-ext", "getconsole") => Some(false),
                _ => None,
            };
            // A preflight `check` (issue 10) answers success with its table whenever it could
            // run, the unreachable host as a failed row.
            if action == "check" {
                assert_eq!(run.code, Some(0), "{exe} check: {doc}");
                let rows = doc["message"].as_array().cloned().unwrap_or_default();
                assert!(
                    rows.iter()
                        .any(|r| r["probe"] == "tcp" && r["result"] == "fail"),
                    "{exe} check should fail its tcp probe on the closed port: {doc}"
                );
                continue;
            }
            match answered_without_connecting {
                Some(true) => assert_eq!(run.code, Some(0), "{exe} {action}: {doc}"),
                Some(false) => assert_eq!(run.code, Some(1), "{exe} {action}: {doc}"),
                None => {
                    let error = doc["error"].as_str().unwrap_or_default();
                    assert!(
                        error.contains(connect_error),
                        "{exe} {action} should fail only at connecting: {doc}"
                    );
                }
            }
        }
    }
}

/// Without `state_dir` or `PROXMOX_EXT_STATE_DIR`, the VMID ledger lives in
/// `$HOME/proxmox-ext`: on EL the `cloud` user's home is `/var/cloudstack/management`, not
/// Debian's `/var/lib/cloudstack/management`.
#[test]
fn the_ledger_defaults_to_the_users_home() {
    let w = World::new();
    let scratch = Scratch::new();
    let home = scratch.path().join("var/cloudstack/management");
    std::fs::create_dir_all(&home).unwrap();
    let file: PathBuf = Payload::vm(&w.pve, &TestVm::new()).write(scratch.path());
    let log = scratch.log_path();
    let run = Invoke::new(
        binary("proxmox-ext"),
        &["prepare".as_ref(), file.as_os_str(), "60".as_ref()],
    )
    .env("HOME", home.as_os_str())
    .env("PROXMOX_EXT_STATE_DIR", OsStr::new(""))
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .run();
    let doc = run.success();
    let vmid = doc["details"]["proxmox_vmid"].as_str().unwrap().to_owned();
    let ledger =
        std::fs::read_to_string(home.join("proxmox-ext/vmid-ledger")).unwrap_or_else(|e| {
            panic!(
                "no ledger in $HOME/proxmox-ext ({e}); log: {}",
                scratch.log()
            )
        });
    assert!(
        ledger
            .lines()
            .any(|l| l.split_whitespace().next() == Some(vmid.as_str())),
        "{ledger}"
    );
}
