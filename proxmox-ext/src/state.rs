//! The state directory: what must outlive one invocation (the VMID ledger) lives there.
//!
//! Where it is, first match wins:
//! 1. the `state_dir` detail (host, cluster mapping or extension), when set;
//! 2. the `PROXMOX_EXT_STATE_DIR` environment variable of the management server;
//! 3. `/var/lib/cloudstack/management/proxmox-ext`, next to CloudStack's own data (the `cloud`
//!    user's home on a management server), when `/var/lib/cloudstack/management` exists and
//!    the directory can be written;
//! 4. `<temp dir>/proxmox-ext-<uid>` (usually `/tmp`), private to the user, when none of the
//!    above applies (a machine that is not a management server, a read-only data directory).
//!
//! A directory an operator configured (1 or 2) must be usable: if it is not, that is an error
//! naming the setting, never a silent fallback to somewhere else (two processes of one
//! management server must share the ledger to be safe).

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::debug;

/// The environment variable naming the state directory.
pub const ENV: &str = "PROXMOX_EXT_STATE_DIR";
/// The default state directory, next to CloudStack's data.
pub const DEFAULT: &str = "/var/lib/cloudstack/management/proxmox-ext";

/// A configured state directory that cannot be used.
#[derive(Debug)]
pub struct StateDirError {
    pub path: PathBuf,
    /// Where the path came from, e.g. "the state_dir detail".
    pub origin: &'static str,
    pub source: io::Error,
}

impl fmt::Display for StateDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot use the state directory {} (from {}): {}. It holds the ledger that keeps concurrent deploys from getting the same VMID: make it a directory the management server's user can write, or set the state_dir detail or the {ENV} environment variable to one",
            self.path.display(),
            self.origin,
            self.source
        )
    }
}

impl std::error::Error for StateDirError {}

const ORIGIN_DETAIL: &str = "the state_dir detail";
const ORIGIN_ENV: &str = "the PROXMOX_EXT_STATE_DIR environment variable";
const ORIGIN_FALLBACK: &str = "the fallback in the temporary directory";

/// Finds (and creates) the state directory; `configured` is the `state_dir` detail.
pub fn resolve(configured: Option<PathBuf>) -> Result<PathBuf, StateDirError> {
    let from_env = std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    resolve_from(
        configured,
        from_env,
        Path::new(DEFAULT),
        &std::env::temp_dir(),
    )
}

fn resolve_from(
    configured: Option<PathBuf>,
    from_env: Option<PathBuf>,
    default: &Path,
    temp: &Path,
) -> Result<PathBuf, StateDirError> {
    let chosen = configured
        .map(|p| (p, ORIGIN_DETAIL))
        .or(from_env.map(|p| (p, ORIGIN_ENV)));
    if let Some((path, origin)) = chosen {
        return usable(&path)
            .map(|()| path.clone())
            .map_err(|source| StateDirError {
                path,
                origin,
                source,
            });
    }
    if default.parent().is_some_and(Path::is_dir) {
        match usable(default) {
            Ok(()) => return Ok(default.to_path_buf()),
            Err(e) => debug!(
                "default state directory {} unusable ({e}); falling back to the temporary directory",
                default.display()
            ),
        }
    }
    let fallback = private_temp_dir(temp).map_err(|source| StateDirError {
        path: temp.join("proxmox-ext-<uid>"),
        origin: ORIGIN_FALLBACK,
        source,
    })?;
    usable(&fallback).map_err(|source| StateDirError {
        path: fallback.clone(),
        origin: ORIGIN_FALLBACK,
        source,
    })?;
    Ok(fallback)
}

/// Where the ledger would live, found without creating anything: the directory, where it
/// came from, and why it cannot be used (or `None`). Writing is proven by a probe file that is
/// removed at once; a directory that does not exist yet is judged by its nearest existing
/// parent (prepare creates the rest).
pub fn inspect(configured: Option<PathBuf>) -> (PathBuf, &'static str, Option<String>) {
    let from_env = std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let (dir, origin) = match (configured, from_env) {
        (Some(p), _) => (p, ORIGIN_DETAIL),
        (None, Some(p)) => (p, ORIGIN_ENV),
        (None, None) if Path::new(DEFAULT).parent().is_some_and(Path::is_dir) => {
            (PathBuf::from(DEFAULT), "the default")
        }
        (None, None) => (
            std::env::temp_dir().join(format!(
                "proxmox-ext-{}",
                ext_sdk::files::current_uid().unwrap_or_default()
            )),
            ORIGIN_FALLBACK,
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

/// `<temp>/proxmox-ext-<uid>`, private to this user (see [`ext_sdk::files::private_dir_in`]).
fn private_temp_dir(temp: &Path) -> io::Result<PathBuf> {
    ext_sdk::files::private_dir_in(temp, "proxmox-ext")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        assert_eq!(err.origin, ORIGIN_ENV);
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
