//! start, stop, reboot, Suspend, Resume: each on our VM only (the scripts check ownership).

use std::time::Duration;

use ext_sdk::{Deadline, Invocation, Response};
use hyperv_protocol::Call;
use hyperv_protocol::call::{REBOOT, RESUME, START, STOP, SUSPEND};
use hyperv_protocol::data::{StopFields, VmData};
use hyperv_protocol::reply::{How, Lookup, PowerChange, Stopped};
use serde::de::DeserializeOwned;

use super::{VmReply, run_on_vm, run_script};
use crate::settings::{self, StopPolicy};
use crate::transport::Connector;

/// A success message plus the VM's state afterwards, as the script reported it.
fn with_state(message: String, state: String) -> Response {
    Response::success(message).with("state", state)
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

fn how(how: How) -> &'static str {
    match how {
        How::Graceful => "shut down by the guest",
        How::Turnoff => "powered off",
        How::AlreadyOff => "already off",
    }
}

pub fn start(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, hosts, START, "starting VM")?;
    let PowerChange { before, state } = reply;
    let message = match before.as_str() {
        "Running" => format!("VM {} was already running", vm.name),
        "Paused" => format!("VM {} resumed", vm.name),
        _ => format!("VM {} started", vm.name),
    };
    Ok(with_state(message, state))
}

/// Runs a script that stops the VM under the configured stop policy (stop, reboot).
fn run_stopping<'h, R: DeserializeOwned>(
    inv: &Invocation,
    hosts: &'h dyn Connector,
    call: Call<VmData<StopFields>, R>,
    doing: &str,
) -> anyhow::Result<VmReply<'h, StopPolicy, R>> {
    run_on_vm(inv, hosts, call, doing, settings::stop_policy, |policy| {
        stop_fields(policy, &inv.deadline)
    })
}

pub fn stop(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_stopping(inv, hosts, STOP, "stopping VM")?;
    let Lookup::Found(Stopped { how: h, state }) = reply else {
        return Ok(Response::success(format!(
            "VM {} does not exist on the host: nothing to stop",
            vm.name
        )));
    };
    Ok(with_state(
        format!("VM {} stopped ({})", vm.name, how(h)),
        state,
    ))
}

pub fn reboot(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_stopping(inv, hosts, REBOOT, "rebooting VM")?;
    let Stopped { how: h, state } = reply;
    Ok(with_state(
        format!("VM {} rebooted ({}, then started)", vm.name, how(h)),
        state,
    ))
}

pub fn suspend(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, hosts, SUSPEND, "suspending VM")?;
    let message = if reply.before == "Paused" {
        format!("VM {} was already suspended", vm.name)
    } else {
        format!("VM {} suspended", vm.name)
    };
    Ok(with_state(message, reply.state))
}

pub fn resume(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_script(inv, hosts, RESUME, "resuming VM")?;
    let message = if reply.before == "Running" {
        format!("VM {} was already running", vm.name)
    } else {
        format!("VM {} resumed", vm.name)
    };
    Ok(with_state(message, reply.state))
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
