//! Every user- or operator-controlled field against a corpus of PowerShell, cmd.exe and
//! Windows specials: each value either works literally (the host ends up with exactly that
//! name or path) or is refused by validation before any connection; nothing else changes.

use std::os::unix::fs::PermissionsExt;

use e2e::hyperv::{Cost, Hv, UUID, VM};
use hyperv_testhost::State;
use serde_json::{Value, json};

/// A corpus value and what each kind of field must do with it.
struct Case {
    value: &'static str,
    /// Free text (snapshot and switch names): no control or line-breaking characters.
    text: bool,
    /// A Windows path component: also none of `"<>|?*[]` and no leading space.
    path: bool,
}

const fn case(value: &'static str, text: bool, path: bool) -> Case {
    Case { value, text, path }
}

const CORPUS: &[Case] = &[
    case("it's", true, true),
    case("a\u{2018}b", true, true),
    case("a\u{2019}b", true, true),
    case("a\u{201A}b", true, true),
    case("a\u{201B}b", true, true),
    case("x'; Remove-VM -Name * -Force; '", true, false),
    case("x\u{2019}; Stop-Computer; \u{2018}", true, true),
    case("say \"hi\"", true, false),
    case("\u{201C}curly\u{201D} \u{201E}low\u{201D}", true, true),
    case("$(Stop-Computer -Force)", true, true),
    case("${env:SystemRoot}", true, false),
    case("$PSHOME", true, true),
    case("a`b`$c", true, true),
    case("a; Get-VM | Remove-VM", true, false),
    case("a & calc.exe", true, true),
    case("%COMSPEC% ^& !x!", true, true),
    case("@(1,2) #comment", true, true),
    case("*", true, false),
    case("?", true, false),
    case("[a-z]", true, false),
    case("star*", true, false),
    case("line1\nline2", false, false),
    case("cr\rlf", false, false),
    case("tab\there", false, false),
    case("nul\u{0}byte", false, false),
    case("a\u{2028}b", false, false),
    case("caf\u{e9}", true, true),
    case("\u{65e5}\u{672c}\u{8a9e}", true, true),
    case("\u{1F600} emoji", true, true),
    case("\u{202E}evil.exe", true, true),
];

/// The value as the SDK hands it over (details are trimmed).
fn trimmed(c: &Case) -> &str {
    c.value.trim()
}

fn snapshot_payload(hv: &Hv, key: &str, value: &str) -> Value {
    let mut p = hv.payload(VM, UUID);
    p["parameters"] = json!({ key: value });
    p
}

fn assert_refused(hv: &Hv, run: e2e::Run, cost: Cost, field: &str, before: &State, what: &str) {
    assert_eq!(run.code, Some(1), "{what}: must be refused: {}", run.stdout);
    let err = run.failure(1);
    assert!(
        err.contains(field),
        "{what}: the error must name {field}: {err}"
    );
    assert_eq!(cost, Cost::NONE, "{what}: refused before connecting");
    assert_eq!(&hv.state(), before, "{what}: nothing changed");
}

#[test]
fn snapshot_names_work_literally_or_are_refused() {
    snapshot_names(Hv::start());
}

#[test]
fn snapshot_names_work_literally_or_are_refused_over_winrm() {
    snapshot_names(Hv::start_winrm());
}

fn snapshot_names(hv: Hv) {
    let base = hv.payload(VM, UUID);
    hv.run("create", &base).success();
    hv.run(
        "CreateSnapshot",
        &snapshot_payload(&hv, "snapshot_name", "keep-me"),
    )
    .success();
    for (i, c) in CORPUS.iter().enumerate() {
        // Both spellings of the parameter.
        let key = if i % 2 == 0 {
            "snapshot_name"
        } else {
            "snap_name"
        };
        let p = snapshot_payload(&hv, key, c.value);
        let what = format!("snapshot {:?}", c.value);
        let before = hv.state();
        let (run, cost) = hv.run_counted("CreateSnapshot", &p);
        if !c.text {
            assert_refused(&hv, run, cost, "snapshot name", &before, &what);
            continue;
        }
        run.success();
        assert_eq!(cost, Cost::ONE, "{what}");
        assert_eq!(
            checkpoint_names(&hv.state()),
            ["keep-me", trimmed(c)],
            "{what}: exactly one new checkpoint, literally named"
        );
        let rows = hv.run("ListSnapshots", &base).success()["message"].clone();
        assert_eq!(rows[1]["name"], trimmed(c), "{what}: listed back unchanged");

        hv.run("DeleteSnapshot", &p).success();
        let after = hv.state();
        assert_eq!(
            checkpoint_names(&after),
            ["keep-me"],
            "{what}: only that checkpoint deleted (no wildcard)"
        );
        let mut expected = before.vms.clone();
        expected[0].parent_checkpoint = after.vms[0].parent_checkpoint.clone();
        assert_eq!(after.vms, expected, "{what}: nothing else changed");
    }
    assert_eq!(hv.state().rejected, 0, "every script was one of ours");
}

