//! Files the extensions keep beside their work: a directory private to the user in a shared
//! temporary directory, the fallback of logs and state when the configured place fails.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The user id this process runs as (the owner of `/proc/self`), without `unsafe`.
pub fn current_uid() -> io::Result<u32> {
    Ok(fs::metadata("/proc/self")?.uid())
}

/// `<base>/<name>-<uid>`, made private to this user (0700); an existing one must be a real
/// directory owned by this user and closed to others (the base is shared, usually `/tmp`, so
/// anything else could be another user's trap).
pub fn private_dir_in(base: &Path, name: &str) -> io::Result<PathBuf> {
    let uid = current_uid()?;
    let dir = base.join(format!("{name}-{uid}"));
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} exists but is not a private directory of user {uid}",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_refused_when_others_can_read_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = private_dir_in(tmp.path(), "x-ext").unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(private_dir_in(tmp.path(), "x-ext").unwrap(), dir);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir_in(tmp.path(), "x-ext").is_err());
    }
}
