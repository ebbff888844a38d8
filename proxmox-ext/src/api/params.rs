//! One parameter struct per Proxmox VE call that takes parameters, in PVE's spelling
//! (`#[serde(rename)]` where it is not Rust's), with `Option` for what PVE lets a caller leave
//! out (a `None` is not sent). Booleans go out as PVE's `1`/`0`. Calls without parameters
//! (start, stop, reset, suspend, resume, rollback, vncproxy, ...) have no struct.
//!
//! How these reach the wire is [`super::form`]'s business; actions only fill them in.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::model::Vmid;

/// `GET /cluster/nextid`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NextId {
    /// Ask whether this id is free (PVE answers it back, or refuses with "already exists");
    /// `None` asks for the lowest free one.
    pub vmid: Option<Vmid>,
}

/// `GET /cluster/resources`: the kind of resource listed.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) enum ResourceKind {
    /// Guests: QEMU VMs and containers.
    #[serde(rename = "vm")]
    Vm,
}

/// `GET /cluster/resources`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ClusterResources {
    #[serde(rename = "type")]
    pub kind: ResourceKind,
}

/// The NICs of a VM config, `net0`, `net1`, ... by index, each a property string such as
/// `virtio=02:01:00:CC:00:01,bridge=vmbr1,tag=1577,firewall=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDevices(pub BTreeMap<usize, String>);

impl Serialize for NetDevices {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(i, value)| (format!("net{i}"), value)))
    }
}

/// The config every new VM gets from `create`: its size, its NICs and the ownership mark.
#[derive(Debug, Clone, Serialize)]
pub struct VmConfig {
    pub cores: u32,
    /// MiB.
    pub memory: u64,
    /// `;`-separated tags.
    pub tags: String,
    #[serde(flatten)]
    pub nets: NetDevices,
}

/// `POST /nodes/{node}/qemu`: a new VM with an empty disk and an ISO as CD-ROM.
#[derive(Debug, Clone, Serialize)]
pub struct CreateVm {
    pub vmid: Vmid,
    pub name: String,
    /// e.g. `l26`, `win11`.
    pub ostype: String,
    /// e.g. `virtio-scsi-single`.
    pub scsihw: &'static str,
    /// The disk, e.g. `local-lvm:64,iothread=1`.
    pub scsi0: String,
    /// The CD-ROM, e.g. `local:iso/debian-12.iso,media=cdrom`.
    pub ide2: String,
    pub sockets: u32,
    #[serde(flatten)]
    pub config: VmConfig,
}

/// `POST /nodes/{node}/qemu/{vmid}/clone`.
#[derive(Debug, Clone, Serialize)]
pub struct CloneVm {
    /// The new VM's id.
    pub newid: Vmid,
    pub name: String,
    /// A full copy; a linked clone when false.
    pub full: bool,
    /// Target storage: for full clones only (PVE refuses it for linked ones); `None` keeps
    /// the template's.
    pub storage: Option<String>,
    /// The new VM's notes; `None` copies the template's. The one thing besides the name a
    /// clone request can put into the new VM's config (tags come from the template).
    pub description: Option<String>,
}

/// `POST /nodes/{node}/qemu/{vmid}/config`: the asynchronous config change.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateConfig {
    #[serde(flatten)]
    pub config: VmConfig,
    /// Config keys to remove, e.g. NICs a template had beyond the VM's.
    #[serde(serialize_with = "comma_list")]
    pub delete: Vec<String>,
}

/// `PUT /nodes/{node}/qemu/{vmid}/config` with only the tags: a change PVE applies at once.
#[derive(Debug, Clone, Serialize)]
pub struct SetTags {
    /// `;`-separated tags.
    pub tags: String,
}

/// `PUT /nodes/{node}/qemu/{vmid}/config`: the last step of `create`, the finished VM's tags
/// and config keys to remove (the note a clone carried while it was made).
#[derive(Debug, Clone, Serialize)]
pub struct FinishCreate {
    /// `;`-separated tags.
    pub tags: String,
    #[serde(serialize_with = "comma_list")]
    pub delete: Vec<String>,
}

/// `GET /nodes/{node}/tasks`: a filter of the node's tasks.
#[derive(Debug, Clone, Serialize)]
pub struct NodeTasks {
    /// Only tasks of this type, e.g. `qmclone`.
    pub typefilter: Option<&'static str>,
    /// Only tasks whose id (usually a VMID; for a clone, its source) is this.
    pub vmid: Option<Vmid>,
    pub source: TaskSource,
    pub limit: u32,
}

/// `GET /nodes/{node}/tasks`: which tasks are listed.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum TaskSource {
    /// Tasks still running.
    #[serde(rename = "active")]
    Active,
}

/// `POST …/status/shutdown`: ACPI shutdown.
#[derive(Debug, Clone, Serialize)]
pub struct Shutdown {
    /// Stop the VM hard when the guest has not shut down within `timeout`.
    #[serde(rename = "forceStop")]
    pub force_stop: bool,
    /// Seconds the guest gets.
    pub timeout: u64,
}

/// `POST …/status/reboot`: ACPI reboot.
#[derive(Debug, Clone, Serialize)]
pub struct Reboot {
    /// Seconds the guest gets to shut down; PVE's default when `None`.
    pub timeout: Option<u64>,
}

/// `DELETE /nodes/{node}/qemu/{vmid}` (sent as the query string).
#[derive(Debug, Clone, Serialize)]
pub struct DestroyVm {
    /// Also remove the VM from HA, replication and backup jobs.
    pub purge: bool,
    /// Also remove disks that are not in the config.
    #[serde(rename = "destroy-unreferenced-disks")]
    pub destroy_unreferenced_disks: bool,
}

/// `POST …/snapshot`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSnapshot {
    pub snapname: String,
    pub description: Option<String>,
    /// Save the VM's RAM too (a running VM only).
    pub vmstate: bool,
}

/// `GET /nodes/{node}/tasks/{upid}/log`.
/// `GET /access/permissions`: only this path.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Permissions<'a> {
    pub path: &'a str,
}

/// `GET /nodes/{node}/storage/{storage}/content`: only this content type.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct StorageContent<'a> {
    pub content: &'a str,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct TaskLog {
    /// The first line (0-based).
    pub start: u64,
    pub limit: u64,
}

/// A list as PVE takes it in one parameter: `a,b,c`; left out when empty.
fn comma_list<S: Serializer>(items: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    if items.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.serialize_str(&items.join(","))
    }
}
