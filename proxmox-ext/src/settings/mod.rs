//! Settings, read from CloudStack details with the same keys as upstream's `proxmox.py`, so
//! existing CloudStack setups keep working, into one typed struct per action.
//!
//! Connection details (`url`, `user`, `token`, `secret`, `verify_tls_certificate`,
//! `ca_certificate`, `tls_fingerprint`) come from the host, else the extension; `node` and
//! `network_bridge` from the host only; template and instance details (`template_type`, `template_id`, `iso_path`,
//! `iso_os_type`, `disk_size_gb`, `storage`, `is_full_clone`, `vm_name`) from
//! `externaldetails.virtualmachine`; `vmid_range` and `state_dir` (what `prepare` uses to hand
//! out VMIDs) from the host, the cluster mapping or the extension; the snapshot actions'
//! parameters from the custom action. Every key is declared once below and listed in
//! [`DETAILS`]; what an action reads is one struct:
//!
//! | action | settings |
//! |---|---|
//! | `prepare` | [`Prepare`] |
//! | `statuses` | [`Connection`] |
//! | every VM action | [`VmAction`] (connection and VM), plus: |
//! | `create` | [`Create`] |
//! | `CreateSnapshot` | [`NewSnapshot`] |
//! | `RestoreSnapshot`, `DeleteSnapshot` | [`snapshot_name`] |
//!
//! Each is read through one [`ext_sdk::DetailReader`], so a misconfigured setup gets one
//! error naming every problem.

use ext_sdk::{Detail, Kind, Level};

mod connection;
mod create;
mod prepare;
mod snapshot;
mod vm;

pub use connection::{ApiUrl, Connection};
pub use create::{Create, Source};
pub use prepare::Prepare;
pub use snapshot::{NewSnapshot, snapshot_name};
pub use vm::VmAction;

const HOST_OR_EXTENSION: &[Level] = &[Level::Host, Level::Extension];
const VM: &[Level] = &[Level::VirtualMachine];
/// Where a management server or zone gets its ids from (host, cluster mapping, extension).
const SERVER_OR_ZONE: &[Level] = &[Level::Host, Level::ResourceMap, Level::Extension];
const PARAMETER: &[Level] = &[Level::Parameter];

/// What the actions on one VM (all but these) read: the VM's identity.
const NOT_VM: &[&str] = &["prepare", "statuses", "check"];
const CREATE: &[&str] = &["create"];
const PREPARE: &[&str] = &["prepare"];

/// `template_type`'s values: clone a template, or install from an ISO.
pub const TEMPLATE_TYPES: &[&str] = &["template", "iso"];
/// The `ostype` values Proxmox VE knows (`iso_os_type`).
pub const OS_TYPES: &[&str] = &[
    "other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24",
    "l26", "solaris",
];

pub const URL: Detail = Detail::new("url", HOST_OR_EXTENSION)
    .kind(Kind::Format("URL: https://host[:port], host or host:port"))
    .required()
    .hint("Proxmox API address, e.g. https://pve1:8006 or pve1 (port 8006 by default)");
pub const USER: Detail = Detail::new("user", HOST_OR_EXTENSION)
    .kind(Kind::Format("user@realm, or user@realm!tokenid"))
    .required()
    .hint("owner of the API token, e.g. root@pam");
pub const TOKEN: Detail = Detail::new("token", HOST_OR_EXTENSION)
    .kind(Kind::Format("token id"))
    .required_when("unless user names the token (user@realm!tokenid)")
    .hint("API token id, the part after '!' in user@realm!tokenid");
pub const SECRET: Detail = Detail::new("secret", HOST_OR_EXTENSION)
    .secret()
    .required()
    .hint("the API token's secret (a UUID), only the part after '=' of user@realm!tokenid=secret");
pub const NODE: Detail = Detail::new("node", &[Level::Host])
    .kind(Kind::Format("node name"))
    .required()
    .hint("Proxmox node name this CloudStack host stands for, e.g. pve1");
pub const NETWORK_BRIDGE: Detail = Detail::new("network_bridge", &[Level::Host])
    .required_when("when the VM has NICs")
    .used_by(CREATE)
    .hint("bridge the VM NICs attach to, e.g. vmbr0");
pub const VERIFY_TLS: Detail = Detail::new("verify_tls_certificate", HOST_OR_EXTENSION)
    .kind(Kind::Bool)
    .default_value("true")
    .hint("whether the API's certificate is checked; false skips the check (logged as a warning on every action)");
pub const CA_CERTIFICATE: Detail = Detail::new("ca_certificate", HOST_OR_EXTENSION)
    .kind(Kind::Format("PEM file path, or the PEM itself"))
    .default_described("the system trust store")
    .hint("a PEM file to trust, e.g. a copy of the cluster's /etc/pve/pve-root-ca.pem, or the PEM itself");
