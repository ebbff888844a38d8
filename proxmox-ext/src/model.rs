//! What the Proxmox API answers, typed.
//!
//! PVE's JSON is loosely typed: numbers arrive as strings (`nextid`, `vncproxy.port`,
//! `config.memory`), booleans as `0`/`1`. Every field here is read leniently with the SDK's
//! helpers, and unknown fields are ignored, so a PVE upgrade that adds fields breaks nothing.

use std::fmt;
use std::str::FromStr;

use ext_sdk::lenient::{opt_bool, opt_string, opt_u64};
use serde::{Deserialize, Serialize};

/// A Proxmox VM id: 100..=999999999 (PVE's `pve-vmid` format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vmid(u32);

impl Vmid {
    pub const MIN: u32 = 100;
    pub const MAX: u32 = 999_999_999;

    pub fn new(id: u64) -> Result<Vmid, String> {
        u32::try_from(id)
            .ok()
            .filter(|id| (Self::MIN..=Self::MAX).contains(id))
            .map(Vmid)
            .ok_or_else(|| {
                format!(
                    "a Proxmox VM id is a number from {} to {}, not {id}",
                    Self::MIN,
                    Self::MAX
                )
            })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Vmid {
    type Err = String;

    /// Digits only: `"103"`, not `"103abc"`, `"-1"` or `"1e3"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 {
            return Err(format!(
                "a Proxmox VM id is a number from {} to {}, not '{s}'",
                Self::MIN,
                Self::MAX
            ));
        }
        Vmid::new(s.parse::<u64>().map_err(|e| e.to_string())?)
    }
}

impl Serialize for Vmid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl fmt::Display for Vmid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmStatus {
    /// `running` or `stopped`.
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    /// QEMU's own view: `running`, `paused`, `prelaunch` ...
    #[serde(default, deserialize_with = "opt_string")]
    pub qmpstatus: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// A config lock: `clone`, `backup`, `snapshot`, `suspended` ...
    #[serde(default, deserialize_with = "opt_string")]
    pub lock: Option<String>,
    /// `;`-separated tags.
    #[serde(default, deserialize_with = "opt_string")]
    pub tags: Option<String>,
    /// Whether it is a template (`1`).
    #[serde(default, deserialize_with = "opt_bool")]
    pub template: Option<bool>,
}

impl VmStatus {
    pub fn is_running(&self) -> bool {
        self.status.as_deref() == Some("running")
    }

    pub fn is_paused(&self) -> bool {
        self.is_running() && self.qmpstatus.as_deref() == Some("paused")
    }

    /// A task holds the VM to make it.
    pub fn is_being_made(&self) -> bool {
        is_making_lock(self.lock.as_deref())
    }
}

/// The config locks PVE holds while a task makes the VM: `clone` (a clone's target),
/// `create` (an ISO install).
fn is_making_lock(lock: Option<&str>) -> bool {
    matches!(lock, Some("clone" | "create"))
}

/// One entry of `GET /nodes/{node}/qemu`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeVm {
    #[serde(default, deserialize_with = "opt_u64")]
    pub vmid: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub template: Option<bool>,
    #[serde(default, deserialize_with = "opt_string")]
    pub tags: Option<String>,
    /// A config lock: `clone` and `create` while a task makes the VM.
    #[serde(default, deserialize_with = "opt_string")]
    pub lock: Option<String>,
}

impl NodeVm {
    /// A task holds the VM to make it.
    pub fn is_being_made(&self) -> bool {
        is_making_lock(self.lock.as_deref())
    }
}

/// One `type=vm` entry of `GET /cluster/resources`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterVm {
    #[serde(default, deserialize_with = "opt_u64")]
    pub vmid: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub node: Option<String>,
    #[serde(default, deserialize_with = "opt_string", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub tags: Option<String>,
}

impl ClusterVm {
    /// A QEMU VM (the list also holds containers, `lxc`, which share the VMID space).
    pub fn is_qemu(&self) -> bool {
        self.kind.as_deref() == Some("qemu")
    }
}

/// One entry of `GET …/snapshot` (the pseudo-entry `current` included).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Snapshot {
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub parent: Option<String>,
    /// Seconds since the epoch.
    #[serde(default, deserialize_with = "opt_u64")]
    pub snaptime: Option<u64>,
    /// Whether the snapshot holds the VM's RAM.
    #[serde(default, deserialize_with = "lenient_flag")]
    pub vmstate: Option<bool>,
}

