//! `proxmox-ext check`: a healthy set-up passes every probe, and each probe reports its own
//! set-up broken on purpose. Every run answers the table with exit 0, sends only GET requests
//! and leaves the simulator's VMs as they were, and stays within its deadline.

use std::ffi::OsStr;
use std::time::Duration;

use e2e::proxmox::{Outcome, Payload, TestVm, World, run_with_env};
use e2e::pve::{Fault, ISO_VOLUME, NODE, Vm};
use serde_json::{Value, json};

/// A deploy payload that should pass: the harness's template, bridge vmbr0 (the one fakepve
/// has), verified against the simulator's certificate.
fn healthy(w: &World) -> Payload {
    Payload::vm(&w.pve, &TestVm::new()).host_detail("network_bridge", Some("vmbr0"))
}

fn snapshot(w: &World) -> Vec<(u32, String, String, Option<String>, String)> {
    let mut vms: Vec<_> = w
        .pve
        .vms()
        .into_iter()
        .map(|v: Vm| {
            let config = serde_json::to_string(&v.config).unwrap();
            (v.vmid, v.name, v.status, v.lock, config)
        })
        .collect();
    vms.sort();
    vms
}

/// The check's rows, after asserting what every check keeps: exit 0, a printmessage table
/// with the summary first, plain ASCII, only GET requests, no change to the VMs.
fn check_env(
    w: &World,
    payload: &Payload,
    timeout: u32,
    env: &[(&str, &OsStr)],
) -> (Outcome, Vec<Value>) {
    let before = snapshot(w);
    w.pve.reset_requests();
    let out = run_with_env("check", payload, w.pve.dir(), timeout, env);
    out.assert_success();
    assert_eq!(out.json["printmessage"], "true", "{}", out.stdout);
    assert!(
        out.stdout.is_ascii() && !out.stdout.contains("\\u"),
        "{}",
        out.stdout
    );
    let rows = out.json["message"].as_array().unwrap().clone();
    assert_eq!(rows[0]["probe"], "summary");
    for r in &rows {
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&r["result"].as_str().unwrap()),
            "{r}"
        );
    }
    let writes = w.pve.write_lines();
    assert!(writes.is_empty(), "check changed something: {writes:?}");
    assert_eq!(snapshot(w), before, "the VMs are as they were");
    (out, rows)
}

fn check(w: &World, payload: &Payload) -> Vec<Value> {
    check_env(w, payload, 60, &[]).1
}

/// The row of `probe`: its result and what it found.
fn row(rows: &[Value], probe: &str) -> (String, String, String) {
    let r = rows
        .iter()
        .find(|r| r["probe"] == probe)
        .unwrap_or_else(|| panic!("no {probe} row in {}", Value::Array(rows.to_vec())));
    (
        r["result"].as_str().unwrap().to_string(),
        r["found"].as_str().unwrap().to_string(),
        r["fix"].as_str().unwrap().to_string(),
    )
}

fn expect(rows: &[Value], probe: &str, result: &str, found: &str) -> String {
    let (got, text, fix) = row(rows, probe);
    assert_eq!(got, result, "{probe}: {text} ({fix})");
    assert!(text.contains(found), "{probe}: {text:?} lacks {found:?}");
    fix
}

const PROBES: [&str; 14] = [
    "url",
    "tcp",
    "connection details",
    "tls",
    "token",
    "privileges",
    "node",
    "bridge",
    "template",
    "storage",
    "iso",
    "vmid allocation",
    "log_file",
    "details",
];

