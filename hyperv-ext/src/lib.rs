//! Hyper-V orchestrator extension for CloudStack (SSH + PowerShell).
//!
//! Every action is one SSH connection running one constant PowerShell script (`scripts/`),
//! with user and operator data only in a base64 JSON blob inside it; see `hyperv_protocol`.

pub mod actions;
pub mod clixml;
pub mod remote;
pub mod settings;
pub mod ssh;
pub mod validate;

use ext_sdk::Meta;

pub use actions::{ACTIONS, handle};

/// Identity of the binary.
pub const META: Meta = Meta {
    name: "hyperv-ext",
    version: env!("CARGO_PKG_VERSION"),
    about: "CloudStack orchestrator extension for Hyper-V (SSH + PowerShell)",
    actions: ACTIONS,
};
