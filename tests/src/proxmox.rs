//! Payloads shaped like CloudStack's (see `cloudstack-contract.md` §3.5) and a runner for
//! the release `proxmox-ext` binary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::Invoke;
use crate::pve::{FakePve, NODE, TEMPLATE_VMID};

/// A CloudStack payload under construction.
#[derive(Debug, Clone)]
pub struct Payload {
    pub value: Value,
}

/// One test VM: its CloudStack identity.
#[derive(Debug, Clone)]
pub struct TestVm {
    pub id: u64,
    /// Internal (instance) name, e.g. `i-2-45-VM`.
    pub name: String,
    pub uuid: String,
}

static VM_SEQUENCE: AtomicU32 = AtomicU32::new(1);

impl TestVm {
    /// A fresh CloudStack identity, unique within this test process.
    pub fn new() -> TestVm {
        let n = VM_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let id = 40 + u64::from(n);
        TestVm {
            id,
            name: format!("i-2-{id}-VM"),
            uuid: format!("{:08x}-1f0f-4313-875e-{:012x}", std::process::id(), id),
        }
    }
}

impl TestVm {
    /// The ownership mark `create` tags this VM with at `vmid`: the tests' own statement of
    /// the format (`cloudstack;cs-uuid.<uuid>;cs-name.<instance name, case-proof>;cs-vmid.N`).
    pub fn mark(&self, vmid: u32) -> String {
        format!(
            "cloudstack;cs-uuid.{};cs-name.{};cs-vmid.{vmid}",
            self.uuid,
            tag_text(&self.name)
        )
    }
}

/// Text as a Proxmox tag carries it, case-proof: lower-case letters, digits, '-' and '.'
/// stay, an upper-case letter becomes '+' and the letter, anything else '_' and hex.
pub fn tag_text(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => (b as char).to_string(),
            b'A'..=b'Z' => format!("+{}", b.to_ascii_lowercase() as char),
            other => format!("_{other:02x}"),
        })
        .collect()
}

impl Default for TestVm {
    fn default() -> Self {
        Self::new()
    }
}

impl Payload {
    /// A host-level payload (as for `statuses`): the connection details for `pve`, verified
    /// against its certificate through `ca_certificate`.
    pub fn host(pve: &FakePve) -> Payload {
        Payload {
            value: json!({
                "caller": {"id": "93567ed9-7e61-11f0-ba77-1e00c8000158", "name": "admin", "type": "ADMIN"},
                "externaldetails": {
                    "host": {
                        "url": pve.url(),
                        "user": "root@pam",
                        "token": "cs",
                        "secret": pve.secret,
                        "node": NODE,
                        "network_bridge": "vmbr1",
                        "verify_tls_certificate": "true",
                        "ca_certificate": pve.ca.display().to_string(),
                    },
                    "resourcemap": {"somekey": "somevalue"},
                    "extension": {"url": "pve.invalid"},
                }
            }),
        }
    }

    /// A VM-scoped payload for `vm` (as `create`, `stop` ... get it), cloning the harness's
    /// template as a linked clone, with one NIC on VLAN 1577.
    pub fn vm(pve: &FakePve, vm: &TestVm) -> Payload {
        let mut payload = Self::host(pve);
        let v = &mut payload.value;
        v["externaldetails"]["virtualmachine"] =
            json!({"template_type": "template", "template_id": TEMPLATE_VMID.to_string()});
        v["virtualmachineid"] = json!(vm.uuid);
        v["virtualmachinename"] = json!(vm.name);
        v["cloudstack.vm.details"] = json!({
            "id": vm.id, "name": vm.name, "uuid": vm.uuid, "state": "Starting", "type": "User",
            "cpus": 2, "minSpeed": 500, "maxSpeed": 500, "minRam": 1_073_741_824_u64, "maxRam": 1_073_741_824_u64,
            "arch": "x86_64", "bootArgs": "", "enableHA": false, "limitCpuUse": false,
            "enableDynamicallyScaleVm": false, "enterHardwareSetup": false,
            "vncPassword": "uHQHQ4niy8f4ogwCM1k-rw",
            "details": {"deployvm": "true", "cpuOvercommitRatio": "2.0",
                        "External:template_type": "template",
                        "External:template_id": TEMPLATE_VMID.to_string(),
                        "Message.ReservedCapacityFreed.Flag": "false"},
            "disks": [],
            "nics": [nic(0, &format!("02:01:00:cc:{:02x}:01", vm.id % 256), "vlan://1577")],
            "configDriveLocation": "SECONDARY", "guestOsDetails": {}, "extraConfig": {},
            "networkIdToNetworkNameMap": {}
        });
        payload
    }

