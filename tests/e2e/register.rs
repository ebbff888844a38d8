//! `--register`, `--entry-point` and `--version` of the real binaries, against `fake-cmk`: a
//! CloudMonkey stand-in on PATH that keeps CloudStack's extensions and custom actions in a
//! JSON file and records every call.

use std::ffi::OsStr;
use std::path::PathBuf;

use e2e::{Invoke, Run, Scratch, binary, custom_actions_of};
use serde_json::{Value, json};

/// A CloudStack as the fake cmk sees it, in a scratch directory.
struct Cloud {
    scratch: Scratch,
    bin: PathBuf,
}

impl Cloud {
    fn new() -> Cloud {
        let scratch = Scratch::new();
        let bin = scratch.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(binary("fake-cmk"), bin.join("cmk")).unwrap();
        Cloud { scratch, bin }
    }

    fn state_path(&self) -> PathBuf {
        self.scratch.path().join("cloudstack.json")
    }

    fn log_path(&self) -> PathBuf {
        self.scratch.path().join("cmk-calls.jsonl")
    }

    fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state_path()).unwrap()).unwrap()
    }

    fn set_state(&self, state: &Value) {
        std::fs::write(self.state_path(), state.to_string()).unwrap();
    }

    /// The API of every cmk call so far (`-o json` stripped).
    fn calls(&self) -> Vec<String> {
        self.argvs().iter().map(|a| a[2].clone()).collect()
    }

    fn argvs(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.log_path());
    }

    /// Runs `exe args...` with the fake cmk first on PATH and `env` set.
    fn run(&self, exe: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let state = self.state_path();
        let log = self.log_path();
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let mut invoke = Invoke::new(binary(exe), &args)
            .env("PATH", path.as_ref())
            .env("FAKE_CMK_STATE", state.as_os_str())
            .env("FAKE_CMK_LOG", log.as_os_str());
        for (k, v) in env {
            invoke = invoke.env(k, OsStr::new(v));
        }
        invoke.run()
    }

    fn extensions(&self) -> Vec<Value> {
        self.state()["extensions"].as_array().unwrap().clone()
    }

    fn actions(&self) -> Vec<Value> {
        self.state()["actions"].as_array().unwrap().clone()
    }

    fn action(&self, name: &str) -> Value {
        self.actions()
            .into_iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no custom action {name}"))
    }
}

fn stderr(run: &Run) -> String {
    String::from_utf8_lossy(&run.stderr).into_owned()
}

fn succeeded(run: &Run) -> &str {
    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        stderr(run)
    );
    &run.stdout
}

