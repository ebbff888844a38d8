//! The custom actions `ListSnapshots`, `CreateSnapshot`, `RestoreSnapshot` and
//! `DeleteSnapshot`, with upstream's parameter names (see [`crate::settings::NewSnapshot`]).

use anyhow::Context;
use ext_sdk::{Invocation, Response};
use serde_json::json;

use super::power::start_vm;
use super::vm_session;
use crate::api::Client;
use crate::api::params::CreateSnapshot;
use crate::error::Error;
use crate::model::Vmid;
use crate::settings::{NewSnapshot, snapshot_name};
use crate::task;
use crate::time::iso8601_utc;
use crate::upid::Upid;

/// The VM's snapshots, oldest first, without PVE's `current` pseudo-entry; times in ISO 8601
/// UTC.
pub fn list(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    let mut snapshots: Vec<_> = client
        .snapshots(&found.node, vm.vmid)?
        .into_iter()
        .filter(|s| s.name.as_deref().is_some_and(|n| n != "current"))
        .collect();
    snapshots.sort_by_key(|s| s.snaptime.unwrap_or(0));
    let rows = snapshots
        .into_iter()
        .map(|s| {
            json!({
                "name": s.name.unwrap_or_default(),
                "snaptime": s.snaptime.map(iso8601_utc).unwrap_or_default(),
                "description": s.description.unwrap_or_default().trim(),
                "parent": s.parent.unwrap_or_default(),
                "vmstate": s.vmstate.unwrap_or(false),
            })
        })
        .collect();
    vm.adopt(&client, &found);
    Ok(Response::table(rows))
}

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, snapshot) = vm_session(inv, NewSnapshot::read)?;
    let NewSnapshot {
        name,
        description,
        save_memory,
    } = snapshot;
    let found = vm.require_usable(&client)?;
    // RAM can only be saved from a running VM.
    let with_memory = save_memory && found.status.is_running();
    let params = CreateSnapshot {
        snapname: name.clone(),
        description,
        vmstate: with_memory,
    };
    let upid = client.create_snapshot(&found.node, vm.vmid, &params)?;
    wait_for(&client, &upid, "creating", &name, vm.vmid)?;
    vm.adopt(&client, &found);
    let note = if save_memory && !with_memory {
        " (without memory: the VM is not running)"
    } else {
        ""
    };
    Ok(Response::success(format!(
        "Instance Snapshot '{name}' created{note}"
    )))
}

/// Rolls back; a VM that was running before is running after (PVE leaves it stopped unless
/// the snapshot holds RAM).
pub fn restore(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, name) = vm_session(inv, snapshot_name)?;
    let found = vm.require_usable(&client)?;
    let upid = client.rollback_snapshot(&found.node, vm.vmid, &name)?;
    wait_for(&client, &upid, "restoring", &name, vm.vmid)?;
    // The rollback also restored the tags of the snapshot's time, which may lack the mark.
    let after = client.vm_status(&found.node, vm.vmid)?;
    vm.keep_marked(&client, &found.node, after.tags.as_deref());
    if found.status.is_running() && !after.is_running() {
        // The rollback itself succeeded: a failure now must not read as a failed restore.
        start_vm(&client, &found.node, vm.vmid).with_context(|| {
            format!(
                "Instance Snapshot '{name}' was restored, but starting Proxmox VM {} again failed, so it is now stopped (start the instance once the cause is fixed)",
                vm.vmid
            )
        })?;
        return Ok(Response::success(format!(
            "Instance Snapshot '{name}' restored and the instance started again"
        )));
    }
    Ok(Response::success(format!(
        "Instance Snapshot '{name}' restored"
    )))
}

pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, name) = vm_session(inv, snapshot_name)?;
    let found = vm.require_usable(&client)?;
    let upid = client.delete_snapshot(&found.node, vm.vmid, &name)?;
    wait_for(&client, &upid, "deleting", &name, vm.vmid)?;
    vm.adopt(&client, &found);
    Ok(Response::success(format!(
        "Instance Snapshot '{name}' deleted"
    )))
}

/// Waits for a snapshot task; `doing` ("deleting") names it in errors.
fn wait_for(
    client: &Client,
    upid: &Upid,
    doing: &str,
    name: &str,
    vmid: Vmid,
) -> Result<(), Error> {
    task::wait(
        client,
        upid,
        &format!("{doing} snapshot '{name}' of VM {vmid}"),
    )
    .map(drop)
}
