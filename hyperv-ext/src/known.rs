//! The CloudStack UUID of each instance name, as this management server has seen them: every
//! action on a VM comes with both, `statuses` with neither. With this record `statuses` can
//! leave out a VM whose name is one of CloudStack's but whose ownership line names another
//! UUID (another CloudStack's VM, one left from before a reinstall), which `status` refuses,
//! instead of reporting its state as that instance's. A name never seen is reported as the
//! host says (nothing better is known).
//!
//! One small file per name (`<state dir>/instance-uuids/<name>`, holding the UUID), written
//! by rename so a reader never sees half of one; a name's UUID does not change, so concurrent
//! writers write the same thing. Best effort: a record that cannot be read or written is
//! logged and never fails an action.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ext_sdk::state_dir::StateDir;

use crate::validate;

/// The environment variable naming the state directory.
pub const ENV: &str = "HYPERV_EXT_STATE_DIR";

const STATE_DIR: StateDir = StateDir {
    extension: "hyperv-ext",
    env: ENV,
    holds: "the CloudStack UUID of each instance name, which statuses needs to tell \
            CloudStack's VMs from same-named VMs marked for other UUIDs",
};

/// The record in one state directory.
#[derive(Debug, Clone)]
pub struct Known {
    dir: PathBuf,
}

impl Known {
    /// The record in the state directory (`state_dir` detail, environment, default); `None`
    /// (logged) when there is no usable one.
    pub fn open(configured: Option<PathBuf>) -> Option<Known> {
        match STATE_DIR.resolve(configured) {
            Ok(dir) => Some(Known {
                dir: dir.join("instance-uuids"),
            }),
            Err(e) => {
                log::warn!("{e}; statuses cannot tell same-named VMs of other UUIDs apart");
                None
            }
        }
    }

    #[cfg(test)]
    pub fn at(dir: &Path) -> Known {
        Known {
            dir: dir.to_path_buf(),
        }
    }

    /// The file for `name`; `None` for a name that is no valid VM name (names come from the
    /// host in `statuses`, and only a valid one is a safe file name).
    fn file(&self, name: &str) -> Option<PathBuf> {
        validate::vm_name(name).ok().map(|n| self.dir.join(n))
    }

    /// The UUID CloudStack sent with `name`, if an action on it ran here.
    pub fn uuid_of(&self, name: &str) -> Option<String> {
        let text = fs::read_to_string(self.file(name)?).ok()?;
        let uuid = text.trim();
        (!uuid.is_empty()).then(|| uuid.to_owned())
    }

    /// Records that CloudStack calls `uuid` `name`.
    pub fn remember(&self, name: &str, uuid: &str) {
        if self.uuid_of(name).as_deref() == Some(uuid) {
            return;
        }
        let Some(file) = self.file(name) else { return };
        if let Err(e) = write(&self.dir, &file, uuid) {
            log::warn!(
                "cannot record CloudStack UUID {uuid} of {name} in {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn write(dir: &Path, file: &Path, uuid: &str) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    out.write_all(uuid.as_bytes())?;
    drop(out);
    fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn remembers_each_names_uuid_and_refuses_unsafe_names() {
        let tmp = tempfile::tempdir().unwrap();
        let known = Known::at(&tmp.path().join("instance-uuids"));
        assert_eq!(known.uuid_of("i-2-45-VM"), None);
        known.remember("i-2-45-VM", "126f4562");
        known.remember("i-2-46-VM", "aaaa");
        assert_eq!(known.uuid_of("i-2-45-VM").as_deref(), Some("126f4562"));
        known.remember("i-2-45-VM", "bbbb");
        assert_eq!(known.uuid_of("i-2-45-VM").as_deref(), Some("bbbb"));
        let file = tmp.path().join("instance-uuids/i-2-45-VM");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        for bad in ["../x", "a/b", "..", "CON", ""] {
            known.remember(bad, "u");
            assert_eq!(known.uuid_of(bad), None, "{bad}");
        }
        let names: Vec<_> = fs::read_dir(tmp.path().join("instance-uuids"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
