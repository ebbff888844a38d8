//! ListSnapshots, CreateSnapshot, RestoreSnapshot, DeleteSnapshot (Hyper-V checkpoints).

use ext_sdk::{Invocation, Response};
use serde::Serialize;
use serde_json::Value;

use super::{VmReply, power_state, run_on_vm, run_script};
use crate::settings;
use hyperv_protocol::Script;

/// What the checkpoint scripts receive besides the VM.
#[derive(Serialize)]
struct SnapshotFields {
    snapshot: String,
}

pub fn list(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { reply, .. } =
        run_script(inv, Script::ListSnapshots, "listing checkpoints of VM")?;
    // Always an array, also for zero or one checkpoint.
    let rows: Vec<Value> = reply.array("snapshots").cloned().unwrap_or_default();
    Ok(Response::table(rows))
}

/// Runs a checkpoint script on the VM; `settings` is the checkpoint's name.
fn run(inv: &Invocation, script: Script, doing: &str) -> anyhow::Result<VmReply<String>> {
    run_on_vm(inv, script, doing, settings::snapshot_name, |snapshot| {
        SnapshotFields {
            snapshot: snapshot.clone(),
        }
    })
}

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply {
        vm,
        settings: name,
        reply,
        ..
    } = run(inv, Script::CreateSnapshot, "creating a checkpoint of VM")?;
    let snapshot = reply.object("snapshot").cloned().unwrap_or_default();
    Ok(
        Response::success(format!("checkpoint '{name}' of VM {} created", vm.name))
            .with("snapshot", Value::Object(snapshot)),
    )
}

pub fn restore(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply {
        vm,
        settings: name,
        reply,
        ..
    } = run(inv, Script::RestoreSnapshot, "restoring a checkpoint of VM")?;
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
    let VmReply {
        vm, settings: name, ..
    } = run(inv, Script::DeleteSnapshot, "deleting a checkpoint of VM")?;
    Ok(Response::success(format!(
        "checkpoint '{name}' of VM {} deleted",
        vm.name
    )))
}