#[test]
fn a_healthy_set_up_passes_every_probe_with_gets_only() {
    let w = World::new();
    let (out, rows) = check_env(&w, &healthy(&w), 60, &[]);
    eprintln!("healthy check: {}", out.stdout);
    let probes: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r["probe"].as_str().unwrap())
        .collect();
    assert_eq!(probes, PROBES);
    expect(
        &rows,
        "summary",
        "ok",
        "14 probes: 13 ok, 0 warn, 0 fail, 1 skip",
    );
    let url = w.pve.url();
    expect(
        &rows,
        "url",
        "ok",
        &format!("{url} (host detail 'url') is the address {}", w.pve.host),
    );
    expect(&rows, "tcp", "ok", &format!("reached {}:8006", w.pve.host));
    expect(&rows, "tls", "ok", "verified against ca_certificate");
    expect(
        &rows,
        "token",
        "ok",
        "root@pam!cs authenticates (Proxmox VE ",
    );
    expect(
        &rows,
        "privileges",
        "ok",
        "root@pam!cs holds every privilege the actions need on /, /sdn/zones/localnetwork/vmbr0, /storage/local-lvm, /vms, /vms/9000",
    );
    expect(&rows, "node", "ok", "pve1 is online (cluster nodes: pve1)");
    expect(&rows, "bridge", "ok", "vmbr0 is a bridge on pve1");
    expect(
        &rows,
        "template",
        "ok",
        "VM 9000 ('debian-12-template') on pve1 is a template (linked clones; disks on local-lvm)",
    );
    expect(
        &rows,
        "storage",
        "ok",
        "local-lvm is enabled and active on pve1 and holds images",
    );
    expect(&rows, "iso", "skip", "a template deploy");
    expect(
        &rows,
        "vmid allocation",
        "ok",
        "no vmid_range: ids from /cluster/nextid, now 100",
    );
    expect(
        &rows,
        "log_file",
        "ok",
        "proxmox-ext.log is writable (from the CLOUDSTACK_EXT_LOG environment variable)",
    );
    expect(&rows, "details", "ok", "no detail is misspelt");
    assert!(
        w.pve
            .request_lines()
            .iter()
            .any(|l| l.starts_with("GET /access/permissions")),
        "{:?}",
        w.pve.request_lines()
    );

    // An ISO deploy: the ISO and its storage are probed instead of a template.
    let iso = healthy(&w)
        .vm_detail("template_type", Some("iso"))
        .vm_detail("template_id", None)
        .vm_detail("iso_path", Some(ISO_VOLUME))
        .with(|v| {
            v["cloudstack.vm.details"]["details"] = json!({"External:template_type": "iso"});
        });
    let rows = check(&w, &iso);
    expect(&rows, "summary", "ok", "");
    expect(&rows, "iso", "ok", "local:iso/debian.iso exists on pve1");
    expect(&rows, "template", "skip", "an ISO deploy");
    expect(&rows, "storage", "ok", "local-lvm is enabled");
    expect(&rows, "privileges", "ok", "/storage/local");

    // As a custom action on a host: no VM, so the template probes say why they do not apply.
    let host = Payload::host(&w.pve)
        .host_detail("network_bridge", Some("vmbr0"))
        .custom("check", json!({}));
    let rows = check(&w, &host);
    expect(&rows, "summary", "ok", "");
    expect(
        &rows,
        "template",
        "skip",
        "no template_id or iso_path in the payload",
    );
    expect(
        &rows,
        "privileges",
        "ok",
        "not checked: /storage/{storage} (no template or ISO details)",
    );
}

#[test]
fn url_probe_names_the_address_that_does_not_resolve_and_later_probes_skip() {
    let w = World::new();
    let payload = healthy(&w).host_detail("url", Some("https://pve-nowhere.invalid:8006"));
    let rows = check(&w, &payload);
    let fix = expect(
        &rows,
        "url",
        "fail",
        "https://pve-nowhere.invalid:8006 (host detail 'url'): the host name 'pve-nowhere.invalid' does not resolve",
    );
    assert!(fix.contains("/etc/hosts"), "{fix}");
    expect(&rows, "summary", "fail", "");
    expect(&rows, "tcp", "skip", "pve-nowhere.invalid does not resolve");
    for probe in [
        "tls",
        "token",
        "privileges",
        "node",
        "bridge",
        "template",
        "storage",
    ] {
        expect(
            &rows,
            probe,
            "skip",
            "not run: pve-nowhere.invalid does not resolve",
        );
    }
    expect(&rows, "log_file", "ok", "");
    assert!(w.pve.requests().is_empty());

    let rows = check(&w, &healthy(&w).host_detail("url", Some("http://pve1")));
    expect(
        &rows,
        "url",
        "fail",
        "'http://pve1' (host detail 'url') is not an API address",
    );
}

