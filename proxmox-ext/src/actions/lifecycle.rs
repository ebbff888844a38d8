//! `prepare` (VMID), `create` (clone or ISO install, configure, start) and `delete`.
//!
//! `prepare` hands out a VMID through [`allocation`](crate::allocation): confirmed free by
//! Proxmox and recorded in the management server's ledger, so concurrent deploys never get
//! the same one.
//!
//! `create` only ever removes what it created itself: the VMID counts as this run's only once
//! PVE answered the create or clone request with a task id (PVE writes the new config
//! atomically before it forks the worker, so an "already exists" refusal means another
//! deploy holds the id, and nothing is deleted then). A failure or a deadline after that
//! point rolls the new VM back within the deadline's cleanup reserve, and the error says what
//! was rolled back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use ext_sdk::{DetailReader, Invocation, MacAddress, PreparePatch, Response, Vlan};
use log::{info, warn};

use super::power::{start_vm, stop_vm};
use super::{DESTROY, vm_session};
use crate::allocation::{self, VmidRange};
use crate::api::params::{CloneVm, CreateVm, NetDevices, UpdateConfig, VmConfig};
use crate::api::{Client, connect};
use crate::error::Error;
use crate::model::Vmid;
use crate::settings::{
    Connection, DISK_SIZE_GB, IS_FULL_CLONE, ISO_OS_TYPE, ISO_PATH, NETWORK_BRIDGE, STATE_DIR,
    STORAGE, TEMPLATE_ID, TEMPLATE_TYPE, VMID_RANGE,
};
use crate::state;
use crate::task;
use crate::upid::Upid;
use crate::vm::{NotOurs, VmRef};

/// `prepare`: a VMID no concurrent deploy holds, returned as the VM detail `proxmox_vmid`.
pub fn prepare(inv: &Invocation) -> anyhow::Result<Response> {
    let mut d = inv.payload.details();
    let conn = Connection::read(&mut d);
    let range: Option<VmidRange> = d.optional_with(&VMID_RANGE, str::parse);
    let state_dir: Option<PathBuf> = d.optional(&STATE_DIR);
    d.finish()?;
    let state_dir = state::resolve(state_dir)?;
    let client = connect(&conn, inv.deadline)?;
    let vmid = allocation::allocate(&client, &state_dir, range)
        .context("asking Proxmox for a free VMID")?;
    info!(
        "VMID {vmid} for {}",
        inv.payload.vm_name().unwrap_or("(unnamed VM)")
    );
    Ok(Response::prepare(PreparePatch {
        details: BTreeMap::from([("proxmox_vmid".to_string(), vmid.to_string())]),
        ..PreparePatch::default()
    }))
}

/// Where the new VM's disk comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Clone a template; `storage` only for full clones (PVE refuses it for linked ones).
    Clone {
        template: Vmid,
        full: bool,
        storage: Option<String>,
    },
    /// A new disk plus the ISO as CD-ROM.
    Iso {
        iso: String,
        os_type: String,
        disk_gb: u32,
        storage: String,
    },
}

/// One NIC as Proxmox gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NicPlan {
    index: usize,
    mac: MacAddress,
    vlan: Vlan,
}

impl NicPlan {
    /// `virtio=MAC,bridge=BR[,tag=N],firewall=0`: no `tag` for untagged networks.
    fn value(&self, bridge: &str) -> String {
        let mut value = format!(
            "virtio={},bridge={bridge}",
            self.mac.to_colon_string().to_ascii_uppercase()
        );
        if let Some(tag) = self.vlan.tag() {
            value.push_str(&format!(",tag={tag}"));
        }
        value.push_str(",firewall=0");
        value
    }
}

/// Everything `create` will do, validated before the first request.
#[derive(Debug, Clone)]
struct CreatePlan {
    source: Source,
    cores: u32,
    memory_mib: u64,
    bridge: String,
    nics: Vec<NicPlan>,
}

