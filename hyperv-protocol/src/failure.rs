//! The failures a script reports (`Fail 'CODE' detail` in the scripts): one enum for the
//! scripts' codes, the actions that turn them into sentences, and the test host that imitates
//! the scripts. A script sends `{"ok":false,"code":"VM_NOT_FOUND","detail":...}`; what the
//! detail means depends on the code, so each variant names it.

use serde::{Deserialize, Serialize};

use crate::reply::ps_array;

/// A script ran and refused or failed, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Failure {
    /// `Get-VMHost` failed: the account lacks Hyper-V rights (`rights.ps1`).
    AccessDenied {
        #[serde(rename = "detail")]
        message: String,
    },
    /// VMs have the name, but none carries this VM's ownership line (`find.ps1`).
    NotOurs {
        #[serde(rename = "detail")]
        count: u64,
        /// The CloudStack UUIDs their ownership lines name.
        #[serde(deserialize_with = "ps_array")]
        marked: Vec<String>,
    },
    /// VMs have the name (or upstream's `<name>-<uuid>`), none carries an ownership line, and
    /// none may be adopted (`find.ps1`).
    Unmarked {
        #[serde(rename = "detail")]
        count: u64,
    },
    /// More than one VM with the name carries this VM's ownership line (`find.ps1`).
    VmAmbiguous {
        #[serde(rename = "detail")]
        count: u64,
    },
    /// No VM has the name, where the script needs one (`find.ps1`).
    VmNotFound,
    /// The VM's state does not allow the operation; the state it is in.
    InvalidState {
        #[serde(rename = "detail")]
        state: String,
    },
    /// The guest did not shut down and the policy forbids turning it off (`stop-vm.ps1`).
    StopFailed {
        #[serde(rename = "detail")]
        reason: String,
    },
    /// `Remove-VM` returned but the VM is still listed (`delete.ps1`).
    StillExists,
    /// No checkpoint has that name or id (`snapshot.ps1`).
    SnapshotNotFound,
    /// Several checkpoints have that name (`snapshot.ps1`).
    SnapshotAmbiguous {
        #[serde(rename = "detail")]
        count: u64,
    },
    /// A checkpoint with that name exists already (`create-snapshot.ps1`).
    SnapshotExists,
    /// A VM with the name exists already; nothing was created (`create.ps1`).
    VmExists,
    /// Not exactly one virtual switch has the name: how many have it (`create.ps1`).
    SwitchNotFound {
        #[serde(rename = "detail")]
        count: u64,
    },
    /// The disk create would write exists already (`create.ps1`).
    DiskExists,
    /// A create step failed and its undos ran (`create.ps1`).
    CreateFailed {
        /// The step that failed: `disk`, `vm`, `network`, `media` or `start`.
        step: String,
        /// The step's error.
        #[serde(rename = "detail")]
        error: String,
        /// The errors of undo steps that failed too; empty when everything was removed.
        #[serde(deserialize_with = "ps_array")]
        rollback: Vec<String>,
    },
    /// A cmdlet threw and the script's outer `catch` caught it (`tail.ps1`).
    PsError {
        #[serde(rename = "detail")]
        message: String,
        /// PowerShell's `FullyQualifiedErrorId`.
        fqid: String,
    },
}

