//! Proxmox VE orchestrator extension for CloudStack.

pub mod api;
pub mod error;
pub mod model;
pub mod retry;
pub mod settings;
pub mod task;
pub mod time;
pub mod transport;
pub mod upid;

use ext_sdk::{Action, Invocation, Meta, Response, not_implemented, unsupported_action};

/// Custom actions this extension answers (matched case-insensitively).
pub const CUSTOM_ACTIONS: &[&str] = &[
    "ListSnapshots",
    "CreateSnapshot",
    "RestoreSnapshot",
    "DeleteSnapshot",
    "Suspend",
    "Resume",
];

/// Identity of the binary.
pub const META: Meta = Meta {
    name: "proxmox-ext",
    version: env!("CARGO_PKG_VERSION"),
    about: "CloudStack orchestrator extension for Proxmox VE (REST API)",
    actions: &[
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
    ],
};

/// Dispatches one invocation.
pub fn handle(inv: &Invocation) -> anyhow::Result<Response> {
    match &inv.action {
        Action::Custom(c) if !CUSTOM_ACTIONS.iter().any(|n| c.is(n)) => {
            Err(unsupported_action(&inv.action, META.actions))
        }
        other => Err(not_implemented(other)),
    }
}