fn parse_template_type(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "template" => Ok(false),
        "iso" => Ok(true),
        _ => Err("expected 'template' or 'iso'".into()),
    }
}

fn parse_os_type(text: &str) -> Result<String, String> {
    const KNOWN: &[&str] = &[
        "other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24",
        "l26", "solaris",
    ];
    if KNOWN.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("expected one of {}", KNOWN.join(", ")))
    }
}

fn parse_storage(text: &str) -> Result<String, String> {
    let ok = text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(text.to_string())
    } else {
        Err("a storage id has letters, digits, '-', '_' or '.', e.g. local-lvm".into())
    }
}

fn parse_disk_size(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| (1..=1_048_576).contains(&n))
        .ok_or_else(|| "expected a whole number of GiB, e.g. 64".into())
}

fn parse_iso(text: &str) -> Result<String, String> {
    let ok = text
        .split_once(':')
        .is_some_and(|(storage, volume)| !storage.is_empty() && !volume.is_empty())
        && !text.contains([',', '=', ' ']);
    if ok {
        Ok(text.to_string())
    } else {
        Err("expected an ISO volume id, e.g. local:iso/debian-12.iso".into())
    }
}

/// Reads and checks every input of `create`; problems in details and NICs are reported
/// together.
fn read_plan(d: &mut DetailReader<'_>, inv: &Invocation) -> CreatePlan {
    let is_iso: Option<bool> = d.optional_with(&TEMPLATE_TYPE, parse_template_type);
    let template: Option<Vmid> = d.optional_with(&TEMPLATE_ID, |s| s.parse::<Vmid>());
    let iso: Option<String> = d.optional_with(&ISO_PATH, parse_iso);
    // Without template_type, whichever of template_id and iso_path is set decides.
    let is_iso = is_iso.unwrap_or(template.is_none() && iso.is_some());
    d.require_if(is_iso, &ISO_PATH);
    d.require_if(!is_iso, &TEMPLATE_ID);
    let full: bool = d.optional(&IS_FULL_CLONE).unwrap_or(false);
    let storage: Option<String> = d.optional_with(&STORAGE, parse_storage);
    let source = if is_iso {
        Source::Iso {
            iso: iso.unwrap_or_default(),
            os_type: d
                .optional_with(&ISO_OS_TYPE, parse_os_type)
                .unwrap_or_else(|| "l26".into()),
            disk_gb: d
                .optional_with(&DISK_SIZE_GB, parse_disk_size)
                .unwrap_or(64),
            storage: storage.unwrap_or_else(|| "local-lvm".into()),
        }
    } else {
        Source::Clone {
            template: template.unwrap_or(Vmid::new(u64::from(Vmid::MIN)).expect("100 is a VMID")),
            full,
            // A full clone without `storage` stays on the template's storage.
            storage: if full { storage } else { None },
        }
    };

    let nics_in = inv.payload.nics();
    d.require_if(!nics_in.is_empty(), &NETWORK_BRIDGE);
    let bridge: String = d
        .optional_with(&NETWORK_BRIDGE, |s| {
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                Ok(s.to_string())
            } else {
                Err("a bridge name has letters, digits, '-', '_' or '.', e.g. vmbr0".into())
            }
        })
        .unwrap_or_default();
    let mut ordered: Vec<_> = nics_in.iter().enumerate().collect();
    ordered.sort_by_key(|(i, n)| n.device_id.unwrap_or(*i as u32));
    let mut nics = Vec::new();
    for (index, (_, nic)) in ordered.into_iter().enumerate() {
        let label = format!("NIC {index}");
        let mac = match nic.mac.as_deref().map(MacAddress::parse_nic) {
            Some(Ok(mac)) => Some(mac),
            Some(Err(e)) => {
                d.problem(format!("{label}: {e}"));
                None
            }
            None => {
                d.problem(format!("{label}: no MAC address in the payload"));
                None
            }
        };
        let vlan = nic
            .vlan()
            .map_err(|e| d.problem(format!("{label}: {e}")))
            .ok();
        if let (Some(mac), Some(vlan)) = (mac, vlan) {
            nics.push(NicPlan { index, mac, vlan });
        }
    }

    let vm = inv.payload.vm.as_ref();
    let cores = vm.and_then(|v| v.cpus).filter(|&c| c > 0);
    let memory_mib = vm.and_then(|v| v.memory_mib()).filter(|&m| m >= 16);
    if cores.is_none() {
        d.problem("the payload has no CPU count (cloudstack.vm.details.cpus)");
    }
    if memory_mib.is_none() {
        d.problem(
            "the payload has no usable memory size (cloudstack.vm.details.minRam, at least 16 MiB)",
        );
    }
    CreatePlan {
        source,
        cores: cores.unwrap_or(1),
        memory_mib: memory_mib.unwrap_or(512),
        bridge,
        nics,
    }
}

