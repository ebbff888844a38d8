//! What `create` reads from the template and instance details (and the host's bridge): where
//! the disk comes from and where the NICs attach.

use ext_sdk::DetailReader;

use super::{
    DEFAULT_FULL_CLONE, DEFAULT_ISO_DISK_GB, DEFAULT_ISO_STORAGE, DEFAULT_OS_TYPE, DISK_SIZE_GB,
    IS_FULL_CLONE, ISO_OS_TYPE, ISO_PATH, NETWORK_BRIDGE, OS_TYPES, STORAGE, TEMPLATE_ID,
    TEMPLATE_TYPE,
};
use crate::model::Vmid;

/// Where the new VM's disk comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Clone a template; `storage` only for full clones (PVE refuses it for linked ones).
    Clone {
        template: Vmid,
        full: bool,
        storage: Option<String>,
    },
    /// A new disk plus the ISO as CD-ROM.
    Iso {
        iso: String,
        os_type: String,
        disk_gb: u32,
        storage: String,
    },
}

/// The settings of `create` beside the VM's own ([`super::VmAction`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub source: Source,
    /// The bridge NICs attach to: required when the VM has NICs.
    pub bridge: Option<String>,
}

impl Create {
    /// Reads the details; `has_nics` makes `network_bridge` required.
    pub fn read(d: &mut DetailReader<'_>, has_nics: bool) -> Create {
        let is_iso: Option<bool> = d.optional_with(&TEMPLATE_TYPE, parse_template_type);
        let template: Option<Vmid> = d.optional_with(&TEMPLATE_ID, str::parse::<Vmid>);
        let iso: Option<String> = d.optional_with(&ISO_PATH, parse_iso);
        // Without template_type, whichever of template_id and iso_path is set decides.
        let is_iso = is_iso.unwrap_or(template.is_none() && iso.is_some());
        d.require_if(is_iso, &ISO_PATH);
        d.require_if(!is_iso, &TEMPLATE_ID);
        let full: bool = d.optional(&IS_FULL_CLONE).unwrap_or(DEFAULT_FULL_CLONE);
        let storage: Option<String> = d.optional_with(&STORAGE, parse_storage);
        let source = match (is_iso, template) {
            (true, _) => Source::Iso {
                iso: iso.unwrap_or_default(),
                os_type: d
                    .optional_with(&ISO_OS_TYPE, parse_os_type)
                    .unwrap_or_else(|| DEFAULT_OS_TYPE.into()),
                disk_gb: d
                    .optional_with(&DISK_SIZE_GB, parse_disk_size)
                    .unwrap_or(DEFAULT_ISO_DISK_GB),
                storage: storage.unwrap_or_else(|| DEFAULT_ISO_STORAGE.into()),
            },
            (false, Some(template)) => Source::Clone {
                template,
                full,
                // A full clone without `storage` stays on the template's storage.
                storage: if full { storage } else { None },
            },
            // template_id is missing: recorded above, so finish() fails before this is used.
            (false, None) => Source::Iso {
                iso: String::new(),
                os_type: DEFAULT_OS_TYPE.into(),
                disk_gb: DEFAULT_ISO_DISK_GB,
                storage: DEFAULT_ISO_STORAGE.into(),
            },
        };
        d.require_if(has_nics, &NETWORK_BRIDGE);
        let bridge = d.optional_with(&NETWORK_BRIDGE, parse_bridge);
        Create { source, bridge }
    }
}

fn parse_template_type(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "template" => Ok(false),
        "iso" => Ok(true),
        _ => Err("expected 'template' or 'iso'".into()),
    }
}

fn parse_os_type(text: &str) -> Result<String, String> {
    if OS_TYPES.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("expected one of {}", OS_TYPES.join(", ")))
    }
}

fn parse_storage(text: &str) -> Result<String, String> {
    let ok = text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(text.to_string())
    } else {
        Err("a storage id has letters, digits, '-', '_' or '.', e.g. local-lvm".into())
    }
}

fn parse_disk_size(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| (1..=1_048_576).contains(&n))
        .ok_or_else(|| "expected a whole number of GiB, e.g. 64".into())
}

fn parse_iso(text: &str) -> Result<String, String> {
    let ok = text
        .split_once(':')
        .is_some_and(|(storage, volume)| !storage.is_empty() && !volume.is_empty())
        && !text.contains([',', '=', ' ']);
    if ok {
        Ok(text.to_string())
    } else {
        Err("expected an ISO volume id, e.g. local:iso/debian-12.iso".into())
    }
}

fn parse_bridge(text: &str) -> Result<String, String> {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(text.to_string())
    } else {
        Err("a bridge name has letters, digits, '-', '_' or '.', e.g. vmbr0".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_parsers() {
        assert_eq!(parse_template_type("ISO"), Ok(true));
        assert_eq!(parse_template_type("Template"), Ok(false));
        assert!(parse_template_type("qcow2").is_err());
        assert!(parse_os_type("l26").is_ok());
        assert!(parse_os_type("linux").is_err());
        assert!(parse_storage("local-lvm").is_ok());
        assert!(parse_storage("local lvm").is_err());
        assert_eq!(parse_disk_size("64"), Ok(64));
        assert!(parse_disk_size("0").is_err());
        assert!(parse_disk_size("64G").is_err());
        assert!(parse_iso("local:iso/x.iso").is_ok());
        assert!(parse_iso("x.iso").is_err());
        assert!(parse_iso("local:iso/x.iso,media=disk").is_err());
        assert!(parse_bridge("vmbr0").is_ok());
        assert!(parse_bridge("vmbr 0").is_err());
    }

    #[test]
    fn defaults_operators_can_see() {
        let payload = ext_sdk::Payload::from_slice(
            br#"{"externaldetails":{"virtualmachine":{"iso_path":"local:iso/x.iso"}}}"#,
            "test",
        )
        .unwrap();
        let create = payload.read(|d| Create::read(d, false)).unwrap();
        assert_eq!(
            create,
            Create {
                source: Source::Iso {
                    iso: "local:iso/x.iso".into(),
                    os_type: DEFAULT_OS_TYPE.into(),
                    disk_gb: DEFAULT_ISO_DISK_GB,
                    storage: DEFAULT_ISO_STORAGE.into(),
                },
                bridge: None,
            }
        );
    }
}
