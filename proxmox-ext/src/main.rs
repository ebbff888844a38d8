//! A CloudStack Orchestrator extension for Proxmox VE, over its REST API.
//!
//! A drop-in for upstream's `proxmox.sh`/`proxmox.py` (same details, same custom actions),
//! built on `ext-sdk` for the CloudStack side of the contract.
//!
//! Layers, bottom up: [`transport`] sends one HTTP request; [`error`] reads every shape of
//! PVE error; [`api`] is the typed API with [`retry`] and deadline bounds; [`task`] waits for
//! PVE tasks; [`vm`] and [`identity`] find a VM and make sure it is CloudStack's;
//! [`allocation`] hands out VMIDs that concurrent deploys do not share, keeping a [`ledger`]
//! in the [`state`] directory; [`actions`] implements what CloudStack asks for.

#![forbid(unsafe_code)]

mod actions;
mod allocation;
mod api;
mod error;
mod identity;
mod ledger;
mod model;
mod node;
mod privileges;
mod retry;
mod running;
mod settings;
mod state;
mod task;
#[cfg(test)]
mod testing;
mod time;
mod transport;
mod upid;
mod vm;

/// The binary's identity for `--help`, `--version` and the log.
const META: ext_sdk::Meta = ext_sdk::Meta {
    name: "proxmox-ext",
    version: env!("CARGO_PKG_VERSION"),
    about: "CloudStack Orchestrator extension for Proxmox VE",
    actions: actions::ACTIONS,
    details: settings::DETAILS,
};

fn main() -> std::process::ExitCode {
    ext_sdk::run(&META, actions::handle)
}