impl CreatePlan {
    /// The config every new VM gets: size, NICs and the ownership mark.
    fn config(&self, vm: &VmRef, existing_tags: Option<&str>) -> VmConfig {
        VmConfig {
            cores: self.cores,
            memory: self.memory_mib,
            tags: vm.mark().merge_into(existing_tags),
            nets: NetDevices(
                self.nics
                    .iter()
                    .map(|nic| (nic.index, nic.value(&self.bridge)))
                    .collect(),
            ),
        }
    }
}

/// The state of a `create` run, for rolling back what it made.
struct Progress {
    /// The VMID is ours: PVE accepted our create/clone request.
    created: bool,
    /// A task of ours that may still run.
    pending: Option<Upid>,
    /// The tags a clone got from its template, read before this run wrote its mark: a
    /// template made from a CloudStack VM passes that VM's mark on, and the rollback must
    /// recognise the clone by its name then, not refuse it as someone else's.
    inherited_tags: Option<Option<String>>,
}

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, plan) =
        vm_session(inv, |d| read_plan(d, inv)).context("cannot create the VM")?;
    crate::identity::check_vm_name(&vm.expected.proxmox_name).map_err(anyhow::Error::msg)?;

    let mut progress = Progress {
        created: false,
        pending: None,
        inherited_tags: None,
    };
    match build(&client, &vm, &plan, &mut progress) {
        Ok(built) => {
            let message = match built {
                Built::Created => "Instance created",
                Built::AlreadyThere => "Instance already created",
            };
            Ok(Response::success(message).with("proxmox_vmid", vm.vmid.to_string()))
        }
        Err(cause) if progress.created => Err(roll_back(&client, &vm, &progress, cause)),
        Err(cause) => Err(cause),
    }
}

