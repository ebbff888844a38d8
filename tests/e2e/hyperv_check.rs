//! `check` against the test host: healthy, then each probe's set-up broken on purpose. Every
//! run answers a table with exit 0, costs at most one connection and one PowerShell start,
//! and leaves the host as it was (the fake proves the script read-only, the tests compare
//! state and files) and the management server too (no known_hosts line is written).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use e2e::hyperv::{Cost, Hv};
use e2e::{Invoke, binary};
use hyperv_testhost::{Knobs, State};
use serde_json::{Value, json};

/// A check on a host: host details plus the template and ISO as parameters.
fn payload(hv: &Hv) -> Value {
    json!({
        "externaldetails": {"host": hv.host_details()},
        "parameters": {
            "template_path": hv.host.info.template_path,
            "iso_path": hv.host.info.iso_path,
        },
    })
}

/// The table of one check run, by probe, after the contract's checks.
struct Table {
    rows: Vec<Value>,
    cost: Cost,
}

impl Table {
    fn row(&self, probe: &str) -> &Value {
        self.rows
            .iter()
            .find(|r| r["probe"] == probe)
            .unwrap_or_else(|| panic!("no row '{probe}': {:#?}", self.rows))
    }

    fn result(&self, probe: &str) -> &str {
        self.row(probe)["result"].as_str().unwrap()
    }

    fn found(&self, probe: &str) -> &str {
        self.row(probe)["found"].as_str().unwrap()
    }

    fn fix(&self, probe: &str) -> &str {
        self.row(probe)["fix"].as_str().unwrap()
    }

    /// The probes with `result`, in table order.
    fn with(&self, result: &str) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r["result"] == result && r["probe"] != "summary")
            .map(|r| r["probe"].as_str().unwrap())
            .collect()
    }
}

/// Files under the host's fs root with size, modification time and mode.
fn files(hv: &Hv) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(&hv.host.info.fs_root)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            out.push(format!(
                "{} {} {}.{} {:o}",
                entry.path().display(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.mode()
            ));
        }
    }
    out.sort();
    out
}

/// Runs `check` with `payload` (timeout `timeout`), and asserts what every check keeps:
/// exit 0 with a table whose first row sums it up, within the timeout, at most one
/// connection and one PowerShell start, nothing changed on the host.
fn check(hv: &Hv, payload: &Value, timeout: &str) -> Table {
    let (state, disk) = (hv.state(), files(hv));
    let connections = || {
        hv.host.connections()
            + usize::try_from(hv.host.winrm_counters().connections).expect("a count")
    };
    let before = connections();
    let run = hv.run_with_timeout("check", payload, timeout);
    let doc = run.success();
    let limit = Duration::from_secs(timeout.parse().unwrap());
    assert!(run.elapsed < limit, "answered after {:?}", run.elapsed);
    assert_eq!(doc["printmessage"], "true", "{doc}");
    let rows = doc["message"].as_array().unwrap().clone();
    assert_eq!(rows[0]["probe"], "summary", "{doc}");
    eprintln!("check table: {}", serde_json::to_string(&rows).unwrap());
    let after = hv.state();
    let cost = Cost {
        connections: connections() - before,
        launches: after.invocations - state.invocations,
    };
    assert!(
        cost.connections <= 1 && cost.launches <= cost.connections as u64,
        "{cost:?}"
    );
    assert_unchanged(&state, &after, cost.launches);
    assert_eq!(files(hv), disk, "files on the host changed");
    Table { rows, cost }
}

/// The host is as it was; a check that reached PowerShell ran the read-only script, which the
/// fake found to change nothing.
fn assert_unchanged(before: &State, after: &State, launches: u64) {
    assert_eq!(after.host_only(), before.host_only(), "the host changed");
    // A start the deadline cut off may be recorded a moment after the answer.
    let new = &after.launches[before.launches.len()..];
    assert!(new.len() as u64 <= launches, "{new:?}");
    for launch in new {
        assert_eq!(launch.script.as_deref(), Some("check"), "{launch:?}");
        assert!(launch.read_only && launch.changes.is_empty(), "{launch:?}");
    }
}

/// `userauth-request` lines sshd logged since `before`: authentication attempts.
fn auth_requests_since(hv: &Hv, before: &str) -> usize {
    hv.host.sshd_log()[before.len()..]
        .matches("userauth-request for user")
        .count()
}

