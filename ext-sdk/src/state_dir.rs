//! A state directory: what must outlive one invocation of an extension (Proxmox's VMID
//! ledger, Hyper-V's record of the UUIDs it has seen) lives there.
//!
//! Where it is, first match wins:
//! 1. the `state_dir` detail (host, cluster mapping or extension), when set;
//! 2. the extension's environment variable (`<NAME>_STATE_DIR`) of the management server;
//! 3. `<extension>` in the running user's home, when the home exists and the directory can be
//!    written: on a management server the `cloud` user's home is CloudStack's data directory
//!    (`/var/lib/cloudstack/management` on Debian and Ubuntu, `/var/cloudstack/management` on
//!    EL), so the state sits next to CloudStack's own data;
//! 4. `<temp dir>/<extension>-<uid>` (usually `/tmp`), private to the user, when none of the
//!    above applies (a machine that is not a management server, a read-only data directory).
//!
//! A directory an operator configured (1 or 2) must be usable: if it is not, that is an error
//! naming the setting, never a silent fallback to somewhere else (two processes of one
//! management server must share the directory).

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where one extension keeps its state.
#[derive(Debug, Clone, Copy)]
pub struct StateDir {
    /// The extension's name, e.g. `proxmox-ext`: the default directory's and the fallback's.
    pub extension: &'static str,
    /// The environment variable naming the directory, e.g. `PROXMOX_EXT_STATE_DIR`.
    pub env: &'static str,
    /// What the directory holds and why, for the error when it cannot be used.
    pub holds: &'static str,
}

/// Where CloudStack keeps its own data on a Debian or Ubuntu management server: the default's
/// parent when the running user has no usable home.
pub const CLOUDSTACK_DATA: &str = "/var/lib/cloudstack/management";

/// Where a state directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `state_dir` detail.
    Detail,
    /// The extension's environment variable.
    Env,
    /// The private fallback in the temporary directory.
    Fallback,
}

/// A state directory that cannot be used.
#[derive(Debug)]
pub struct StateDirError {
    /// The directory.
    pub path: PathBuf,
    /// Where the path came from.
    pub origin: Origin,
    /// Why it cannot be used.
    pub source: io::Error,
    /// Whose directory it is.
    pub dir: StateDir,
}

impl fmt::Display for StateDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match self.origin {
            Origin::Detail => "the state_dir detail".to_owned(),
            Origin::Env => format!("the {} environment variable", self.dir.env),
            Origin::Fallback => "the fallback in the temporary directory".to_owned(),
        };
        write!(
            f,
            "cannot use the state directory {} (from {origin}): {}. It holds {}: make it a directory the management server's user can write, or set the state_dir detail or the {} environment variable to one",
            self.path.display(),
            self.source,
            self.dir.holds,
            self.dir.env
        )
    }
}

impl std::error::Error for StateDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl StateDir {
    /// The default directory: the extension's name in the running user's home (`$HOME`, else
    /// the password database), or next to Debian's CloudStack data without a usable home.
    pub fn default_path(&self) -> PathBuf {
        std::env::home_dir()
            .filter(|home| home.is_absolute() && home.parent().is_some())
            .unwrap_or_else(|| PathBuf::from(CLOUDSTACK_DATA))
            .join(self.extension)
    }

    /// Finds (and creates) the state directory; `configured` is the `state_dir` detail.
    pub fn resolve(&self, configured: Option<PathBuf>) -> Result<PathBuf, StateDirError> {
        let from_env = std::env::var_os(self.env)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        self.resolve_from(
            configured,
            from_env,
            &self.default_path(),
            &std::env::temp_dir(),
        )
    }

