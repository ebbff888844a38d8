//! The actions: each reads and validates its settings (all problems at once, before any
//! connection), runs exactly one remote script, and turns the result into CloudStack's
//! answer. Failure codes from the scripts become sentences here.

mod check;
mod explain;
mod lifecycle;
mod power;
mod snapshots;
mod status;
#[cfg(test)]
mod tests;

use anyhow::anyhow;
use ext_sdk::{
    Action, ActionSpec, DetailReader, Invocation, Parameter, Payload, PreparePatch, Response,
    unsupported_action,
};
use hyperv_protocol::Call;
use hyperv_protocol::data::{NoFields, VmData};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::path::PathBuf;

use crate::known::Known;
use crate::remote;
use crate::settings::{self, SNAPSHOT_NAME};
use crate::transport::{Connector, Hosts, Transport};
use crate::validate;

use explain::explain;

pub use status::power_state;

/// Every action: CloudStack's own, then the custom actions (upstream's names and parameter
/// names, then this project's), which `--register` creates in CloudStack as declared here.
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
    ActionSpec::custom(
        "ListSnapshots",
        "List the instance's Hyper-V checkpoints",
        60,
    ),
    ActionSpec::custom(
        "CreateSnapshot",
        "Take a Hyper-V checkpoint of the instance",
        600,
    )
    .parameters(&[Parameter::string(SNAPSHOT_NAME.key).required()]),
    ActionSpec::custom(
        "RestoreSnapshot",
        "Apply a Hyper-V checkpoint to the instance",
        600,
    )
    .parameters(&[Parameter::string(SNAPSHOT_NAME.key).required()]),
    ActionSpec::custom(
        "DeleteSnapshot",
        "Delete a Hyper-V checkpoint of the instance",
        300,
    )
    .parameters(&[Parameter::string(SNAPSHOT_NAME.key).required()]),
    ActionSpec::custom("Suspend", "Pause the running instance", 120),
    ActionSpec::custom("Resume", "Resume the paused instance", 120),
    // The preflight (read-only): the optional paths probe a template disk or an ISO.
    ActionSpec::custom(
        "check",
        "Check the host and its settings, read-only: a row per probe",
        120,
    )
    .parameters(&[
        Parameter::string(settings::TEMPLATE_PATH.key),
        Parameter::string(settings::ISO_PATH.key),
    ]),
];

/// Dispatches one invocation; each host is reached over its transport (WinRM or SSH).
pub fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    dispatch(inv, &Hosts)
}

/// Dispatches one invocation, reaching the host through `hosts`.
fn dispatch(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    match &inv.action {
        // Hyper-V needs nothing reserved before create; an empty merge patch lets an extension
        // registered with orchestratorrequirespreparevm=true deploy all the same.
        Action::Prepare => Ok(Response::prepare(PreparePatch::default())),
        Action::Create => lifecycle::create(inv, hosts),
        Action::Delete => lifecycle::delete(inv, hosts),
        Action::Start => power::start(inv, hosts),
        Action::Stop => power::stop(inv, hosts),
        Action::Reboot => power::reboot(inv, hosts),
        Action::Status => status::status(inv, hosts),
        Action::Statuses => status::statuses(inv, hosts),
        Action::GetConsole => Err(anyhow!(
            "console access is not supported on Hyper-V: this extension does not expose the \
             VM's console; use Hyper-V Manager or vmconnect on the host"
        )),
        Action::Custom(c) if c.is("Suspend") => power::suspend(inv, hosts),
        Action::Custom(c) if c.is("Resume") => power::resume(inv, hosts),
        Action::Custom(c) if c.is("ListSnapshots") => snapshots::list(inv, hosts),
        Action::Custom(c) if c.is("CreateSnapshot") => snapshots::create(inv, hosts),
        Action::Custom(c) if c.is("RestoreSnapshot") => snapshots::restore(inv, hosts),
        Action::Custom(c) if c.is("DeleteSnapshot") => snapshots::delete(inv, hosts),
        Action::Custom(c) if c.is("check") => check::check(inv, hosts),
        other @ Action::Custom(_) => Err(unsupported_action(other, ACTIONS)),
    }
}