#[test]
fn tcp_probe_names_the_port_nothing_listens_on() {
    let w = World::new();
    let payload = healthy(&w).host_detail("url", Some(&format!("https://{}:8007", w.pve.host)));
    let rows = check(&w, &payload);
    let fix = expect(
        &rows,
        "tcp",
        "fail",
        &format!("cannot reach {}:8007", w.pve.host),
    );
    assert!(fix.contains("pveproxy"), "{fix}");
    expect(
        &rows,
        "tls",
        "skip",
        "the API's port cannot be reached (tcp probe)",
    );
}

#[test]
fn tls_probe_says_why_and_prints_the_fingerprint_to_pin() {
    let w = World::new();
    // The system store does not know the simulator's self-signed certificate.
    let rows = check(&w, &healthy(&w).host_detail("ca_certificate", None));
    let (result, found, fix) = row(&rows, "tls");
    assert_eq!(result, "fail", "{found}");
    assert!(
        found.contains("it is not issued by a certificate authority of the system trust store")
            && found.contains("SHA-256 fingerprint"),
        "{found}"
    );
    assert!(
        fix.contains("set tls_fingerprint to it") && fix.contains("pvenode cert info"),
        "{fix}"
    );
    expect(
        &rows,
        "token",
        "skip",
        "the TLS handshake failed (tls probe)",
    );
    assert!(
        w.pve.requests().is_empty(),
        "no request got through the refused handshake"
    );

    // Not verified at all: works, with a warning and the fingerprint to pin.
    let rows = check(
        &w,
        &healthy(&w)
            .host_detail("ca_certificate", None)
            .host_detail("verify_tls_certificate", Some("false")),
    );
    let fix = expect(
        &rows,
        "tls",
        "warn",
        "not verified (verify_tls_certificate=false)",
    );
    assert!(
        fix.starts_with(
            "check the fingerprint on the node (pvenode cert info) and set tls_fingerprint to "
        ),
        "{fix}"
    );
    let pin = fix
        .trim_start_matches(
            "check the fingerprint on the node (pvenode cert info) and set tls_fingerprint to ",
        )
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    expect(&rows, "token", "ok", "");
    // The printed fingerprint pins the node.
    let rows = check(
        &w,
        &healthy(&w)
            .host_detail("ca_certificate", None)
            .host_detail("tls_fingerprint", Some(&pin)),
    );
    expect(
        &rows,
        "tls",
        "ok",
        &format!("the node presented the pinned certificate, SHA-256 {pin}"),
    );
}

#[test]
fn token_probe_reports_a_refused_token_and_a_whole_token_secret() {
    let w = World::new();
    let rows = check(
        &w,
        &healthy(&w).host_detail("secret", Some("wrong-secret-value")),
    );
    let fix = expect(
        &rows,
        "token",
        "fail",
        "Proxmox refused the API token root@pam!cs",
    );
    assert!(fix.contains("pveum user token add"), "{fix}");
    expect(
        &rows,
        "privileges",
        "skip",
        "the token was refused (token probe)",
    );
    expect(&rows, "tls", "ok", "");

    let whole = format!("root@pam!cs={}", w.pve.secret);
    let (out, rows) = check_env(
        &w,
        &healthy(&w).host_detail("secret", Some(&whole)),
        60,
        &[],
    );
    expect(
        &rows,
        "connection details",
        "fail",
        "'secret' (host detail): it holds a whole API token, root@pam!cs=<secret>",
    );
    assert!(!out.stdout.contains(&w.pve.secret));
    expect(
        &rows,
        "tls",
        "skip",
        "the connection details are incomplete",
    );
}

