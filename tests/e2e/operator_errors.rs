//! What an operator sees for the set-up mistakes users report (issue 10 items 3 to 5), through
//! the release binaries: misspelt and misplaced details, invalid choices, errors that name the
//! address and the detail it came from, a whole token in `secret`, and no false alarm on the
//! keys CloudStack itself sends.

use std::time::Duration;

use e2e::proxmox::{Payload, TestVm, World};
use e2e::pve::{Fault, NODE};
use e2e::{Invoke, Scratch, binary, fixture};
use serde_json::{Value, json};

/// CloudStack's UI shows a message as it is: plain ASCII, nothing escaped.
fn assert_plain(stdout: &str) {
    assert!(
        stdout.is_ascii() && !stdout.contains("\\u"),
        "not plain ASCII: {stdout}"
    );
}

/// The log lines the typo check writes.
fn typo_warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("is not read by this extension")
                || l.contains("but it is read only as")
                || l.contains("is not one of")
        })
        .collect()
}

#[test]
fn a_misspelt_detail_is_named_in_the_error_and_nothing_is_sent() {
    let w = World::new();
    let vm = TestVm::new();
    let payload = Payload::vm(&w.pve, &vm)
        .vmid(100)
        .host_detail("network_bridge", None)
        .host_detail("netwrok_bridge", Some("vmbr1"));
    let out = w.run("create", &payload);
    let err = out.assert_error();
    assert!(
        err.ends_with(
            "missing required details: 'network_bridge' (host detail; bridge the VM NICs attach to, e.g. vmbr0); the host has 'netwrok_bridge': did you mean network_bridge?"
        ),
        "{err}"
    );
    assert_plain(&out.stdout);
    assert!(w.pve.requests().is_empty(), "nothing is sent");

    // token_id for token, on the extension: the same, naming where it was found.
    let payload = Payload::host(&w.pve)
        .host_detail("token", None)
        .extension_detail("token_id", Some("cs"));
    let err = w.run("statuses", &payload).assert_error();
    assert!(
        err.contains("the extension has 'token_id': did you mean token?"),
        "{err}"
    );

    // A detail on a level it is not read from.
    let payload = Payload::host(&w.pve)
        .host_detail("node", None)
        .extension_detail("node", Some(NODE));
    let err = w.run("statuses", &payload).assert_error();
    assert!(
        err.contains(
            "'node' is set as an extension detail, but it is read only as a host detail, so it is ignored there"
        ),
        "{err}"
    );
    assert!(w.pve.requests().is_empty(), "nothing is sent");
}

#[test]
fn an_invalid_choice_names_the_allowed_values_and_the_closest() {
    let w = World::new();
    let payload = Payload::vm(&w.pve, &TestVm::new())
        .vmid(100)
        .vm_detail("template_type", Some("tempalte"));
    let out = w.run("create", &payload);
    let err = out.assert_error();
    assert!(
        err.contains(
            "'template_type' = 'tempalte' (template or instance detail): expected 'template' or 'iso'; did you mean template?"
        ),
        "{err}"
    );
    assert_plain(&out.stdout);
}

#[test]
fn every_action_logs_misspelt_details_and_invalid_values_as_warnings() {
    let w = World::new();
    let payload = Payload::host(&w.pve)
        .host_detail("verify_tls_cert", Some("false"))
        .host_detail("log_level", Some("debgu"));
    w.run("statuses", &payload).assert_success();
    let log = w.log();
    let warnings = typo_warnings(&log);
    assert!(
        warnings.iter().any(|l| l.contains(
            "WARN  "
        ) && l.contains(
            "host detail 'log_level' = 'debgu' is not one of error, warn, info, debug, trace, off: did you mean debug?; set log_level to debug"
        )),
        "{log}"
    );
    assert!(
        warnings.iter().any(|l| l.contains(
            "host detail 'verify_tls_cert' is not read by this extension, so it is ignored: did you mean verify_tls_certificate?"
        )),
        "{log}"
    );
}

