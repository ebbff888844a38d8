//! End-to-end tests: the real release binaries, run the way CloudStack runs them, against real
//! peers (fakepve for Proxmox VE, a real OpenSSH sshd with our fake PowerShell for Hyper-V).
//! One test binary (as ripgrep does): each module is one area.

#![forbid(unsafe_code)]
// Test code: a failed unwrap is a failed test, and timings printed to stderr are for whoever
// reads the test output (the lints stay on for the support library in src/).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::print_stderr,
    reason = "measurements for whoever reads the test output"
)]

mod contract;
mod exact_names;
mod file_modes;
mod hyperv_adoption;
mod hyperv_check;
mod hyperv_cleanup;
mod hyperv_errors;
mod hyperv_gone;
mod hyperv_injection;
mod hyperv_known_hosts;
mod hyperv_lifecycle;
mod hyperv_safety;
mod hyperv_transport;
mod hyperv_winrm;
mod operator_errors;
mod operator_files;
mod plain_ascii;
mod proxmox_check;
mod proxmox_create;
mod proxmox_errors;
mod proxmox_faults;
mod proxmox_identity;
mod proxmox_lifecycle;
mod proxmox_migration;
mod proxmox_power;
mod proxmox_recovery;
mod proxmox_settings;
mod proxmox_snapshots;
mod proxmox_tasks;
mod proxmox_tls;
mod register;
mod secrets_in_errors;
mod settings_docs;
mod winrm_client;
mod winrm_peer;
