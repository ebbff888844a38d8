//! The snapshot actions' parameters, with upstream's names (`snap_name`, `snap_description`,
//! `snap_save_memory`).

use ext_sdk::DetailReader;

use super::{DEFAULT_SAVE_MEMORY, SNAP_DESCRIPTION, SNAP_NAME, SNAP_SAVE_MEMORY};

/// What `CreateSnapshot` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    pub name: String,
    pub description: Option<String>,
    /// Save the VM's RAM too (only possible while it runs).
    pub save_memory: bool,
}

impl NewSnapshot {
    pub fn read(d: &mut DetailReader<'_>) -> NewSnapshot {
        NewSnapshot {
            name: snapshot_name(d),
            description: d.optional(&SNAP_DESCRIPTION),
            save_memory: d.optional(&SNAP_SAVE_MEMORY).unwrap_or(DEFAULT_SAVE_MEMORY),
        }
    }
}

/// The snapshot `RestoreSnapshot` and `DeleteSnapshot` act on (and `CreateSnapshot` makes).
pub fn snapshot_name(d: &mut DetailReader<'_>) -> String {
    d.required_with(&SNAP_NAME, parse_snapshot_name)
}

/// PVE's `pve-configid` (letter first, then letters, digits, '-' or '_'; at most 40), minus
/// its reserved names.
fn parse_snapshot_name(name: &str) -> Result<String, String> {
    let valid = name.len() >= 2
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(
            "a snapshot name has 2 to 40 letters, digits, '-' or '_', and starts with a letter"
                .into(),
        );
    }
    if name.eq_ignore_ascii_case("current") || name.eq_ignore_ascii_case("pending") {
        return Err(format!("'{name}' is reserved by Proxmox"));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        assert!(parse_snapshot_name("before-upgrade").is_ok());
        assert!(parse_snapshot_name("s_1").is_ok());
        for bad in [
            "",
            "a",
            "1abc",
            "bad.name",
            "with space",
            "current",
            "Pending",
            &"x".repeat(41),
        ] {
            assert!(parse_snapshot_name(bad).is_err(), "{bad}");
        }
    }
}