#[test]
fn privileges_probe_names_each_missing_privilege_and_its_path() {
    let w = World::new();
    let secret = "s3cret-least-privileged";
    w.pve.add_token("cloudstack@pve!cs", secret);
    w.pve.grant(
        "cloudstack@pve!cs",
        "/vms",
        &[
            "VM.Audit",
            "VM.PowerMgmt",
            "VM.Config.CPU",
            "VM.Config.Network",
            "VM.Config.Options",
            "VM.Console",
            "VM.Snapshot",
        ],
    );
    w.pve.grant(
        "cloudstack@pve!cs",
        "/storage/local-lvm",
        &["Datastore.AllocateSpace"],
    );
    let payload = healthy(&w)
        .host_detail("user", Some("cloudstack@pve"))
        .host_detail("secret", Some(secret));
    let rows = check(&w, &payload);
    let (result, found, fix) = row(&rows, "privileges");
    assert_eq!(result, "fail", "{found}");
    for missing in [
        "VM.Allocate on /vms (create: make the VM with its new VMID)",
        "VM.Clone on /vms/9000 (create: clone the template)",
        "VM.Config.CPU and VM.Config.Memory on /vms (create: set cores and memory)",
        "SDN.Use on /sdn/zones/localnetwork/vmbr0 (create: attach NICs to the bridge (PVE 8 and later))",
        "VM.Snapshot.Rollback or VM.Snapshot",
    ] {
        if missing.starts_with("VM.Snapshot.Rollback") {
            assert!(!found.contains(missing), "VM.Snapshot is granted: {found}");
        } else {
            assert!(found.contains(missing), "{missing}: {found}");
        }
    }
    assert!(
        found.contains("optional, lacking: Sys.Audit on / (getconsole:"),
        "{found}"
    );
    assert!(
        !found.contains("VM.PowerMgmt") && !found.contains("Datastore.AllocateSpace on"),
        "granted ones are not named: {found}"
    );
    assert!(fix.contains("pveum acl modify /vms --roles CloudStack --users cloudstack@pve --tokens 'cloudstack@pve!cs'"), "{fix}");
    expect(&rows, "summary", "fail", "");
    // The other probes run with this token.
    expect(&rows, "node", "ok", "");
    expect(&rows, "storage", "ok", "");

    // Granted all of the role: the row passes.
    w.pve.grant(
        "cloudstack@pve!cs",
        "/vms",
        &[
            "VM.Allocate",
            "VM.Clone",
            "VM.Config.Memory",
            "VM.Snapshot.Rollback",
        ],
    );
    w.pve.grant(
        "cloudstack@pve!cs",
        "/sdn/zones/localnetwork/vmbr0",
        &["SDN.Use"],
    );
    w.pve.grant("cloudstack@pve!cs", "/", &["Sys.Audit"]);
    let rows = check(&w, &payload);
    expect(
        &rows,
        "privileges",
        "ok",
        "cloudstack@pve!cs holds every privilege",
    );
}

#[test]
fn node_probe_lists_the_cluster_s_nodes() {
    let w = World::new();
    w.pve.add_node("pve2");
    let rows = check(&w, &healthy(&w).host_detail("node", Some("pve9")));
    let fix = expect(
        &rows,
        "node",
        "fail",
        "pve9 (host detail 'node') is not a node of this cluster, whose nodes are pve1, pve2",
    );
    assert!(fix.contains("set the host detail node"), "{fix}");
    expect(
        &rows,
        "bridge",
        "skip",
        "the node is not there (node probe)",
    );
    expect(&rows, "template", "skip", "the node is not there");

    w.pve.node_offline(NODE, true);
    let rows = check(&w, &healthy(&w));
    expect(
        &rows,
        "node",
        "fail",
        "pve1 is offline (cluster nodes: pve1 (offline), pve2)",
    );
}

