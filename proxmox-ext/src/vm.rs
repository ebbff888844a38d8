//! The VM an action is about: its Proxmox id, where it lives, and whether it is ours.
//!
//! Every VM action goes through [`VmRef::locate`] and [`VmRef::find_ours`] before it changes
//! anything, so the rules for finding a VM and for refusing one that is not CloudStack's live
//! in one place.

use ext_sdk::{DetailReader, Payload};
use log::debug;

use crate::api::Client;
use crate::error::Error;
use crate::identity::{Expected, check_vm_name};
use crate::model::{VmStatus, Vmid};
use crate::settings::{PROXMOX_VMID, VM_NAME};
use crate::transport::Transport;

/// A VM as CloudStack knows it.
#[derive(Debug, Clone)]
pub struct VmRef {
    pub vmid: Vmid,
    /// The node the host is configured with.
    pub node: String,
    pub expected: Expected,
}

/// A VM found on a node.
#[derive(Debug, Clone)]
pub struct Located {
    pub node: String,
    pub status: VmStatus,
}

/// A VM that is not CloudStack's sits on the id; nothing was changed.
#[derive(Debug)]
pub struct NotOurs {
    pub vmid: Vmid,
    pub node: String,
    pub why: String,
}

impl std::fmt::Display for NotOurs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing to touch Proxmox VM {} on node {}: {}; it does not look like this CloudStack VM, so nothing was changed (check the instance detail proxmox_vmid)",
            self.vmid, self.node, self.why
        )
    }
}

impl std::error::Error for NotOurs {}

/// Reads `proxmox_vmid`; an empty or non-numeric id is recorded as a problem.
pub fn read_vmid(d: &mut DetailReader<'_>) -> Option<Vmid> {
    let vmid: Option<Vmid> = d.required_with(&PROXMOX_VMID, |s| s.parse::<Vmid>().map(Some));
    vmid
}

/// CloudStack's identity of the payload's VM; `vm_name` must be a valid Proxmox name.
pub fn read_expected(d: &mut DetailReader<'_>, payload: &Payload) -> anyhow::Result<Expected> {
    let instance_name = payload.vm_name().map(str::to_string).ok_or_else(|| {
        anyhow::anyhow!("the payload names no VM (virtualmachinename and cloudstack.vm.details.name are missing)")
    })?;
    let proxmox_name: String = d
        .optional_with(&VM_NAME, |s| check_vm_name(s).map(|()| s.to_string()))
        .unwrap_or_else(|| instance_name.clone());
    Ok(Expected {
        instance_name,
        uuid: payload.vm_uuid().map(str::to_string),
        proxmox_name,
    })
}

impl VmRef {
    /// Where the VM is, or `None` when the node has no VM with this id.
    pub fn locate<T: Transport>(&self, client: &Client<T>) -> Result<Option<Located>, Error> {
        match client.vm_status(&self.node, self.vmid) {
            Ok(status) => Ok(Some(Located {
                node: self.node.clone(),
                status,
            })),
            Err(e) if e.is_missing_vm() => {
                debug!("VM {} does not exist on node {}", self.vmid, self.node);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The VM if it exists and is this CloudStack VM; an error if a different VM holds the id.
    pub fn find_ours<T: Transport>(&self, client: &Client<T>) -> anyhow::Result<Option<Located>> {
        let Some(found) = self.locate(client)? else {
            return Ok(None);
        };
        self.check(&found)?;
        Ok(Some(found))
    }

    /// Refuses a VM that is not this CloudStack VM.
    pub fn check(&self, found: &Located) -> Result<(), NotOurs> {
        self.expected
            .check(found.status.name.as_deref(), found.status.tags.as_deref())
            .map_err(|m| NotOurs {
                vmid: self.vmid,
                node: found.node.clone(),
                why: m.0,
            })
    }

    /// Like [`VmRef::find_ours`], but a missing VM is an error.
    pub fn require_ours<T: Transport>(&self, client: &Client<T>) -> anyhow::Result<Located> {
        self.find_ours(client)?.ok_or_else(|| {
            anyhow::anyhow!(
                "Proxmox VM {} ('{}') does not exist on node {}",
                self.vmid,
                self.expected.proxmox_name,
                self.node
            )
        })
    }
}
