//! start, stop, reboot, Suspend, Resume: each on our VM only (the scripts check ownership).

use std::time::Duration;

use ext_sdk::{Deadline, Invocation, Response};
use serde::Serialize;

use super::{VmRef, explain, finish};
use crate::powershell::Script;
use crate::settings::{self, StopPolicy};
use crate::{remote, ssh::Target};

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

fn read(inv: &Invocation) -> anyhow::Result<(Target, VmRef)> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    Ok((target, vm))
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

fn how(reply: &crate::powershell::Reply) -> &'static str {
    match reply.str("how") {
        Some("graceful") => "shut down by the guest",
        Some("turnoff") => "powered off",
        _ => "already off",
    }
}

pub fn start(inv: &Invocation) -> anyhow::Result<Response> {
    let (target, vm) = read(inv)?;
    let data = VmData {
        name: &vm.name,
        uuid: &vm.uuid,
    };
    let reply = remote::run(&target, Script::Start, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("starting VM {}", vm.name), &target, &vm))?;
    let message = match reply.str("before") {
        Some("Running") => format!("VM {} was already running", vm.name),
        Some("Paused") => format!("VM {} resumed", vm.name),
        _ => format!("VM {} started", vm.name),
    };
    Ok(Response::success(message).with("state", reply.str("state").unwrap_or_default()))
}

pub fn stop(inv: &Invocation) -> anyhow::Result<Response> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let policy = settings::stop_policy(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    let data = stop_data(&vm, policy, &inv.deadline);
    let reply = remote::run(&target, Script::Stop, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("stopping VM {}", vm.name), &target, &vm))?;
    if reply.bool("found") != Some(true) {
        return Ok(Response::success(format!(
            "VM {} does not exist on the host: nothing to stop",
            vm.name
        )));
    }
    Ok(
        Response::success(format!("VM {} stopped ({})", vm.name, how(&reply)))
            .with("state", reply.str("state").unwrap_or_default()),
    )
}

pub fn reboot(inv: &Invocation) -> anyhow::Result<Response> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let policy = settings::stop_policy(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    let data = stop_data(&vm, policy, &inv.deadline);
    let reply = remote::run(&target, Script::Reboot, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("rebooting VM {}", vm.name), &target, &vm))?;
    Ok(Response::success(format!(
        "VM {} rebooted ({}, then started)",
        vm.name,
        how(&reply)
    ))
    .with("state", reply.str("state").unwrap_or_default()))
}

pub fn suspend(inv: &Invocation) -> anyhow::Result<Response> {
    let (target, vm) = read(inv)?;
    let data = VmData {
        name: &vm.name,
        uuid: &vm.uuid,
    };
    let reply = remote::run(&target, Script::Suspend, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("suspending VM {}", vm.name), &target, &vm))?;
    let message = if reply.str("before") == Some("Paused") {
        format!("VM {} was already suspended", vm.name)
    } else {
        format!("VM {} suspended", vm.name)
    };
    Ok(Response::success(message).with("state", reply.str("state").unwrap_or_default()))
}

pub fn resume(inv: &Invocation) -> anyhow::Result<Response> {
    let (target, vm) = read(inv)?;
    let data = VmData {
        name: &vm.name,
        uuid: &vm.uuid,
    };
    let reply = remote::run(&target, Script::Resume, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("resuming VM {}", vm.name), &target, &vm))?;
    let message = if reply.str("before") == Some("Running") {
        format!("VM {} was already running", vm.name)
    } else {
        format!("VM {} resumed", vm.name)
    };
    Ok(Response::success(message).with("state", reply.str("state").unwrap_or_default()))
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
