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

    #[test]
    fn how_is_one_of_three_words() {
        let how = |s: &str| read::<Stopped>(json!({"how": s, "state": "Off"})).map(|s| s.how);
        assert_eq!(how("graceful"), Ok(How::Graceful));
        assert_eq!(how("turnoff"), Ok(How::Turnoff));
        assert_eq!(how("none"), Ok(How::AlreadyOff));
        assert!(how("sideways").is_err());
    }
}
