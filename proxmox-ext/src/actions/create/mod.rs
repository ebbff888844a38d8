//! `create`: clone a template or install from an ISO, configure, start; roll back on failure.
//!
//! Three parts, each its own module:
//! - [`plan`]: every input (settings, NICs, size) read and checked before the first request;
//! - [`build`]: the requests that make the VM, recording in [`Progress`] what they made;
//! - [`rollback`]: removing what this run made, and only that, when building failed.
//!
//! `create` only ever removes what it created itself: the VMID counts as this run's only once
//! PVE answered the create or clone request with a task id (PVE writes the new config
//! atomically before it forks the worker, so an "already exists" refusal means another
//! deploy holds the id, and nothing is deleted then). A failure or a deadline after that
//! point rolls the new VM back within the deadline's cleanup reserve, and the error says what
//! was rolled back.

use anyhow::Context;
use ext_sdk::{Invocation, Response};

use super::vm_session;
use build::Built;
use plan::CreatePlan;
use rollback::Progress;

mod build;
mod plan;
mod rollback;

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let (client, vm, plan) = vm_session(inv, CreatePlan::read).context("cannot create the VM")?;
    crate::identity::check_vm_name(&vm.expected.proxmox_name).map_err(anyhow::Error::msg)?;

    let mut progress = Progress::default();
    match build::build(&client, &vm, &plan, &mut progress) {
        Ok(built) => {
            let message = match built {
                Built::Created => "Instance created",
                Built::AlreadyThere => "Instance already created",
            };
            Ok(Response::success(message).with("proxmox_vmid", vm.vmid.to_string()))
        }
        Err(cause) if progress.made_a_vm() => {
            Err(rollback::roll_back(&client, &vm, &progress, cause))
        }
        Err(cause) => Err(cause),
    }
}
