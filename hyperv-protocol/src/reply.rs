//! What each script answers on success (its `Done @{...}`), one type per answer shape. A
//! field the script always sends is required: a reply without it is malformed, never read
//! as a default.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `create.ps1`: the new VM.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Created {
    /// Hyper-V's id of the VM (a GUID).
    pub id: String,
}

/// `cleanup-create.ps1`: what an interrupted create left and cleanup removed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CleanedUp {
    /// Whether the VM this run created was there (and was removed).
    pub removed_vm: bool,
    /// Files removed (the VM's disk, this run's `.partial` copy).
    #[serde(deserialize_with = "ps_array")]
    pub removed: Vec<String>,
    /// VMs of the name this run did not create (no line with its create id), left alone.
    pub kept: u64,
}

/// `start.ps1`, `suspend.ps1`, `resume.ps1`: the VM's state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PowerChange {
    /// Hyper-V's `VMState` name before the script acted.
    pub before: String,
    pub state: String,
}

/// How `Stop-Ours` (`stop-vm.ps1`) stopped the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// The guest shut down when asked.
    Graceful,
    /// Powered off (asked to, or after the guest did not shut down in time).
    Turnoff,
    /// It was not running.
    #[serde(rename = "none")]
    AlreadyOff,
}

/// `stop.ps1` (for a VM that exists) and `reboot.ps1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stopped {
    pub how: How,
    /// The state afterwards (`Running` again after a reboot).
    pub state: String,
}

/// `delete.ps1` (for a VM that existed): its disks, removed or kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    #[serde(deserialize_with = "ps_array")]
    pub removed: Vec<String>,
    /// Outside `vhd_path` or in use.
    #[serde(deserialize_with = "ps_array")]
    pub kept: Vec<String>,
}

/// `status.ps1` (for a VM that exists).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VmState {
    pub state: String,
}

/// `statuses.ps1`: every VM on the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VmStates {
    #[serde(deserialize_with = "ps_array")]
    pub vms: Vec<NamedState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NamedState {
    pub name: String,
    pub state: String,
    /// The CloudStack UUID of its ownership line; empty without one.
    pub uuid: String,
}

/// `list-snapshots.ps1`: the VM's checkpoints, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Snapshots {
    #[serde(deserialize_with = "ps_array")]
    pub snapshots: Vec<SnapshotRow>,
}

/// `create-snapshot.ps1`, `restore-snapshot.ps1`, `delete-snapshot.ps1`: the checkpoint and
/// the VM's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SnapshotChange {
    pub snapshot: SnapshotRow,
    pub state: String,
}

/// One checkpoint (`Snap-Row` in `snapshot.ps1`), in the order CloudStack shows its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    pub name: String,
    pub id: String,
    /// UTC, ISO 8601 with a `Z`.
    pub created: String,
    /// The parent checkpoint's name; empty for a root checkpoint.
    pub parent: String,
    /// `Standard` or `Production`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `check.ps1`: what a read-only look at the host found. Each probe answers on its own, so
/// one that failed (an ACL that cannot be read, `Get-VMHost` without rights) leaves the others.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HostFacts {
    /// `$PSVersionTable.PSVersion`, e.g. `5.1.20348.2400`.
    pub powershell: String,
    /// The account as Windows names it: `HOST\user` or `DOMAIN\user`.
    pub user: String,
    /// Whether this session's token holds Hyper-V Administrators (S-1-5-32-578).
    pub hyperv_admin: bool,
    /// Whether it holds Administrators (S-1-5-32-544) enabled, i.e. an elevated session.
    pub admin: bool,
    /// The newest installed Hyper-V module's version; `None`: the module is not installed.
    pub module: Option<String>,
    /// What `Get-VMHost` answered; `None` without the module.
    pub vmhost: Option<Probed<VmHost>>,
    /// Every virtual switch's name; `None` when `Get-VMHost` failed or without the module.
    #[serde(default, deserialize_with = "ps_array_or_null")]
    pub switches: Option<Vec<String>>,
    /// The folders asked about; `None` when not asked.
    pub vhd_path: Option<Folder>,
    pub vm_path: Option<Folder>,
    /// Whether the files asked about exist (`Test-Path -PathType Leaf`); `None` when not asked.
    pub template: Option<bool>,
    pub iso: Option<bool>,
}

/// A probe's answer, or the error that stopped it (`Probe` in `check.ps1`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Probed<T> {
    Failed { error: String },
    Found(T),
}

