//! ListSnapshots, CreateSnapshot, RestoreSnapshot, DeleteSnapshot (Hyper-V checkpoints).

use ext_sdk::{Invocation, Response};
use hyperv_protocol::Call;
use hyperv_protocol::call::{CREATE_SNAPSHOT, DELETE_SNAPSHOT, LIST_SNAPSHOTS, RESTORE_SNAPSHOT};
use hyperv_protocol::data::{SnapshotFields, VmData};
use hyperv_protocol::reply::SnapshotChange;
use serde_json::Value;

use super::{VmReply, power_state, run_on_vm, run_script};
use crate::settings;
use crate::transport::Connector;

pub fn list(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { reply, .. } =
        run_script(inv, hosts, LIST_SNAPSHOTS, "listing checkpoints of VM")?;
    // Always an array, also for zero or one checkpoint.
    let rows = reply
        .snapshots
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Response::table(rows))
}

/// Runs a checkpoint script on the VM; `settings` is the checkpoint's name.
fn run<'h>(
    inv: &Invocation,
    hosts: &'h dyn Connector,
    call: Call<VmData<SnapshotFields>, SnapshotChange>,
    doing: &str,
) -> anyhow::Result<VmReply<'h, String, SnapshotChange>> {
    run_on_vm(
        inv,
        hosts,
        call,
        doing,
        settings::snapshot_name,
        |snapshot| SnapshotFields {
            snapshot: snapshot.clone(),
        },
    )
}

pub fn create(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply {
        vm,
        settings: name,
        reply,
        ..
    } = run(inv, hosts, CREATE_SNAPSHOT, "creating a checkpoint of VM")?;
    Ok(
        Response::success(format!("checkpoint '{name}' of VM {} created", vm.name))
            .with("snapshot", serde_json::to_value(reply.snapshot)?),
    )
}

pub fn restore(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply {
        vm,
        settings: name,
        reply,
        ..
    } = run(inv, hosts, RESTORE_SNAPSHOT, "restoring a checkpoint of VM")?;
    let state = reply.state;
    let power = power_state(&state);
    Ok(Response::success(format!(
        "VM {} restored to checkpoint '{name}'; it is now {state}",
        vm.name
    ))
    .with("power_state", power.as_str())
    .with("state", state))
}

pub fn delete(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply {
        vm, settings: name, ..
    } = run(inv, hosts, DELETE_SNAPSHOT, "deleting a checkpoint of VM")?;
    Ok(Response::success(format!(
        "checkpoint '{name}' of VM {} deleted",
        vm.name
    )))
}