const HOST_ROWS: [&str; 8] = [
    "hyper-v module",
    "hyper-v rights",
    "network_switch",
    "vhd_path",
    "vm_path",
    "template_path",
    "iso_path",
    "powershell",
];

#[test]
fn a_healthy_host_passes_every_probe_in_one_read_only_run() {
    let hv = Hv::start();
    let table = check(&hv, &payload(&hv), "60");
    assert_eq!(table.cost, Cost::ONE);
    assert_eq!(table.with("ok").len(), 13, "{:#?}", table.rows);
    assert_eq!(table.result("summary"), "ok");
    assert_eq!(
        table.found("summary"),
        "13 probes: 13 ok, 0 warn, 0 fail, 0 skip"
    );
    assert_eq!(table.result("details"), "ok");
    let port = hv.host.info.port;
    assert_eq!(
        table.found("tcp"),
        format!(
            "reached 127.0.0.1:{port} for SSH; address from url '127.0.0.1' (host detail) and \
             port '{port}' (host detail)"
        )
    );
    assert_eq!(
        table.found("host key"),
        format!(
            "{} matches host_key_fingerprint",
            hv.host.info.host_key_fingerprint
        )
    );
    assert_eq!(table.found("authentication"), "as 'hvtest' by password");
    assert!(
        table.found("vhd_path").contains("Modify"),
        "{:?}",
        table.rows
    );
    assert!(
        table
            .found("log_file")
            .contains("extension.log is writable")
    );
    // The data the script got: the folders and files asked about, nothing else.
    let launch = hv.state().launches.pop().unwrap();
    assert_eq!(launch.data["vhd_path"], json!(hv.host.info.vhd_path));
    assert_eq!(launch.data["template"], json!(hv.host.info.template_path));
    assert_eq!(launch.outcome, "ok");
}

#[test]
fn tcp_a_closed_port_or_an_unknown_name_names_the_address_and_its_details() {
    let hv = Hv::start();
    let port = e2e::closed_port("127.0.0.1");
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["port"] = json!(port.to_string());
    let table = check(&hv, &p, "30");
    assert_eq!(table.cost, Cost::NONE);
    assert_eq!(table.result("tcp"), "fail");
    let found = table.found("tcp");
    assert!(
        found.starts_with(&format!("cannot connect to 127.0.0.1:{port}: "))
            && found.contains("hyperv-ext connects to this host over SSH")
            && found.contains(&format!(
                "url '127.0.0.1' (host detail) and port '{port}' (host detail)"
            )),
        "{found}"
    );
    assert!(table.fix("tcp").contains("OpenSSH"), "{}", table.fix("tcp"));
    for probe in ["host key", "authentication"].iter().chain(&HOST_ROWS) {
        assert_eq!(table.result(probe), "skip", "{probe}");
        assert_eq!(table.found(probe), "not probed: 'tcp' failed", "{probe}");
    }
    assert_eq!(table.result("summary"), "fail");
    assert!(table.fix("summary").starts_with("tcp: "));

    // A name that does not resolve (or whose lookup the deadline cuts short).
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["url"] = json!("hv1.invalid");
    let table = check(&hv, &p, "10");
    let found = table.found("tcp");
    assert!(
        (found.starts_with("cannot resolve hv1.invalid")
            || found.contains("resolving hv1.invalid"))
            && found.contains(&format!(
                "url 'hv1.invalid' (host detail) and port '{}'",
                hv.host.info.port
            )),
        "{found}"
    );
    assert_eq!(table.result("host key"), "skip");
}

