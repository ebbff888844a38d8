//! ListSnapshots, CreateSnapshot, RestoreSnapshot, DeleteSnapshot (Hyper-V checkpoints).

use ext_sdk::{Invocation, Response};
use serde::Serialize;
use serde_json::Value;

use super::{VmRef, explain, finish, power_state};
use crate::powershell::Script;
use crate::ssh::Target;
use crate::{remote, settings};

#[derive(Serialize)]
struct VmData<'a> {
    name: &'a str,
    uuid: &'a str,
}

#[derive(Serialize)]
struct SnapshotData<'a> {
    name: &'a str,
    uuid: &'a str,
    snapshot: &'a str,
}

fn read(inv: &Invocation, with_snapshot: bool) -> anyhow::Result<(Target, VmRef, String)> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let snapshot = if with_snapshot {
        settings::snapshot_name(&mut d)
    } else {
        String::new()
    };
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    Ok((target, vm, snapshot))
}

pub fn list(inv: &Invocation) -> anyhow::Result<Response> {
    let (target, vm, _) = read(inv, false)?;
    let reply = remote::run(
        &target,
        Script::ListSnapshots,
        &VmData {
            name: &vm.name,
            uuid: &vm.uuid,
        },
        &inv.deadline,
        &inv.id,
    )
    .map_err(|e| {
        explain(
            e,
            &format!("listing checkpoints of VM {}", vm.name),
            &target,
            &vm,
        )
    })?;
    // Always an array, also for zero or one checkpoint.
    let rows: Vec<Value> = reply.array("snapshots").cloned().unwrap_or_default();
    Ok(Response::table(rows))
}

fn run(
    inv: &Invocation,
    script: Script,
    doing: &str,
) -> anyhow::Result<(VmRef, String, crate::powershell::Reply)> {
    let (target, vm, snapshot) = read(inv, true)?;
    let data = SnapshotData {
        name: &vm.name,
        uuid: &vm.uuid,
        snapshot: &snapshot,
    };
    let reply = remote::run(&target, script, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("{doing} of VM {}", vm.name), &target, &vm))?;
    Ok((vm, snapshot, reply))
}

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, name, reply) = run(inv, Script::CreateSnapshot, "creating a checkpoint")?;
    let snapshot = reply.object("snapshot").cloned().unwrap_or_default();
    Ok(
        Response::success(format!("checkpoint '{name}' of VM {} created", vm.name))
            .with("snapshot", Value::Object(snapshot)),
    )
}

pub fn restore(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, name, reply) = run(inv, Script::RestoreSnapshot, "restoring a checkpoint")?;
    let state = reply.str("state").unwrap_or_default();
    let power = power_state(state);
    Ok(Response::success(format!(
        "VM {} restored to checkpoint '{name}'; it is now {state}",
        vm.name
    ))
    .with("power_state", power.as_str())
    .with("state", state))
}

pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let (vm, name, _) = run(inv, Script::DeleteSnapshot, "deleting a checkpoint")?;
    Ok(Response::success(format!(
        "checkpoint '{name}' of VM {} deleted",
        vm.name
    )))
}