#[test]
fn switch_names_work_literally_or_are_refused() {
    switch_names(Hv::start());
}

#[test]
fn switch_names_work_literally_or_are_refused_over_winrm() {
    switch_names(Hv::start_winrm());
}

fn switch_names(hv: Hv) {
    for (i, c) in CORPUS.iter().enumerate() {
        let name = format!("i-9-{i}-VM");
        let what = format!("switch {:?}", c.value);
        if c.text {
            hv.host.update(|s| {
                let id = s.new_id();
                s.switches.push(hyperv_testhost::state::Switch {
                    id,
                    name: trimmed(c).into(),
                });
            });
        }
        let mut p = hv.payload(&name, &format!("bbbbbbbb-0000-0000-0000-{i:012}"));
        p["externaldetails"]["host"]["network_switch"] = json!(c.value);
        p["cloudstack.vm.details"]["nics"] =
            json!([{"deviceId": 0, "mac": format!("02:00:00:00:{i:02x}:01")}]);
        let before = hv.state();
        let (run, cost) = hv.run_counted("create", &p);
        if c.text {
            run.success();
            assert_eq!(cost, Cost::ONE, "{what}");
            let after = hv.state();
            assert_eq!(
                after.vms[..before.vms.len()],
                before.vms[..],
                "{what}: other VMs unchanged"
            );
            let new = &after.vms[before.vms.len()];
            assert_eq!(
                new.adapters[0].switch.as_deref(),
                Some(trimmed(c)),
                "{what}"
            );
        } else {
            assert_refused(&hv, run, cost, "network_switch", &before, &what);
        }
    }
    // A wildcard is a name like any other: it does not match the seeded switch.
    let mut p = hv.payload("i-9-99-VM", UUID);
    p["externaldetails"]["host"]["network_switch"] = json!("External*");
    let before = hv.state();
    let err = hv.run("create", &p).failure(1);
    assert!(err.contains("no virtual switch named 'External*'"), "{err}");
    assert_eq!(hv.state().vms, before.vms);
    assert_eq!(hv.state().rejected, 0);
}

/// Creates the folder on the test host, writable by the fake (it runs as the test user).
fn folder(hv: &Hv, windows_path: &str) {
    let local = hv.host.local(windows_path);
    std::fs::create_dir_all(&local).unwrap();
    std::fs::set_permissions(&local, PermissionsExt::from_mode(0o777)).unwrap();
}