#[test]
fn host_key_a_wrong_pin_is_refused_with_the_key_to_pin_before_any_credential() {
    let hv = Hv::start();
    let real = hv.host.info.host_key_fingerprint.clone();
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["host_key_fingerprint"] =
        json!("SHA256:rR6iUlzF3uUDWWx6mhOqgnuP3WdqUWW2Yl5chxZ8Vik");
    let log = hv.host.sshd_log();
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("tcp"), "ok");
    assert_eq!(table.result("host key"), "fail");
    assert!(table.found("host key").contains("host key mismatch"));
    assert!(
        table
            .fix("host key")
            .ends_with(&format!("host_key_fingerprint={real}")),
        "{}",
        table.fix("host key")
    );
    assert_eq!(table.result("authentication"), "skip");
    assert_eq!(
        auth_requests_since(&hv, &log),
        0,
        "no credential was offered"
    );
    assert_eq!(table.cost.launches, 0);

    // No host key detail at all: an action refuses before connecting; check connects to show
    // the key, and still sends no credential.
    let mut p = payload(&hv);
    p["externaldetails"]["host"]
        .as_object_mut()
        .unwrap()
        .remove("host_key_fingerprint");
    let log = hv.host.sshd_log();
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("host key"), "fail");
    assert!(
        table.found("host key").contains(&format!(
            "no host key detail is set, so the server cannot be trusted; it presented {real}"
        )),
        "{}",
        table.found("host key")
    );
    assert!(
        table
            .fix("host key")
            .ends_with(&format!("host_key_fingerprint={real}"))
    );
    assert_eq!(auth_requests_since(&hv, &log), 0);
    assert_eq!(table.cost.connections, 1);
}

#[test]
fn host_key_trusted_on_first_use_is_a_warning_and_nothing_is_recorded() {
    let hv = Hv::start();
    let real = hv.host.info.host_key_fingerprint.clone();
    let known = hv.scratch.path().join("ssh").join("known_hosts");
    let mut p = payload(&hv);
    let host = p["externaldetails"]["host"].as_object_mut().unwrap();
    host.remove("host_key_fingerprint");
    host.insert("known_hosts".into(), json!(known));
    host.insert("host_key_check".into(), json!("accept-new"));
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("host key"), "warn");
    assert!(
        table
            .found("host key")
            .contains("at the first action (check records nothing)"),
        "{}",
        table.found("host key")
    );
    assert!(
        table
            .fix("host key")
            .ends_with(&format!("host_key_fingerprint={real}"))
    );
    assert!(!known.exists(), "check wrote {}", known.display());
    assert!(!known.parent().unwrap().exists());
    for probe in HOST_ROWS {
        assert_eq!(table.result(probe), "ok", "{probe}");
    }
    // host_key_check=off: a warning with the key to pin.
    p["externaldetails"]["host"]["host_key_check"] = json!("off");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("host key"), "warn");
    assert!(
        table
            .found("host key")
            .starts_with("not verified (host_key_check=off)")
    );
}

#[test]
fn authentication_a_wrong_password_fails_and_powershell_is_not_started() {
    let hv = Hv::start();
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["password"] = json!("not-the-password");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("host key"), "ok");
    assert_eq!(table.result("authentication"), "fail");
    assert!(
        table
            .found("authentication")
            .contains("authentication as 'hvtest' by password failed"),
        "{}",
        table.found("authentication")
    );
    assert!(
        table
            .fix("authentication")
            .contains("administrators_authorized_keys")
    );
    for probe in HOST_ROWS {
        assert_eq!(table.result(probe), "skip", "{probe}");
    }
    assert_eq!(table.cost.launches, 0);
    assert!(!hv.scratch.log().contains("not-the-password"));
}

#[test]
fn powershell_an_old_version_warns_and_no_answer_fails() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        powershell_version: Some("4.0".into()),
        ..Knobs::default()
    });
    let table = check(&hv, &payload(&hv), "30");
    assert_eq!(table.result("powershell"), "warn");
    assert!(table.found("powershell").starts_with("PowerShell 4.0:"));
    assert_eq!(table.result("summary"), "warn");

    hv.host.knobs(&Knobs {
        garbage: true,
        ..Knobs::default()
    });
    let table = check(&hv, &payload(&hv), "30");
    assert_eq!(table.result("powershell"), "fail");
    assert!(
        table
            .found("powershell")
            .contains("the remote PowerShell printed no result line"),
        "{}",
        table.found("powershell")
    );
    assert_eq!(table.result("vhd_path"), "skip");
    assert_eq!(table.found("vhd_path"), "not probed: 'powershell' failed");
}

