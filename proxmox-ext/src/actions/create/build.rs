//! The requests that make the VM: clone (then configure) or create from an ISO, then start.
//! What each one made is recorded in [`Progress`] as soon as PVE has answered it, so a
//! failure at any later point knows what to roll back.

use anyhow::Context;
use log::info;

use super::plan::CreatePlan;
use super::rollback::Progress;
use crate::actions::power::start_vm;
use crate::api::Client;
use crate::error::Error;
use crate::model::Vmid;
use crate::settings::Source;
use crate::task;
use crate::vm::VmRef;

/// How `create` ended well.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Built {
    Created,
    /// An earlier run for this very VM (CloudStack retried) had already created it.
    AlreadyThere,
}

pub(super) fn build(
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
            let params = plan.clone_params(vm, *full, storage.as_deref());
            let upid = match client.clone_vm(node, *template, &params) {
                Ok(upid) => upid,
                Err(e) => return refused(client, vm, e, Some(*template)),
            };
            progress.made(&upid);
            let kind = if *full { "full" } else { "linked" };
            task::wait(
                client,
                &upid,
                &format!("{kind} clone of template {template} into VM {}", vm.vmid),
            )?;
            progress.task_ended();
            // Size, NICs and mark; NICs the template had beyond ours are removed.
            let current = client.vm_config(node, vm.vmid)?;
            progress.inherited(current.get("tags").and_then(|t| t.as_str()));
            if let Some(upid) =
                client.update_config(node, vm.vmid, &plan.clone_config(vm, &current))?
            {
                progress.waiting_for(&upid);
                task::wait(client, &upid, &format!("configuring VM {}", vm.vmid))?;
                progress.task_ended();
            }
        }
        Source::Iso {
            iso,
            os_type,
            disk_gb,
            storage,
        } => {
            let params = plan.iso_params(vm, iso, os_type, *disk_gb, storage);
            let upid = match client.create_vm(node, &params) {
                Ok(upid) => upid,
                Err(e) => return refused(client, vm, e, None),
            };
            progress.made(&upid);
            task::wait(
                client,
                &upid,
                &format!("creating VM {} from {iso}", vm.vmid),
            )?;
            progress.task_ended();
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

/// The create or clone request failed, so this run made nothing and removes nothing. When
/// the VMID is taken by this very VM (its mark names this CloudStack UUID: an earlier
/// `create` finished after CloudStack gave up on it), the VM is started and that is a
/// success; any other holder is someone else's deploy.
///
/// "Made nothing" holds when PVE refused, or when the request never left (an error that was
/// "never sent"). A request that was sent and lost its answer ("maybe sent") may have made
/// the VM after all; that case is treated like a refusal for now, and is where recognising a
/// VM PVE made without telling us would start.
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