pub const TLS_FINGERPRINT: Detail = Detail::new("tls_fingerprint", HOST_OR_EXTENSION)
    .kind(Kind::Format("SHA-256 fingerprint, AB:CD:...:EF"))
    .hint(
        "SHA-256 fingerprint of the node's certificate as the Proxmox VE GUI shows it (Node > System > Certificates) or pvenode cert info prints it, e.g. AB:CD:...:EF; wins over the two above",
    );

pub const VMID_RANGE: Detail = Detail::new("vmid_range", SERVER_OR_ZONE)
    .kind(Kind::Format("VMID range first-last, e.g. 20000-29999"))
    .default_described("the whole id space, from /cluster/nextid")
    .used_by(PREPARE)
    .hint("the VMIDs prepare may hand out, e.g. 20000-29999: give each management server or zone deploying into one Proxmox cluster its own range");
pub const STATE_DIR: Detail = Detail::new("state_dir", SERVER_OR_ZONE)
    .kind(Kind::Path)
    .default_described("proxmox-ext in the home of the management server's user ($HOME/proxmox-ext: /var/lib/cloudstack/management/proxmox-ext on Debian and Ubuntu, /var/cloudstack/management/proxmox-ext on EL), else $TMPDIR/proxmox-ext-<uid>")
    .used_by(PREPARE)
    .hint("directory for the VMID ledger (the PROXMOX_EXT_STATE_DIR environment variable sets it too)");

pub const TEMPLATE_TYPE: Detail = Detail::new("template_type", VM)
    .kind(Kind::Choice(TEMPLATE_TYPES))
    .default_described("iso when only iso_path is set, else template")
    .used_by(CREATE)
    .hint("whether create clones a Proxmox template or installs from an ISO");
pub const TEMPLATE_ID: Detail = Detail::new("template_id", VM)
    .kind(Kind::Number)
    .required_when("for template deploys")
    .used_by(CREATE)
    .hint("VMID of the Proxmox template to clone");
pub const ISO_PATH: Detail = Detail::new("iso_path", VM)
    .kind(Kind::Format("ISO volume id, storage:iso/name.iso"))
    .required_when("for ISO deploys")
    .used_by(CREATE)
    .hint("ISO volume, e.g. local:iso/debian-12.iso");
pub const ISO_OS_TYPE: Detail = Detail::new("iso_os_type", VM)
    .kind(Kind::Choice(OS_TYPES))
    .default_value(DEFAULT_OS_TYPE)
    .used_by(CREATE)
    .hint("Proxmox ostype of an ISO install, e.g. l26 or win11");
pub const DISK_SIZE_GB: Detail = Detail::new("disk_size_gb", VM)
    .kind(Kind::Number)
    .default_value("64")
    .used_by(CREATE)
    .hint("size of an ISO install's new disk in GiB");
pub const STORAGE: Detail = Detail::new("storage", VM)
    .kind(Kind::Format("storage id"))
    .default_described("local-lvm for ISO installs; a full clone stays on the template's storage")
    .used_by(CREATE)
    .hint("Proxmox storage for new disks, e.g. local-lvm; never sent for linked clones");
pub const IS_FULL_CLONE: Detail = Detail::new("is_full_clone", VM)
    .kind(Kind::Bool)
    .default_value("false")
    .used_by(CREATE)
    .hint("full clone instead of a linked clone (linked clones need a template with base- disks)");
pub const VM_NAME: Detail = Detail::new("vm_name", VM)
    .kind(Kind::Format("Proxmox VM name"))
    .default_described("the instance name")
    .used_by_all_but(NOT_VM)
    .exact()
    .hint("Proxmox VM name (letters, digits, '-', '.')");
pub const PROXMOX_VMID: Detail = Detail::new("proxmox_vmid", &[Level::VmDetail])
    .kind(Kind::Number)
    .required()
    .used_by_all_but(NOT_VM)
    .hint("set by the prepare action; the VM's Proxmox id");

pub const SNAP_NAME: Detail = Detail::new("snap_name", PARAMETER)
    .exact()
    .required()
    .used_by(&["CreateSnapshot", "RestoreSnapshot", "DeleteSnapshot"])
    .hint("letter first, then letters, digits, '-' or '_'");
pub const SNAP_DESCRIPTION: Detail = Detail::new("snap_description", PARAMETER)
    .used_by(&["CreateSnapshot"])
    .hint("the snapshot's description");
pub const SNAP_SAVE_MEMORY: Detail = Detail::new("snap_save_memory", PARAMETER)
    .kind(Kind::Bool)
    .default_value("false")
    .used_by(&["CreateSnapshot"])
    .hint("save the VM's memory with the snapshot (running VMs only)");

