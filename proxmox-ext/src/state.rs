//! The state directory: what must outlive one invocation (the VMID ledger) lives there. Where
//! it is, and what happens when it cannot be used, is the SDK's rule for every extension
//! ([`ext_sdk::state_dir`]): the `state_dir` detail, else `PROXMOX_EXT_STATE_DIR`, else
//! `/var/lib/cloudstack/management/proxmox-ext`, else a private `<temp>/proxmox-ext-<uid>`.

use std::path::PathBuf;

use ext_sdk::state_dir::{StateDir, StateDirError};

/// The environment variable naming the state directory.
pub const ENV: &str = "PROXMOX_EXT_STATE_DIR";

const STATE_DIR: StateDir = StateDir {
    extension: "proxmox-ext",
    env: ENV,
    holds: "the ledger that keeps concurrent deploys from getting the same VMID",
};

/// Finds (and creates) the state directory; `configured` is the `state_dir` detail.
pub fn resolve(configured: Option<PathBuf>) -> Result<PathBuf, StateDirError> {
    STATE_DIR.resolve(configured)
}
