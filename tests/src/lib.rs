//! Shared support for the end-to-end tests.

pub mod proxmox;
pub mod pve;