/// Every detail this extension reads (the SDK's own, such as `log_file`, are in
/// [`ext_sdk::logging::DETAILS`]): what a settings reference or a typo check enumerates.
pub const DETAILS: &[Detail] = &[
    URL,
    USER,
    TOKEN,
    SECRET,
    NODE,
    NETWORK_BRIDGE,
    VERIFY_TLS,
    CA_CERTIFICATE,
    TLS_FINGERPRINT,
    VMID_RANGE,
    STATE_DIR,
    TEMPLATE_TYPE,
    TEMPLATE_ID,
    ISO_PATH,
    ISO_OS_TYPE,
    DISK_SIZE_GB,
    STORAGE,
    IS_FULL_CLONE,
    VM_NAME,
    PROXMOX_VMID,
    SNAP_NAME,
    SNAP_DESCRIPTION,
    SNAP_SAVE_MEMORY,
];

// Each key once: checked when the extension compiles.
const _: () = assert!(
    ext_sdk::details::keys_are_unique(&[DETAILS, ext_sdk::logging::DETAILS]),
    "a detail key or alias is declared twice"
);

/// The API port when `url` names none (pveproxy's).
pub const DEFAULT_API_PORT: u16 = 8006;
/// Whether the API's certificate is checked when `verify_tls_certificate` is not set.
pub const DEFAULT_VERIFY_TLS: bool = true;
/// `iso_os_type` when not set: Linux 2.6 and later.
pub const DEFAULT_OS_TYPE: &str = "l26";
/// `disk_size_gb` when not set: the size of an ISO install's new disk, in GiB.
pub const DEFAULT_ISO_DISK_GB: u32 = 64;
/// `storage` for an ISO install's new disk when not set.
pub const DEFAULT_ISO_STORAGE: &str = "local-lvm";
/// `is_full_clone` when not set: a linked clone.
pub const DEFAULT_FULL_CLONE: bool = false;
/// `snap_save_memory` when not set.
pub const DEFAULT_SAVE_MEMORY: bool = false;

#[cfg(test)]
mod secret_tests {
    use ext_sdk::Payload;
    use serde_json::json;

    use super::*;

    /// A secret detail's value cannot reach an error: not through the reader the actions use,
    /// nor through any parser or rejection (which quote the value on purpose here), for every
    /// secret detail this extension declares, at every level it is read from.
    #[test]
    fn no_secret_details_value_reaches_an_error() {
        let secrets: Vec<&Detail> = DETAILS
            .iter()
            .filter(|d| d.secret || d.secret_when.is_some())
            .collect();
        let keys: Vec<&str> = secrets.iter().map(|d| d.key).collect();
        assert_eq!(keys, ["secret"]);
        for detail in secrets {
            for value in [
                "5f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
                "root@pam!cloudstack=5f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
                "x",
            ] {
                for level in detail.levels {
                    let map = match level {
                        Level::Host => "host",
                        Level::ResourceMap => "resourcemap",
                        Level::Extension => "extension",
                        other => panic!("a secret at level {other:?}"),
                    };
                    // Every other connection detail missing or invalid, so the reader fails.
                    let doc = json!({"externaldetails": {map: {detail.key: value, "url": "::"}}});
                    let p = Payload::from_slice(doc.to_string().as_bytes(), "test").unwrap();
                    let errors = [
                        p.read(Connection::read).map(drop),
                        p.read(|d| d.optional_with(detail, |v| Err::<(), _>(format!("bad: {v}"))))
                            .map(drop),
                        p.read(|d| d.reject(detail, format!("{value} conflicts"))),
                    ];
                    for error in errors {
                        let text = error.unwrap_err().to_string();
                        if value.len() >= ext_sdk::redact::MIN_SECRET_LEN {
                            assert!(!text.contains(value), "{text}");
                            assert!(!text.contains("5f0c1d2e-3b4a"), "{text}");
                        } else {
                            assert!(!text.contains(&format!("'{value}'")), "{text}");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ext_sdk::details::DefaultValue;

    #[test]
    fn the_declarations_are_complete_and_their_defaults_are_the_code_s() {
        assert_eq!(
            ext_sdk::reference::problems(&crate::META),
            Vec::<String>::new()
        );
        let literal = |d: &Detail| match d.default {
            DefaultValue::Value(v) => v.to_string(),
            other => panic!("{}: {other:?}", d.key),
        };
        assert_eq!(literal(&VERIFY_TLS), DEFAULT_VERIFY_TLS.to_string());
        assert_eq!(literal(&ISO_OS_TYPE), DEFAULT_OS_TYPE);
        assert_eq!(literal(&DISK_SIZE_GB), DEFAULT_ISO_DISK_GB.to_string());
        assert_eq!(literal(&IS_FULL_CLONE), DEFAULT_FULL_CLONE.to_string());
        assert_eq!(literal(&SNAP_SAVE_MEMORY), DEFAULT_SAVE_MEMORY.to_string());
        assert!(OS_TYPES.contains(&DEFAULT_OS_TYPE));
    }
}
