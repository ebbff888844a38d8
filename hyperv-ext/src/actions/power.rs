//! start, stop, reboot, Suspend, Resume: each on our VM only (the scripts check ownership).

use std::time::Duration;

use ext_sdk::{Deadline, Invocation, Response};
use serde::Serialize;

use super::{VmReply, run_on_vm, run_script};
use crate::settings::{self, StopPolicy};
use hyperv_protocol::{Reply, Script};

/// What the stop and reboot scripts receive besides the VM.
#[derive(Serialize)]
struct StopFields {
    /// Power off at once instead of asking the guest.
    turnoff: bool,
    /// Seconds the guest may take to shut down.
    wait: u64,
    /// Power off when the guest did not shut down in time.
    fallback: bool,
}

/// A success message plus the VM's state afterwards, as the script reported it.
fn with_state(message: String, reply: &Reply) -> Response {
    Response::success(message).with("state", reply.str("state").unwrap_or_default())
}

/// The guest's shutdown budget: the configured timeout, but leaving time for connecting,
/// powering off after a timeout and answering.
fn stop_fields(policy: &StopPolicy, deadline: &Deadline) -> StopFields {
    let remaining = deadline.remaining();
    let reserve = (remaining / 5).max(Duration::from_secs(10));
    let wait = policy
        .timeout
        .min(remaining.saturating_sub(reserve))
        .as_secs()
        .max(1);
    StopFields {
        turnoff: !policy.graceful,
        wait,
        fallback: policy.turn_off_fallback,
    }
}

fn how(reply: &Reply) -> &'static str {
    match reply.str("how") {
        Some("graceful") => "shut down by the guest",
        Some("turnoff") => "powered off",
        _ => "already off",
    }
}

pub fn start(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, Script::Start, "starting VM")?;
    let message = match reply.str("before") {
        Some("Running") => format!("VM {} was already running", vm.name),
        Some("Paused") => format!("VM {} resumed", vm.name),
        _ => format!("VM {} started", vm.name),
    };
    Ok(with_state(message, &reply))
}

/// Runs a script that stops the VM under the configured stop policy (stop, reboot).
fn run_stopping(
    inv: &Invocation,
    script: Script,
    doing: &str,
) -> anyhow::Result<VmReply<StopPolicy>> {
    run_on_vm(inv, script, doing, settings::stop_policy, |policy| {
        stop_fields(policy, &inv.deadline)
    })
}

pub fn stop(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_stopping(inv, Script::Stop, "stopping VM")?;
    if reply.bool("found") != Some(true) {
        return Ok(Response::success(format!(
            "VM {} does not exist on the host: nothing to stop",
            vm.name
        )));
    }
    Ok(with_state(
        format!("VM {} stopped ({})", vm.name, how(&reply)),
        &reply,
    ))
}

pub fn reboot(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_stopping(inv, Script::Reboot, "rebooting VM")?;
    Ok(with_state(
        format!("VM {} rebooted ({}, then started)", vm.name, how(&reply)),
        &reply,
    ))
}

pub fn suspend(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, Script::Suspend, "suspending VM")?;
    let message = if reply.str("before") == Some("Paused") {
        format!("VM {} was already suspended", vm.name)
    } else {
        format!("VM {} suspended", vm.name)
    };
    Ok(with_state(message, &reply))
}

pub fn resume(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, Script::Resume, "resuming VM")?;
    let message = if reply.str("before") == Some("Running") {
        format!("VM {} was already running", vm.name)
    } else {
        format!("VM {} resumed", vm.name)
    };
    Ok(with_state(message, &reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_gets_the_configured_time_but_never_the_whole_deadline() {
        let policy = StopPolicy {
            graceful: true,
            turn_off_fallback: true,
            timeout: Duration::from_secs(300),
        };
        let long = Deadline::after(Duration::from_secs(1800));
        assert_eq!(stop_fields(&policy, &long).wait, 300);
        let short = Deadline::after(Duration::from_secs(60));
        let wait = stop_fields(&policy, &short).wait;
        assert!((45..=48).contains(&wait), "{wait}");
        let tiny = Deadline::after(Duration::from_secs(5));
        assert_eq!(stop_fields(&policy, &tiny).wait, 1);
    }
}