#[test]
fn bridge_probe_names_the_node_s_bridges() {
    let w = World::new();
    let rows = check(
        &w,
        &healthy(&w).host_detail("network_bridge", Some("vmbr9")),
    );
    expect(
        &rows,
        "bridge",
        "fail",
        "pve1 has no interface vmbr9 (host detail 'network_bridge'); its bridges: vmbr0",
    );
    let rows = check(&w, &healthy(&w).host_detail("network_bridge", Some("eno1")));
    expect(
        &rows,
        "bridge",
        "fail",
        "eno1 on pve1 is not a bridge but of type eth (bridges: vmbr0)",
    );
    let rows = check(&w, &healthy(&w).host_detail("network_bridge", None));
    expect(
        &rows,
        "bridge",
        "fail",
        "network_bridge is not set, and this VM has NICs",
    );
}

#[test]
fn storage_probe_checks_enabled_and_images() {
    let w = World::new();
    let iso = |storage: &str| {
        healthy(&w)
            .vm_detail("template_type", Some("iso"))
            .vm_detail("template_id", None)
            .vm_detail("iso_path", Some(ISO_VOLUME))
            .vm_detail("storage", Some(storage))
    };
    let rows = check(&w, &iso("local"));
    expect(
        &rows,
        "storage",
        "fail",
        "local on pve1 does not hold disk images (content: iso,vztmpl,backup)",
    );
    let rows = check(&w, &iso("nosuch"));
    expect(
        &rows,
        "storage",
        "fail",
        "pve1 has no storage nosuch the token can see (its storages: local, local-lvm)",
    );
    w.pve.set_storage("local-lvm", json!({"disable": 1}));
    let rows = check(&w, &healthy(&w));
    expect(&rows, "storage", "fail", "local-lvm is disabled on pve1");
}

#[test]
fn template_probe_finds_what_template_id_really_is() {
    let w = World::new();
    w.pve.add_vm(100, "web01", NODE, "running", json!({}));
    let rows = check(&w, &healthy(&w).vm_detail("template_id", Some("100")));
    let fix = expect(
        &rows,
        "template",
        "fail",
        "VM 100 ('web01') on pve1 is not a template",
    );
    assert!(fix.contains("qm template 100"), "{fix}");
    let rows = check(&w, &healthy(&w).vm_detail("template_id", Some("4242")));
    expect(
        &rows,
        "template",
        "fail",
        "there is no VM 4242 in the cluster (template_id)",
    );
    w.pve.add_node("pve2");
    w.pve.command(
        json!({"cmd": "add_vm", "vmid": 9001, "name": "other-template", "node": "pve2",
                         "template": true, "config": {"template": 1}}),
    );
    let rows = check(&w, &healthy(&w).vm_detail("template_id", Some("9001")));
    expect(
        &rows,
        "template",
        "fail",
        "template_id 9001 is on node pve2, not on pve1",
    );
}

#[test]
fn iso_probe_lists_what_the_storage_has() {
    let w = World::new();
    let payload = healthy(&w)
        .vm_detail("template_type", Some("iso"))
        .vm_detail("template_id", None)
        .vm_detail("iso_path", Some("local:iso/missing.iso"));
    let rows = check(&w, &payload);
    expect(
        &rows,
        "iso",
        "fail",
        "pve1 has no local:iso/missing.iso (ISOs on local: local:iso/debian.iso)",
    );
}

#[test]
fn vmid_probe_checks_the_range_and_the_ledger_directory() {
    let w = World::new();
    w.pve.add_vm(150, "i-2-150-VM", NODE, "stopped", json!({}));
    let rows = check(&w, &healthy(&w).host_detail("vmid_range", Some("150-150")));
    expect(
        &rows,
        "vmid allocation",
        "fail",
        "vmid_range 150-150: all 1 ids are used in the cluster",
    );
    let rows = check(&w, &healthy(&w).host_detail("vmid_range", Some("150-159")));
    expect(
        &rows,
        "vmid allocation",
        "ok",
        "vmid_range 150-159: 9 of 10 ids free in the cluster",
    );
    let rows = check(&w, &healthy(&w).host_detail("vmid_range", Some("200-100")));
    expect(
        &rows,
        "vmid allocation",
        "fail",
        "vmid_range '200-100' (host detail): 200 is above 100",
    );
    let file = w.pve.dir().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let state = file.join("state");
    let rows = check(
        &w,
        &healthy(&w).host_detail("state_dir", Some(&state.display().to_string())),
    );
    expect(
        &rows,
        "vmid allocation",
        "fail",
        &format!(
            "(from the state_dir detail): {} is not a directory",
            file.display()
        ),
    );
    assert!(!state.exists());
}

