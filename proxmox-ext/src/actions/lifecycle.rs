//! `prepare` (VMID) and `delete`; `create` is [`super::create`].
//!
//! `prepare` hands out a VMID through [`crate::allocation`]: confirmed free by
//! Proxmox and recorded in the management server's ledger, so concurrent deploys never get
//! the same one.

use std::collections::BTreeMap;

use anyhow::Context;
use ext_sdk::{Invocation, PreparePatch, Response};
use log::info;

use super::power::stop_vm;
use super::{DESTROY, vm_session};
use crate::allocation;
use crate::api::connect;
use crate::running;
use crate::settings::Prepare;
use crate::state;
use crate::task;

/// `prepare`: a VMID no concurrent deploy holds, returned as the VM detail `proxmox_vmid`.
pub fn prepare(inv: &Invocation) -> anyhow::Result<Response> {
    let settings = inv.payload.read(Prepare::read)?;
    let state_dir = state::resolve(settings.state_dir)?;
    let client = connect(&settings.conn, inv.deadline)?;
    let vmid = allocation::allocate(&client, &state_dir, settings.vmid_range)
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

/// `delete`: stop if needed, then destroy with its disks and any HA/replication/backup-job
/// references. A VM that is already gone is a success. A VM `create` never finished (what
/// CloudStack expunges after a failed deploy) goes too: tasks of ours still at work on it (a
/// start, a clone whose answer was lost) are stopped first, or the destroy would wait for
/// their lock.
pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let Some(mut found) = vm.find_ours(&client)? else {
        return Ok(Response::success("Instance already absent"));
    };
    if found.half_made_by().is_some() {
        let tasks = running::on_vm(&client, &found.node, vm.vmid)?;
        for upid in &tasks {
            running::stop(&client, upid, &format!("a task of VM {}", vm.vmid))?;
        }
        if !tasks.is_empty() {
            // A stopped clone takes its VM with it.
            let Some(now) = vm.locate(&client)? else {
                return Ok(Response::success("Instance deleted"));
            };
            found.status = now.status;
        }
    }
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
