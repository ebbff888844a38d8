//! `status` (one VM) and `statuses` (every CloudStack VM on the host, in one call).

use std::collections::BTreeMap;

use ext_sdk::{Invocation, PowerState, Response};
use hyperv_protocol::call::{STATUS, STATUSES};
use hyperv_protocol::data::NoFields;
use hyperv_protocol::reply::{Lookup, VmState};

use super::{VmRef, VmReply, explain, read_settings, run_script};
use crate::transport::Connector;
use crate::{remote, settings};

/// Hyper-V's `VMState` name to CloudStack's power state. Guest memory resident (running,
/// paused and the transitions around them) is on, as KVM reports a paused domain; not
/// executing (off, saved) is off; `Other` and every `*Critical` state need an operator.
pub fn power_state(state: &str) -> PowerState {
    match state {
        "Running" | "Paused" | "Pausing" | "Resuming" | "Starting" | "Reset" => PowerState::On,
        "Off" | "Stopping" | "Saved" | "Saving" | "FastSaved" | "FastSaving" => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

pub fn status(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply {
        host, vm, reply, ..
    } = run_script(inv, hosts, STATUS, "reading the state of VM")?;
    let Lookup::Found(VmState { state }) = reply else {
        // Rights were proven first, so absent really means absent: report it as off.
        log::warn!(
            "VM {} does not exist on {}; reporting poweroff",
            vm.name,
            host.host()
        );
        return Ok(Response::power(PowerState::Off).with(
            "message",
            format!("VM {} does not exist on the host", vm.name),
        ));
    };
    Ok(Response::power(power_state(&state)).with("state", state))
}

pub fn statuses(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let target = read_settings(&inv.payload, settings::connection)?;
    let host = hosts.transport(target);
    let reply = remote::run(&*host, STATUSES, &NoFields {}, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, "listing the VMs' states", &*host, &VmRef::default()))?;
    let mut states: BTreeMap<String, PowerState> = BTreeMap::new();
    for vm in reply.vms {
        let power = power_state(&vm.state);
        // Two CloudStack-marked VMs with one name: CloudStack cannot tell them apart.
        states
            .entry(vm.name)
            .and_modify(|p| *p = PowerState::Unknown)
            .or_insert(power);
    }
    log::info!(
        "statuses: {} CloudStack VMs on {}",
        states.len(),
        host.host()
    );
    Ok(Response::statuses(states))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_mapping() {
        for on in [
            "Running", "Paused", "Pausing", "Resuming", "Starting", "Reset",
        ] {
            assert_eq!(power_state(on), PowerState::On, "{on}");
        }
        for off in [
            "Off",
            "Stopping",
            "Saved",
            "Saving",
            "FastSaved",
            "FastSaving",
        ] {
            assert_eq!(power_state(off), PowerState::Off, "{off}");
        }
        for unknown in ["Other", "RunningCritical", "OffCritical", "", "2"] {
            assert_eq!(power_state(unknown), PowerState::Unknown, "{unknown}");
        }
    }
}