#[test]
fn hyper_v_module_missing_fails_and_what_needs_it_is_skipped() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        no_hyperv_module: true,
        ..Knobs::default()
    });
    let table = check(&hv, &payload(&hv), "30");
    assert_eq!(table.result("hyper-v module"), "fail");
    assert!(
        table
            .fix("hyper-v module")
            .contains("Install-WindowsFeature -Name Hyper-V-PowerShell")
    );
    assert_eq!(table.result("hyper-v rights"), "skip");
    assert_eq!(table.result("network_switch"), "skip");
    // The folders and files need no Hyper-V module.
    for probe in ["vhd_path", "vm_path", "template_path", "iso_path"] {
        assert_eq!(table.result(probe), "ok", "{probe}");
    }
}

#[test]
fn hyper_v_rights_missing_fail_with_the_group_to_join() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        permission_denied: true,
        ..Knobs::default()
    });
    let table = check(&hv, &payload(&hv), "30");
    assert_eq!(table.result("hyper-v rights"), "fail");
    let found = table.found("hyper-v rights");
    assert!(
        found.starts_with("Get-VMHost failed for HV-TEST\\hvtest (in neither Hyper-V Administrators nor Administrators): You do not have the required permission"),
        "{found}"
    );
    assert!(
        table
            .fix("hyper-v rights")
            .contains("Add-LocalGroupMember -SID S-1-5-32-578 -Member 'HV-TEST\\hvtest'")
    );
    assert_eq!(table.result("network_switch"), "skip");
}

#[test]
fn network_switch_a_wrong_or_ambiguous_name_fails_naming_the_hosts_switches() {
    let hv = Hv::start();
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["network_switch"] = json!("external vswitch");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("network_switch"), "fail");
    assert_eq!(
        table.found("network_switch"),
        "no virtual switch is named 'external vswitch' ('External vSwitch' differs only in case: \
         names are matched exactly); the host has 'External vSwitch'"
    );

    hv.host.update(|s| {
        let mut twin = s.switches[0].clone();
        twin.id = "twin".into();
        s.switches.push(twin);
    });
    let table = check(&hv, &payload(&hv), "30");
    assert_eq!(
        table.found("network_switch"),
        "2 virtual switches are named 'External vSwitch'"
    );
    assert!(table.fix("network_switch").contains("Rename-VMSwitch"));
}

#[test]
fn vhd_path_missing_or_not_writable_fails_without_writing_there() {
    let hv = Hv::start();
    let mut p = payload(&hv);
    p["externaldetails"]["host"]["vhd_path"] = json!("C:\\No\\Such\\Folder");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("vhd_path"), "fail");
    assert!(
        table
            .found("vhd_path")
            .starts_with("C:\\No\\Such\\Folder is not a folder on the host")
    );
    assert!(
        table
            .fix("vhd_path")
            .contains("New-Item -ItemType Directory -Path 'C:\\No\\Such\\Folder'")
    );
    assert!(
        table.fix("vhd_path").contains(&format!(
            "the host's default is '{}'",
            hv.host.info.vhd_path
        )),
        "{}",
        table.fix("vhd_path")
    );

    // Readable but not writable for the account.
    let local = hv.host.local(&hv.host.info.vhd_path);
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o555)).unwrap();
    let table = check(&hv, &payload(&hv), "30");
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(table.result("vhd_path"), "fail");
    let found = table.found("vhd_path");
    assert!(
        found.contains("may not create files (CreateFiles), create folders (CreateDirectories), delete the files it creates (Delete) there")
            && found.contains("ReadAndExecute"),
        "{found}"
    );
    assert!(
        table
            .fix("vhd_path")
            .contains("/grant 'HV-TEST\\hvtest:(OI)(CI)M'")
    );
    assert_eq!(table.result("vm_path"), "ok");
}

#[test]
fn vm_path_unset_fails_and_the_other_probes_still_run() {
    let hv = Hv::start();
    let mut p = payload(&hv);
    p["externaldetails"]["host"]
        .as_object_mut()
        .unwrap()
        .remove("vm_path");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("vm_path"), "fail");
    assert!(table.found("vm_path").starts_with("vm_path is not set"));
    assert!(
        table
            .fix("vm_path")
            .contains(&format!("the host's default is '{}'", hv.host.info.vm_path))
    );
    assert_eq!(table.result("vhd_path"), "ok");
    let launch = hv.state().launches.pop().unwrap();
    assert_eq!(launch.data.get("vm_path"), None, "not asked about");
}