impl Failure {
    /// The code as the scripts write it.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::AccessDenied { .. } => "ACCESS_DENIED",
            Failure::NotOurs { .. } => "NOT_OURS",
            Failure::Unmarked { .. } => "UNMARKED",
            Failure::VmAmbiguous { .. } => "VM_AMBIGUOUS",
            Failure::VmNotFound => "VM_NOT_FOUND",
            Failure::InvalidState { .. } => "INVALID_STATE",
            Failure::StopFailed { .. } => "STOP_FAILED",
            Failure::StillExists => "STILL_EXISTS",
            Failure::SnapshotNotFound => "SNAPSHOT_NOT_FOUND",
            Failure::SnapshotAmbiguous { .. } => "SNAPSHOT_AMBIGUOUS",
            Failure::SnapshotExists => "SNAPSHOT_EXISTS",
            Failure::VmExists => "VM_EXISTS",
            Failure::SwitchNotFound { .. } => "SWITCH_NOT_FOUND",
            Failure::DiskExists => "DISK_EXISTS",
            Failure::CreateFailed { .. } => "CREATE_FAILED",
            Failure::PsError { .. } => "PS_ERROR",
        }
    }

    /// The script's `detail` as text, where it sent one.
    pub fn detail(&self) -> Option<String> {
        match self {
            Failure::AccessDenied { message } | Failure::PsError { message, .. } => {
                Some(message.clone())
            }
            Failure::NotOurs { count, .. }
            | Failure::Unmarked { count }
            | Failure::VmAmbiguous { count }
            | Failure::SnapshotAmbiguous { count }
            | Failure::SwitchNotFound { count } => Some(count.to_string()),
            Failure::InvalidState { state } => Some(state.clone()),
            Failure::StopFailed { reason } => Some(reason.clone()),
            Failure::CreateFailed { error, .. } => Some(error.clone()),
            Failure::VmNotFound
            | Failure::StillExists
            | Failure::SnapshotNotFound
            | Failure::SnapshotExists
            | Failure::VmExists
            | Failure::DiskExists => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.detail() {
            Some(detail) => write!(f, "{}: {detail}", self.code()),
            None => f.write_str(self.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn every_failure() -> Vec<Failure> {
        vec![
            Failure::AccessDenied {
                message: "no".into(),
            },
            Failure::NotOurs {
                count: 1,
                marked: vec!["u2".into()],
            },
            Failure::Unmarked { count: 1 },
            Failure::VmAmbiguous { count: 2 },
            Failure::VmNotFound,
            Failure::InvalidState {
                state: "Saved".into(),
            },
            Failure::StopFailed {
                reason: "timeout".into(),
            },
            Failure::StillExists,
            Failure::SnapshotNotFound,
            Failure::SnapshotAmbiguous { count: 3 },
            Failure::SnapshotExists,
            Failure::VmExists,
            Failure::SwitchNotFound { count: 0 },
            Failure::DiskExists,
            Failure::CreateFailed {
                step: "vm".into(),
                error: "boom".into(),
                rollback: vec!["undo failed".into()],
            },
            Failure::PsError {
                message: "m".into(),
                fqid: "Id".into(),
            },
        ]
    }

    #[test]
    fn code_is_the_tag_on_the_wire_and_round_trips() {
        for failure in every_failure() {
            let wire = serde_json::to_value(&failure).unwrap();
            assert_eq!(wire["code"], failure.code(), "{wire}");
            let back: Failure = serde_json::from_value(wire).unwrap();
            assert_eq!(back, failure);
        }
    }

    #[test]
    fn reads_what_the_scripts_send() {
        // `Fail 'VM_NOT_FOUND'` sends detail null; `Fail 'VM_AMBIGUOUS' $o.Count` a number.
        let read = |v: Value| serde_json::from_value::<Failure>(v);
        assert_eq!(
            read(json!({"code": "VM_NOT_FOUND", "detail": null})).unwrap(),
            Failure::VmNotFound
        );
        assert_eq!(
            read(json!({"code": "VM_AMBIGUOUS", "detail": 2})).unwrap(),
            Failure::VmAmbiguous { count: 2 }
        );
        // 5.1's array wrapper around the rollback errors.
        assert_eq!(
            read(
                json!({"code": "CREATE_FAILED", "step": "network", "detail": "x",
                        "rollback": {"value": ["a"], "Count": 1}})
            )
            .unwrap(),
            Failure::CreateFailed {
                step: "network".into(),
                error: "x".into(),
                rollback: vec!["a".into()]
            }
        );
        assert_eq!(
            Failure::InvalidState {
                state: "Saved".into()
            }
            .to_string(),
            "INVALID_STATE: Saved"
        );
        assert_eq!(Failure::StillExists.to_string(), "STILL_EXISTS");
    }

    #[test]
    fn a_failure_missing_its_detail_or_with_an_unknown_code_is_refused() {
        let read = |v: Value| {
            serde_json::from_value::<Failure>(v)
                .unwrap_err()
                .to_string()
        };
        assert!(read(json!({"code": "VM_AMBIGUOUS"})).contains("detail"));
        assert!(read(json!({"code": "PS_ERROR", "detail": "m"})).contains("fqid"));
        assert!(
            read(json!({"code": "CREATE_FAILED", "detail": "m", "rollback": []})).contains("step")
        );
        assert!(read(json!({"code": "NO_SUCH_CODE"})).contains("NO_SUCH_CODE"));
        assert!(read(json!({"detail": "m"})).contains("code"));
    }
}