#[test]
fn paths_work_literally_or_are_refused() {
    let hv = Hv::start();
    for (i, c) in CORPUS.iter().enumerate() {
        let name = format!("i-8-{i}-VM");
        let uuid = format!("cccccccc-0000-0000-0000-{i:012}");
        let v = trimmed(c);
        let vhd = format!("C:\\Disks\\{v}");
        let vms = format!("C:\\VMs\\{v}");
        let tpl = format!("C:\\Templates\\{v}.vhdx");
        let iso = format!("C:\\ISO\\{v}.iso");
        let with = |host: Value, vm: Value| {
            let mut p = hv.payload(&name, &uuid);
            for (k, val) in host.as_object().unwrap() {
                p["externaldetails"]["host"][k] = val.clone();
            }
            p["externaldetails"]["virtualmachine"] = vm;
            p
        };
        let template = |path: &str| json!({"template_type": "template", "generation": "2", "template_path": path});
        let seeded_tpl = json!({"template_type": "template", "generation": "2", "template_path": hv.host.info.template_path});
        let iso_vm =
            |path: &str| json!({"template_type": "iso", "iso_path": path, "vhd_size_gb": "1"});
        let what = format!("path {:?}", c.value);
        if !c.path {
            for (field, p) in [
                (
                    "vhd_path",
                    with(json!({"vhd_path": vhd}), seeded_tpl.clone()),
                ),
                ("vm_path", with(json!({"vm_path": vms}), seeded_tpl.clone())),
                ("template_path", with(json!({}), template(&tpl))),
                ("iso_path", with(json!({}), iso_vm(&iso))),
            ] {
                let before = hv.state();
                let (run, cost) = hv.run_counted("create", &p);
                assert_refused(
                    &hv,
                    run,
                    cost,
                    field,
                    &before,
                    &format!("{what} as {field}"),
                );
            }
            continue;
        }
        // Valid: every path field at once, each used literally.
        folder(&hv, &vhd);
        folder(&hv, &vms);
        let content = format!("template {i}");
        std::fs::create_dir_all(hv.host.local("C:\\Templates")).unwrap();
        std::fs::write(hv.host.local(&tpl), &content).unwrap();
        let p = with(json!({"vhd_path": vhd, "vm_path": vms}), template(&tpl));
        let before = hv.state();
        let (run, cost) = hv.run_counted("create", &p);
        run.success();
        assert_eq!(cost, Cost::ONE, "{what}");
        let after = hv.state();
        assert_eq!(
            after.vms[..before.vms.len()],
            before.vms[..],
            "{what}: other VMs unchanged"
        );
        let vm = after.vms.last().unwrap().clone();
        let disk = format!("{vhd}\\{name}.vhdx");
        assert_eq!(vm.disks, vec![disk.clone()], "{what}");
        assert_eq!(
            hv.file(&disk),
            Some(content.into_bytes()),
            "{what}: copied from the literal template"
        );
        assert!(
            // The folder New-VM made, under the name it gave (the name and this run's id).
            vm.config.starts_with(&format!("{vms}\\{name}.cs-create-")),
            "{what}: {}",
            vm.config
        );
        hv.run("delete", &p).success();
        assert!(
            !hv.exists(&disk),
            "{what}: the disk under the literal vhd_path was removed"
        );
        assert!(hv.exists(&tpl), "{what}: the template stays");
        assert_eq!(hv.state().vms, before.vms, "{what}: back to before");

        std::fs::create_dir_all(hv.host.local("C:\\ISO")).unwrap();
        std::fs::write(hv.host.local(&iso), "iso").unwrap();
        let p = with(json!({}), iso_vm(&iso));
        hv.run("create", &p).success();
        assert_eq!(
            hv.state().vms.last().unwrap().dvds,
            vec![iso.clone()],
            "{what}"
        );
        hv.run("delete", &p).success();
        assert!(hv.exists(&iso), "{what}: the ISO stays");
    }
    assert_eq!(hv.state().rejected, 0);
}