#[test]
fn log_file_probe_reports_the_fallback() {
    let w = World::new();
    let blocked = w.pve.dir().join("not-a-dir");
    std::fs::write(&blocked, "x").unwrap();
    let log = blocked.join("proxmox-ext.log");
    let tmp = w.pve.dir().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (_, rows) = check_env(
        &w,
        &healthy(&w),
        60,
        &[
            ("CLOUDSTACK_EXT_LOG", log.as_os_str()),
            ("TMPDIR", tmp.as_os_str()),
        ],
    );
    let (result, found, fix) = row(&rows, "log_file");
    assert_eq!(result, "fail", "{found}");
    assert!(
        found.starts_with(&format!(
            "cannot append to {} (from the CLOUDSTACK_EXT_LOG environment variable): ",
            log.display()
        )) && found.contains(&format!(
            "; this run logs to {}/proxmox-ext-",
            tmp.display()
        )) && found.ends_with("/proxmox-ext.log instead"),
        "{found}"
    );
    assert!(
        fix.contains(&format!(
            "or make {} a directory it can write",
            blocked.display()
        )),
        "{fix}"
    );
    let fallback = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("proxmox-ext.log"))
        .next()
        .unwrap();
    let text = std::fs::read_to_string(&fallback).unwrap();
    assert!(
        text.contains("cannot be used, logging to") && text.contains("check"),
        "{text}"
    );
}

#[test]
fn details_probe_warns_about_typos_and_misplaced_details() {
    let w = World::new();
    let payload = healthy(&w)
        .host_detail("network_bridge", None)
        .host_detail("netwrok_bridge", Some("vmbr0"))
        .extension_detail("node", Some("pve1"))
        .host_detail("log_level", Some("debgu"));
    let rows = check(&w, &payload);
    let fix = expect(
        &rows,
        "detail netwrok_bridge",
        "warn",
        "host detail 'netwrok_bridge' is not read by this extension, so it is ignored: did you mean network_bridge?",
    );
    assert_eq!(
        fix,
        "rename the host detail 'netwrok_bridge' to 'network_bridge'"
    );
    expect(
        &rows,
        "detail node",
        "warn",
        "'node' is set as an extension detail, but it is read only as a host detail",
    );
    expect(
        &rows,
        "detail log_level",
        "warn",
        "is not one of error, warn, info, debug, trace, off: did you mean debug?",
    );
    expect(&rows, "bridge", "fail", "network_bridge is not set");
}

#[test]
fn a_probe_that_hangs_ends_within_the_deadline_and_later_probes_skip() {
    let w = World::new();
    w.pve.fault(
        Fault::hang(None)
            .method("GET")
            .path(r"/access/permissions")
            .times(0),
    );
    let (out, rows) = check_env(&w, &healthy(&w), 8, &[]);
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    expect(&rows, "token", "ok", "");
    let (result, found, _) = row(&rows, "privileges");
    assert_eq!(result, "fail", "{found}");
    assert!(found.contains("/access/permissions"), "{found}");
    for probe in ["node", "bridge", "template", "storage", "vmid allocation"] {
        let (result, found, _) = row(&rows, probe);
        assert_eq!(result, "skip", "{probe}: {found}");
        assert!(
            found.contains("the API did not answer the privileges probe")
                || found.contains("used up"),
            "{probe}: {found}"
        );
    }
    expect(&rows, "log_file", "ok", "");
    expect(&rows, "details", "ok", "");
    w.pve.clear_faults();
}