/// `Get-VMHost`: the host's name and its default folders for disks and configurations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VmHost {
    pub name: String,
    pub vhd_path: String,
    pub vm_path: String,
}

/// A folder `check.ps1` looked at (`Folder`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Folder {
    /// `Test-Path -PathType Container`: false for a file, or a folder the account cannot see.
    pub exists: bool,
    /// Its ACL as it applies to the account; `None` when the folder does not exist.
    #[serde(default)]
    pub acl: Option<Probed<Acl>>,
}

/// A folder's access rules for the account, as raw `FileSystemRights` masks (ORed, allow and
/// deny apart): for the folder itself and for the files created in it. Windows PowerShell
/// sends them as signed 32-bit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Acl {
    pub allow: i64,
    pub deny: i64,
    pub file_allow: i64,
    pub file_deny: i64,
}

/// `FileSystemRights` bits (System.Security.AccessControl), for reading an [`Acl`].
pub mod rights {
    pub const LIST_DIRECTORY: u32 = 0x1;
    pub const CREATE_FILES: u32 = 0x2;
    pub const CREATE_DIRECTORIES: u32 = 0x4;
    pub const DELETE_SUBDIRECTORIES_AND_FILES: u32 = 0x40;
    pub const DELETE: u32 = 0x1_0000;
    pub const WRITE: u32 = 0x116;
    pub const READ_AND_EXECUTE: u32 = 0x12_00A9;
    pub const MODIFY: u32 = 0x13_01BF;
    pub const FULL_CONTROL: u32 = 0x1F_01FF;
    /// The generic rights an inheritable rule may carry, and what they mean for a file
    /// (FILE_GENERIC_READ, _WRITE, _EXECUTE and FILE_ALL_ACCESS).
    const GENERIC: [(u32, u32); 4] = [
        (0x8000_0000, 0x12_0089),
        (0x4000_0000, 0x12_0116),
        (0x2000_0000, 0x12_00A0),
        (0x1000_0000, FULL_CONTROL),
    ];

    /// A mask as Windows keeps it (the low 32 bits), generic rights mapped to specific ones.
    pub fn specific(mask: i64) -> u32 {
        let [a, b, c, d, ..] = mask.to_le_bytes();
        let mask = u32::from_le_bytes([a, b, c, d]);
        GENERIC
            .iter()
            .filter(|(generic, _)| mask & generic != 0)
            .fold(mask & 0x0FFF_FFFF, |acc, (_, specific)| acc | specific)
    }

    /// The mask in FileSystemRights' words: the largest named set it holds (FullControl,
    /// Modify), else its parts.
    pub fn describe(mask: u32) -> String {
        if mask & FULL_CONTROL == FULL_CONTROL {
            return "FullControl".into();
        }
        if mask & MODIFY == MODIFY {
            return "Modify".into();
        }
        let parts: Vec<&str> = [
            (READ_AND_EXECUTE, "ReadAndExecute"),
            (WRITE, "Write"),
            (LIST_DIRECTORY, "ListDirectory"),
            (CREATE_FILES, "CreateFiles"),
            (CREATE_DIRECTORIES, "CreateDirectories"),
            (DELETE, "Delete"),
            (
                DELETE_SUBDIRECTORIES_AND_FILES,
                "DeleteSubdirectoriesAndFiles",
            ),
        ]
        .iter()
        .fold((Vec::new(), 0u32), |(mut names, covered), &(bits, name)| {
            if mask & bits == bits && covered & bits != bits {
                names.push(name);
                (names, covered | bits)
            } else {
                (names, covered)
            }
        })
        .0;
        if parts.is_empty() {
            "no write or read rights".into()
        } else {
            parts.join(", ")
        }
    }
}

impl Acl {
    /// What the account may do in the folder itself: allowed and not denied.
    pub fn folder_rights(&self) -> u32 {
        rights::specific(self.allow) & !rights::specific(self.deny)
    }

    /// What the account may do with the files it creates there (rules they inherit).
    pub fn file_rights(&self) -> u32 {
        rights::specific(self.file_allow) & !rights::specific(self.file_deny)
    }