fn build(
    client: &Client,
    vm: &VmRef,
    plan: &CreatePlan,
    progress: &mut Progress,
) -> anyhow::Result<Built> {
    let node = vm.node.as_str();
    let name = vm.expected.proxmox_name.as_str();
    match &plan.source {
        Source::Clone {
            template,
            full,
            storage,
        } => {
            let params = CloneVm {
                newid: vm.vmid,
                name: name.to_string(),
                full: *full,
                storage: storage.clone(),
            };
            let upid = match client.clone_vm(node, *template, &params) {
                Ok(upid) => upid,
                Err(e) => return refused(client, vm, e, Some(*template)),
            };
            progress.created = true;
            progress.pending = Some(upid.clone());
            let kind = if *full { "full" } else { "linked" };
            task::wait(
                client,
                &upid,
                &format!("{kind} clone of template {template} into VM {}", vm.vmid),
            )?;
            progress.pending = None;
            // Size, NICs and mark; NICs the template had beyond ours are removed.
            let current = client.vm_config(node, vm.vmid)?;
            let existing_tags = current.get("tags").and_then(|t| t.as_str());
            progress.inherited_tags = Some(existing_tags.map(str::to_string));
            let delete = current
                .keys()
                .filter(|k| {
                    k.strip_prefix("net")
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| !plan.nics.iter().any(|nic| nic.index == n))
                })
                .cloned()
                .collect();
            let update = UpdateConfig {
                config: plan.config(vm, existing_tags),
                delete,
            };
            if let Some(upid) = client.update_config(node, vm.vmid, &update)? {
                progress.pending = Some(upid.clone());
                task::wait(client, &upid, &format!("configuring VM {}", vm.vmid))?;
                progress.pending = None;
            }
        }
        Source::Iso {
            iso,
            os_type,
            disk_gb,
            storage,
        } => {
            let params = CreateVm {
                vmid: vm.vmid,
                name: name.to_string(),
                ostype: os_type.clone(),
                scsihw: "virtio-scsi-single",
                scsi0: format!("{storage}:{disk_gb},iothread=1"),
                ide2: format!("{iso},media=cdrom"),
                sockets: 1,
                config: plan.config(vm, None),
            };
            let upid = match client.create_vm(node, &params) {
                Ok(upid) => upid,
                Err(e) => return refused(client, vm, e, None),
            };
            progress.created = true;
            progress.pending = Some(upid.clone());
            task::wait(
                client,
                &upid,
                &format!("creating VM {} from {iso}", vm.vmid),
            )?;
            progress.pending = None;
        }
    }
    start_vm(client, node, vm.vmid)
        .with_context(|| format!("VM {} was created but did not start", vm.vmid))?;
    info!(
        "created and started VM {} ('{name}') on node {node}",
        vm.vmid
    );
    Ok(Built::Created)
}

/// How `create` ended well.
#[derive(Debug, PartialEq, Eq)]
enum Built {
    Created,
    /// An earlier run for this very VM (CloudStack retried) had already created it.
    AlreadyThere,
}

/// PVE refused to create the VM, so nothing was created and nothing is removed. When the
/// VMID is taken by this very VM (its mark names this CloudStack UUID: an earlier `create`
/// finished after CloudStack gave up on it), the VM is started and that is a success; any
/// other holder is someone else's deploy.
fn refused(
    client: &Client,
    vm: &VmRef,
    error: Error,
    template: Option<Vmid>,
) -> anyhow::Result<Built> {
    if error.is_vmid_taken() {
        if let Some(found) = vm.locate(client)?
            && vm.expected.carries_our_mark(found.status.tags.as_deref())
        {
            if !found.status.is_running() {
                start_vm(client, &found.node, vm.vmid)?;
            }
            info!("VM {} was already created for this CloudStack VM", vm.vmid);
            return Ok(Built::AlreadyThere);
        }
        anyhow::bail!(
            "Proxmox VMID {} is already taken ({error}): another deploy (another management server, or a VM made outside CloudStack) took it after prepare handed it out. Nothing was changed and nothing was deleted. Deploy the instance again: prepare hands out a new id. If this repeats, give each management server or zone deploying into this Proxmox cluster its own vmid_range",
            vm.vmid
        );
    }
    if let Some(template) = template.filter(|_| error.is_missing_vm()) {
        anyhow::bail!(
            "template {template} does not exist on node {} (check the template detail template_id); nothing was changed",
            vm.node
        );
    }
    Err(anyhow::Error::new(error).context(format!(
        "creating Proxmox VM {} failed; nothing was changed",
        vm.vmid
    )))
}

