//! Each script with the type of the data it takes and of the answer it gives, so a caller
//! cannot send one script's data to another or read its answer as a third's.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::command::{CommandLine, CommandTooLong, command_line};
use crate::data::{
    CheckData, CleanupData, CreateData, DeleteFields, NoFields, SnapshotFields, StopFields, VmData,
};
use crate::failure::Failure;
use crate::frame::{self, ReplyError};
use crate::reply::{
    CleanedUp, Created, Deleted, HostFacts, Lookup, PowerChange, SnapshotChange, Snapshots,
    Stopped, VmState, VmStates,
};
use crate::script::Script;

/// Script `script`, which takes a `D` and answers an `R` (or a [`Failure`]).
pub struct Call<D, R> {
    script: Script,
    types: PhantomData<fn(&D) -> R>,
}

// Not derived: a derive would demand `D: Clone` and `R: Clone`.
impl<D, R> Clone for Call<D, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D, R> Copy for Call<D, R> {}

impl<D, R> std::fmt::Debug for Call<D, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call({})", self.script.name())
    }
}

impl<D: Serialize, R: DeserializeOwned> Call<D, R> {
    const fn new(script: Script) -> Self {
        Call {
            script,
            types: PhantomData,
        }
    }

    pub fn script(self) -> Script {
        self.script
    }

    /// The command line running this script with `data`; `id` (the invocation's) will frame
    /// its result line.
    pub fn command(self, data: &D, id: &str) -> Result<CommandLine, CommandError> {
        let text = self
            .script
            .render(data, id)
            .map_err(|error| CommandError::Data {
                script: self.script.name(),
                error,
            })?;
        command_line(self.script, &text).map_err(CommandError::TooLong)
    }

    /// This script's answer in `stdout`: the last line framed with `id`.
    pub fn read_result(self, stdout: &[u8], id: &str) -> Result<Result<R, Failure>, ReplyError> {
        frame::parse(stdout, id)
    }
}

/// A command line that could not be built; nothing was sent.
#[derive(Debug)]
pub enum CommandError {
    /// The data did not serialise to a JSON object (a bug in a data type).
    Data {
        script: &'static str,
        error: serde_json::Error,
    },
    TooLong(CommandTooLong),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Data { script, error } => {
                write!(f, "cannot encode the data for script '{script}': {error}")
            }
            CommandError::TooLong(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Data { error, .. } => Some(error),
            CommandError::TooLong(e) => Some(e),
        }
    }
}

pub const CREATE: Call<CreateData, Created> = Call::new(Script::Create);
pub const CLEANUP_CREATE: Call<CleanupData, CleanedUp> = Call::new(Script::CleanupCreate);
pub const START: Call<VmData, PowerChange> = Call::new(Script::Start);
pub const STOP: Call<VmData<StopFields>, Lookup<Stopped>> = Call::new(Script::Stop);
pub const REBOOT: Call<VmData<StopFields>, Stopped> = Call::new(Script::Reboot);
pub const DELETE: Call<VmData<DeleteFields>, Lookup<Deleted>> = Call::new(Script::Delete);
pub const STATUS: Call<VmData, Lookup<VmState>> = Call::new(Script::Status);
pub const STATUSES: Call<NoFields, VmStates> = Call::new(Script::Statuses);
pub const SUSPEND: Call<VmData, PowerChange> = Call::new(Script::Suspend);
pub const RESUME: Call<VmData, PowerChange> = Call::new(Script::Resume);
pub const LIST_SNAPSHOTS: Call<VmData, Snapshots> = Call::new(Script::ListSnapshots);
pub const CREATE_SNAPSHOT: Call<VmData<SnapshotFields>, SnapshotChange> =
    Call::new(Script::CreateSnapshot);
pub const RESTORE_SNAPSHOT: Call<VmData<SnapshotFields>, SnapshotChange> =
    Call::new(Script::RestoreSnapshot);
pub const DELETE_SNAPSHOT: Call<VmData<SnapshotFields>, SnapshotChange> =
    Call::new(Script::DeleteSnapshot);
