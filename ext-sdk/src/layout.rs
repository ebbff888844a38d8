//! Where CloudStack looks for an extension's executable, derived exactly as it does.
//!
//! CloudStack turns an extension's name into a directory name (every character outside
//! `[a-zA-Z0-9._-]` becomes `_`, then the whole name is lower-cased: `Extension.getDirectoryName`)
//! and stores the `path` given to `createExtension` under that directory. So the extension
//! `ProxmoxRs` registered with `path=proxmox-ext` runs
//! `/usr/share/cloudstack-management/extensions/proxmoxrs/proxmox-ext`, and a path of
//! `ProxmoxRs/proxmox-ext` would point at `proxmoxrs/ProxmoxRs/proxmox-ext`, a file nobody
//! installed. Everything that needs the directory (the packages' maintainer scripts through
//! `--entry-point`, `--register`, the documentation's examples) takes it from
//! [`directory_name`].

use std::path::PathBuf;

/// CloudStack's extensions root on a management server. Since 4.21 it is a symlink to
/// `/etc/cloudstack/extensions`; older or hand-made layouts have a real directory here.
pub const EXTENSIONS_ROOT: &str = "/usr/share/cloudstack-management/extensions";

/// The extensions CloudStack ships. Their names exist in every CloudStack database and their
/// directories belong to the `cloudstack-management` package: never register or install over
/// them.
pub const BUILT_IN_EXTENSIONS: &[&str] = &["Proxmox", "HyperV", "MaaS"];

/// The directory CloudStack derives from an extension name: each character outside
/// `[a-zA-Z0-9._-]` becomes `_` (one per character, whatever its UTF-8 length), then ASCII
/// letters are lower-cased (the only letters left).
pub fn directory_name(extension_name: &str) -> String {
    extension_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Checks that `name` can be registered by this project: not empty, not a built-in extension
/// (compared case-insensitively, as CloudStack's database does), and giving a directory that
/// is a plain name (`.` or `..` would point outside the extension's own directory).
pub fn check_extension_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the extension name is empty".to_owned());
    }
    if name.trim() != name {
        return Err(format!(
            "the extension name '{name}' has leading or trailing spaces"
        ));
    }
    if let Some(built_in) = BUILT_IN_EXTENSIONS
        .iter()
        .find(|b| b.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "'{name}' is the name of CloudStack's built-in extension {built_in}; choose another name (--name)"
        ));
    }
    let dir = directory_name(name);
    if dir.chars().all(|c| c == '.') {
        return Err(format!(
            "the extension name '{name}' gives the directory '{dir}', which CloudStack would resolve outside the extensions root; choose another name"
        ));
    }
    Ok(())
}

/// The executable CloudStack runs for extension `extension_name` registered with
/// `path=<exe>`: `<EXTENSIONS_ROOT>/<directory_name>/<exe>`.
pub fn entry_point(extension_name: &str, exe: &str) -> PathBuf {
    PathBuf::from(EXTENSIONS_ROOT)
        .join(directory_name(extension_name))
        .join(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_follow_cloudstack() {
        for (name, dir) in [
            ("ProxmoxRs", "proxmoxrs"),
            ("HyperVRs", "hypervrs"),
            ("Proxmox", "proxmox"),
            ("my ext", "my_ext"),
            ("a.b_c-D", "a.b_c-d"),
            ("Ext/../x", "ext_.._x"),
            ("ext:1", "ext_1"),
            ("Éxt", "_xt"),
            ("ext\u{1F600}", "ext_"),
            ("tab\there", "tab_here"),
            ("ALLCAPS123", "allcaps123"),
            ("", ""),
            ("..", ".."),
        ] {
            assert_eq!(directory_name(name), dir, "{name:?}");
        }
    }

    #[test]
    fn names_that_cannot_be_registered() {
        assert!(check_extension_name("ProxmoxRs").is_ok());
        assert!(check_extension_name("Lab Proxmox").is_ok());
        for bad in [
            "",
            "  ",
            " ProxmoxRs",
            "proxmox",
            "HYPERV",
            "MaaS",
            ".",
            "..",
        ] {
            assert!(check_extension_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_extension_name("hyperv")
                .unwrap_err()
                .contains("built-in extension HyperV")
        );
        // A name of dots and spaces still becomes a real directory name.
        assert!(check_extension_name(". .").is_ok());
    }

    #[test]
    fn entry_points_live_in_the_lower_cased_directory() {
        assert_eq!(
            entry_point("ProxmoxRs", "proxmox-ext"),
            PathBuf::from("/usr/share/cloudstack-management/extensions/proxmoxrs/proxmox-ext")
        );
        assert_eq!(
            entry_point("Hyper-V Lab", "hyperv-ext"),
            PathBuf::from("/usr/share/cloudstack-management/extensions/hyper-v_lab/hyperv-ext")
        );
    }
}