/// Runs hyperv-ext's `action` on `payload` (no host is reached), logging into `s`'s log.
fn run_hyperv(s: &Scratch, action: &str, payload: &Value) -> e2e::Run {
    let file = s.payload(&format!("{action}.json"), payload);
    let log = s.log_path();
    Invoke::new(
        binary("hyperv-ext"),
        &[action.as_ref(), file.as_os_str(), "30".as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .run()
}

#[test]
fn hyperv_ext_catches_the_same_typos() {
    let s = Scratch::new();
    let payload = json!({
        "externaldetails": {"host": {
            "url": "127.0.0.1", "username": "Administrator", "password": "pw-not-used-here",
            "host_key_fingerprint": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "netwrok_switch": "External", "vhd_path": "D:\\Disks", "vm_path": "D:\\VMs",
            "stop_mode": "gracefull"},
            "virtualmachine": {"template_type": "template", "template_path": "D:\\t.vhdx"}},
        "virtualmachinename": "i-2-45-VM", "virtualmachineid": "u-1",
        "cloudstack.vm.details": {"name": "i-2-45-VM", "uuid": "u-1", "cpus": 1, "minRam": 536_870_912_u64,
            "details": {"deployvm": "true", "cpuOvercommitRatio": "2.0"}, "nics": []}
    });
    let run = run_hyperv(&s, "create", &payload);
    let err = run.failure(1);
    assert!(
        err.contains(
            "missing required details: 'network_switch' (host detail, cluster mapping detail or extension detail; the Hyper-V virtual switch VM NICs connect to (exact name)); the host has 'netwrok_switch': did you mean network_switch?"
        ),
        "{err}"
    );
    assert_plain(&run.stdout);
    assert!(
        typo_warnings(&s.log()).iter().any(|l| l.contains(
            "host detail 'stop_mode' = 'gracefull' is not one of graceful-then-turnoff, graceful, turnoff: did you mean graceful?"
        )),
        "{}",
        s.log()
    );
}

#[test]
fn hyperv_ext_catches_typos_in_the_winrm_details() {
    let s = Scratch::new();
    let payload = json!({"externaldetails": {"host": {
        "url": "127.0.0.1", "username": "Administrator", "password": "pw-not-used-here",
        "transport": "winrn", "winrm_auht": "basic", "tls_fingerprnt": "AB:CD"}}});
    let run = run_hyperv(&s, "statuses", &payload);
    let err = run.failure(1);
    assert!(
        err.contains(
            "'transport' = 'winrn' (host detail): expected winrm or ssh; did you mean winrm?"
        ),
        "{err}"
    );
    assert_plain(&run.stdout);
    let log = s.log();
    let warnings = typo_warnings(&log);
    for warning in [
        "host detail 'winrm_auht' is not read by this extension, so it is ignored: did you mean winrm_auth?",
        "host detail 'tls_fingerprnt' is not read by this extension, so it is ignored: did you mean tls_fingerprint?",
        "host detail 'transport' = 'winrn' is not one of winrm, ssh: did you mean winrm?",
    ] {
        assert!(
            warnings.iter().any(|l| l.contains(warning)),
            "{warning}: {log}"
        );
    }

    // The details upstream's hyperv.py reads raise no alarm.
    let upstream = Scratch::new();
    let payload = json!({"externaldetails": {"host": {
        "url": "https://127.0.0.1:1", "username": "HV1\\cloud", "password": "pw-not-used-here",
        "verify_tls_certificate": "false", "network_bridge": "External",
        "vhd_path": "D:\\Disks", "vm_path": "D:\\VMs"}}});
    run_hyperv(&upstream, "statuses", &payload).failure(1);
    let log = upstream.log();
    assert!(!log.is_empty());
    assert_eq!(typo_warnings(&log), Vec::<&str>::new(), "{log}");
}

#[test]
fn no_false_alarm_on_the_keys_cloudstack_sends() {
    // Every payload fixture (shaped as CloudStack 4.21/4.22 writes them: offering details,
    // `deployvm`, `Message.ReservedCapacityFreed.Flag`, a cluster mapping and custom-action
    // detail of the operator's own, `External:` copies of template details) and the test
    // helpers' payloads log no typo warning.
    let s = Scratch::new();
    let log = s.log_path();
    let mut payloads: Vec<(String, Value)> = [
        "create-two-nics",
        "custom-createsnapshot",
        "prepare",
        "statuses",
        "stop-html-escaped",
        "stop",
    ]
    .iter()
    .map(|name| (name.to_string(), fixture(name)))
    .collect();
    let w = World::new();
    payloads.push(("helper host".into(), Payload::host(&w.pve).value));
    payloads.push((
        "helper vm".into(),
        Payload::vm(&w.pve, &TestVm::new()).vmid(100).value,
    ));
    payloads.push((
        "helper custom".into(),
        Payload::vm(&w.pve, &TestVm::new())
            .vmid(100)
            .custom(
                "CreateSnapshot",
                json!({"snap_name": "s1", "snap_description": "d", "snap_save_memory": true}),
            )
            .value,
    ));
    for (name, mut payload) in payloads {
        // Nowhere to connect to: only what is logged before the first request matters.
        payload["externaldetails"]["host"]["url"] = json!("https://127.0.0.1:1");
        let file = s.payload(&format!("{}.json", name.replace(' ', "-")), &payload);
        Invoke::new(
            binary("proxmox-ext"),
            &["status".as_ref(), file.as_os_str(), "20".as_ref()],
        )
        .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
        .limit(Duration::from_secs(60))
        .run()
        .json();
    }
    let all = s.log();
    assert!(all.lines().count() > 9, "every run logged: {all}");
    assert_eq!(typo_warnings(&all), Vec::<&str>::new(), "{all}");
}

#[test]
fn connection_errors_name_the_address_and_the_detail_it_came_from() {
    let w = World::new();
    // DNS: the url on the extension (the host has none).
    let payload = Payload::host(&w.pve)
        .host_detail("url", None)
        .extension_detail("url", Some("https://pve-nowhere.invalid:8006"));
    let out = w.run("statuses", &payload);
    let err = out.assert_error();
    assert!(
        err.starts_with(
            "cannot connect to the Proxmox API at https://pve-nowhere.invalid:8006 (extension detail 'url'): the host name does not resolve"
        ),
        "{err}"
    );
    assert_plain(&out.stdout);

    // A request that never gets its answer within the deadline.
    w.pve.fault(
        Fault::hang(None)
            .method("GET")
            .path(r"/nodes/pve1/qemu$")
            .times(0),
    );
    let out = w.run_with_timeout("statuses", &Payload::host(&w.pve), 4);
    let err = out.assert_error();
    assert!(
        err.contains(&format!(
            "waiting for GET /nodes/pve1/qemu from {} (host detail 'url')",
            w.pve.url()
        )),
        "{err}"
    );
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    w.pve.clear_faults();
}

#[test]
fn a_whole_token_in_secret_is_explained_without_printing_it() {
    let w = World::new();
    let whole = format!("root@pam!cs={}", w.pve.secret);
    let payload = Payload::host(&w.pve).host_detail("secret", Some(&whole));
    let out = w.run("statuses", &payload);
    let err = out.assert_error();
    assert_eq!(
        err,
        "invalid details: 'secret' (host detail): it holds a whole API token, root@pam!cs=<secret>: set 'secret' to the part after '=' only (the UUID), 'user' to root@pam and 'token' to cs"
    );
    assert!(!out.stdout.contains(&w.pve.secret), "{}", out.stdout);
    assert!(
        !w.log().contains(&w.pve.secret),
        "the secret stays out of the log"
    );
    assert!(w.pve.requests().is_empty(), "nothing is sent");
}

#[test]
fn a_node_that_is_not_in_the_cluster_fails_statuses_and_status_naming_the_nodes() {
    let w = World::new();
    w.pve.add_node("pve2");
    let (_vm, payload) = w.marked_vm("running", json!({}));
    let expected = "node 'pve9' (host detail 'node') is not a node of this Proxmox cluster, whose nodes are pve1, pve2: set the host's 'node' detail to the node this CloudStack host stands for";

    // fakepve answers an empty list for an unknown node: not "a node that runs nothing".
    let out = w.run(
        "statuses",
        &Payload::host(&w.pve).host_detail("node", Some("pve9")),
    );
    assert_eq!(out.assert_error(), expected);
    assert_plain(&out.stdout);

    // Real PVE fails the request instead: the same error, not PVE's lookup failure.
    w.pve.fail(
        "GET",
        "/nodes/pve9/qemu",
        500,
        "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known",
        None,
    );
    let out = w.run(
        "statuses",
        &Payload::host(&w.pve).host_detail("node", Some("pve9")),
    );
    assert_eq!(out.assert_error(), expected);

    // status of a VM that exists (on pve1) through a host configured with pve9, as real PVE
    // answers for a node it does not know.
    w.pve.fail(
        "GET",
        "/nodes/pve9/qemu/100/status/current",
        500,
        "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known",
        None,
    );
    w.pve.reset_requests();
    let out = w.run("status", &payload.clone().host_detail("node", Some("pve9")));
    assert_eq!(out.assert_error(), expected);
    assert!(
        w.pve.write_lines().is_empty(),
        "nothing changed: {:?}",
        w.pve.write_lines()
    );

    // A VM that is nowhere in the cluster, asked through the wrong node: the node's error too.
    let gone = Payload::vm(&w.pve, &TestVm::new()).vmid(4321);
    let out = w.run("status", &gone.host_detail("node", Some("pve8")));
    assert_eq!(out.assert_error(), expected.replace("pve9", "pve8"));

    // A node that runs no VM is still a node: an empty map.
    let out = w.run(
        "statuses",
        &Payload::host(&w.pve).host_detail("node", Some("pve2")),
    );
    assert_eq!(out.assert_success().json["power_state"], json!({}));
    // Unless the cluster's node list cannot be read to tell: then an empty answer is unknown,
    // for statuses and for a VM found nowhere (never "runs nothing" or "gone").
    let unchecked = "node 'pve2' (host detail 'node') answered with no VM, and whether it is a node of this Proxmox cluster cannot be checked (listing the cluster's nodes failed: ";
    w.pve.fail(
        "GET",
        "/nodes",
        500,
        "cluster not ready - no quorum?",
        Some(1),
    );
    let out = w.run(
        "statuses",
        &Payload::host(&w.pve).host_detail("node", Some("pve2")),
    );
    let err = out.assert_error();
    assert!(err.starts_with(unchecked), "{err}");
    assert!(err.contains("no quorum?"), "{err}");
    w.pve.fail(
        "GET",
        "/nodes",
        500,
        "cluster not ready - no quorum?",
        Some(1),
    );
    let gone = Payload::vm(&w.pve, &TestVm::new()).vmid(4321);
    let out = w.run("status", &gone.host_detail("node", Some("pve2")));
    assert!(out.assert_error().starts_with(unchecked), "{}", out.stdout);
    // And the right node costs no extra request.
    w.pve.reset_requests();
    w.run("status", &payload).assert_success();
    assert!(
        !w.pve.request_lines().iter().any(|l| l == "GET /nodes"),
        "{:?}",
        w.pve.request_lines()
    );
}
