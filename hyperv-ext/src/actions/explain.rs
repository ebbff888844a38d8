//! The scripts' failures as sentences for the operator.

use anyhow::anyhow;
use ext_sdk::HostPort;
use hyperv_protocol::Failure;

use super::VmRef;
use crate::remote::RemoteError;
use crate::transport::Transport;

/// Turns a remote failure into a message naming the VM, the host and what to do.
pub(super) fn explain(
    error: RemoteError,
    doing: &str,
    target: &dyn Transport,
    vm: &VmRef,
) -> anyhow::Error {
    let host = HostPort {
        host: target.host().to_owned(),
        port: Some(target.port()),
    };
    let RemoteError::Failed(f) = error else {
        return anyhow!("{doing} on {host}: {error}");
    };
    let name = &vm.name;
    let text = match &f {
        Failure::AccessDenied { message } => format!(
            "the {} user '{}' has no Hyper-V rights on {host} (Get-VMHost failed: {message}); \
             add it to 'Hyper-V Administrators' or Administrators",
            target.name(),
            target.username()
        ),
        Failure::NotOurs { marked, .. } => {
            let whose = match marked.as_slice() {
                [] => String::new(),
                [one] => format!("it is marked as CloudStack VM {one}, not {}: ", vm.uuid),
                many => format!(
                    "they are marked as CloudStack VMs {}, not {}: ",
                    many.join(", "),
                    vm.uuid
                ),
            };
            format!(
                "a VM named {name} exists on {host} but it is not CloudStack VM {} ({whose}its \
                 Notes lack 'cloudstack-vm-uuid={}'); refusing to touch it",
                vm.uuid, vm.uuid
            )
        }
        Failure::Unmarked { count } if vm.adopt => format!(
            "{count} VMs named {name} (or {name}-{}) on {host} have no ownership line; \
             adopt_unmarked_vms adopts one only when it is the only VM of the name: rename or \
             remove the others, nothing was changed",
            vm.uuid
        ),
        Failure::Unmarked { .. } => format!(
            "a VM named {name} exists on {host} but carries no ownership line \
             ('cloudstack-vm-uuid={}' in its Notes), as VMs made by upstream's hyperv.py; \
             refusing to touch it. If it is this instance's, set adopt_unmarked_vms=true \
             (host or extension detail) to adopt it, or write that line into its Notes",
            vm.uuid
        ),
        Failure::VmAmbiguous { count } => format!(
            "{count} VMs named {name} on {host} carry CloudStack UUID {}; remove the duplicate \
             by hand, nothing was changed",
            vm.uuid
        ),
        Failure::VmNotFound => format!("there is no VM named {name} on {host}"),
        Failure::InvalidState { state } => {
            format!("VM {name} is {state}, which does not allow this")
        }
        Failure::StopFailed { reason } => format!(
            "the guest of VM {name} did not shut down ({reason}) and stop_mode=graceful \
             forbids turning it off"
        ),
        Failure::StillExists => format!("Remove-VM returned but VM {name} still exists on {host}"),
        Failure::SnapshotNotFound => format!("VM {name} has no checkpoint with that name or id"),
        Failure::SnapshotAmbiguous { count } => {
            format!("{count} checkpoints of VM {name} have that name; name it by its id instead")
        }
        Failure::SnapshotExists => format!("VM {name} already has a checkpoint with that name"),
        Failure::PsError { message, fqid } => {
            format!("PowerShell on {host} failed: {message} [{fqid}]")
        }
        // Only create sends these, and it explains them itself (it knows the switch and disk).
        Failure::VmExists
        | Failure::SwitchNotFound { .. }
        | Failure::DiskExists
        | Failure::CreateFailed { .. } => f.to_string(),
    };
    anyhow!("{doing}: {text}")
}