    /// What `create` and `delete` need and this ACL does not grant, in words: create files and
    /// folders in it (a disk, a VM's folder), and delete the files made there (the disk of a
    /// deleted VM, create's `.partial` copy). Empty when nothing is missing.
    pub fn missing_for_vms(&self) -> Vec<&'static str> {
        use rights::{CREATE_DIRECTORIES, CREATE_FILES, DELETE, DELETE_SUBDIRECTORIES_AND_FILES};
        let folder = self.folder_rights();
        let mut missing = Vec::new();
        if folder & CREATE_FILES == 0 {
            missing.push("create files (CreateFiles)");
        }
        if folder & CREATE_DIRECTORIES == 0 {
            missing.push("create folders (CreateDirectories)");
        }
        if folder & DELETE_SUBDIRECTORIES_AND_FILES == 0 && self.file_rights() & DELETE == 0 {
            missing.push("delete the files it creates (Delete)");
        }
        missing
    }
}

fn ps_array_or_null<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(value) => ps_array(value).map(Some).map_err(D::Error::custom),
    }
}

/// The answer of a script that accepts a VM being gone (`status`, `stop`, `delete`):
/// `{"found":false}`, or `{"found":true, ...}` with the rest of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// No VM has the name (the script proved its rights first, so absent is absent).
    Absent,
    Found(T),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lookup<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Value>::deserialize(deserializer)?;
        match fields.get("found") {
            Some(Value::Bool(false)) => Ok(Lookup::Absent),
            Some(Value::Bool(true)) => T::deserialize(Value::Object(fields))
                .map(Lookup::Found)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom("missing boolean field `found`")),
        }
    }
}