#[test]
fn typed_fields_refuse_every_corpus_value_before_connecting() {
    let hv = Hv::start();
    let base = hv.payload(VM, UUID);
    let before = hv.state();
    for c in CORPUS {
        let mut cases: Vec<(&str, Value)> = Vec::new();
        for (field, at) in [
            ("url", "/externaldetails/host/url"),
            ("port", "/externaldetails/host/port"),
            (
                "host_key_fingerprint",
                "/externaldetails/host/host_key_fingerprint",
            ),
            ("host_key_check", "/externaldetails/host/host_key_check"),
            ("stop_mode", "/externaldetails/host/stop_mode"),
            ("stop_timeout", "/externaldetails/host/stop_timeout"),
            (
                "template_type",
                "/externaldetails/virtualmachine/template_type",
            ),
            ("generation", "/externaldetails/virtualmachine/generation"),
            ("secure_boot", "/externaldetails/virtualmachine/secure_boot"),
            ("vhd_size_gb", "/externaldetails/virtualmachine/vhd_size_gb"),
            ("VM name", "/virtualmachinename"),
            ("VM UUID", "/virtualmachineid"),
            ("MAC", "mac"),
            ("VLAN", "broadcastUri"),
        ] {
            let mut p = base.clone();
            let value = if field == "VLAN" {
                format!("vlan://{}", c.value)
            } else {
                c.value.to_owned()
            };
            if at.starts_with('/') {
                e2e::set(&mut p, at, json!(value));
            } else {
                p["cloudstack.vm.details"]["nics"][0][at] = json!(value);
            }
            if field == "host_key_check" {
                // Only consulted without a pinned fingerprint.
                e2e::remove(&mut p, "/externaldetails/host/host_key_fingerprint");
            }
            if field == "vhd_size_gb" {
                e2e::set(
                    &mut p,
                    "/externaldetails/virtualmachine/template_type",
                    json!("iso"),
                );
                e2e::set(
                    &mut p,
                    "/externaldetails/virtualmachine/iso_path",
                    json!("C:\\ISO\\x.iso"),
                );
            }
            cases.push((field, p));
        }
        for (field, p) in cases {
            // Settings are read (and checked) by the actions that use them.
            let action = if field.starts_with("stop_") {
                "stop"
            } else {
                "create"
            };
            let (run, cost) = hv.run_counted(action, &p);
            let needle = match field {
                "VM name" => "VM name",
                "VM UUID" => "VM UUID",
                "MAC" => "MAC address",
                "VLAN" => "broadcast URI",
                f => f,
            };
            assert_refused(
                &hv,
                run,
                cost,
                needle,
                &before,
                &format!("{field} = {:?}", c.value),
            );
        }
    }
}

#[test]
fn ssh_identity_fields_are_used_literally() {
    let hv = Hv::start();
    let base = hv.payload(VM, UUID);
    let subset = [0, 1, 5, 9, 12, 13, 17, 19, 21, 26, 28];
    for c in subset.iter().map(|&i| &CORPUS[i]) {
        let what = format!("{:?}", c.value);
        // username: sent to sshd as is (who refuses it); never with control characters.
        let p = hv.with_host(&base, |h| h["username"] = json!(c.value));
        let (run, cost) = hv.run_counted("status", &p);
        let err = run.failure(1);
        if c.value.chars().any(char::is_control) {
            assert!(err.contains("username"), "{what}: {err}");
            assert_eq!(cost, Cost::NONE);
        } else {
            assert!(err.contains("authentication as"), "{what}: {err}");
            assert_eq!(cost, Cost::CONNECTED_ONLY, "{what}");
        }
        // password: a wrong one, literally; it never reaches the log.
        let secret = format!("pw-{}", c.value);
        let p = hv.with_host(&base, |h| h["password"] = json!(secret));
        let (run, cost) = hv.run_counted("status", &p);
        assert!(
            run.failure(1)
                .contains("authentication as 'hvtest' by password failed"),
            "{what}"
        );
        assert_eq!(cost, Cost::CONNECTED_ONLY, "{what}");
        assert!(
            !hv.scratch.log().contains(secret.trim()),
            "{what}: password in the log"
        );
        // known_hosts: a file of that name (on the management server) is read literally.
        if !c.value.contains('\0') {
            let file = hv.scratch.path().join(format!("kh-{}", c.value.trim()));
            let key = std::fs::read_to_string(format!(
                "{}/../ssh/host_ed25519.pub",
                hv.host.info.state.trim_end_matches("/state.json")
            ))
            .unwrap();
            std::fs::write(&file, format!("[127.0.0.1]:{} {key}", hv.host.info.port)).unwrap();
            let p = hv.with_host(&base, |h| {
                h.as_object_mut().unwrap().remove("host_key_fingerprint");
                h["known_hosts"] = json!(file);
            });
            assert_eq!(
                hv.run("status", &p).success()["power_state"],
                "poweroff",
                "{what}"
            );
        }
    }
    assert!(hv.state().vms.is_empty());
    assert_eq!(hv.state().rejected, 0);
}

/// The names of the first VM's checkpoints, oldest first.
fn checkpoint_names(state: &hyperv_testhost::State) -> Vec<String> {
    state.vms[0]
        .checkpoints
        .iter()
        .map(|c| c.name.clone())
        .collect()
}
