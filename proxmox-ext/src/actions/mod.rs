//! CloudStack actions, one module per concern.

use ext_sdk::{
    Action, ActionSpec, DetailReader, Invocation, Parameter, Response, unsupported_action,
};

use crate::api::params::DestroyVm;
use crate::api::{Client, connect};
use crate::settings::{SNAP_DESCRIPTION, SNAP_NAME, SNAP_SAVE_MEMORY, VmAction};
use crate::vm::VmRef;

mod check;
mod console;
mod create;
mod lifecycle;
mod power;
mod snapshots;
mod status;

/// Every action this extension answers: CloudStack's own, then the custom actions (upstream's
/// snapshot actions with its parameter names, plus `Suspend`, `Resume` and the `check` preflight), which `--register`
/// creates in CloudStack as declared here.
pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec::built_in("prepare"),
    ActionSpec::built_in("create"),
    ActionSpec::built_in("start"),
    ActionSpec::built_in("stop"),
    ActionSpec::built_in("reboot"),
    ActionSpec::built_in("delete"),
    ActionSpec::built_in("status"),
    ActionSpec::built_in("statuses"),
    ActionSpec::built_in("getconsole"),
    ActionSpec::custom("ListSnapshots", "List the instance's Proxmox snapshots", 60),
    ActionSpec::custom(
        "CreateSnapshot",
        "Take a Proxmox snapshot of the instance",
        600,
    )
    .parameters(&[
        Parameter::string(SNAP_NAME.key).required(),
        Parameter::string(SNAP_DESCRIPTION.key),
        Parameter::boolean(SNAP_SAVE_MEMORY.key),
    ]),
    ActionSpec::custom(
        "RestoreSnapshot",
        "Roll the instance back to a Proxmox snapshot",
        600,
    )
    .parameters(&[Parameter::string(SNAP_NAME.key).required()]),
    ActionSpec::custom(
        "DeleteSnapshot",
        "Delete a Proxmox snapshot of the instance",
        300,
    )
    .parameters(&[Parameter::string(SNAP_NAME.key).required()]),
    ActionSpec::custom("Suspend", "Pause the running instance", 120),
    ActionSpec::custom("Resume", "Resume the paused or hibernated instance", 120),
    // The preflight (read-only); on a VM it also probes the VM's template, storage and ISO.
    ActionSpec::custom(
        "check",
        "Check the Proxmox set-up and its settings, read-only: a row per probe",
        120,
    ),
];

/// Runs one action.
pub fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    match &inv.action {
        Action::Prepare => lifecycle::prepare(inv),
        Action::Create => create::create(inv),
        Action::Delete => lifecycle::delete(inv),
        Action::Start => power::start(inv),
        Action::Stop => power::stop(inv),
        Action::Reboot => power::reboot(inv),
        Action::Status => status::status(inv),
        Action::Statuses => status::statuses(inv),
        Action::GetConsole => console::get_console(inv),
        Action::Custom(c) if c.is("ListSnapshots") => snapshots::list(inv),
        Action::Custom(c) if c.is("CreateSnapshot") => snapshots::create(inv),
        Action::Custom(c) if c.is("RestoreSnapshot") => snapshots::restore(inv),
        Action::Custom(c) if c.is("DeleteSnapshot") => snapshots::delete(inv),
        Action::Custom(c) if c.is("Suspend") => power::suspend(inv),
        Action::Custom(c) if c.is("Resume") => power::resume(inv),
        Action::Custom(c) if c.is("check") => check::check(inv),
        other @ Action::Custom(_) => Err(unsupported_action(other, ACTIONS)),
    }
}

/// How this extension removes a VM: with its HA, replication and backup-job references and
/// every disk, also those missing from its config.
const DESTROY: DestroyVm = DestroyVm {
    purge: true,
    destroy_unreferenced_disks: true,
};

/// What every VM action does first: read the connection and the VM, plus whatever `more`
/// reads from the same details (so one error names every problem), then connect. Nothing is
/// sent before all of it is valid.
fn vm_session<M>(
    inv: &Invocation,
    more: impl FnOnce(&mut DetailReader<'_>) -> M,
) -> anyhow::Result<(Client, VmRef, M)> {
    let (action, extra) = inv.payload.read(|d| (VmAction::read(d), more(d)))?;
    // read() records every reason for a `None`, so finishing above already failed then.
    let VmAction { conn, vm } =
        action.ok_or_else(|| anyhow::anyhow!("the VM's settings are incomplete"))?;
    Ok((connect(&conn, inv.deadline)?, vm, extra))
}