/// A list as Windows PowerShell 5.1 may write it: a JSON array, or (for arrays carrying
/// extended type data) `{"value":[..],"Count":n}`.
pub(crate) fn ps_array<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let items = match Value::deserialize(deserializer)? {
        Value::Array(items) => items,
        Value::Object(mut wrapper) => match wrapper.remove("value") {
            Some(Value::Array(items)) => items,
            _ => return Err(D::Error::custom("expected an array")),
        },
        other => {
            return Err(D::Error::custom(format!(
                "expected an array, found {other}"
            )));
        }
    };
    items
        .into_iter()
        .map(|item| T::deserialize(item).map_err(D::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: DeserializeOwned>(v: Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn row(parent: &str) -> Value {
        json!({"name": "a", "id": "1", "created": "2026-01-01T00:00:00Z", "parent": parent,
               "type": "Standard"})
    }

    #[test]
    fn lookup_reads_absent_found_and_refuses_neither() {
        assert_eq!(
            read::<Lookup<VmState>>(json!({"found": false})).unwrap(),
            Lookup::Absent
        );
        assert_eq!(
            read::<Lookup<VmState>>(json!({"found": true, "state": "Running"})).unwrap(),
            Lookup::Found(VmState {
                state: "Running".into()
            })
        );
        let missing = read::<Lookup<VmState>>(json!({"found": true})).unwrap_err();
        assert!(missing.contains("missing field `state`"), "{missing}");
        let no_found = read::<Lookup<VmState>>(json!({"state": "Running"})).unwrap_err();
        assert!(no_found.contains("found"), "{no_found}");
    }

    #[test]
    fn lists_survive_the_5_1_value_count_wrapper_and_nothing_else() {
        let wrapped = json!({"snapshots": {"value": [row("")], "Count": 1}});
        assert_eq!(read::<Snapshots>(wrapped).unwrap().snapshots.len(), 1);
        assert!(
            read::<Snapshots>(json!({"snapshots": []}))
                .unwrap()
                .snapshots
                .is_empty()
        );
        assert!(read::<Snapshots>(json!({"snapshots": null})).is_err());
        assert!(read::<Snapshots>(json!({"snapshots": "x"})).is_err());
        assert!(read::<Snapshots>(json!({})).is_err());
    }

    #[test]
    fn a_snapshot_row_needs_every_field_and_keeps_cloudstacks_order() {
        let parsed: SnapshotRow = read(row("")).unwrap();
        assert_eq!(parsed.parent, "");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), row(""));
        let keys: Vec<String> = match serde_json::to_value(&parsed).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => unreachable!(),
        };
        assert_eq!(keys, ["name", "id", "created", "parent", "type"]);
        // A root checkpoint's parent is '' ([string] in Snap-Row), never null.
        let mut null_parent = row("");
        null_parent["parent"] = Value::Null;
        assert!(read::<SnapshotRow>(null_parent).is_err());
    }

    fn facts_json() -> Value {
        json!({"powershell": "5.1.20348.2400", "user": "HV1\\cloud", "hyperv_admin": true,
               "admin": false, "module": "2.0.0.0",
               "vmhost": {"name": "HV1", "vhd_path": "C:\\VHD", "vm_path": "C:\\VM"},
               "switches": {"value": ["External"], "Count": 1},
               "vhd_path": {"exists": true, "acl": {"allow": 0x0013_01BF, "deny": 0,
                                                    "file_allow": 0x0013_01BF, "file_deny": 0}},
               "vm_path": {"exists": false}, "template": true, "iso": null, "ok": true})
    }

    #[test]
    fn host_facts_read_every_probe_and_its_failures() {
        let facts: HostFacts = read(facts_json()).unwrap();
        assert_eq!(
            facts.switches.as_deref(),
            Some(&["External".to_owned()][..])
        );
        assert_eq!(
            facts.vmhost,
            Some(Probed::Found(VmHost {
                name: "HV1".into(),
                vhd_path: "C:\\VHD".into(),
                vm_path: "C:\\VM".into()
            }))
        );
        assert_eq!(
            facts.vm_path,
            Some(Folder {
                exists: false,
                acl: None
            })
        );
        assert_eq!((facts.template, facts.iso), (Some(true), None));
        let Some(Folder {
            acl: Some(Probed::Found(acl)),
            ..
        }) = facts.vhd_path
        else {
            panic!("an ACL")
        };
        assert!(acl.missing_for_vms().is_empty());

        let mut failed = facts_json();
        failed["vmhost"] = json!({"error": "You do not have the required permission"});
        failed["switches"] = Value::Null;
        failed["module"] = Value::Null;
        failed["vhd_path"]["acl"] =
            json!({"error": "Attempted to perform an unauthorized operation."});
        let facts: HostFacts = read(failed).unwrap();
        assert!(
            matches!(facts.vmhost, Some(Probed::Failed { error }) if error.contains("permission"))
        );
        assert_eq!((facts.switches, facts.module), (None, None));
        assert!(matches!(
            facts.vhd_path,
            Some(Folder {
                exists: true,
                acl: Some(Probed::Failed { .. })
            })
        ));
        let mut no_user = facts_json();
        no_user.as_object_mut().unwrap().remove("user");
        assert!(read::<HostFacts>(no_user).unwrap_err().contains("user"));
    }

    #[test]
    fn acl_masks_as_windows_evaluates_them() {
        use rights::{FULL_CONTROL, MODIFY, describe, specific};
        let acl = |allow: i64, deny: i64, file_allow: i64, file_deny: i64| Acl {
            allow,
            deny,
            file_allow,
            file_deny,
        };
        // Modify on the folder and its files (what the checklist asks for).
        assert!(
            acl(0x0013_01BF, 0, 0x0013_01BF, 0)
                .missing_for_vms()
                .is_empty()
        );
        // Read and execute only.
        assert_eq!(
            acl(0x0012_00A9, 0, 0x0012_00A9, 0).missing_for_vms(),
            [
                "create files (CreateFiles)",
                "create folders (CreateDirectories)",
                "delete the files it creates (Delete)"
            ]
        );
        // A deny rule wins over an allow rule.
        assert_eq!(
            acl(0x0013_01BF, 0x2, 0x0013_01BF, 0).missing_for_vms(),
            ["create files (CreateFiles)"]
        );
        // CREATOR OWNER's GENERIC_ALL (0x10000000) on inherit-only rules gives new files full
        // control; GENERIC_READ (0x80000000) arrives as a negative 32-bit number.
        assert!(acl(0x6, 0, 0x1000_0000, 0).missing_for_vms().is_empty());
        assert_eq!(specific(-2_147_483_648), 0x12_0089);
        assert_eq!(specific(0x1000_0000), FULL_CONTROL);
        // Deleting through the folder's DeleteSubdirectoriesAndFiles is enough too.
        assert!(acl(0x46, 0, 0, 0).missing_for_vms().is_empty());
        assert_eq!(describe(FULL_CONTROL), "FullControl");
        assert_eq!(describe(MODIFY | 0x40), "Modify");
        assert_eq!(describe(0x0012_00A9), "ReadAndExecute");
        assert_eq!(describe(0x0012_00A9 | 0x2), "ReadAndExecute, CreateFiles");
        assert_eq!(describe(0), "no write or read rights");
    }

    #[test]
    fn how_is_one_of_three_words() {
        let how = |s: &str| read::<Stopped>(json!({"how": s, "state": "Off"})).map(|s| s.how);
        assert_eq!(how("graceful"), Ok(How::Graceful));
        assert_eq!(how("turnoff"), Ok(How::Turnoff));
        assert_eq!(how("none"), Ok(How::AlreadyOff));
        assert!(how("sideways").is_err());
    }
}
