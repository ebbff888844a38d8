//! The custom actions `ListSnapshots`, `CreateSnapshot`, `RestoreSnapshot` and
//! `DeleteSnapshot`, with upstream's parameter names (`snap_name`, `snap_description`,
//! `snap_save_memory`).

use ext_sdk::{Invocation, Response};
use serde_json::json;

use super::power::start_vm;
use super::vm_session;
use crate::api::params::CreateSnapshot;
use crate::settings::{SNAP_DESCRIPTION, SNAP_NAME, SNAP_SAVE_MEMORY};
use crate::task;
use crate::time::iso8601_utc;

/// PVE's `pve-configid` (letter first, then letters, digits, '-' or '_'; at most 40), minus
/// its reserved names.
fn parse_snapshot_name(name: &str) -> Result<String, String> {
    let valid = name.len() >= 2
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(
            "a snapshot name has 2 to 40 letters, digits, '-' or '_', and starts with a letter"
                .into(),
        );
    }
    if name.eq_ignore_ascii_case("current") || name.eq_ignore_ascii_case("pending") {
        return Err(format!("'{name}' is reserved by Proxmox"));
    }
    Ok(name.to_string())
}

/// The VM's snapshots, oldest first, without PVE's `current` pseudo-entry; times in ISO 8601
/// UTC.
pub fn list(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    let found = vm.require_ours(&client)?;
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
    let (client, vm, (name, description, save_memory)) = vm_session(inv, |d| {
        let name: String = d.required_with(&SNAP_NAME, parse_snapshot_name);
        let description: Option<String> = d.optional(&SNAP_DESCRIPTION);
        let save_memory: Option<bool> = d.optional(&SNAP_SAVE_MEMORY);
        (name, description, save_memory.unwrap_or(false))
    })?;
    let found = vm.require_ours(&client)?;
    // RAM can only be saved from a running VM.
    let with_memory = save_memory && found.status.is_running();
    let params = CreateSnapshot {
        snapname: name.clone(),
        description,
        vmstate: with_memory,
    };
    let upid = client.create_snapshot(&found.node, vm.vmid, &params)?;
    task::wait(
        &client,
        &upid,
        &format!("creating snapshot '{name}' of VM {}", vm.vmid),
    )?;
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
    let (client, vm, name) = vm_session(inv, |d| {
        d.required_with::<String>(&SNAP_NAME, parse_snapshot_name)
    })?;
    let found = vm.require_ours(&client)?;
    let upid = client.rollback_snapshot(&found.node, vm.vmid, &name)?;
    task::wait(
        &client,
        &upid,
        &format!("restoring snapshot '{name}' of VM {}", vm.vmid),
    )?;
    // The rollback also restored the tags of the snapshot's time, which may lack the mark.
    let after = client.vm_status(&found.node, vm.vmid)?;
    vm.keep_marked(&client, &found.node, after.tags.as_deref());
    if found.status.is_running() && !after.is_running() {
        start_vm(&client, &found.node, vm.vmid)?;
        return Ok(Response::success(format!(
            "Instance Snapshot '{name}' restored and the instance started again"
        )));
    }
    Ok(Response::success(format!(
        "Instance Snapshot '{name}' restored"
    )))
}

pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, name) = vm_session(inv, |d| {
        d.required_with::<String>(&SNAP_NAME, parse_snapshot_name)
    })?;
    let found = vm.require_ours(&client)?;
    let upid = client.delete_snapshot(&found.node, vm.vmid, &name)?;
    task::wait(
        &client,
        &upid,
        &format!("deleting snapshot '{name}' of VM {}", vm.vmid),
    )?;
    vm.adopt(&client, &found);
    Ok(Response::success(format!(
        "Instance Snapshot '{name}' deleted"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        assert!(parse_snapshot_name("before-upgrade").is_ok());
        assert!(parse_snapshot_name("s_1").is_ok());
        for bad in [
            "",
            "a",
            "1abc",
            "bad.name",
            "with space",
            "current",
            "Pending",
            &"x".repeat(41),
        ] {
            assert!(parse_snapshot_name(bad).is_err(), "{bad}");
        }
    }
}