#[test]
fn template_and_iso_missing_fail_and_without_them_do_not_apply() {
    let hv = Hv::start();
    std::fs::remove_file(hv.host.local(&hv.host.info.template_path)).unwrap();
    let mut p = payload(&hv);
    p["parameters"]["iso_path"] = json!("C:\\ISO\\missing.iso");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("template_path"), "fail");
    assert!(
        table
            .found("template_path")
            .contains("does not exist on the host")
    );
    assert_eq!(table.result("iso_path"), "fail");
    assert!(table.fix("iso_path").contains("UNC path"));

    // As a custom action on a host, without template details: not applicable.
    let mut p = payload(&hv);
    p.as_object_mut().unwrap().remove("parameters");
    let table = check(&hv, &p, "30");
    assert_eq!(table.result("template_path"), "skip");
    assert!(
        table
            .found("template_path")
            .contains("pass template_path as a parameter of check")
    );
    assert_eq!(table.result("summary"), "ok");
}

#[test]
fn log_file_that_cannot_be_written_fails() {
    let hv = Hv::start();
    let path = hv.scratch.payload("check.json", &payload(&hv));
    let log = Path::new("/nonexistent-hyperv-ext-logs/x/ext.log");
    let run = Invoke::new(
        binary("hyperv-ext"),
        &["check".as_ref(), path.as_os_str(), "30".as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .run();
    let doc = run.success();
    let rows = doc["message"].as_array().unwrap();
    let row = rows.iter().find(|r| r["probe"] == "log_file").unwrap();
    assert_eq!(row["result"], "fail", "{row}");
    assert!(
        row["found"]
            .as_str()
            .unwrap()
            .starts_with("cannot append to /nonexistent-hyperv-ext-logs/x/ext.log (from the CLOUDSTACK_EXT_LOG environment variable): "),
        "{row}"
    );
    assert!(!log.parent().unwrap().exists());
}

#[test]
fn a_check_cut_off_by_the_deadline_still_answers_its_table_in_time() {
    let hv = Hv::start();
    hv.host.knobs(&Knobs {
        sleep_before_ms: 30_000,
        ..Knobs::default()
    });
    let table = check(&hv, &payload(&hv), "4");
    for probe in ["tcp", "host key", "authentication"] {
        assert_eq!(table.result(probe), "ok", "{probe}");
    }
    assert_eq!(table.result("powershell"), "fail");
    assert!(
        table.found("powershell").contains("deadline reached"),
        "{}",
        table.found("powershell")
    );
    for probe in &HOST_ROWS[..7] {
        assert_eq!(table.result(probe), "skip", "{probe}");
    }
    assert_eq!(table.result("log_file"), "ok");
}

#[test]
fn only_an_unreadable_payload_is_an_error() {
    let hv = Hv::start();
    let path = hv.scratch.write("broken.json", b"{not json");
    let run = e2e::run_action(&binary("hyperv-ext"), &hv.scratch, "check", &path, "30");
    assert!(run.failure(1).contains("broken.json"));
    // Details missing everywhere: still a table.
    let table = check(&hv, &json!({}), "30");
    assert_eq!(table.result("connection details"), "fail");
    assert_eq!(table.cost, Cost::NONE);
}

// Over WinRM: upstream's details (no SSH detail set) with the test CA as ca_certificate; the
// identity row is `certificate`, authentication is NTLM.

/// The certificate the WinRM peer presents, as the rows print it (`AB:CD:...`).
fn presented(hv: &Hv) -> String {
    let sha: ext_tls::Fingerprint = hv.host.info.winrm.winrm_certificate_sha256.parse().unwrap();
    sha.to_string()
}

/// `payload` with host details changed: `null` removes one.
fn with_host(hv: &Hv, change: Value) -> Value {
    hv.with_host(&payload(hv), |h| {
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
    })
}

#[test]
fn over_winrm_a_healthy_host_passes_every_probe_in_one_shell() {
    let hv = Hv::start_winrm();
    let table = check(&hv, &payload(&hv), "60");
    assert_eq!(table.cost, Cost::ONE);
    assert_eq!(
        table.found("summary"),
        "13 probes: 13 ok, 0 warn, 0 fail, 0 skip",
        "{:#?}",
        table.rows
    );
    let w = hv.host.info.winrm.clone();
    assert_eq!(
        table.found("tcp"),
        format!(
            "reached {}:5986 for WinRM; address from url '{}' (host detail) and the default \
             port",
            w.winrm_host, w.winrm_host
        )
    );
    assert_eq!(
        table.found("certificate"),
        format!(
            "{}, valid for this host name and issued by CA file '{}' (ca_certificate)",
            presented(&hv),
            w.winrm_ca_certificate
        )
    );
    assert_eq!(
        table.found("authentication"),
        format!("as '{}' by NTLM", w.winrm_username)
    );
    assert!(
        table.found("vhd_path").contains("Modify"),
        "{:?}",
        table.rows
    );
    // One shell, one command, deleted; the script got the folders and files asked about.
    let c = hv.host.winrm_counters();
    assert_eq!((c.shells_created, c.commands), (1, 1), "{c:?}");
    assert!(c.open_shells.is_empty(), "{c:?}");
    let launch = hv.state().launches.pop().unwrap();
    assert_eq!(launch.data["vhd_path"], json!(hv.host.info.vhd_path));
    assert_eq!(launch.outcome, "ok");
}

#[test]
fn over_winrm_a_pinned_or_unchecked_certificate_shows_its_fingerprint() {
    let hv = Hv::start_winrm();
    let fingerprint = presented(&hv);
    let pinned = with_host(
        &hv,
        json!({"ca_certificate": null, "tls_fingerprint": fingerprint}),
    );
    let table = check(&hv, &pinned, "60");
    assert_eq!(table.result("summary"), "ok", "{:#?}", table.rows);
    assert_eq!(
        table.found("certificate"),
        format!("{fingerprint} matches tls_fingerprint")
    );

    let unchecked = with_host(
        &hv,
        json!({"ca_certificate": null, "verify_tls_certificate": "false"}),
    );
    let table = check(&hv, &unchecked, "60");
    assert_eq!(table.cost, Cost::ONE);
    assert_eq!(table.result("certificate"), "warn");
    assert_eq!(
        table.found("certificate"),
        format!("not verified (verify_tls_certificate=false); the server presented {fingerprint}")
    );
    assert!(
        table
            .fix("certificate")
            .ends_with(&format!("and pin it: tls_fingerprint={fingerprint}")),
        "{}",
        table.fix("certificate")
    );
    assert_eq!(table.result("authentication"), "ok");
}

#[test]
fn over_winrm_an_untrusted_or_wrongly_pinned_certificate_fails_before_any_credential() {
    let hv = Hv::start_winrm();
    let w = hv.host.info.winrm.clone();
    let fingerprint = presented(&hv);
    let wrong_pin = "AB:".repeat(31) + "AB";
    let cases = [
        (
            json!({"ca_certificate": w.winrm_other_ca_certificate}),
            "not issued by a certificate of the CA file",
            "set ca_certificate to the CA that issued it",
        ),
        (
            json!({"ca_certificate": null}),
            "not issued by a certificate authority of the system trust store",
            "set ca_certificate to the CA that issued it",
        ),
        (
            json!({"ca_certificate": null, "tls_fingerprint": wrong_pin}),
            "not the pinned AB:AB:",
            "if the host's WinRM certificate was renewed, compare",
        ),
    ];
    for (i, (change, why, fix)) in (1u64..).zip(cases) {
        let table = check(&hv, &with_host(&hv, change.clone()), "30");
        assert_eq!(table.result("tcp"), "ok", "{change}");
        assert_eq!(table.result("certificate"), "fail", "{change}");
        let found = table.found("certificate");
        for needle in [
            format!("the TLS handshake with {}:5986 failed", w.winrm_host),
            why.to_owned(),
            format!("fingerprint {fingerprint}"),
            "no credential was sent".to_owned(),
            format!(
                "hyperv-ext connects to this host over WinRM at https://{}:5986/wsman, from url",
                w.winrm_host
            ),
        ] {
            assert!(found.contains(&needle), "{change}: {needle}: {found}");
        }
        let fixed = table.fix("certificate");
        assert!(fixed.contains(fix), "{change}: {fixed}");
        assert!(
            fixed.contains(&format!("tls_fingerprint={fingerprint}")),
            "{change}: {fixed}"
        );
        assert!(fixed.contains("step 6b"), "{change}: {fixed}");
        assert_eq!(table.with("skip")[..2], ["authentication", "powershell"]);
        assert_eq!(table.cost.launches, 0);
        // The peer refused nothing and heard nothing: the client broke off the handshake.
        let c = hv.host.winrm_counters_when(|c| c.tls_failures >= i);
        assert_eq!((c.tls_failures, c.requests), (i, 0), "{change}: {c:?}");
    }
}

#[test]
fn over_winrm_a_wrong_password_fails_authentication_and_starts_nothing() {
    let hv = Hv::start_winrm();
    let table = check(
        &hv,
        &with_host(&hv, json!({"password": "Wrong-Password-9"})),
        "30",
    );
    assert_eq!(table.result("tcp"), "ok");
    assert_eq!(table.result("certificate"), "ok");
    assert_eq!(table.result("authentication"), "fail");
    let found = table.found("authentication");
    assert!(found.contains("rejected the credentials (NTLM)"), "{found}");
    assert!(
        found.contains(&format!(
            "WinRM to https://{}:5986/wsman",
            hv.host.info.winrm.winrm_host
        )),
        "{found}"
    );
    assert!(!found.contains("Wrong-Password-9"), "{found}");
    assert!(
        table
            .fix("authentication")
            .contains("LocalAccountTokenFilterPolicy")
    );
    assert_eq!(table.result("powershell"), "skip");
    for probe in HOST_ROWS {
        assert_eq!(table.result(probe), "skip", "{probe}");
    }
    assert_eq!(table.cost.launches, 0);
    let c = hv.host.winrm_counters();
    assert_eq!((c.auth_failures, c.shells_created), (1, 0), "{c:?}");
    assert!(!hv.scratch.log().contains("Wrong-Password-9"));
}

#[test]
fn over_winrm_a_closed_port_names_the_url_and_what_to_enable() {
    let hv = Hv::start_winrm();
    let host = hv.host.info.winrm.winrm_host.clone();
    let port = e2e::closed_port(&host);
    let url = format!("https://{host}:{port}/wsman");
    let table = check(&hv, &with_host(&hv, json!({"url": url})), "30");
    assert_eq!(table.cost, Cost::NONE);
    assert_eq!(table.result("tcp"), "fail");
    let found = table.found("tcp");
    for needle in [
        format!("cannot connect to {host}:{port}"),
        format!(
            "hyperv-ext connects to this host over WinRM at {url}, from url '{url}' (host detail)"
        ),
        "was chosen because no SSH detail is set".to_owned(),
    ] {
        assert!(found.contains(&needle), "{needle}: {found}");
    }
    let fix = table.fix("tcp");
    assert!(fix.contains("winrm quickconfig -transport:https"), "{fix}");
    assert!(fix.contains(&format!("TCP port {port}")), "{fix}");
    assert_eq!(
        table.with("skip")[..3],
        ["certificate", "authentication", "powershell"]
    );
}

#[test]
fn a_misspelt_detail_is_a_warn_row_and_the_rest_still_runs() {
    let hv = Hv::start();
    let table = check(
        &hv,
        &with_host(&hv, json!({"stop_timout": "60", "stop_mode": "gracefull"})),
        "60",
    );
    assert_eq!(table.result("detail stop_timout"), "warn");
    assert_eq!(
        table.found("detail stop_timout"),
        "host detail 'stop_timout' is not read by this extension, so it is ignored: did you mean stop_timeout?"
    );
    assert_eq!(
        table.fix("detail stop_timout"),
        "rename the host detail 'stop_timout' to 'stop_timeout'"
    );
    assert_eq!(table.result("detail stop_mode"), "warn");
    assert!(
        table
            .found("detail stop_mode")
            .contains("did you mean graceful?"),
        "{}",
        table.found("detail stop_mode")
    );
    assert_eq!(table.result("summary"), "warn");
    for probe in ["tcp", "host key", "authentication"]
        .iter()
        .chain(&HOST_ROWS)
    {
        assert_eq!(table.result(probe), "ok", "{probe}");
    }
    assert!(table.rows.iter().all(|r| r["probe"] != "details"));
}
