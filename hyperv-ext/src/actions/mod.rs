//! The actions: each reads and validates its settings (all problems at once, before any
//! connection), runs exactly one remote script, and turns the result into CloudStack's
//! answer. Failure codes from the scripts become sentences here.

mod explain;
mod lifecycle;
mod power;
mod snapshots;
mod status;

use anyhow::anyhow;
use ext_sdk::{
    Action, DetailReader, Invocation, Payload, PreparePatch, Response, unsupported_action,
};
use hyperv_protocol::Call;
use hyperv_protocol::data::{NoFields, VmData};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::remote;
use crate::settings;
use crate::ssh::Target;
use crate::validate;

use explain::explain;

pub use status::power_state;

/// Every action, for `--help` and error messages.
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
];

/// Dispatches one invocation.
pub fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    match &inv.action {
        // Hyper-V needs nothing reserved before create; an empty merge patch lets an extension
        // registered with orchestratorrequirespreparevm=true deploy all the same.
        Action::Prepare => Ok(Response::prepare(PreparePatch::default())),
        Action::Create => lifecycle::create(inv),
        Action::Delete => lifecycle::delete(inv),
        Action::Start => power::start(inv),
        Action::Stop => power::stop(inv),
        Action::Reboot => power::reboot(inv),
        Action::Status => status::status(inv),
        Action::Statuses => status::statuses(inv),
        Action::GetConsole => Err(anyhow!(
            "console access is not supported on Hyper-V: this extension does not expose the \
             VM's console; use Hyper-V Manager or vmconnect on the host"
        )),
        Action::Custom(c) if c.is("Suspend") => power::suspend(inv),
        Action::Custom(c) if c.is("Resume") => power::resume(inv),
        Action::Custom(c) if c.is("ListSnapshots") => snapshots::list(inv),
        Action::Custom(c) if c.is("CreateSnapshot") => snapshots::create(inv),
        Action::Custom(c) if c.is("RestoreSnapshot") => snapshots::restore(inv),
        Action::Custom(c) if c.is("DeleteSnapshot") => snapshots::delete(inv),
        other => Err(unsupported_action(other, ACTIONS)),
    }
}

/// A payload value checked by a validator: the value, or the type's default with the problem
/// recorded in `d` (reported with the details' problems by [`finish`]).
fn take<T: Default>(d: &mut DetailReader, result: Result<T, String>) -> T {
    result.unwrap_or_else(|problem| {
        d.problem(problem);
        T::default()
    })
}

/// Fails with every detail and payload problem in one message, before anything is sent.
fn finish(d: DetailReader) -> anyhow::Result<()> {
    d.finish()
        .map_err(|e| anyhow!("{e}; nothing was changed on the host"))
}

/// The CloudStack VM an action is about: its instance name (the Hyper-V VM name) and its
/// UUID (the ownership mark in the VM's Notes).
#[derive(Debug, Clone, Default)]
struct VmRef {
    name: String,
    uuid: String,
}

impl VmRef {
    fn read(payload: &Payload, d: &mut DetailReader) -> VmRef {
        let name = match payload.vm_name() {
            Some(n) => take(d, validate::vm_name(n)),
            None => take(
                d,
                Err("the payload names no VM (virtualmachinename)".into()),
            ),
        };
        let uuid = match payload.vm_uuid() {
            Some(u) => take(d, validate::vm_uuid(u)),
            None => take(
                d,
                Err("the payload has no VM UUID (virtualmachineid)".into()),
            ),
        };
        VmRef { name, uuid }
    }
}

/// A script's answer about one VM, with what was read to ask for it.
struct VmReply<S, R> {
    target: Target,
    vm: VmRef,
    settings: S,
    reply: R,
}

/// Reads the connection, the action's own settings (`read`) and the VM, and fails with every
/// problem at once before connecting; then runs `call` with the VM's identity plus
/// `fields(&settings)`. `doing` ("starting VM") begins the error message.
fn run_on_vm<S, F: Serialize, R: DeserializeOwned>(
    inv: &Invocation,
    call: Call<VmData<F>, R>,
    doing: &str,
    read: impl FnOnce(&mut DetailReader) -> S,
    fields: impl FnOnce(&S) -> F,
) -> anyhow::Result<VmReply<S, R>> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let settings = read(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    finish(d)?;
    let data = VmData {
        name: vm.name.clone(),
        uuid: vm.uuid.clone(),
        fields: fields(&settings),
    };
    let reply = remote::run(&target, call, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("{doing} {}", vm.name), &target, &vm))?;
    Ok(VmReply {
        target,
        vm,
        settings,
        reply,
    })
}

/// [`run_on_vm`] for a script that needs only the VM's identity.
fn run_script<R: DeserializeOwned>(
    inv: &Invocation,
    call: Call<VmData, R>,
    doing: &str,
) -> anyhow::Result<VmReply<(), R>> {
    run_on_vm(inv, call, doing, |_| (), |()| NoFields {})
}
