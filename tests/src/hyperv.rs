//! Support for the Hyper-V tests: a `hyperv-testhost` per test, payloads that point the real
//! `hyperv-ext` binary at it, and counters for what each run cost on the host side.

use std::path::{Path, PathBuf};

use hyperv_testhost::state::Vm;
use hyperv_testhost::{State, TestHost};
use serde_json::{Value, json};

use crate::{Invoke, Run, Scratch, binary, set};

pub const VM: &str = "i-2-45-VM";
pub const UUID: &str = "126f4562-1f0f-4313-875e-6150cabeb72f";

/// One test's Hyper-V host plus a scratch directory for payloads and the extension's log.
pub struct Hv {
    pub host: TestHost,
    pub scratch: Scratch,
    /// The transport the payloads choose.
    pub via: Via,
    _dir: tempfile::TempDir,
}

/// How the payloads of an [`Hv`] reach the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Password and a pinned host key (the SSH details select SSH).
    Ssh,
    /// Upstream `hyperv.py`'s host details only, plus the CA certificate: WinRM by default.
    Winrm,
}

/// What one run of the binary cost the host: connections (sshd's plus the WinRM peer's) and
/// PowerShell starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub connections: usize,
    pub launches: u64,
}

impl Cost {
    /// Nothing reached the host: refused before connecting.
    pub const NONE: Cost = Cost {
        connections: 0,
        launches: 0,
    };
    /// Connected but refused before any PowerShell started (host key, certificate or
    /// credentials).
    pub const CONNECTED_ONLY: Cost = Cost {
        connections: 1,
        launches: 0,
    };
    /// What every action costs: one connection (SSH, or HTTPS for WinRM: one shell and one
    /// command in it), one PowerShell start.
    pub const ONE: Cost = Cost {
        connections: 1,
        launches: 1,
    };
}

impl Default for Hv {
    fn default() -> Self {
        Self::start()
    }
}

impl Hv {
    /// A host whose payloads reach it over SSH.
    pub fn start() -> Hv {
        Self::start_via(Via::Ssh)
    }

    /// A host whose payloads reach it over WinRM, with upstream's details.
    pub fn start_winrm() -> Hv {
        Self::start_via(Via::Winrm)
    }

    pub fn start_via(via: Via) -> Hv {
        let dir = tempfile::Builder::new()
            .prefix("hvtest-")
            .tempdir()
            .expect("temp dir");
        let host = TestHost::start(&binary("hyperv-testhost"), dir.path());
        Hv {
            host,
            scratch: Scratch::new(),
            via,
            _dir: dir,
        }
    }

    pub fn state(&self) -> State {
        self.host.state()
    }

    /// Host details that reach the test host: over SSH by password with a pinned host key,
    /// or over WinRM with exactly upstream's keys (`url` a bare host: port 5986) plus the
    /// trust (`ca_certificate`).
    pub fn host_details(&self) -> Value {
        let i = &self.host.info;
        if self.via == Via::Winrm {
            return json!({
                "url": i.winrm.winrm_host,
                "username": i.winrm.winrm_username,
                "password": i.winrm.winrm_password,
                "network_switch": i.switch,
                "vhd_path": i.vhd_path,
                "vm_path": i.vm_path,
                "ca_certificate": i.winrm.winrm_ca_certificate,
            });
        }
        json!({
            "url": i.host,
            "port": i.port.to_string(),
            "username": i.username,
            "password": i.password,
            "host_key_fingerprint": i.host_key_fingerprint,
            "network_switch": i.switch,
            "vhd_path": i.vhd_path,
            "vm_path": i.vm_path,
            "stop_timeout": "5",
        })
    }

