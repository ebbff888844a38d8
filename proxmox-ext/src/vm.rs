//! The VM an action is about: its Proxmox id, where it lives, and whether it is ours.
//!
//! Every VM action goes through [`VmRef::find_ours`] (or [`VmRef::require_usable`]) before it
//! changes anything, and through [`VmRef::adopt`] once it succeeded, so the rules for finding
//! a VM, refusing one that is not CloudStack's and marking one made before marks existed live
//! in one place.
//!
//! A VM is looked for on the host's configured node first (one request, the common case).
//! When that node does not have it — Proxmox HA or an operator moved it — or cannot be
//! reached, the VM is looked up cluster-wide by its VMID (`/cluster/resources`), its mark is
//! checked, and the action goes to the node that runs it.

use log::{debug, info, warn};

use crate::api::Client;
use crate::api::params::SetTags;
use crate::error::Error;
use crate::identity::{Expected, Mark, Ownership};
use crate::model::{ClusterVm, VmStatus, Vmid};

/// A VM as CloudStack knows it.
#[derive(Debug, Clone)]
pub struct VmRef {
    pub vmid: Vmid,
    /// The node the host is configured with.
    pub node: String,
    pub expected: Expected,
}

/// A VM found in the cluster.
#[derive(Debug, Clone)]
pub struct Located {
    /// The node that has it now (not always the configured one).
    pub node: String,
    pub status: VmStatus,
    /// Set by [`VmRef::find_ours`]: how the VM was recognised as this CloudStack VM.
    pub ownership: Option<Ownership>,
}

/// The VM is this CloudStack VM's, but `create` never finished it; nothing was changed.
#[derive(Debug)]
pub struct HalfMadeVm {
    pub vmid: Vmid,
    pub node: String,
    /// The `create` run that began making it.
    pub run: String,
}

impl std::fmt::Display for HalfMadeVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Proxmox VM {} on node {} is not a usable instance: create (run {}) began making it and never finished (it may lack its NICs and size), so nothing was changed. Deploying the instance again finishes it; deleting (expunging) the instance removes it",
            self.vmid, self.node, self.run
        )
    }
}

impl std::error::Error for HalfMadeVm {}