pub const CHECK: Call<CheckData, HostFacts> = Call::new(Script::Check);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_COMMAND_LINE;
    use crate::data::NicData;

    /// Guards script growth: a create with four NICs, long paths and the UEFI CA template
    /// must still fit cmd.exe.
    #[test]
    fn a_large_realistic_create_fits_cmd_exe() {
        let nic = |mac: &str, vlan| NicData {
            mac: mac.into(),
            vlan,
        };
        let data = CreateData {
            name: "i-2-45-VM".into(),
            uuid: "126f4562-1f0f-4313-875e-6150cabeb72f".into(),
            generation: 2,
            mem: 4_294_967_296,
            cpus: 4,
            switch: "CloudStack External Switch".into(),
            disk: "D:\\Hyper-V\\Virtual Hard Disks\\i-2-45-VM.vhdx".into(),
            template: Some("D:\\Hyper-V\\Templates\\ubuntu-24.04-server.vhdx".into()),
            iso: None,
            size: None,
            vm_path: "D:\\Hyper-V\\Virtual Machines".into(),
            secure_boot: Some("On".into()),
            secure_boot_template: Some("MicrosoftUEFICertificateAuthority".into()),
            nics: vec![
                nic("020100CC0001", Some(1577)),
                nic("020100CC0002", Some(1578)),
                nic("020100CC0003", None),
                nic("020100CC0004", Some(1580)),
            ],
        };
        let line = CREATE.command(&data, "0a1b2c3d").expect("fits");
        assert_eq!(line.script(), Script::Create);
        assert!(
            line.as_str().len() < MAX_COMMAND_LINE,
            "{}",
            line.as_str().len()
        );
    }

    /// Guards the growth of the scripts that find VMs: with a long CloudStack instance name,
    /// adoption on, a 100-character checkpoint name and a 240-character vhd_path (the most
    /// validation allows), each still fits cmd.exe.
    #[test]
    fn every_vm_script_fits_cmd_exe_with_the_longest_values() {
        fn vm<F>(fields: F) -> VmData<F> {
            VmData {
                name: "i-12345-1234567-VM".into(),
                uuid: "126f4562-1f0f-4313-875e-6150cabeb72f".into(),
                adopt: true,
                fields,
            }
        }
        fn fits<D: Serialize, R: DeserializeOwned>(call: Call<D, R>, data: &D) {
            let line = call.command(data, "0a1b2c3d").expect("fits");
            assert!(line.as_str().len() < MAX_COMMAND_LINE, "{call:?}");
        }
        let snapshot = || SnapshotFields {
            snapshot: "s".repeat(100),
        };
        let stop = || StopFields {
            turnoff: false,
            wait: 86_400,
            fallback: true,
        };
        fits(START, &vm(NoFields {}));
        fits(STATUS, &vm(NoFields {}));
        fits(SUSPEND, &vm(NoFields {}));
        fits(RESUME, &vm(NoFields {}));
        fits(LIST_SNAPSHOTS, &vm(NoFields {}));
        fits(STOP, &vm(stop()));
        fits(REBOOT, &vm(stop()));
        fits(CREATE_SNAPSHOT, &vm(snapshot()));
        fits(RESTORE_SNAPSHOT, &vm(snapshot()));
        fits(DELETE_SNAPSHOT, &vm(snapshot()));
        let vhd_path = format!("D:\\{}", "v".repeat(237));
        fits(
            DELETE,
            &vm(DeleteFields {
                vhd_path: vhd_path.clone(),
            }),
        );
        let cleanup = CleanupData {
            name: "i-12345-1234567-VM".into(),
            uuid: "126f4562-1f0f-4313-875e-6150cabeb72f".into(),
            disk: format!("{vhd_path}\\i-12345-1234567-VM.vhdx"),
        };
        fits(CLEANUP_CREATE, &cleanup);
    }

    /// The preflight with long paths still fits cmd.exe.
    #[test]
    fn a_check_with_long_paths_fits_cmd_exe() {
        let path = |leaf: &str| format!("D:\\Hyper-V\\{}\\{leaf}", "x".repeat(60));
        let data = CheckData {
            vhd_path: Some(path("Virtual Hard Disks")),
            vm_path: Some(path("Virtual Machines")),
            template: Some(path("ubuntu-24.04-server-cloudimg-amd64.vhdx")),
            iso: Some(path("ubuntu-24.04-live-server-amd64.iso")),
        };
        let line = CHECK.command(&data, "0a1b2c3d").expect("fits");
        assert!(
            line.as_str().len() < MAX_COMMAND_LINE,
            "{}",
            line.as_str().len()
        );
    }

    #[test]
    fn too_long_is_refused_before_sending() {
        let data = VmData {
            name: "x".repeat(3000),
            uuid: "u".into(),
            adopt: false,
            fields: crate::data::NoFields {},
        };
        let err = STATUS.command(&data, "id").unwrap_err();
        assert!(matches!(err, CommandError::TooLong(_)), "{err}");
        assert!(err.to_string().contains("cmd.exe"));
    }
}
