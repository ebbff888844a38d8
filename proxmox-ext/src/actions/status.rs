//! `status` (one VM) and `statuses` (every VM on the host's node, in one request).

use std::collections::BTreeMap;

use ext_sdk::{Invocation, PowerState, Response};
use log::warn;

use super::{connect, vm_session};
use crate::identity::Mark;
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
    match vm.find_ours(&client)? {
        Some(found) => Ok(Response::power(power_state(found.status.status.as_deref()))),
        None => Ok(Response::power(PowerState::Unknown).with(
            "message",
            format!("Proxmox VM {} does not exist on node {}", vm.vmid, vm.node),
        )),
    }
}

/// Keys are CloudStack instance names: from the VM's ownership mark, which survives a
/// `vm_name` rename; VMs without a mark (made by upstream's scripts) by their Proxmox name,
/// as upstream reports them. Templates are left out.
pub fn statuses(inv: &Invocation) -> anyhow::Result<Response> {
    let mut d = inv.payload.details();
    let conn = Connection::read(&mut d);
    d.finish()?;
    let client = connect(&conn, inv.deadline)?;
    let vms = client.node_vms(&conn.node)?;
    let mut marked: BTreeMap<String, PowerState> = BTreeMap::new();
    let mut by_name: BTreeMap<String, PowerState> = BTreeMap::new();
    for vm in vms.iter().filter(|vm| vm.template != Some(true)) {
        let state = power_state(vm.status.as_deref());
        match Mark::from_tags(vm.tags.as_deref()).and_then(|m| m.instance_name) {
            Some(instance) => {
                if marked.insert(instance.clone(), state).is_some() {
                    warn!(
                        "two VMs on node {} are marked as CloudStack instance {instance}",
                        conn.node
                    );
                }
            }
            None => {
                if let Some(name) = vm.name.as_deref().filter(|n| !n.is_empty()) {
                    by_name.entry(name.to_string()).or_insert(state);
                }
            }
        }
    }
    // A marked VM wins over an unmarked one that happens to carry the same name.
    by_name.extend(marked);
    Ok(Response::statuses(by_name))
}