/// Reads an action's settings with one reader, and fails with every detail and payload
/// problem in one message before anything is sent.
fn read_settings<T>(
    payload: &Payload,
    read: impl FnOnce(&mut DetailReader) -> T,
) -> anyhow::Result<T> {
    payload
        .read(read)
        .map_err(|e| anyhow!("{e}; nothing was changed on the host"))
}

/// The CloudStack VM an action is about: its instance name (the Hyper-V VM name) and its
/// UUID (the ownership mark in the VM's Notes), and how it may be found.
#[derive(Debug, Clone, Default)]
struct VmRef {
    name: String,
    uuid: String,
    /// The only VM of the name may be adopted without an ownership line.
    adopt: bool,
    /// The `state_dir` detail (where [`Known`] keeps the UUIDs seen).
    state_dir: Option<PathBuf>,
}

impl VmRef {
    /// Remembers that CloudStack calls this VM's UUID by its name (for `statuses`).
    fn remember(&self) {
        if let Some(known) = Known::open(self.state_dir.clone()) {
            known.remember(&self.name, &self.uuid);
        }
    }

    fn read(payload: &Payload, d: &mut DetailReader) -> VmRef {
        let name = payload
            .vm_name()
            .ok_or_else(|| "the payload names no VM (virtualmachinename)".to_owned())
            .and_then(validate::vm_name);
        let uuid = payload
            .vm_uuid()
            .ok_or_else(|| "the payload has no VM UUID (virtualmachineid)".to_owned())
            .and_then(validate::vm_uuid);
        VmRef {
            name: d.check(name).unwrap_or_default(),
            uuid: d.check(uuid).unwrap_or_default(),
            adopt: settings::adopt_unmarked_vms(d),
            state_dir: settings::state_dir(d),
        }
    }
}

/// A script's answer about one VM, with what was read to ask for it.
struct VmReply<'h, S, R> {
    host: Box<dyn Transport + 'h>,
    vm: VmRef,
    settings: S,
    reply: R,
}

/// Reads the connection, the action's own settings (`read`) and the VM, and fails with every
/// problem at once before connecting; then runs `call` with the VM's identity plus
/// `fields(&settings)`. `doing` ("starting VM") begins the error message.
fn run_on_vm<'h, S, F: Serialize, R: DeserializeOwned>(
    inv: &Invocation,
    hosts: &'h dyn Connector,
    call: Call<VmData<F>, R>,
    doing: &str,
    read: impl FnOnce(&mut DetailReader) -> S,
    fields: impl FnOnce(&S) -> F,
) -> anyhow::Result<VmReply<'h, S, R>> {
    let (target, settings, vm) = read_settings(&inv.payload, |d| {
        (
            settings::connection(d),
            read(d),
            VmRef::read(&inv.payload, d),
        )
    })?;
    vm.remember();
    let data = VmData {
        name: vm.name.clone(),
        uuid: vm.uuid.clone(),
        adopt: vm.adopt,
        fields: fields(&settings),
    };
    let host = hosts.transport(target);
    let reply = remote::run(&*host, call, &data, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, &format!("{doing} {}", vm.name), &*host, &vm))?;
    Ok(VmReply {
        host,
        vm,
        settings,
        reply,
    })
}

/// [`run_on_vm`] for a script that needs only the VM's identity.
fn run_script<'h, R: DeserializeOwned>(
    inv: &Invocation,
    hosts: &'h dyn Connector,
    call: Call<VmData, R>,
    doing: &str,
) -> anyhow::Result<VmReply<'h, (), R>> {
    run_on_vm(inv, hosts, call, doing, |_| (), |()| NoFields {})
}
