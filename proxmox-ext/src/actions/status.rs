//! `status` (one VM) and `statuses` (every CloudStack VM on the host's node, in one request).
//!
//! What "gone" means, the rule both extensions follow (docs/reliability.md):
//! - a VM that provably does not exist (not on the host's node, not in the cluster's
//!   resources) is gone: `status` answers `poweroff` (CloudStack marks the instance Stopped),
//!   `statuses` leaves it out (CloudStack treats a VM missing from the report as powered off);
//! - a VM that cannot be checked (the node or the cluster cannot be asked, the token is
//!   refused, a lookup fails) is unknown: both fail, and CloudStack keeps the state it had
//!   (`status` failing is PowerUnknown; `statuses` failing makes it ask `status`);
//! - a VM that exists but is not this instance's (another UUID's mark, a foreign VM) is never
//!   reported as its state: `status` refuses saying whose it is, `statuses` leaves it out;
//! - a VM `create` began and never finished (it still carries `cs-creating`) is not a usable
//!   instance: `status` answers `poweroff` and says so, `statuses` leaves it out.

use std::collections::BTreeMap;

use ext_sdk::{Invocation, MAX_OUTPUT_BYTES, PowerState, Response};
use log::{debug, warn};

use super::vm_session;
use crate::api::connect;
use crate::error::Error;
use crate::identity::{Mark, looks_like_instance_name};
use crate::model::NodeVm;
use crate::node;
use crate::settings::Connection;

