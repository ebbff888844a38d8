//! Hyper-V orchestrator extension for CloudStack (PowerShell over WinRM or SSH).
//!
//! Every action runs one constant PowerShell script (`hyperv_protocol`), with user and
//! operator data only in a base64 JSON blob inside it, through one [`transport::Transport`]
//! run: one connection, one PowerShell start. [`remote`] reads the result above any transport;
//! [`winrm`] and [`ssh`] are the transports the binary uses, chosen per host by
//! [`settings::connection`].

// Unsafe code is denied (workspace lints) and allowed only for the one poll(2) call in `ssh`.

// Private: the library exists only for the binary (`main.rs`), so whatever no action uses is
// dead code the compiler reports.
mod actions;
mod clixml;
#[cfg(test)]
mod fake;
mod key_material;
mod known;
mod remote;
mod settings;
mod ssh;
mod transport;
mod validate;
mod winrm;

use ext_sdk::Meta;

pub use actions::{ACTIONS, handle};

/// Identity of the binary.
pub const META: Meta = Meta {
    name: "hyperv-ext",
    version: env!("CARGO_PKG_VERSION"),
    about: "CloudStack orchestrator extension for Hyper-V (PowerShell over WinRM or SSH)",
    actions: ACTIONS,
    registration: Some(ext_sdk::Registration {
        default_name: "HyperVRs",
        description: "Hyper-V through PowerShell over WinRM or SSH (hyperv-ext)",
        // prepare answers an empty patch: nothing to reserve before create.
        requires_prepare_vm: false,
        reserved_resource_details: &[],
    }),
    details: settings::DETAILS,
};
