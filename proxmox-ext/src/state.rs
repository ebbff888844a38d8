//! The state directory: what must outlive one invocation (the VMID ledger) lives there. Where
//! it is, and what happens when it cannot be used, is the SDK's rule for every extension
//! ([`ext_sdk::state_dir`]): the `state_dir` detail, else `PROXMOX_EXT_STATE_DIR`, else
//! `proxmox-ext` in the running user's home (CloudStack's data directory for `cloud`), else a
//! private `<temp>/proxmox-ext-<uid>`.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// Where the ledger would live, found without creating anything: the directory, where it
/// came from, and why it cannot be used (or `None`). Writing is proven by a probe file that is
/// removed at once; a directory that does not exist yet is judged by its nearest existing
/// parent (prepare creates the rest).
pub fn inspect(configured: Option<PathBuf>) -> (PathBuf, &'static str, Option<String>) {
    let from_env = std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let default = STATE_DIR.default_path();
    let (dir, origin) = match (configured, from_env) {
        (Some(p), _) => (p, "the state_dir detail"),
        (None, Some(p)) => (p, "the PROXMOX_EXT_STATE_DIR environment variable"),
        (None, None) if default.parent().is_some_and(Path::is_dir) => (default, "the default"),
        (None, None) => (
            std::env::temp_dir().join(format!(
                "proxmox-ext-{}",
                ext_sdk::files::current_uid().unwrap_or_default()
            )),
            "the fallback in the temporary directory",
        ),
    };
    let existing = dir.ancestors().find(|a| a.exists()).map(Path::to_path_buf);
    let problem = match existing {
        None => Some("no parent directory exists".to_string()),
        Some(existing) if !existing.is_dir() => {
            Some(format!("{} is not a directory", existing.display()))
        }
        Some(existing) => {
            let probe = existing.join(format!(".proxmox-ext-check-{}", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&probe)
            {
                Ok(_) => {
                    let _ = fs::remove_file(&probe);
                    None
                }
                Err(e) => Some(format!("{} cannot be written: {e}", existing.display())),
            }
        }
    };
    (dir, origin, problem)
}