    /// Store `proxmox_vmid` as `prepare` leaves it in the VM details.
    pub fn vmid(mut self, vmid: impl ToString) -> Payload {
        self.value["cloudstack.vm.details"]["details"]["proxmox_vmid"] = json!(vmid.to_string());
        self
    }

    /// Set (or with `None` remove) a host detail.
    pub fn host_detail(mut self, key: &str, value: Option<&str>) -> Payload {
        set(&mut self.value["externaldetails"]["host"], key, value);
        self
    }

    /// Set (or remove) an extension detail.
    pub fn extension_detail(mut self, key: &str, value: Option<&str>) -> Payload {
        set(&mut self.value["externaldetails"]["extension"], key, value);
        self
    }

    /// Set (or remove) an `externaldetails.virtualmachine` detail (template/instance details).
    pub fn vm_detail(mut self, key: &str, value: Option<&str>) -> Payload {
        set(
            &mut self.value["externaldetails"]["virtualmachine"],
            key,
            value,
        );
        self
    }

    /// Replace the NICs.
    pub fn nics(mut self, nics: Vec<Value>) -> Payload {
        self.value["cloudstack.vm.details"]["nics"] = Value::Array(nics);
        self
    }

    /// A custom action: `action` plus typed `parameters` (omitted when empty, as CloudStack does).
    pub fn custom(mut self, action: &str, parameters: Value) -> Payload {
        self.value["action"] = json!(action);
        if parameters.as_object().is_some_and(|p| !p.is_empty()) {
            self.value["parameters"] = parameters;
        }
        self
    }

    /// Arbitrary edit of the JSON document.
    pub fn with(mut self, edit: impl FnOnce(&mut Value)) -> Payload {
        edit(&mut self.value);
        self
    }

    /// Write it where CloudStack would (a file named `<uuid>.json`).
    pub fn write(&self, dir: &Path) -> PathBuf {
        static FILES: AtomicU32 = AtomicU32::new(0);
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("payload-{}-{n}.json", std::process::id()));
        std::fs::write(
            &path,
            serde_json::to_vec(&self.value).expect("payload serialises"),
        )
        .expect("write payload");
        path
    }
}

/// A NicTO as CloudStack serialises it.
pub fn nic(device_id: u32, mac: &str, broadcast_uri: &str) -> Value {
    let mut nic = json!({
        "deviceId": device_id, "nicUuid": format!("388e2dad-d1f1-4381-8e32-4878f6d29c{device_id:02}"),
        "uuid": "3cd4f011-88e1-4b01-875f-ce318c3678a5", "mac": mac,
        "ip": format!("10.1.1.{}", 10 + device_id), "netmask": "255.255.255.0", "gateway": "10.1.1.1",
        "broadcastType": "Vlan", "type": "Guest", "isolationUri": broadcast_uri,
        "defaultNic": device_id == 0, "networkRateMbps": 200, "mtu": 1500, "networkId": 204,
        "name": "cloudbr1", "details": {"PromiscuousMode": "false"}
    });
    if !broadcast_uri.is_empty() {
        nic["broadcastUri"] = json!(broadcast_uri);
    }
    nic
}

fn set(map: &mut Value, key: &str, value: Option<&str>) {
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    let object = map.as_object_mut().expect("object");
    match value {
        Some(v) => {
            object.insert(key.to_string(), json!(v));
        }
        None => {
            object.remove(key);
        }
    }
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Outcome {
    pub action: String,
    pub code: i32,
    /// stdout as JSON (already checked against the output contract).
    pub json: Value,
    pub stdout: String,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Outcome {
    /// Exit 0 and `"status":"success"`.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.code == 0 && self.json["status"] == "success",
            "{} should succeed: exit {}, stdout {}",
            self.action,
            self.code,
            self.stdout
        );
        self
    }

    /// Exit 1 with `{"status":"error","error":...}`; returns the error text.
    pub fn assert_error(&self) -> String {
        assert!(
            self.code == 1 && self.json["status"] == "error",
            "{} should fail: exit {}, stdout {}",
            self.action,
            self.code,
            self.stdout
        );
        self.json["error"].as_str().expect("error text").to_string()
    }

    /// The `message` of a success.
    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }
}

