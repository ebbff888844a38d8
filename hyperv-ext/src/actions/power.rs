//! start, stop, reboot, Suspend, Resume: each on our VM only (the scripts check ownership).

use std::time::Duration;

use ext_sdk::{Deadline, Invocation, Response};
use serde::Serialize;

use super::{VmRef, explain, finish};
use crate::powershell::{Reply, Script};
use crate::remote;
use crate::settings::{self, StopPolicy};

#[derive(Serialize)]
struct VmData<'a> {
    name: &'a str,
    uuid: &'a str,
}

#[derive(Serialize)]
struct StopData<'a> {
    name: &'a str,
    uuid: &'a str,
    /// Power off at once instead of asking the guest.
    turnoff: bool,
    /// Seconds the guest may take to shut down.
    wait: u64,
    /// Power off when the guest did not shut down in time.
    fallback: bool,
}

/// Runs a script that needs only the VM's identity; `doing` names the step in errors.
fn run_on_vm(inv: &Invocation, script: Script, doing: &str) -> anyhow::Result<(VmRef, Reply)> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    let data = VmData {
        name: &vm.name,
        uuid: &vm.uuid,
    };
    let reply = remote::run(&target, script, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("{doing} VM {}", vm.name), &target, &vm))?;
    Ok((vm, reply))
}

/// A success message plus the VM's state afterwards, as the script reported it.
fn with_state(message: String, reply: &Reply) -> Response {
    Response::success(message).with("state", reply.str("state").unwrap_or_default())
}

/// The guest's shutdown budget: the configured timeout, but leaving time for connecting,
/// powering off after a timeout and answering.
fn stop_data<'a>(vm: &'a VmRef, policy: StopPolicy, deadline: &Deadline) -> StopData<'a> {
    let remaining = deadline.remaining();
    let reserve = (remaining / 5).max(Duration::from_secs(10));
    let wait = policy
        .timeout
        .min(remaining.saturating_sub(reserve))
        .as_secs()
        .max(1);
    StopData {
        name: &vm.name,
        uuid: &vm.uuid,
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
    let (vm, reply) = run_on_vm(inv, Script::Start, "starting")?;
    let message = match reply.str("before") {
        Some("Running") => format!("VM {} was already running", vm.name),
        Some("Paused") => format!("VM {} resumed", vm.name),
        _ => format!("VM {} started", vm.name),
    };
    Ok(with_state(message, &reply))
}

/// Runs a script that stops the VM under the configured stop policy (stop, reboot).
fn run_stopping(inv: &Invocation, script: Script, doing: &str) -> anyhow::Result<(VmRef, Reply)> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let policy = settings::stop_policy(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    let data = stop_data(&vm, policy, &inv.deadline);
    let reply = remote::run(&target, script, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("{doing} VM {}", vm.name), &target, &vm))?;
    Ok((vm, reply))
}

pub fn stop(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, reply) = run_stopping(inv, Script::Stop, "stopping")?;
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
    let (vm, reply) = run_stopping(inv, Script::Reboot, "rebooting")?;
    Ok(with_state(
        format!("VM {} rebooted ({}, then started)", vm.name, how(&reply)),
        &reply,
    ))
}

pub fn suspend(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, reply) = run_on_vm(inv, Script::Suspend, "suspending")?;
    let message = if reply.str("before") == Some("Paused") {
        format!("VM {} was already suspended", vm.name)
    } else {
        format!("VM {} suspended", vm.name)
    };
    Ok(with_state(message, &reply))
}

pub fn resume(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, reply) = run_on_vm(inv, Script::Resume, "resuming")?;
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
        let vm = VmRef {
            name: "vm".into(),
            uuid: "u".into(),
        };
        let policy = StopPolicy {
            graceful: true,
            turn_off_fallback: true,
            timeout: Duration::from_secs(300),
        };
        let long = Deadline::after(Duration::from_secs(1800));
        assert_eq!(stop_data(&vm, policy, &long).wait, 300);
        let short = Deadline::after(Duration::from_secs(60));
        let wait = stop_data(&vm, policy, &short).wait;
        assert!((45..=48).contains(&wait), "{wait}");
        let tiny = Deadline::after(Duration::from_secs(5));
        assert_eq!(stop_data(&vm, policy, &tiny).wait, 1);
    }
}