    /// The extension's state directory for this test's runs (the UUIDs it has seen), given
    /// through `HYPERV_EXT_STATE_DIR` so the payloads stay what CloudStack sends.
    pub fn state_dir(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    /// A `create`-shaped payload for VM `name` with two NICs (VLAN 1577 and untagged) from
    /// the seeded template, generation 2, 512 MiB, 2 CPUs.
    pub fn payload(&self, name: &str, uuid: &str) -> Value {
        json!({
            "caller": {"id": "93567ed9", "name": "admin", "type": "ADMIN"},
            "externaldetails": {
                "host": self.host_details(),
                "virtualmachine": {
                    "template_type": "template",
                    "generation": "2",
                    "template_path": self.host.info.template_path,
                },
            },
            "virtualmachineid": uuid,
            "virtualmachinename": name,
            "cloudstack.vm.details": {
                "id": 45, "name": name, "uuid": uuid, "state": "Starting", "type": "User",
                "cpus": 2, "minRam": 536_870_912_u64, "maxRam": 536_870_912_u64,
                "vncPassword": "uHQHQ4niy8f4ogwCM1k-rw",
                "details": {"deployvm": "true", "External:template_type": "template"},
                "nics": [
                    {"deviceId": 1, "nicUuid": "nic-b", "uuid": "net-b", "mac": "02:01:00:cc:00:02",
                     "broadcastUri": "vlan://untagged", "defaultNic": false},
                    {"deviceId": 0, "nicUuid": "nic-a", "uuid": "net-a", "mac": "02:01:00:cc:00:01",
                     "broadcastUri": "vlan://1577", "defaultNic": true},
                ],
            },
        })
    }

    /// Runs `hyperv-ext <action> <payload> <timeout>`.
    pub fn run_with_timeout(&self, action: &str, payload: &Value, timeout: &str) -> Run {
        let path = self.scratch.payload(&format!("{action}.json"), payload);
        let log = self.scratch.log_path();
        let state = self.state_dir();
        Invoke::new(
            binary("hyperv-ext"),
            &[action.as_ref(), path.as_os_str(), timeout.as_ref()],
        )
        .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
        .env("HYPERV_EXT_STATE_DIR", state.as_os_str())
        .run()
    }

    pub fn run(&self, action: &str, payload: &Value) -> Run {
        self.run_with_timeout(action, payload, "60")
    }

    /// Runs an action and reports what it cost on the host.
    pub fn run_counted(&self, action: &str, payload: &Value) -> (Run, Cost) {
        let connections = || {
            self.host.connections()
                + usize::try_from(self.host.winrm_counters().connections).expect("a count")
        };
        let (c0, l0) = (connections(), self.state().invocations);
        let w0 = self.host.winrm_counters();
        let run = self.run(action, payload);
        let w1 = self.host.winrm_counters();
        let cost = Cost {
            connections: connections() - c0,
            launches: self.state().invocations - l0,
        };
        if self.via == Via::Winrm {
            // Each PowerShell start is one command in a shell of its own (a shell may hold
            // none when the command was refused), and no shell is left open.
            let shells = w1.shells_created - w0.shells_created;
            let commands = w1.commands - w0.commands;
            let connections = w1.connections - w0.connections;
            assert_eq!(commands, cost.launches, "{action}: {w1:?}");
            assert!(
                commands <= shells && shells <= connections,
                "{action}: one WinRM shell and one command per run: {w1:?}"
            );
            assert!(
                w1.open_shells.is_empty(),
                "{action}: a WinRM shell was left open"
            );
        }
        (run, cost)
    }

    /// A host-key-verifying payload variant: `f` edits the host details.
    pub fn with_host(&self, payload: &Value, f: impl FnOnce(&mut Value)) -> Value {
        let mut p = payload.clone();
        let mut host = p["externaldetails"]["host"].clone();
        f(&mut host);
        set(&mut p, "/externaldetails/host", host);
        p
    }

    /// The bytes of a file on the test host, by Windows path.
    pub fn file(&self, windows_path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host.local(windows_path)).ok()
    }

    pub fn exists(&self, windows_path: &str) -> bool {
        Path::new(&self.host.local(windows_path)).exists()
    }

    /// A VM made outside this extension (by hand, by upstream's hyperv.py, by another
    /// CloudStack), with `notes`, in `state`, and a disk `<vhd_path>\<name>-seeded.vhdx`.
    pub fn seed_vm(&self, name: &str, notes: &str, state: &str) -> Vm {
        let disk = format!("{}\\{name}-seeded.vhdx", self.host.info.vhd_path);
        std::fs::write(self.host.local(&disk), b"a seeded VM's disk").expect("write the disk");
        self.host.update(|s| {
            let vm = Vm {
                id: s.new_id(),
                name: name.into(),
                state: state.into(),
                generation: 2,
                memory_bytes: 1 << 30,
                cpus: 1,
                notes: notes.into(),
                disks: vec![disk],
                checkpoint_type: "Production".into(),
                guest_shutdown: "works".into(),
                ..Vm::default()
            };
            s.vms.push(vm.clone());
            vm
        })
    }
}

/// The disk path create chooses for `vm` on the test host.
pub fn disk_of(hv: &Hv, vm: &str) -> String {
    format!("{}\\{vm}.vhdx", hv.host.info.vhd_path)
}
