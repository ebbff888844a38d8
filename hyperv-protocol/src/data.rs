//! What each script receives (`$P` in the scripts): the data blob, as typed values. The keys
//! are the scripts' parameter names.

use serde::{Serialize, Serializer};

/// No data besides the invocation id (`statuses.ps1`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NoFields {}

/// A script about one VM: its Hyper-V name and its CloudStack UUID (the ownership line in
/// the VM's Notes), plus the script's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct VmData<F = NoFields> {
    pub name: String,
    pub uuid: String,
    /// The operator allows adopting the only VM of the name when it has no ownership line
    /// (`adopt_unmarked_vms`); sent only when set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    #[serde(flatten)]
    pub fields: F,
}

/// `stop.ps1` and `reboot.ps1` (`Stop-Ours`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopFields {
    /// Power off at once instead of asking the guest.
    pub turnoff: bool,
    /// Seconds the guest may take to shut down.
    pub wait: u64,
    /// Power off when the guest did not shut down in time.
    pub fallback: bool,
}

/// `delete.ps1`: where the VM's disks may be removed.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteFields {
    pub vhd_path: String,
}

/// The checkpoint scripts: the checkpoint's name (or id).
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotFields {
    pub snapshot: String,
}

/// `create.ps1`. Short keys: this blob is base64 inside base64 on the longest command line of
/// all, and must fit cmd.exe's limit.
#[derive(Debug, Clone, Serialize)]
pub struct CreateData {
    pub name: String,
    pub uuid: String,
    #[serde(rename = "gen")]
    pub generation: u8,
    /// Startup memory in bytes.
    pub mem: u64,
    pub cpus: u32,
    /// The virtual switch's exact name.
    #[serde(rename = "sw")]
    pub switch: String,
    /// The VM's disk, to be copied from `template` or created empty.
    pub disk: String,
    #[serde(rename = "tpl", skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<String>,
    /// Size in bytes of the empty disk for an ISO install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The folder for the VM's configuration.
    #[serde(rename = "dir")]
    pub vm_path: String,
    /// Secure boot `On`/`Off` (generation 2 only).
    #[serde(rename = "sb", skip_serializing_if = "Option::is_none")]
    pub secure_boot: Option<String>,
    /// The secure boot template, e.g. `MicrosoftUEFICertificateAuthority`.
    #[serde(rename = "sbt", skip_serializing_if = "Option::is_none")]
    pub secure_boot_template: Option<String>,
    /// In device order.
    pub nics: Vec<NicData>,
}

/// One NIC of `create.ps1`, sent as `"MAC:VLAN"` (`"MAC:"` when untagged), which the script
/// splits with `-split ':'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicData {
    /// 12 upper-case hex digits, as Hyper-V takes and reports a MAC.
    pub mac: String,
    pub vlan: Option<u16>,
}

impl Serialize for NicData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let vlan = self.vlan.map(|tag| tag.to_string()).unwrap_or_default();
        serializer.collect_str(&format_args!("{}:{vlan}", self.mac))
    }
}

/// `cleanup-create.ps1`: the VM and the disk an interrupted create may have left. The create
/// is named by the invocation id both scripts carry (the same run sends both): create writes
/// it into what it makes, cleanup removes only what bears it.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupData {
    pub name: String,
    pub uuid: String,
    pub disk: String,
}

/// What marks a name as one create gives a VM before it carries its Notes: `<name>` + this
/// + `<invocation id>`. Instance names never contain it (`vm_name` refuses them).
pub const CREATING_MARK: &str = ".cs-create-";

/// Hyper-V's limit on a VM name, in characters.
pub const MAX_VM_NAME: usize = 100;

/// The name create's `New-VM` gives the VM (`$P.name+'.cs-create-'+$P.id` in create.ps1 and
/// cleanup-create.ps1), renamed to `name` once the Notes prove whose it is: carrying the
/// run's invocation id, it proves the VM is this run's from its first moment, so the cleanup
/// after a killed create can remove it. The VM's folder under `vm_path` keeps this name.
pub fn creating_name(name: &str, id: &str) -> String {
    format!("{name}{CREATING_MARK}{id}")
}

/// Whether a VM's name is a create's temporary one ([`creating_name`]): never an instance.
pub fn is_creating_name(name: &str) -> bool {
    name.contains(CREATING_MARK)
}

/// `check.ps1`: what to look at besides the host itself; each `None` is not probed (its
/// detail is not set, or not valid).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckData {
    /// Folders: exist, and may the account write there (from their ACL, without writing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhd_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_path: Option<String>,
    /// Files: exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn creating_names_carry_the_run() {
        let name = creating_name("i-2-45-VM", "0a1b2c3d");
        assert_eq!(name, "i-2-45-VM.cs-create-0a1b2c3d");
        assert!(is_creating_name(&name) && !is_creating_name("i-2-45-VM"));
    }

    #[test]
    fn vm_data_is_flat_and_nics_are_mac_colon_vlan() {
        let stop = VmData {
            name: "vm".into(),
            uuid: "u".into(),
            adopt: false,
            fields: StopFields {
                turnoff: false,
                wait: 30,
                fallback: true,
            },
        };
        assert_eq!(
            serde_json::to_value(&stop).unwrap(),
            json!({"name": "vm", "uuid": "u", "turnoff": false, "wait": 30, "fallback": true})
        );
        let plain = VmData {
            name: "vm".into(),
            uuid: "u".into(),
            adopt: false,
            fields: NoFields {},
        };
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"name": "vm", "uuid": "u"})
        );
        let adopting = VmData {
            adopt: true,
            ..plain
        };
        assert_eq!(
            serde_json::to_value(&adopting).unwrap(),
            json!({"name": "vm", "uuid": "u", "adopt": true})
        );
        let nics = [
            NicData {
                mac: "020100CC0001".into(),
                vlan: Some(1577),
            },
            NicData {
                mac: "020100CC0002".into(),
                vlan: None,
            },
        ];
        assert_eq!(
            serde_json::to_value(nics).unwrap(),
            json!(["020100CC0001:1577", "020100CC0002:"])
        );
    }
}