/// CloudStack's power state for PVE's `status`.
pub(crate) fn power_state(status: Option<&str>) -> PowerState {
    match status {
        Some("running") => PowerState::On,
        Some("stopped") => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

pub fn status(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, ()) = vm_session(inv, |_| ())?;
    // A wrong node is an error, never a VM's state: checked when the VM was found nowhere or
    // the node's answer was an error (a found VM costs no request).
    let found = match vm.find_ours(&client) {
        Ok(Some(found)) => Some(found),
        Ok(None) => {
            node::require_member(&client, &vm.node)?;
            None
        }
        Err(e) => {
            return Err(match e.downcast::<Error>() {
                Ok(e) => node::explain(&client, &vm.node, e),
                Err(e) => e,
            });
        }
    };
    match found {
        Some(found) => {
            if let Some(run) = found.half_made_by() {
                return Ok(Response::power(PowerState::Off).with(
                    "message",
                    format!(
                        "Proxmox VM {} is not a usable instance: create (run {run}) began making it and never finished; deploying the instance again finishes it, deleting it removes it",
                        vm.vmid
                    ),
                ));
            }
            vm.adopt(&client, &found);
            Ok(Response::power(power_state(found.status.status.as_deref())))
        }
        None => Ok(Response::power(PowerState::Off).with(
            "message",
            format!(
                "Proxmox VM {} does not exist on node {} or elsewhere in its cluster: it is gone",
                vm.vmid, vm.node
            ),
        )),
    }
}

/// Every CloudStack VM on the host's node, whichever node CloudStack last knew it on (a VM
/// HA or an operator moved here is reported here, which tells CloudStack where it went).
///
/// Keys are CloudStack instance names, read from the ownership mark, which survives a
/// `vm_name` rename. A VM without a mark counts only when its name has the shape of an
/// instance name (made by upstream's scripts, which name VMs so); VMs that are none of
/// CloudStack's business, templates, copies of marked VMs (a clone carries its source's
/// tags) and VMs `create` is still making (their mark says `cs-creating`, or a clone or ISO
/// install task holds them) are left out.
///
/// An answer larger than the SDK's output limit fails on purpose, with a message saying so:
/// CloudStack then asks for each VM's `status` instead.
pub fn statuses(inv: &Invocation) -> anyhow::Result<Response> {
    let conn = inv.payload.read(Connection::read)?;
    let client = connect(&conn, inv.deadline)?;
    // An empty or failed answer may mean a node that is not in the cluster: never report that
    // as a node running nothing.
    let vms = match client.node_vms(&conn.node) {
        Ok(vms) if vms.is_empty() => {
            node::require_member(&client, &conn.node)?;
            vms
        }
        Ok(vms) => vms,
        Err(e) => return Err(node::explain(&client, &conn.node, e)),
    };
    let states = cloudstack_vms(&vms, &conn.node);
    let count = states.len();
    let response = Response::statuses(states);
    let size = response.to_ascii_json().len() + 1;
    if size > MAX_OUTPUT_BYTES {
        anyhow::bail!(
            "node {} runs {count} CloudStack VMs: their statuses take {size} bytes, more than the {MAX_OUTPUT_BYTES} bytes an extension may print, so this fails on purpose and CloudStack asks each VM's status separately",
            conn.node
        );
    }
    debug!(
        "{count} CloudStack VMs of {} on node {} ({size} bytes)",
        vms.len(),
        conn.node
    );
    Ok(response)
}

/// Instance name → power state of the node's CloudStack VMs.
fn cloudstack_vms(vms: &[NodeVm], node: &str) -> BTreeMap<String, PowerState> {
    /// A marked VM wins over an unmarked one that happens to carry the same name.
    const MARKED: u8 = 0;
    const UNMARKED: u8 = 1;
    let mut ordered: Vec<&NodeVm> = vms
        .iter()
        .filter(|vm| vm.template != Some(true))
        .filter(|vm| !vm.is_being_made())
        .collect();
    ordered.sort_by_key(|vm| vm.vmid);
    // (instance name, MARKED/UNMARKED, VMID, state) in VMID order; sorted by name and kind
    // below, the first of each name is the one reported (one sort instead of a tree insert
    // per VM: statuses reads thousands).
    let mut found: Vec<(String, u8, u64, PowerState)> = Vec::with_capacity(ordered.len());
    for vm in ordered {
        let vmid = vm.vmid.unwrap_or_default();
        let state = power_state(vm.status.as_deref());
        match Mark::from_tags(vm.tags.as_deref()) {
            Some(mark) if mark.is_copy_at(vmid) => debug!(
                "VM {vmid} carries the mark of VM {} (a copy); left out",
                mark.vmid.unwrap_or_default()
            ),
            Some(Mark {
                creating: Some(run),
                ..
            }) => debug!("VM {vmid} is being made by create run {run}; left out"),
            Some(Mark {
                instance_name: Some(instance),
                ..
            }) => found.push((instance, MARKED, vmid, state)),
            _ => match vm.name.as_deref() {
                Some(name) if looks_like_instance_name(name) => {
                    found.push((name.to_string(), UNMARKED, vmid, state));
                }
                _ => {}
            },
        }
    }
    // Stable: VMs of the same name and kind stay in VMID order, so the lowest VMID wins.
    found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut states: Vec<(String, PowerState)> = Vec::with_capacity(found.len());
    let mut kept: Option<(u8, u64)> = None;
    for (name, kind, vmid, state) in found {
        if let (Some((kept_kind, first)), Some((last, _))) = (kept, states.last())
            && *last == name
        {
            if kind == MARKED && kept_kind == MARKED {
                warn!(
                    "VMs {first} and {vmid} on node {node} are both marked as CloudStack instance {name}; reporting VM {first}"
                );
            }
            continue;
        }
        kept = Some((kind, vmid));
        states.push((name, state));
    }
    // Sorted and unique already: the tree is built in one pass.
    states.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm(value: serde_json::Value) -> NodeVm {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_cloudstack_vms_by_instance_name() {
        let vms = [
            vm(
                json!({"vmid": 101, "name": "web01", "status": "running", "tags": "cloudstack;cs-uuid.a;cs-name.i-2-45-+v+m;cs-vmid.101"}),
            ),
            // an operator's clone of it: same tags, another VMID
            vm(
                json!({"vmid": 150, "name": "web01-copy", "status": "stopped", "tags": "cloudstack;cs-uuid.a;cs-name.i-2-45-+v+m;cs-vmid.101"}),
            ),
            // made by upstream's scripts
            vm(json!({"vmid": 102, "name": "i-2-46-VM", "status": "stopped"})),
            // none of CloudStack's business
            vm(json!({"vmid": 103, "name": "payroll-db", "status": "running", "tags": "prod"})),
            vm(
                json!({"vmid": 9000, "name": "tmpl", "template": 1, "tags": "cloudstack;cs-name.i-9-9-+v+m"}),
            ),
            // half-made: create is still at it
            vm(
                json!({"vmid": 104, "name": "i-2-47-VM", "status": "running", "tags": "cloudstack;cs-uuid.b;cs-name.i-2-47-+v+m;cs-vmid.104;cs-creating.1a2b3c4d"}),
            ),
            vm(json!({"vmid": 105, "name": "i-2-48-VM", "status": "stopped", "lock": "clone"})),
        ];
        assert_eq!(
            cloudstack_vms(&vms, "pve1"),
            BTreeMap::from([
                ("i-2-45-VM".to_string(), PowerState::On),
                ("i-2-46-VM".to_string(), PowerState::Off),
            ])
        );
    }

    #[test]
    fn one_vm_per_instance_name() {
        let marked = |vmid: u64, status: &str, name: &str| {
            vm(json!({"vmid": vmid, "status": status,
                "tags": format!("cloudstack;cs-name.{};cs-vmid.{vmid}", crate::identity::encode_tag_text(name))}))
        };
        let unmarked = |vmid: u64, status: &str, name: &str| {
            vm(json!({"vmid": vmid, "status": status, "name": name}))
        };
        let vms = [
            // two VMs marked as the same instance: the lower VMID is reported
            marked(205, "stopped", "i-2-47-VM"),
            marked(204, "running", "i-2-47-VM"),
            // a marked VM wins over an unmarked one of that name, whatever their VMIDs
            unmarked(110, "stopped", "i-2-48-VM"),
            marked(300, "running", "i-2-48-VM"),
            // two unmarked VMs of one name: the lower VMID
            unmarked(401, "running", "i-2-49-VM"),
            unmarked(400, "stopped", "i-2-49-VM"),
        ];
        assert_eq!(
            cloudstack_vms(&vms, "pve1"),
            BTreeMap::from([
                ("i-2-47-VM".to_string(), PowerState::On),
                ("i-2-48-VM".to_string(), PowerState::On),
                ("i-2-49-VM".to_string(), PowerState::Off),
            ])
        );
    }
}