impl Located {
    /// The `create` run that left this VM half-made, if it is (see [`VmRef::find_ours`]).
    pub fn half_made_by(&self) -> Option<&str> {
        match &self.ownership {
            Some(Ownership::HalfMade { run }) => Some(run),
            _ => None,
        }
    }
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

impl VmRef {
    /// Where the VM is, or `None` when the cluster has no VM with this id.
    pub fn locate(&self, client: &Client) -> Result<Option<Located>, Error> {
        let unreachable = match client.vm_status(&self.node, self.vmid) {
            Ok(status) => return Ok(Some(self.located(&self.node, status))),
            Err(e) if e.is_missing_vm() => {
                debug!(
                    "VM {} is not on node {}; looking for it in the cluster",
                    self.vmid, self.node
                );
                None
            }
            Err(e) if e.is_node_unreachable() => {
                warn!(
                    "node {} cannot be reached ({e}); looking for VM {} in the cluster",
                    self.node, self.vmid
                );
                Some(e)
            }
            Err(e) => return Err(e),
        };
        let cluster = match client.cluster_vms() {
            Ok(cluster) => cluster,
            // The node's own error says more than the cluster's.
            Err(e) => return Err(unreachable.unwrap_or(e)),
        };
        let here = cluster
            .iter()
            .find(|vm| vm.vmid == Some(u64::from(self.vmid.get())) && vm.is_qemu());
        let Some(node) = here.and_then(|vm| vm.node.as_deref()) else {
            self.note_marked_elsewhere(&cluster);
            return match unreachable {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        if node == self.node {
            // Still registered on the unreachable node (HA has not recovered it yet).
            return match unreachable {
                Some(e) => Err(e),
                None => Ok(None), // gone between the two requests
            };
        }
        match client.vm_status(node, self.vmid) {
            Ok(status) => {
                info!(
                    "VM {} runs on node {}, not on the host's node {}; acting there",
                    self.vmid, node, self.node
                );
                Ok(Some(self.located(node, status)))
            }
            Err(e) if e.is_missing_vm() => Ok(None), // moving again, or gone
            Err(e) => Err(e),
        }
    }

    fn located(&self, node: &str, status: VmStatus) -> Located {
        Located {
            node: node.to_string(),
            status,
            ownership: None,
        }
    }

    /// When the VMID is nowhere, a VM carrying this VM's mark under another VMID (restored
    /// from a backup, say) is worth telling the operator about; it is never acted on.
    fn note_marked_elsewhere(&self, cluster: &[ClusterVm]) {
        for vm in cluster {
            if self.expected.carries_our_mark(vm.tags.as_deref()) {
                warn!(
                    "VM {} does not exist, but Proxmox VM {} on node {} carries this CloudStack VM's mark; if it is this VM, set the instance detail proxmox_vmid to {}",
                    self.vmid,
                    vm.vmid.unwrap_or_default(),
                    vm.node.as_deref().unwrap_or("?"),
                    vm.vmid.unwrap_or_default()
                );
            }
        }
    }

    /// The VM if it exists and is this CloudStack VM (finished, unmarked or half-made); an
    /// error if a different VM holds the id.
    pub fn find_ours(&self, client: &Client) -> anyhow::Result<Option<Located>> {
        let Some(mut found) = self.locate(client)? else {
            return Ok(None);
        };
        found.ownership = Some(self.identify(client, &found)?);
        Ok(Some(found))
    }

    /// How `found` is this CloudStack VM, or why it is not. Its tags usually tell; when they
    /// do not (no mark, or another VM's mark, as a clone inherits from its template), its
    /// description is read too: a clone `create` has not configured yet carries the marked
    /// mark only there.
    pub fn identify(&self, client: &Client, found: &Located) -> anyhow::Result<Ownership> {
        let tags = found.status.tags.as_deref();
        if let Some(run) = self.expected.half_made_by(self.vmid, Mark::from_tags(tags)) {
            return Ok(Ownership::HalfMade { run });
        }
        let by_tags = self.check(found);
        if matches!(by_tags, Ok(Ownership::Marked)) {
            return Ok(Ownership::Marked);
        }
        let config = client.vm_config(&found.node, self.vmid)?;
        let description = config.get("description").and_then(|d| d.as_str());
        if let Some(run) = self
            .expected
            .half_made_by(self.vmid, Mark::from_description(description))
        {
            return Ok(Ownership::HalfMade { run });
        }
        Ok(by_tags?)
    }

    /// Refuses a VM that is not this CloudStack VM.
    pub fn check(&self, found: &Located) -> Result<Ownership, NotOurs> {
        self.expected
            .check(found.status.name.as_deref(), found.status.tags.as_deref())
            .map_err(|m| NotOurs {
                vmid: self.vmid,
                node: found.node.clone(),
                why: m.0,
            })
    }

    /// Like [`VmRef::find_ours`], but a missing VM is an error, and so is a half-made one:
    /// what every action that uses the VM as an instance (powers it, snapshots it, opens its
    /// console) calls first.
    pub fn require_usable(&self, client: &Client) -> anyhow::Result<Located> {
        let found = self.find_ours(client)?.ok_or_else(|| {
            anyhow::anyhow!(
                "Proxmox VM {} ('{}') does not exist on node {} or elsewhere in its cluster",
                self.vmid,
                self.expected.proxmox_name,
                self.node
            )
        })?;
        if let Some(run) = found.half_made_by() {
            return Err(HalfMadeVm {
                vmid: self.vmid,
                node: found.node.clone(),
                run: run.to_string(),
            }
            .into());
        }
        Ok(found)
    }

    /// Called once an action on `found` succeeded: a VM recognised by its name alone (made
    /// before marks existed) gets this VM's mark, beside any tags it has. A failure is only
    /// logged, since the action itself succeeded; the next action tries again.
    pub fn adopt(&self, client: &Client, found: &Located) {
        if found.ownership == Some(Ownership::Unmarked) {
            self.put_mark(client, &found.node, found.status.tags.as_deref());
        }
    }

    /// Marks the VM again when its current tags lack the mark (a snapshot rollback restores
    /// the tags of the snapshot's time, which may predate the mark).
    pub fn keep_marked(&self, client: &Client, node: &str, tags: Option<&str>) {
        if self.expected.check(None, tags) != Ok(Ownership::Marked) {
            self.put_mark(client, node, tags);
        }
    }

    fn put_mark(&self, client: &Client, node: &str, tags: Option<&str>) {
        let tags = self.mark().merge_into(tags);
        match client.set_tags(node, self.vmid, &SetTags { tags: tags.clone() }) {
            Ok(()) => info!(
                "adopted VM {} ('{}'): it now carries the CloudStack mark ({tags})",
                self.vmid, self.expected.proxmox_name
            ),
            Err(e) => warn!(
                "could not mark VM {} as CloudStack VM {} ({e}); it is still recognised by its name, the next action tries again",
                self.vmid, self.expected.instance_name
            ),
        }
    }

    /// The mark this VM carries or gets.
    pub fn mark(&self) -> Mark {
        self.expected.mark(self.vmid)
    }
}