/// (name, type, required) of an action's parameters, as CloudStack holds them.
fn parameters(action: &Value) -> Vec<(String, String, bool)> {
    action["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["type"].as_str().unwrap().to_owned(),
                        p["required"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn param(name: &str, kind: &str, required: bool) -> (String, String, bool) {
    (name.to_owned(), kind.to_owned(), required)
}

const ROLES: [&str; 4] = ["Admin", "ResourceAdmin", "DomainAdmin", "User"];

/// Upstream's custom actions (the same names for both extensions) and this project's two.
/// Each extension may declare more (its `--help` lists them); counts below use them all.
const UPSTREAM_AND_OURS: [&str; 6] = [
    "ListSnapshots",
    "CreateSnapshot",
    "RestoreSnapshot",
    "DeleteSnapshot",
    "Suspend",
    "Resume",
];

/// Every declared custom action is registered, in the declared order, and upstream's are
/// among them.
fn assert_registered_as_declared(cloud: &Cloud, exe: &str) -> usize {
    let declared = custom_actions_of(exe);
    for name in UPSTREAM_AND_OURS {
        assert!(
            declared.iter().any(|d| d == name),
            "{exe} declares no {name}: {declared:?}"
        );
    }
    let names: Vec<String> = cloud
        .actions()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, declared);
    declared.len()
}

#[test]
fn proxmox_registers_with_upstreams_actions_and_the_reserved_vmid() {
    let cloud = Cloud::new();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register"], &[])).to_owned();

    let extensions = cloud.extensions();
    assert_eq!(extensions.len(), 1);
    let e = &extensions[0];
    assert_eq!(e["name"], "ProxmoxRs");
    assert_eq!(e["type"], "Orchestrator");
    assert_eq!(
        e["path"], "/usr/share/cloudstack-management/extensions/proxmoxrs/proxmox-ext",
        "the bare file name, prefixed by CloudStack with the lower-cased directory"
    );
    assert_eq!(e["orchestratorrequirespreparevm"], true);
    assert_eq!(e["reservedresourcedetails"], "proxmox_vmid");
    assert_eq!(e["state"], "Enabled");

    let n = assert_registered_as_declared(&cloud, "proxmox-ext");
    assert_eq!(parameters(&cloud.action("ListSnapshots")), []);
    assert_eq!(
        parameters(&cloud.action("CreateSnapshot")),
        [
            param("snap_name", "STRING", true),
            param("snap_description", "STRING", false),
            param("snap_save_memory", "BOOLEAN", false),
        ]
    );
    for name in ["RestoreSnapshot", "DeleteSnapshot"] {
        assert_eq!(
            parameters(&cloud.action(name)),
            [param("snap_name", "STRING", true)],
            "{name}"
        );
    }
    // The read-only preflight (issue 10), run on an instance from the UI.
    let check = cloud.action("check");
    assert_eq!(parameters(&check), []);
    assert_eq!(check["timeout"], 120);
    for a in cloud.actions() {
        assert_eq!(a["extensionid"], e["id"]);
        assert_eq!(a["resourcetype"], "VirtualMachine");
        assert_eq!(a["allowedroletypes"], json!(ROLES));
        assert_eq!(a["enabled"], true);
        assert!(a["timeout"].as_u64().unwrap() >= 60, "{a}");
    }
    let mut calls = vec!["listExtensions", "createExtension", "listCustomActions"];
    calls.extend(std::iter::repeat_n("addCustomAction", n));
    assert_eq!(cloud.calls(), calls);
    assert!(
        out.contains("ProxmoxRs: extension created (id ext-0001, path proxmox-ext)"),
        "{out}"
    );
    assert!(
        out.contains("ProxmoxRs: custom action CreateSnapshot created"),
        "{out}"
    );
    assert!(
        out.contains(&format!("ProxmoxRs: registered (created {}, updated 0, already as declared 0); CloudStack runs /usr/share/cloudstack-management/extensions/proxmoxrs/proxmox-ext", n + 1)),
        "{out}"
    );

    // Again: only reads, and it says so.
    let before = cloud.state();
    cloud.clear_log();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register"], &[])).to_owned();
    assert_eq!(cloud.calls(), ["listExtensions", "listCustomActions"]);
    assert_eq!(cloud.state(), before);
    assert!(
        out.contains("ProxmoxRs: extension already as declared (id ext-0001)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "registered (created 0, updated 0, already as declared {})",
            n + 1
        )),
        "{out}"
    );
}

#[test]
fn hyperv_registers_without_prepare_or_reserved_details() {
    let cloud = Cloud::new();
    let out = succeeded(&cloud.run("hyperv-ext", &["--register", "--cmk", "cmk"], &[])).to_owned();
    let e = &cloud.extensions()[0];
    assert_eq!(e["name"], "HyperVRs");
    assert_eq!(
        e["path"],
        "/usr/share/cloudstack-management/extensions/hypervrs/hyperv-ext"
    );
    assert_eq!(e["orchestratorrequirespreparevm"], false);
    assert!(e.get("reservedresourcedetails").is_none(), "{e}");
    assert_registered_as_declared(&cloud, "hyperv-ext");
    for name in &UPSTREAM_AND_OURS {
        let expected = if name.ends_with("Snapshot") && *name != "ListSnapshots" {
            vec![param("snapshot_name", "STRING", true)]
        } else {
            vec![]
        };
        assert_eq!(parameters(&cloud.action(name)), expected, "{name}");
    }
    // The read-only preflight (issue 10), with the template or ISO it should look for.
    let check = cloud.action("check");
    assert_eq!(
        parameters(&check),
        [
            param("template_path", "STRING", false),
            param("iso_path", "STRING", false),
        ]
    );
    assert_eq!(check["timeout"], 120);
    assert_eq!(check["allowedroletypes"], json!(ROLES));
    assert!(!out.contains("WARNING"), "{out}");
}

#[test]
fn drift_is_put_back_and_foreign_actions_are_left_alone() {
    let cloud = Cloud::new();
    succeeded(&cloud.run("proxmox-ext", &["--register"], &[]));
    let mut state = cloud.state();
    let e = &mut state["extensions"][0];
    e["description"] = json!("changed by hand");
    e["orchestratorrequirespreparevm"] = json!(false);
    e["reservedresourcedetails"] = json!("site_secret");
    e["state"] = json!("Disabled");
    for a in state["actions"].as_array_mut().unwrap() {
        match a["name"].as_str().unwrap() {
            "CreateSnapshot" => {
                a["timeout"] = json!(60);
                a["parameters"].as_array_mut().unwrap().truncate(1);
            }
            "Suspend" => {
                a["parameters"] = json!([{"name": "x", "type": "STRING", "required": false}]);
            }
            "Resume" => a["enabled"] = json!(false),
            _ => {}
        }
    }
    let ext_id = state["extensions"][0]["id"].clone();
    state["actions"].as_array_mut().unwrap().push(json!({
        "id": "mine-1", "name": "MyOwnAction", "extensionid": ext_id, "description": "the operator's",
        "resourcetype": "VirtualMachine", "allowedroletypes": ["Admin"], "timeout": 5, "enabled": true
    }));
    cloud.set_state(&state);
    cloud.clear_log();

    let out = succeeded(&cloud.run("proxmox-ext", &["--register"], &[])).to_owned();
    let e = &cloud.extensions()[0];
    assert_eq!(
        e["description"],
        "Proxmox VE through its REST API (proxmox-ext)"
    );
    assert_eq!(e["orchestratorrequirespreparevm"], true);
    assert_eq!(
        e["reservedresourcedetails"], "proxmox_vmid,site_secret",
        "the operator's reserved detail is kept"
    );
    assert_eq!(e["state"], "Enabled");
    let create = cloud.action("CreateSnapshot");
    assert_eq!(create["timeout"], 600);
    assert_eq!(parameters(&create).len(), 3);
    assert_eq!(parameters(&cloud.action("Suspend")), []);
    assert_eq!(cloud.action("Resume")["enabled"], true);
    assert_eq!(
        cloud.action("MyOwnAction")["timeout"],
        5,
        "not ours: untouched"
    );
    assert_eq!(
        cloud.calls(),
        [
            "listExtensions",
            "updateExtension",
            "listCustomActions",
            "updateCustomAction",
            "updateCustomAction",
            "updateCustomAction"
        ]
    );
    for line in [
        "ProxmoxRs: extension updated (id ext-0001): description; orchestratorrequirespreparevm false -> true; reservedresourcedetails + proxmox_vmid; state Disabled -> Enabled",
        "ProxmoxRs: custom action CreateSnapshot updated: timeout 60 -> 600; parameters",
        "ProxmoxRs: custom action MyOwnAction left as it is (proxmox-ext has no such action)",
        &*format!(
            "registered (created 0, updated 4, already as declared {})",
            custom_actions_of("proxmox-ext").len() + 1 - 4
        ),
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn a_failed_run_is_finished_by_the_next() {
    let cloud = Cloud::new();
    // Calls: listExtensions, createExtension, listCustomActions, then the third
    // addCustomAction fails.
    let failed = cloud.run("proxmox-ext", &["--register"], &[("FAKE_CMK_FAIL_AT", "6")]);
    assert_eq!(failed.code, Some(1), "{}", failed.stdout);
    let err = stderr(&failed);
    assert!(
        err.contains("proxmox-ext: error: cmk addCustomAction failed (exit status 1): Error: (HTTP 530, error code 9999) Internal error"),
        "{err}"
    );
    assert!(err.contains("run --register again to finish"), "{err}");
    assert!(
        failed
            .stdout
            .contains("custom action CreateSnapshot created")
    );
    assert_eq!(cloud.actions().len(), 2);

    cloud.clear_log();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register"], &[])).to_owned();
    let n = custom_actions_of("proxmox-ext").len();
    assert_eq!(cloud.actions().len(), n);
    assert_eq!(
        cloud
            .calls()
            .iter()
            .filter(|c| *c == "addCustomAction")
            .count(),
        n - 2
    );
    assert!(
        out.contains(&format!(
            "registered (created {}, updated 0, already as declared 3)",
            n - 2
        )),
        "{out}"
    );
}

#[test]
fn an_extension_cloudstack_could_not_enable_is_enabled_on_the_rerun() {
    let cloud = Cloud::new();
    let root = cloud.scratch.path().join("extensions");
    std::fs::create_dir_all(root.join("proxmoxrs")).unwrap();
    let env = [("FAKE_CMK_EXTENSIONS_ROOT", root.to_str().unwrap())];
    let failed = cloud.run("proxmox-ext", &["--register"], &env);
    assert_eq!(failed.code, Some(1));
    assert!(
        stderr(&failed).contains("as its path is not ready"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(cloud.extensions()[0]["state"], "Disabled");

    std::os::unix::fs::symlink(binary("proxmox-ext"), root.join("proxmoxrs/proxmox-ext")).unwrap();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register"], &env)).to_owned();
    assert_eq!(cloud.extensions()[0]["state"], "Enabled");
    assert!(out.contains("state Disabled -> Enabled"), "{out}");
    assert_eq!(
        cloud.actions().len(),
        custom_actions_of("proxmox-ext").len()
    );
}

#[test]
fn bad_cmk_output_and_missing_cmk_are_clear_errors() {
    let cloud = Cloud::new();
    let garbage = cloud.run(
        "proxmox-ext",
        &["--register"],
        &[("FAKE_CMK_GARBAGE_AT", "2")],
    );
    assert_eq!(garbage.code, Some(1));
    assert!(
        stderr(&garbage).contains(
            "cmk createExtension printed something that is not a JSON object (it is run with '-o json'): Missing required parameters"
        ),
        "{}",
        stderr(&garbage)
    );

    let missing = cloud.run(
        "proxmox-ext",
        &["--register", "--cmk", "/nonexistent/cmk"],
        &[],
    );
    assert_eq!(missing.code, Some(1));
    assert!(
        stderr(&missing).contains("cannot run CloudMonkey '/nonexistent/cmk'")
            && stderr(&missing).contains("--cmk PATH"),
        "{}",
        stderr(&missing)
    );
    assert!(cloud.calls().len() == 2, "{:?}", cloud.calls());

    // A dry run without a usable cmk still shows what a registration from scratch runs.
    let out = succeeded(&cloud.run(
        "proxmox-ext",
        &["--register", "--dry-run", "--cmk", "/nonexistent/cmk"],
        &[],
    ))
    .to_owned();
    assert!(
        out.contains("# could not read what CloudStack has (cannot run CloudMonkey"),
        "{out}"
    );
    assert_eq!(
        out.matches("cmk -o json addCustomAction").count(),
        custom_actions_of("proxmox-ext").len(),
        "{out}"
    );
}

#[test]
fn a_wrong_path_or_a_built_in_name_is_refused() {
    let cloud = Cloud::new();
    // What the old README registered: path=ProxmoxRs/proxmox-ext.
    cloud.set_state(&json!({"extensions": [{
        "id": "old-1", "name": "ProxmoxRs", "type": "Orchestrator", "isuserdefined": true,
        "path": "/usr/share/cloudstack-management/extensions/proxmoxrs/ProxmoxRs/proxmox-ext",
        "state": "Enabled"
    }], "actions": []}));
    let refused = cloud.run("proxmox-ext", &["--register"], &[]);
    assert_eq!(refused.code, Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(
            "runs /usr/share/cloudstack-management/extensions/proxmoxrs/ProxmoxRs/proxmox-ext"
        ) && err.contains("cmk deleteExtension id=old-1")
            && err.contains("without cleanup=true"),
        "{err}"
    );
    assert_eq!(cloud.calls(), ["listExtensions"], "nothing changed");

    cloud.clear_log();
    let builtin = cloud.run("proxmox-ext", &["--register", "--name", "proxmox"], &[]);
    assert_eq!(builtin.code, Some(1));
    assert!(
        stderr(&builtin).contains("built-in extension Proxmox"),
        "{}",
        stderr(&builtin)
    );
    assert!(cloud.calls().is_empty(), "refused before asking CloudStack");
}

#[test]
fn dry_run_reads_and_prints_the_commands() {
    let cloud = Cloud::new();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register", "--dry-run"], &[])).to_owned();
    assert_eq!(cloud.calls(), ["listExtensions"], "only reads");
    assert!(cloud.extensions().is_empty());
    for line in [
        "cmk -o json createExtension name=ProxmoxRs type=Orchestrator path=proxmox-ext 'description=Proxmox VE through its REST API (proxmox-ext)' orchestratorrequirespreparevm=true reservedresourcedetails=proxmox_vmid",
        "cmk -o json addCustomAction extensionid=\"$EXTENSION_ID\" name=CreateSnapshot 'description=Take a Proxmox snapshot of the instance' resourcetype=VirtualMachine allowedroletypes=Admin,ResourceAdmin,DomainAdmin,User timeout=600 enabled=true",
        "'parameters[0].name=snap_name' 'parameters[0].type=STRING' 'parameters[0].required=true'",
        "'parameters[2].name=snap_save_memory' 'parameters[2].type=BOOLEAN' 'parameters[2].required=false'",
        &*format!(
            "ProxmoxRs: dry run done (would be created {}, would be updated 0, already as declared 0)",
            custom_actions_of("proxmox-ext").len() + 1
        ),
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // After a real registration, a dry run after drift prints just the update.
    succeeded(&cloud.run("proxmox-ext", &["--register"], &[]));
    let mut state = cloud.state();
    state["actions"][4]["timeout"] = json!(1);
    cloud.set_state(&state);
    cloud.clear_log();
    let out = succeeded(&cloud.run("proxmox-ext", &["--register", "--dry-run"], &[])).to_owned();
    assert_eq!(cloud.calls(), ["listExtensions", "listCustomActions"]);
    assert!(
        out.contains("cmk -o json updateCustomAction id=action-"),
        "{out}"
    );
    assert_eq!(out.matches("cmk -o json").count(), 1, "{out}");
    assert_eq!(cloud.state(), state);
}

#[test]
fn cloudstack_421_ignoring_reserved_details_is_a_warning() {
    let cloud = Cloud::new();
    let out = succeeded(&cloud.run(
        "proxmox-ext",
        &["--register"],
        &[("FAKE_CMK_NO_RESERVED", "1")],
    ))
    .to_owned();
    assert!(
        out.contains("ProxmoxRs: WARNING: CloudStack did not store reservedresourcedetails=proxmox_vmid (it needs CloudStack 4.22 or later)"),
        "{out}"
    );
    assert!(out.contains("CVE-2026-25199"), "{out}");
}

#[test]
fn other_names_get_their_own_directory() {
    let cloud = Cloud::new();
    let out = succeeded(&cloud.run("proxmox-ext", &["--entry-point"], &[])).to_owned();
    assert_eq!(
        out,
        "/usr/share/cloudstack-management/extensions/proxmoxrs/proxmox-ext\n"
    );
    let out = succeeded(&cloud.run(
        "hyperv-ext",
        &["--entry-point", "--name", "Hyper-V Lab"],
        &[],
    ))
    .to_owned();
    assert_eq!(
        out,
        "/usr/share/cloudstack-management/extensions/hyper-v_lab/hyperv-ext\n"
    );
    succeeded(&cloud.run("proxmox-ext", &["--register", "--name", "Lab Proxmox"], &[]));
    assert_eq!(
        cloud.extensions()[0]["path"],
        "/usr/share/cloudstack-management/extensions/lab_proxmox/proxmox-ext"
    );
    let usage = cloud.run("proxmox-ext", &["--entry-point", "--dry-run"], &[]);
    assert_eq!(usage.code, Some(2), "--dry-run belongs to --register");
}

#[test]
fn version_names_the_commit() {
    let cloud = Cloud::new();
    for exe in ["proxmox-ext", "hyperv-ext"] {
        let out = succeeded(&cloud.run(exe, &["--version"], &[])).to_owned();
        let rest = out
            .strip_prefix(&format!("{exe} {} (commit ", env!("CARGO_PKG_VERSION")))
            .unwrap_or_else(|| panic!("{out}"));
        let commit = rest.trim_end().trim_end_matches(')');
        let hash = commit.trim_end_matches("-dirty");
        assert!(
            hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{out}"
        );
    }
}
