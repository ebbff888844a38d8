//! End-to-end tests: the real release binaries, run the way CloudStack runs them, against real
//! peers (fakepve for Proxmox VE, a real OpenSSH sshd with our fake PowerShell for Hyper-V).
//! One test binary (as ripgrep does): each module is one area.

mod contract;
mod hyperv_injection;
mod hyperv_lifecycle;
mod hyperv_safety;
mod hyperv_transport;
mod hyperv_winrm;
mod proxmox_create;
mod proxmox_errors;
mod proxmox_identity;
mod proxmox_lifecycle;
mod proxmox_power;
mod proxmox_settings;
mod proxmox_snapshots;
mod proxmox_tasks;
mod winrm_client;
mod winrm_peer;