/// The state directory (VMID ledger) of the runs in `dir`: every run of one test shares it,
/// as the processes of one management server do.
pub fn state_dir(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// Run `proxmox-ext <action> <payload> <timeout>` as CloudStack does (no shell, stdin never
/// written) and check the output contract every run must keep (see [`crate::Run::json`]).
/// The state directory is `state_dir(dir)`, through `PROXMOX_EXT_STATE_DIR`.
pub fn run(action: &str, payload: &Payload, dir: &Path, timeout_secs: u32) -> Outcome {
    run_with_env(action, payload, dir, timeout_secs, &[])
}

/// [`run`] with extra environment variables (e.g. `SSL_CERT_DIR` for a test trust store).
pub fn run_with_env(
    action: &str,
    payload: &Payload,
    dir: &Path,
    timeout_secs: u32,
    env: &[(&str, &std::ffi::OsStr)],
) -> Outcome {
    let file = payload.write(dir);
    let log = dir.join("proxmox-ext.log");
    let state = state_dir(dir);
    let timeout = timeout_secs.to_string();
    let run = Invoke::new(
        crate::binary("proxmox-ext"),
        &[action.as_ref(), file.as_os_str(), timeout.as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .rust_log("debug")
    .env("PROXMOX_EXT_STATE_DIR", state.as_os_str());
    let run = env
        .iter()
        .fold(run, |run, &(key, value)| run.env(key, value))
        .run();
    let json = run.json();
    Outcome {
        action: action.to_string(),
        code: run.code.unwrap_or(-1),
        json,
        stdout: run.stdout,
        stderr: run.stderr,
        elapsed: run.elapsed,
    }
}

/// A test's world: one simulator and a scratch directory for payloads and logs.
pub struct World {
    pub pve: FakePve,
}

impl World {
    pub fn new() -> World {
        World {
            pve: FakePve::start(),
        }
    }

    pub fn with(options: crate::pve::Options) -> World {
        World {
            pve: FakePve::start_with(options),
        }
    }

    /// VM 100 on [`NODE`] in `status` with `config`, carrying the identity (and mark) of a
    /// fresh CloudStack VM; the request log starts empty after it.
    pub fn marked_vm(&self, status: &str, mut config: Value) -> (TestVm, Payload) {
        let vm = TestVm::new();
        config["tags"] = Value::from(vm.mark(100));
        self.pve.add_vm(100, &vm.name, NODE, status, config);
        self.pve.reset_requests();
        let payload = Payload::vm(&self.pve, &vm).vmid(100);
        (vm, payload)
    }

    /// Run an action with a 120 s timeout.
    pub fn run(&self, action: &str, payload: &Payload) -> Outcome {
        run(action, payload, self.pve.dir(), 120)
    }

    /// Run with extra environment variables.
    pub fn run_env(
        &self,
        action: &str,
        payload: &Payload,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Outcome {
        run_with_env(action, payload, self.pve.dir(), 120, env)
    }

    /// Run with an explicit timeout (argv[3]).
    pub fn run_with_timeout(&self, action: &str, payload: &Payload, timeout_secs: u32) -> Outcome {
        run(action, payload, self.pve.dir(), timeout_secs)
    }

    /// The extension's log file of this world (all runs append to it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.pve.dir().join("proxmox-ext.log")).unwrap_or_default()
    }

    /// `prepare` then `create` for `vm`: returns the VMID, asserting both succeeded.
    pub fn deploy(&self, vm: &TestVm) -> u32 {
        self.deploy_with(Payload::vm(&self.pve, vm))
    }

    /// `prepare` then `create` with this payload (its VMID is filled in from `prepare`).
    pub fn deploy_with(&self, payload: Payload) -> u32 {
        let vmid = self.prepare(&payload);
        self.run("create", &payload.vmid(vmid)).assert_success();
        vmid
    }

    /// `prepare`: the VMID it handed out, asserting it succeeded.
    pub fn prepare(&self, payload: &Payload) -> u32 {
        let prepared = self.run("prepare", payload);
        prepared.assert_success_or_patch();
        prepared.json["details"]["proxmox_vmid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("prepare gave no proxmox_vmid: {}", prepared.stdout))
    }
}

impl Drop for World {
    /// Every test also proves the binary never sent a path with a trailing or double slash
    /// (real PVE routes those, fakepve silently ignores them, the harness refuses them).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.pve.assert_clean_paths();
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcome {
    /// `prepare` answers a merge patch (no `status` key required by CloudStack): exit 0 and
    /// a JSON object.
    pub fn assert_success_or_patch(&self) -> &Self {
        assert!(
            self.code == 0 && self.json.is_object() && self.json["status"] != "error",
            "{} should succeed: exit {}, stdout {}",
            self.action,
            self.code,
            self.stdout
        );
        self
    }
}
