//! `create`: clone a template or install from an ISO, configure, start; roll back on failure.
//!
//! Three parts, each its own module:
//! - [`plan`]: every input (settings, NICs, size) read and checked before the first request;
//! - [`build`]: the requests that make the VM, recording in [`Progress`] what they made;
//! - [`rollback`]: removing what this run made, and only that, when building failed.
//!
//! `create` only ever removes what it made itself: a VM that carries the mark saying this run
//! (or the earlier run of the same instance it finishes) is making it. The mark goes into
//! the very request that makes the VM, so a lost answer is no longer "nothing changed": the
//! VMID is looked at, and a VM this run made is finished (see [`build`]). A VM another deploy
//! holds is never touched. A failure or a deadline after the VM exists rolls it back within
//! a cleanup reserve sized for that ([`rollback::RESERVE`]), and the error says what was
//! rolled back, or what is left and what removes it.

use anyhow::Context;
use ext_sdk::{Invocation, Response};

use super::vm_session;
use build::{Built, Job};
use plan::CreatePlan;
use rollback::Progress;

mod build;
mod plan;
mod rollback;

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, plan) = vm_session(inv, CreatePlan::read).context("cannot create the VM")?;
    crate::identity::check_vm_name(&vm.expected.proxmox_name).map_err(anyhow::Error::msg)?;

    // Work ends early enough to leave the rollback the time it needs.
    let client = client.with_deadline(client.deadline().reserving(rollback::RESERVE));
    let job = Job {
        client: &client,
        vm: &vm,
        plan: &plan,
        run: &inv.id,
    };
    let mut progress = Progress::default();
    match build::build(&job, &mut progress) {
        Ok(built) => {
            let message = match built {
                Built::Created => "Instance created".to_string(),
                Built::Finished => format!(
                    "Instance created (finished Proxmox VM {} that an earlier create of this instance had left half-made)",
                    vm.vmid
                ),
                Built::AlreadyThere => "Instance already created".to_string(),
            };
            Ok(Response::success(message).with("proxmox_vmid", vm.vmid.to_string()))
        }
        Err(cause) if progress.made_a_vm() => {
            Err(rollback::roll_back(&client, &vm, &inv.id, &progress, cause))
        }
        Err(cause) => Err(cause),
    }
}
