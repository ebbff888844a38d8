//! CloudStack actions, one module per concern.

use ext_sdk::{
    Action, ActionSpec, Deadline, DetailReader, Invocation, Parameter, Response, unsupported_action,
};

use crate::api::Client;
use crate::settings::{Connection, SNAP_DESCRIPTION, SNAP_NAME, SNAP_SAVE_MEMORY};
use crate::transport::UreqTransport;
use crate::vm::{VmRef, read_expected, read_vmid};

mod console;
mod lifecycle;
mod power;
mod snapshots;
mod status;

/// Every action this extension answers: CloudStack's own, then the custom actions (upstream's
/// snapshot actions with its parameter names, plus `Suspend` and `Resume`), which `--register`
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
];

/// Runs one action.
pub fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    match &inv.action {
        Action::Prepare => lifecycle::prepare(inv),
        Action::Create => lifecycle::create(inv),
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
        other => Err(unsupported_action(other, ACTIONS)),
    }
}

/// The API client for a connection, bounded by the invocation's deadline.
pub(crate) fn connect(
    conn: &Connection,
    deadline: Deadline,
) -> anyhow::Result<Client<UreqTransport>> {
    let transport = UreqTransport::new(
        &conn.url.api_base(),
        &conn.token_id,
        &conn.secret,
        &conn.tls,
    )?;
    log::debug!(
        "Proxmox API {} as {} on node {}",
        conn.url,
        conn.token_id,
        conn.node
    );
    Ok(Client::new(transport, deadline, &conn.token_id))
}

/// What every VM action reads: the connection and the VM, plus whatever `more` reads from the
/// same details (so one error names every problem). Nothing is sent before all of it is valid.
pub(crate) fn vm_session<M>(
    inv: &Invocation,
    more: impl FnOnce(&mut DetailReader<'_>) -> M,
) -> anyhow::Result<(Client<UreqTransport>, VmRef, M)> {
    let mut d = inv.payload.details();
    let conn = Connection::read(&mut d);
    let vmid = read_vmid(&mut d);
    let expected = read_expected(&mut d, &inv.payload);
    let extra = more(&mut d);
    d.finish()?;
    let expected = expected?;
    let vm = VmRef {
        vmid: vmid.ok_or_else(|| anyhow::anyhow!("proxmox_vmid is missing"))?,
        node: conn.node.clone(),
        expected,
    };
    Ok((connect(&conn, inv.deadline)?, vm, extra))
}
