//! CloudStack actions, one module per concern.

use ext_sdk::{Action, DetailReader, Invocation, Response, unsupported_action};

use crate::api::params::DestroyVm;
use crate::api::{Client, connect};
use crate::settings::VmAction;
use crate::vm::VmRef;

mod check;
mod console;
mod create;
mod lifecycle;
mod power;
mod snapshots;
mod status;

/// Every action this extension answers (custom action names in CloudStack's spelling).
pub const ACTIONS: &[&str] = &[
    "prepare",
    "create",
    "start",
    "stop",
    "reboot",
    "delete",
    "status",
    "statuses",
    "getconsole",
    "ListSnapshots",
    "CreateSnapshot",
    "RestoreSnapshot",
    "DeleteSnapshot",
    "Suspend",
    "Resume",
    "check",
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
