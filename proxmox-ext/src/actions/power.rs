//! `start`, `stop`, `reboot` and the custom actions `Suspend` and `Resume`.
//!
//! Each looks the VM up and checks it is this CloudStack VM before sending anything, and
//! treats "already in the wanted state" as success: `start` of a running VM, `stop` of a
//! stopped or vanished one.

use std::time::Duration;

use anyhow::Context;
use ext_sdk::{Invocation, Response};
use log::{info, warn};

use super::vm_session;
use crate::api::Client;
use crate::api::params::{Reboot, Shutdown};
use crate::error::{Error, PveSays};
use crate::model::Vmid;
use crate::task;
use crate::upid::Upid;

/// Time a guest gets to shut down on ACPI before Proxmox stops it hard.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// Below this much time left, stop hard right away.
const MIN_GRACEFUL: Duration = Duration::from_secs(15);

/// Starts the VM; a task that finds it already running is a success.
pub(crate) fn start_vm(client: &Client, node: &str, vmid: Vmid) -> Result<(), Error> {
    start_vm_then(client, node, vmid, |_| {})
}

/// [`start_vm`], telling `started` the start task's id before waiting for it (so a caller
/// can stop the task when it runs out of time).
pub(crate) fn start_vm_then(
    client: &Client,
    node: &str,
    vmid: Vmid,
    started: impl FnOnce(&Upid),
) -> Result<(), Error> {
    let what = format!("starting VM {vmid}");
    let upid = client.start(node, vmid)?;
    started(&upid);
    match task::wait(client, &upid, &what) {
        Ok(_) => Ok(()),
        Err(e) if e.task_says() == Some(PveSays::AlreadyRunning) => {
            info!("VM {vmid} was already running");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Resumes a paused VM.
fn resume_vm(client: &Client, node: &str, vmid: Vmid) -> Result<(), Error> {
    let upid = client.resume(node, vmid)?;
    task::wait(client, &upid, &format!("resuming VM {vmid}")).map(drop)
}

/// Stops the VM hard; a VM that vanished meanwhile counts as stopped.
pub(crate) fn stop_vm(client: &Client, node: &str, vmid: Vmid) -> Result<(), Error> {
    let what = format!("stopping VM {vmid}");
    let result = client
        .stop(node, vmid)
        .and_then(|upid| task::wait(client, &upid, &what));
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_missing_vm() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Seconds the guest may take to react to ACPI, leaving time to spare before the deadline.
fn grace_secs(client: &Client) -> Option<u64> {
    let left = client.deadline().remaining();
    (left >= MIN_GRACEFUL).then(|| SHUTDOWN_GRACE.min(left / 2).as_secs().max(5))
}

pub fn start(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    let message = if found.status.is_paused() {
        resume_vm(&client, &found.node, vm.vmid)?;
        "Instance started (resumed from pause)"
    } else if found.status.is_running() {
        "Instance already running"
    } else {
        start_vm(&client, &found.node, vm.vmid)?;
        "Instance started"
    };
    vm.adopt(&client, &found);
    Ok(Response::success(message))
}

/// A graceful stop: ACPI shutdown, forced off when the guest does not react in time (what
/// CloudStack's stop does on KVM); a hard stop when little time is left.
pub fn stop(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let Some(found) = vm.find_ours(&client)? else {
        return Ok(Response::success("Instance already absent"));
    };
    if let Some(run) = found.half_made_by() {
        // Not a usable instance: powered off (CloudStack stops a deploy that failed), never
        // adopted, and left for a retried create or delete.
        if found.status.is_running() {
            stop_vm(&client, &found.node, vm.vmid)?;
        }
        return Ok(Response::success(format!(
            "Instance stopped: Proxmox VM {} is not a usable instance (create run {run} began making it and never finished); deploying the instance again finishes it, deleting it removes it",
            vm.vmid
        )));
    }
    if !found.status.is_running() {
        vm.adopt(&client, &found);
        return Ok(Response::success("Instance already stopped"));
    }
    match grace_secs(&client) {
        Some(secs) => {
            let what = format!("shutting VM {} down", vm.vmid);
            let shutdown = Shutdown {
                force_stop: true,
                timeout: secs,
            };
            let result = client
                .shutdown(&found.node, vm.vmid, &shutdown)
                .and_then(|upid| task::wait(&client, &upid, &what));
            match result {
                Ok(_) => {}
                Err(e) if e.is_missing_vm() => {
                    return Ok(Response::success("Instance already absent"));
                }
                Err(e) if e.pve_says() == Some(PveSays::NotRunning) => {}
                Err(e) => return Err(e.into()),
            }
        }
        None => stop_vm(&client, &found.node, vm.vmid)?,
    }
    vm.adopt(&client, &found);
    Ok(Response::success("Instance stopped"))
}

/// Reboots through ACPI; a guest that ignores it is reset. A stopped VM is started.
pub fn reboot(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    if !found.status.is_running() {
        start_vm(&client, &found.node, vm.vmid)?;
        vm.adopt(&client, &found);
        return Ok(Response::success("Instance was stopped; started it"));
    }
    let what = format!("rebooting VM {}", vm.vmid);
    let reboot = Reboot {
        timeout: grace_secs(&client),
    };
    let result = client
        .reboot(&found.node, vm.vmid, &reboot)
        .and_then(|upid| task::wait(&client, &upid, &what));
    let rebooted = match result {
        Ok(_) => Response::success("Instance rebooted"),
        // Another task held the VM's lock all the time PVE waited for it: the guest was not
        // asked anything, so it is not reset either.
        Err(e) if e.pve_says() == Some(PveSays::LockTimeout) => {
            return Err(anyhow::Error::new(e).context(format!(
                "VM {} was not rebooted: another task holds its lock (nothing was reset; reboot again once that task ended)",
                vm.vmid
            )));
        }
        // The guest did not react to ACPI in time: it is reset.
        Err(e) if e.task_says() == Some(PveSays::PowerdownTimeout) => {
            warn!(
                "VM {} ignored the ACPI reboot ({}); resetting it",
                vm.vmid,
                e.pve_text()
            );
            let upid = client
                .reset(&found.node, vm.vmid)
                .context("the guest ignored the ACPI reboot request, and resetting it failed")?;
            task::wait(&client, &upid, &format!("resetting VM {}", vm.vmid))?;
            Response::success(
                "Instance rebooted by a hard reset (the guest ignored the ACPI reboot request)",
            )
        }
        Err(e) => return Err(e.into()),
    };
    vm.adopt(&client, &found);
    Ok(rebooted)
}

/// Pauses the VM in memory.
pub fn suspend(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    if found.status.is_paused() {
        vm.adopt(&client, &found);
        return Ok(Response::success("Instance already suspended"));
    }
    if !found.status.is_running() {
        anyhow::bail!("cannot suspend Proxmox VM {}: it is not running", vm.vmid);
    }
    let upid = client.suspend(&found.node, vm.vmid)?;
    task::wait(&client, &upid, &format!("suspending VM {}", vm.vmid))?;
    vm.adopt(&client, &found);
    Ok(Response::success("Instance suspended"))
}

/// Resumes a paused VM (or one hibernated to disk).
pub fn resume(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_usable(&client)?;
    let message = if found.status.is_paused() {
        resume_vm(&client, &found.node, vm.vmid)?;
        Some("Instance resumed")
    } else if found.status.is_running() {
        Some("Instance is not suspended; it is running")
    } else if found.status.lock.as_deref() == Some("suspended") {
        start_vm(&client, &found.node, vm.vmid)?;
        Some("Instance resumed from its hibernation state")
    } else {
        None
    };
    if let Some(message) = message {
        vm.adopt(&client, &found);
        return Ok(Response::success(message));
    }
    anyhow::bail!(
        "cannot resume Proxmox VM {}: it is stopped, not suspended (use start)",
        vm.vmid
    )
}
