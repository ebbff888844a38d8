//! The fake host's state: one JSON file, read and written under an exclusive lock so that
//! parallel invocations (CloudStack runs actions concurrently) and the test itself see
//! consistent snapshots. Disks, templates and ISOs are real files under the `fs` root.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub host_name: String,
    /// Every start of the fake PowerShell, accepted or not.
    pub invocations: u64,
    /// Starts refused before running anything (wrong flags, a script that is not ours).
    pub rejected: u64,
    /// One entry per start, in order.
    pub launches: Vec<Launch>,
    pub switches: Vec<Switch>,
    pub vms: Vec<Vm>,
    /// Source of the ids (GUID-shaped) handed out.
    pub next_id: u64,
}

/// What one start of the fake PowerShell did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    /// The script's name, `None` when refused.
    pub script: Option<String>,
    /// `ok`, a failure code, `refused: ...`, or `killed` (the session went away first).
    pub outcome: String,
    /// The decoded data blob.
    pub data: Value,
    /// The script is one of the read-only ones ([`hyperv_protocol::Script::is_read_only`]),
    /// so the fake compared the host before and after it.
    pub read_only: bool,
    /// What a read-only script changed nevertheless (VMs, switches, files): always empty
    /// unless a script breaks its promise, which the tests assert against.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Switch {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vm {
    pub id: String,
    pub name: String,
    /// `Microsoft.HyperV.PowerShell.VMState` name: Off, Running, Paused, Saved, ...
    pub state: String,
    pub generation: u8,
    pub memory_bytes: u64,
    pub cpus: u32,
    pub notes: String,
    /// The configuration file (`<vm_path>\<name>\Virtual Machines\<id>.vmcx`).
    pub config: String,
    /// Hard disk paths, in controller order.
    pub disks: Vec<String>,
    pub dvds: Vec<String>,
    pub adapters: Vec<Adapter>,
    pub firmware: Option<Firmware>,
    /// Production (the Hyper-V default since 2016) or Standard.
    pub checkpoint_type: String,
    pub checkpoints: Vec<Checkpoint>,
    /// The checkpoint the running state descends from.
    pub parent_checkpoint: Option<String>,
    /// Whether the guest honours a shutdown request: `works`, `hangs` or `fails`.
    pub guest_shutdown: String,
    /// How the VM last stopped: `graceful` or `turnoff`.
    pub last_stop: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Adapter {
    pub name: String,
    /// 12 upper-case hex digits, as Hyper-V reports it.
    pub mac: String,
    pub switch: Option<String>,
    /// `None` = untagged.
    pub vlan: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Firmware {
    pub secure_boot: String,
    pub secure_boot_template: String,
    /// `dvd` or `disk`.
    pub first_boot: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    pub id: String,
    pub name: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub parent: Option<String>,
    /// `Production` (no memory state) or `Standard`.
    pub kind: String,
    /// The VM state captured with it (Standard checkpoints of a running VM keep memory).
    pub vm_state: String,
}

impl State {
    /// The simulated host alone, without the fake's own records (starts, launches).
    pub fn host_only(&self) -> State {
        State {
            invocations: 0,
            rejected: 0,
            launches: Vec::new(),
            ..self.clone()
        }
    }

    pub fn vm_named(&self, name: &str) -> Vec<&Vm> {
        self.vms.iter().filter(|v| v.name == name).collect()
    }

    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        let n = self.next_id;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            0x5eed_0000u64 + (n & 0xffff),
            n
        )
    }
}

/// The state file with its lock file beside it.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Runs `f` on the state under the lock and saves what it leaves.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> std::io::Result<T> {
        let _lock = self.lock()?;
        let mut state = self.read_unlocked()?;
        let out = f(&mut state);
        self.write_unlocked(&state)?;
        Ok(out)
    }

    /// A consistent copy of the state.
    pub fn read(&self) -> std::io::Result<State> {
        let _lock = self.lock()?;
        self.read_unlocked()
    }

    fn lock(&self) -> std::io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.lock_path())?;
        file.lock()?;
        Ok(file)
    }

    fn read_unlocked(&self) -> std::io::Result<State> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e),
        }
    }

    /// Write-then-rename, so a reader never sees half a file (and whoever writes, the
    /// directory's owner can still replace it).
    fn write_unlocked(&self, state: &State) -> std::io::Result<()> {
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &self.path)
    }
}
