//! Files and directories the binaries create get explicit modes whatever the umask: run with
//! umask 000, nothing they make is writable (or, for secrets, readable) by others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use e2e::hyperv::{Hv, UUID, VM};
use e2e::proxmox::{Payload, TestVm};
use e2e::pve::FakePve;
use e2e::{Invoke, binary};
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn proxmox_logs_state_directories_and_the_ledger_under_umask_000() {
    let pve = FakePve::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("extensions/proxmox-ext.log");
    let state = dir.path().join("state/proxmox-ext");
    let payload = Payload::vm(&pve, &TestVm::new()).write(dir.path());
    let run = Invoke::new(
        binary("proxmox-ext"),
        &["prepare".as_ref(), payload.as_os_str(), "60".as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .env("PROXMOX_EXT_STATE_DIR", state.as_os_str())
    .umask(0o000)
    .run();
    assert!(run.success()["details"]["proxmox_vmid"].is_string());
    for (path, wanted) in [
        (log.parent().unwrap(), 0o750),
        (&log, 0o640),
        (state.parent().unwrap(), 0o750),
        (&state, 0o750),
        (&state.join("vmid-ledger"), 0o640),
        (&state.join("vmid-ledger.lock"), 0o640),
    ] {
        assert_eq!(mode(path), wanted, "{}: {:o}", path.display(), mode(path));
    }
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no probe or temp file left: {leftovers:?}"
    );
}

#[test]
fn hyperv_known_hosts_and_dot_ssh_under_umask_000() {
    let hv = Hv::start();
    let home = hv.scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let tofu = hv.with_host(&hv.payload(VM, UUID), |h| {
        h.as_object_mut().unwrap().remove("host_key_fingerprint");
        h["host_key_check"] = json!("accept-new");
    });
    let payload = hv.scratch.payload("status.json", &tofu);
    let log = hv.scratch.path().join("logs/hyperv-ext.log");
    let state = hv.state_dir();
    let run = Invoke::new(
        binary("hyperv-ext"),
        &["status".as_ref(), payload.as_os_str(), "60".as_ref()],
    )
    .env("HOME", home.as_os_str())
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .env("HYPERV_EXT_STATE_DIR", state.as_os_str())
    .umask(0o000)
    .run();
    assert_eq!(run.success()["power_state"], "poweroff");
    let ssh = home.join(".ssh");
    assert_eq!(mode(&ssh), 0o700, "{:o}", mode(&ssh));
    assert_eq!(mode(&ssh.join("known_hosts")), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o750);
    assert_eq!(mode(&log), 0o640);
    // The record of the instance's UUID (what statuses needs).
    assert_eq!(mode(&state), 0o750);
    assert_eq!(mode(&state.join("instance-uuids")), 0o750);
    assert_eq!(mode(&state.join("instance-uuids").join(VM)), 0o640);

    // A known_hosts path of the operator's in directories that do not exist yet.
    let known = hv.scratch.path().join("deep/er/known_hosts");
    let tofu = hv.with_host(&tofu, |h| h["known_hosts"] = json!(known));
    let payload = hv.scratch.payload("status2.json", &tofu);
    Invoke::new(
        binary("hyperv-ext"),
        &["status".as_ref(), payload.as_os_str(), "60".as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .env("HYPERV_EXT_STATE_DIR", state.as_os_str())
    .umask(0o000)
    .run()
    .success();
    assert_eq!(mode(&known), 0o600);
    assert_eq!(mode(known.parent().unwrap()), 0o700);
    assert_eq!(mode(known.parent().unwrap().parent().unwrap()), 0o700);
}
