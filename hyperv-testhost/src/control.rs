//! Fault knobs, set by tests through a control file (sshd scrubs the environment, so a file
//! is the only channel into the ForceCommand). Absent file or field = normal behaviour.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// When not empty, the knobs apply only to these scripts (by name, e.g. `create`); every
    /// other script runs normally.
    pub only_scripts: Vec<String>,
    /// Sleep before doing anything (the session may be closed meanwhile: then nothing runs,
    /// like Windows killing the job object of a closed session).
    pub sleep_before_ms: u64,
    /// Sleep after applying the operation, before answering.
    pub sleep_after_ms: u64,
    /// Without Hyper-V rights: `Get-VMHost` throws and `Get-VM` lists nothing.
    pub permission_denied: bool,
    /// Print junk instead of a result line and exit 1.
    pub garbage: bool,
    /// Write the answer, then die from SIGKILL (the channel closes without an exit status).
    pub kill_after_output: bool,
    /// Write this many bytes of CLIXML noise to stderr before answering.
    pub stderr_flood: usize,
    /// A cmdlet throws when the script reaches this create step
    /// (`disk`, `vm`, `network`, `media`, `start`), or, for any other script, at its first
    /// state change (`any`).
    pub throw_at: Option<String>,
    /// Undo steps of create's rollback throw too.
    pub rollback_throws: bool,
    /// PowerShell dies when the script is about to run this cmdlet (e.g. `MoveItemCommand`,
    /// `SetVM`): what was done so far stays, nothing after it runs (no rollback), and no
    /// answer is written, as when Windows kills the session's job mid-way.
    pub kill_at: Option<String>,
    /// What `$PSVersionTable.PSVersion` says; Windows Server's 5.1 when not set.
    pub powershell_version: Option<String>,
    /// The Hyper-V PowerShell module is not installed: `Get-Module -ListAvailable` lists
    /// nothing and every `Hyper-V\...` cmdlet is not found.
    pub no_hyperv_module: bool,
}

impl Knobs {
    pub fn load(path: &Path) -> Knobs {
        load_json(path)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        save_json(self, path)
    }
}

/// A JSON file's value; the default when it is absent or unreadable.
pub(crate) fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes `value` as JSON, atomically (readers never see half a file).
pub(crate) fn save_json(value: &impl Serialize, path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}
