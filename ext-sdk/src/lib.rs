//! The CloudStack side of the Orchestrator-extension contract, done once.
//!
//! CloudStack (4.21+) runs an Orchestrator extension as
//! `<exe> <action> <payload.json> <timeout-seconds>` and judges it by its exit code and one
//! JSON document on stdout. This crate owns every rule of that contract so an extension
//! contains only hypervisor logic:
//!
//! - [`Payload`]: every key CloudStack sends, parsed leniently (numbers or numeric strings,
//!   booleans in any spelling, absent maps empty, unknown keys ignored), never panicking.
//! - [`Detail`] / [`DetailReader`]: settings read across detail levels with a declared
//!   precedence, with one error naming **all** missing or invalid details and where to set
//!   them.
//! - [`hardware`] and [`net`]: the checks every hypervisor needs on CloudStack's input,
//!   done once: NICs in device order with MAC and VLAN ([`DetailReader::nics`]), vCPUs and
//!   memory, `host[:port]` with IPv6 in brackets ([`HostPort`]), DNS names; and
//!   [`Payload::read`], which reads all of an action's settings before anything is sent.
//! - [`Action`]: built-ins matched case-insensitively; custom actions by name.
//! - [`Response`]: results shaped exactly as CloudStack parses them (`power_state`, `statuses`,
//!   the `prepare` merge patch, `console`, UI tables).
//! - [`ActionSpec`] / [`Registration`]: the actions and the registration, declared once as
//!   data for `--help`, errors and `--register` (which drives CloudMonkey, see [`register`]).
//! - [`layout`]: the directory CloudStack derives from an extension name.
//! - [`run`]: argv, the [`Deadline`] from argv\[3\] (with a watchdog that answers before
//!   CloudStack's kill), one ASCII-only document on stdout, nothing on stderr (panics
//!   included), the 60 KiB output limit, logging to a file with secrets redacted.
//!
//! # A complete tiny extension
//!
//! ```no_run
//! use ext_sdk::{
//!     Action, ActionSpec, Detail, Invocation, Level, Meta, Parameter, PowerState, Response,
//!     unsupported_action,
//! };
//!
//! const URL: Detail = Detail::new("url", &[Level::Host, Level::Extension])
//!     .required()
//!     .hint("API endpoint, e.g. https://hv1:8443");
//! const SECRET: Detail = Detail::new("secret", &[Level::Host, Level::Extension])
//!     .secret()
//!     .required()
//!     .hint("the API secret");
//! const SNAPSHOT: Detail = Detail::new("snap_name", &[Level::Parameter])
//!     .used_by(&["CreateSnapshot"])
//!     .hint("the snapshot's name");
//!
//! const META: Meta = Meta {
//!     name: "tiny-ext",
//!     version: env!("CARGO_PKG_VERSION"),
//!     about: "A tiny CloudStack orchestrator extension",
//!     actions: &[
//!         ActionSpec::built_in("create"),
//!         ActionSpec::built_in("status"),
//!         ActionSpec::built_in("statuses"),
//!         ActionSpec::custom("CreateSnapshot", "Take a snapshot of the instance", 600)
//!             .parameters(&[Parameter::string(SNAPSHOT.key).required()]),
//!     ],
//!     registration: None, // or Some(Registration { .. }) for `--register`
//!     details: &[URL, SECRET, SNAPSHOT],
//! };
//!
//! struct Settings {
//!     url: String,
//!     secret: ext_sdk::Secret,
//! }
//!
//! fn settings(inv: &Invocation) -> Result<Settings, ext_sdk::DetailsError> {
//!     let mut d = inv.payload.details();
//!     let s = Settings { url: d.required(&URL), secret: d.required(&SECRET) };
//!     d.finish()?; // one error naming every missing detail and where to set it
//!     Ok(s)
//! }
//!
//! fn handle(inv: &Invocation) -> anyhow::Result<Response> {
//!     let s = settings(inv)?;
//!     log::info!("talking to {} with secret {}", s.url, s.secret); // the secret logs as ***
//!     match &inv.action {
//!         Action::Create => {
//!             let name = inv.vm_name()?;
//!             let memory = inv.payload.vm.as_ref().and_then(|vm| vm.memory_mib());
//!             for nic in inv.payload.nics() {
//!                 let _vlan = nic.vlan()?; // vlan://N or vlan://untagged
//!             }
//!             inv.deadline.check("creating the VM")?; // every wait is bounded
//!             Ok(Response::success(format!("created {name} with {memory:?} MiB")))
//!         }
//!         Action::Status => Ok(Response::power(PowerState::On)),
//!         Action::Statuses => Ok(Response::statuses([("i-2-45-VM".to_owned(), PowerState::Off)])),
//!         Action::Custom(c) if c.is("CreateSnapshot") => {
//!             let mut d = inv.payload.details();
//!             let snap: String = d.required(&SNAPSHOT);
//!             d.finish()?;
//!             Ok(Response::success(format!("snapshot {snap} created")))
//!         }
//!         other => Err(unsupported_action(other, META.actions)),
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     ext_sdk::run(&META, handle)
//! }
//! ```

#![deny(missing_docs)]

pub mod action;
pub mod build_info;
pub mod catalog;
pub mod check;
pub mod deadline;
pub mod details;
pub mod files;
pub mod hardware;
pub mod layout;
pub mod lenient;
pub mod logging;
pub mod net;
mod operator;
pub mod output;
pub mod payload;
pub mod redact;
pub mod reference;
pub mod register;
pub mod response;
pub mod runner;
pub mod state_dir;
pub mod tcp;
pub mod text;
pub mod typos;

pub use action::{Action, CustomAction, not_implemented, unsupported_action};
pub use catalog::{ActionSpec, CustomActionSpec, ParamType, Parameter, Registration};
pub use deadline::{Deadline, DeadlineExceeded};
pub use details::{Detail, DetailReader, DetailsError, FromDetail, Kind, Level};
pub use hardware::{CheckedNic, SizeLimits};
pub use net::{HostPort, MacAddress, NetError, Vlan};
pub use output::MAX_OUTPUT_BYTES;
pub use payload::{Caller, ExternalDetails, Nic, Payload, PayloadError, VmDetails};
pub use redact::Secret;
pub use response::{Console, NicPatch, PowerState, PreparePatch, Response};
pub use runner::{Invocation, Meta, run};