/// Removes the VM this run created, within the cleanup reserve, and says what happened.
fn roll_back(
    client: &Client,
    vm: &VmRef,
    progress: &Progress,
    cause: anyhow::Error,
) -> anyhow::Error {
    let cleanup = client.with_deadline(client.deadline().cleanup());
    let outcome = (|| -> anyhow::Result<String> {
        // A task of ours still holds the VM (a slow clone): let it end first.
        if let Some(upid) = &progress.pending
            && let Err(e) = task::wait(
                &cleanup,
                upid,
                &format!("the interrupted task of VM {}", vm.vmid),
            )
        {
            warn!("the interrupted task {upid} did not end well: {e}");
        }
        let Some(found) = vm.locate(&cleanup)? else {
            return Ok(format!("Proxmox VM {} is already gone", vm.vmid));
        };
        // Only what this run made, and still looks like it, is removed: it carries this
        // VM's mark, or (mark not written yet) this VM's name and what it got from the
        // template.
        let inherited = progress
            .inherited_tags
            .as_ref()
            .is_some_and(|tags| *tags == found.status.tags);
        if inherited {
            vm.expected
                .check(found.status.name.as_deref(), None)
                .map_err(|m| NotOurs {
                    vmid: vm.vmid,
                    node: found.node.clone(),
                    why: m.0,
                })?;
        } else {
            vm.check(&found)?;
        }
        if found.status.is_running() {
            stop_vm(&cleanup, &found.node, vm.vmid)?;
        }
        match cleanup
            .destroy_vm(&found.node, vm.vmid, &DESTROY)
            .and_then(|upid| task::wait(&cleanup, &upid, &format!("removing VM {}", vm.vmid)))
        {
            Ok(_) => Ok(format!(
                "removed Proxmox VM {} that this run had created",
                vm.vmid
            )),
            Err(e) if e.is_missing_vm() => Ok(format!("Proxmox VM {} is already gone", vm.vmid)),
            Err(e) => Err(e.into()),
        }
    })();
    match outcome {
        Ok(done) => {
            info!("rolled back: {done}");
            anyhow::anyhow!("{cause:#}; rolled back: {done}")
        }
        Err(e) => {
            warn!("rollback of VM {} failed: {e:#}", vm.vmid);
            anyhow::anyhow!(
                "{cause:#}; rolling back failed too ({e:#}): remove Proxmox VM {} on node {} by hand",
                vm.vmid,
                vm.node
            )
        }
    }
}

/// `delete`: stop if needed, then destroy with its disks and any HA/replication/backup-job
/// references. A VM that is already gone is a success.
pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let Some(found) = vm.find_ours(&client)? else {
        return Ok(Response::success("Instance already absent"));
    };
    if found.status.is_running() {
        stop_vm(&client, &found.node, vm.vmid)?;
    }
    let result = client
        .destroy_vm(&found.node, vm.vmid, &DESTROY)
        .and_then(|upid| task::wait(&client, &upid, &format!("deleting VM {}", vm.vmid)));
    match result {
        Ok(_) => Ok(Response::success("Instance deleted")),
        Err(e) if e.is_missing_vm() => Ok(Response::success("Instance already absent")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_values() {
        let mac: MacAddress = "02:01:00:cc:00:01".parse().unwrap();
        let tagged = NicPlan {
            index: 0,
            mac,
            vlan: Vlan::Tag(1577),
        };
        assert_eq!(
            tagged.value("vmbr1"),
            "virtio=02:01:00:CC:00:01,bridge=vmbr1,tag=1577,firewall=0"
        );
        let untagged = NicPlan {
            vlan: Vlan::Untagged,
            ..tagged
        };
        assert_eq!(
            untagged.value("vmbr1"),
            "virtio=02:01:00:CC:00:01,bridge=vmbr1,firewall=0"
        );
    }

    #[test]
    fn setting_parsers() {
        assert_eq!(parse_template_type("ISO"), Ok(true));
        assert_eq!(parse_template_type("Template"), Ok(false));
        assert!(parse_template_type("qcow2").is_err());
        assert!(parse_os_type("l26").is_ok());
        assert!(parse_os_type("linux").is_err());
        assert!(parse_storage("local-lvm").is_ok());
        assert!(parse_storage("local lvm").is_err());
        assert_eq!(parse_disk_size("64"), Ok(64));
        assert!(parse_disk_size("0").is_err());
        assert!(parse_disk_size("64G").is_err());
        assert!(parse_iso("local:iso/x.iso").is_ok());
        assert!(parse_iso("x.iso").is_err());
        assert!(parse_iso("local:iso/x.iso,media=disk").is_err());
    }
}