/// `0`/`1`, booleans, and anything else non-empty (a state volume name) as true.
fn lenient_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::Number(n) => Some(n.as_f64().is_some_and(|n| n != 0.0)),
        serde_json::Value::String(s) => Some(!matches!(s.trim(), "" | "0" | "false")),
        _ => Some(true),
    })
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    /// Only once stopped: `OK`, `WARNINGS: N`, or the error text.
    #[serde(default, deserialize_with = "opt_string")]
    pub exitstatus: Option<String>,
}

/// One entry of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskEntry {
    /// Its UPID, which also names who started it (the listing's `user` drops the token id).
    #[serde(default, deserialize_with = "opt_string")]
    pub upid: Option<String>,
    /// The exit status once it ended; `RUNNING` (or absent) while it runs.
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub endtime: Option<u64>,
}

impl TaskEntry {
    pub fn is_running(&self) -> bool {
        self.endtime.is_none()
            && self
                .status
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("running"))
    }
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogLine {
    #[serde(default, deserialize_with = "opt_string")]
    pub t: Option<String>,
}

/// `POST …/vncproxy`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VncProxy {
    /// A string in practice.
    #[serde(default, deserialize_with = "opt_u64")]
    pub port: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub ticket: Option<String>,
    /// A VNC password, when one was generated.
    #[serde(default, deserialize_with = "opt_string")]
    pub password: Option<String>,
}

/// One entry of `GET /nodes/{node}/network`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkInterface {
    #[serde(default, deserialize_with = "opt_string")]
    pub iface: Option<String>,
    /// `bridge`, `OVSBridge`, `eth`, `bond`, `vlan` ...
    #[serde(default, deserialize_with = "opt_string", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub cidr: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub gateway: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub active: Option<bool>,
}

/// One entry of `GET /cluster/status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterMember {
    #[serde(default, deserialize_with = "opt_string", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub ip: Option<String>,
}

/// One entry of `GET /nodes/{node}/storage`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeStorage {
    #[serde(default, deserialize_with = "opt_string")]
    pub storage: Option<String>,
    /// Comma-separated content types: `images`, `iso`, `rootdir` ...
    #[serde(default, deserialize_with = "opt_string")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub active: Option<bool>,
}

/// One entry of `GET /nodes/{node}/storage/{storage}/content`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StorageVolume {
    #[serde(default, deserialize_with = "opt_string")]
    pub volid: Option<String>,
}

/// One entry of `GET /nodes`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterNode {
    #[serde(default, deserialize_with = "opt_string")]
    pub node: Option<String>,
    /// `online`, `offline` or `unknown`.
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vmids_are_digits_in_range() {
        assert_eq!("103".parse::<Vmid>().unwrap().get(), 103);
        assert_eq!(" 999999999 ".parse::<Vmid>().unwrap().get(), 999_999_999);
        for bad in [
            "",
            " ",
            "99",
            "1000000000",
            "-5",
            "10a",
            "1e3",
            "103.0",
            "abc",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Vmid>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_and_flags_parse_leniently() {
        let s: VncProxy = serde_json::from_value(
            json!({"port": "5900", "ticket": "PVEVNC:x", "user": "root@pam"}),
        )
        .unwrap();
        assert_eq!(s.port, Some(5900));
        let vm: NodeVm =
            serde_json::from_value(json!({"vmid": "101", "template": 1, "status": "stopped"}))
                .unwrap();
        assert_eq!((vm.vmid, vm.template), (Some(101), Some(true)));
        let vm: NodeVm = serde_json::from_value(json!({"vmid": 102, "template": "0"})).unwrap();
        assert_eq!(vm.template, Some(false));
        let snap: Snapshot =
            serde_json::from_value(json!({"name": "a", "snaptime": "1700000000", "vmstate": 0}))
                .unwrap();
        assert_eq!(
            (snap.snaptime, snap.vmstate),
            (Some(1_700_000_000), Some(false))
        );
        let snap: Snapshot =
            serde_json::from_value(json!({"name": "b", "vmstate": "local:vm-100-state-b"}))
                .unwrap();
        assert_eq!(snap.vmstate, Some(true));
    }
}