    fn resolve_from(
        &self,
        configured: Option<PathBuf>,
        from_env: Option<PathBuf>,
        default: &Path,
        temp: &Path,
    ) -> Result<PathBuf, StateDirError> {
        let error = |path: PathBuf, origin, source| StateDirError {
            path,
            origin,
            source,
            dir: *self,
        };
        let chosen = configured
            .map(|p| (p, Origin::Detail))
            .or(from_env.map(|p| (p, Origin::Env)));
        if let Some((path, origin)) = chosen {
            return match usable(&path) {
                Ok(()) => Ok(path),
                Err(source) => Err(error(path, origin, source)),
            };
        }
        if default.parent().is_some_and(Path::is_dir) {
            match usable(default) {
                Ok(()) => return Ok(default.to_path_buf()),
                Err(e) => log::debug!(
                    "default state directory {} unusable ({e}); falling back to the temporary directory",
                    default.display()
                ),
            }
        }
        let fallback = crate::files::private_dir_in(temp, self.extension).map_err(|source| {
            error(
                temp.join(format!("{}-<uid>", self.extension)),
                Origin::Fallback,
                source,
            )
        })?;
        match usable(&fallback) {
            Ok(()) => Ok(fallback),
            Err(source) => Err(error(fallback, Origin::Fallback, source)),
        }
    }
}

/// Creates `dir` (and its parents, all 0750 whatever the umask) if needed and proves it can be
/// written.
fn usable(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&probe)?;
    fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DIR: StateDir = StateDir {
        extension: "proxmox-ext",
        env: "PROXMOX_EXT_STATE_DIR",
        holds: "the ledger",
    };

    fn resolve_from(
        configured: Option<PathBuf>,
        from_env: Option<PathBuf>,
        default: &Path,
        temp: &Path,
    ) -> Result<PathBuf, StateDirError> {
        DIR.resolve_from(configured, from_env, default, temp)
    }

    #[test]
    fn configured_directories_win_and_must_work() {
        let tmp = tempfile::tempdir().unwrap();
        let detail = tmp.path().join("from-detail/nested");
        let env = tmp.path().join("from-env");
        let default = tmp.path().join("cloudstack/management/proxmox-ext");
        let got = resolve_from(
            Some(detail.clone()),
            Some(env.clone()),
            &default,
            tmp.path(),
        )
        .unwrap();
        assert_eq!(got, detail);
        assert!(detail.is_dir(), "created with its parents");
        let got = resolve_from(None, Some(env.clone()), &default, tmp.path()).unwrap();
        assert_eq!(got, env);

        // A configured directory that cannot be made is an error naming the setting.
        let file = tmp.path().join("a-file");
        fs::write(&file, "x").unwrap();
        let err = resolve_from(Some(file.join("sub")), None, &default, tmp.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("a-file/sub (from the state_dir detail)"),
            "{text}"
        );
        let err = resolve_from(None, Some(file.join("sub")), &default, tmp.path()).unwrap_err();
        assert_eq!(err.origin, Origin::Env);
        assert!(
            err.to_string()
                .contains("the PROXMOX_EXT_STATE_DIR environment variable")
        );
    }

    #[test]
    fn default_next_to_cloudstack_data_else_a_private_temp_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("cloudstack/management");
        let default = data.join("proxmox-ext");
        let temp = tmp.path().join("tmp");
        fs::create_dir_all(&temp).unwrap();

        // Not a management server: no CloudStack data directory, so the temp fallback.
        let got = resolve_from(None, None, &default, &temp).unwrap();
        assert!(
            got.starts_with(&temp)
                && got
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("proxmox-ext-"),
            "{}",
            got.display()
        );
        let mode = fs::metadata(&got).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private: {mode:o}");
        assert!(
            !default.exists(),
            "the default is not created without its parent"
        );
        // Used again as it is.
        assert_eq!(resolve_from(None, None, &default, &temp).unwrap(), got);

        // A temp fallback others can read is refused.
        fs::set_permissions(&got, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(resolve_from(None, None, &default, &temp).is_err());

        // On a management server: next to CloudStack's data.
        fs::create_dir_all(&data).unwrap();
        assert_eq!(resolve_from(None, None, &default, &temp).unwrap(), default);
        assert!(default.is_dir());
    }
}
