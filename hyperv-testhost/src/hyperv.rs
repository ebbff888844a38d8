//! Hyper-V as the cmdlets behave, on the state file and the `fs` root: what succeeds, what
//! throws, and with which message. The operations in [`crate::ops`] (a mirror of
//! hyperv-ext's scripts) are written against this, so a script step Hyper-V would refuse
//! (starting a running VM, removing a running VM, an odd memory size, a multicast MAC...)
//! fails here too.
//!
//! Semantics kept on purpose: names are not unique (New-VM happily creates a second VM of the
//! same name, Checkpoint-VM a second checkpoint of the same name); Remove-VM deletes the
//! configuration but keeps the disks; restoring a production checkpoint leaves the VM Off;
//! without Hyper-V rights Get-VMHost throws and Get-VM lists nothing.

use std::path::{Path, PathBuf};

use crate::control::Knobs;
use crate::state::{Adapter, Checkpoint, Firmware, State, Vm};
use crate::winpath::WinPath;

/// A terminating cmdlet error, as `$_.Exception.Message` and `FullyQualifiedErrorId` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thrown {
    pub message: String,
    pub fqid: String,
}

fn thrown(message: impl Into<String>, fqid: &str) -> Thrown {
    Thrown {
        message: message.into(),
        fqid: fqid.into(),
    }
}

fn invalid_state(cmdlet: &str, vm: &Vm) -> Thrown {
    thrown(
        format!(
            "'{}' failed. The operation cannot be performed while the virtual machine is in its current state. (Virtual machine ID {})",
            vm.name, vm.id
        ),
        &format!("InvalidState,Microsoft.HyperV.PowerShell.Commands.{cmdlet}"),
    )
}

pub type Cmdlet<T> = Result<T, Thrown>;

pub struct HyperV<'a> {
    pub state: &'a mut State,
    fs_root: PathBuf,
    knobs: &'a Knobs,
    /// The create step being run, for `Knobs::throw_at`.
    pub step: String,
    /// `Knobs::kill_at` was reached: the process is dead from here on.
    pub killed: bool,
    /// The VM `Find-Ours` found without its ownership line (`$script:Adopt`).
    pub adopt: Option<String>,
    now: String,
}

impl<'a> HyperV<'a> {
    pub fn new(state: &'a mut State, fs_root: &Path, knobs: &'a Knobs) -> HyperV<'a> {
        HyperV {
            state,
            fs_root: fs_root.to_path_buf(),
            knobs,
            step: "any".into(),
            killed: false,
            adopt: None,
            now: utc_now(),
        }
    }

    /// Every state-changing cmdlet passes here: the fault knob makes the chosen step throw.
    fn inject(&mut self, cmdlet: &str) -> Cmdlet<()> {
        if self.killed || self.knobs.kill_at.as_deref() == Some(cmdlet) {
            self.killed = true;
            return Err(thrown(format!("killed before {cmdlet}"), "Killed"));
        }
        let hit = match &self.knobs.throw_at {
            Some(step) if step == "any" => true,
            Some(step) => *step == self.step,
            None => false,
        } || (self.step == "rollback" && self.knobs.rollback_throws);
        if hit {
            return Err(thrown(
                format!("{cmdlet} failed: injected fault at step '{}'", self.step),
                &format!("InjectedFault,Microsoft.HyperV.PowerShell.Commands.{cmdlet}"),
            ));
        }
        Ok(())
    }

    fn path(&self, text: &str) -> Cmdlet<(WinPath, PathBuf)> {
        let p = WinPath::parse(text).map_err(|m| thrown(m, "ArgumentException"))?;
        let local = p.local(&self.fs_root);
        Ok((p, local))
    }

    fn vm_mut(&mut self, id: &str) -> Cmdlet<&mut Vm> {
        self.state
            .vms
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or_else(|| {
                thrown(
                    format!("Hyper-V was unable to find a virtual machine with ID \"{id}\"."),
                    "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
                )
            })
    }

    pub fn vm(&self, id: &str) -> Option<&Vm> {
        self.state.vms.iter().find(|v| v.id == id)
    }

    // ---- reading ----

    pub fn get_vmhost(&self) -> Cmdlet<()> {
        self.need_module("Get-VMHost")?;
        if self.knobs.permission_denied {
            return Err(thrown(
                format!(
                    "You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '{}'.",
                    self.state.host_name
                ),
                "AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVMHost",
            ));
        }
        Ok(())
    }

    /// What PowerShell says when a module-qualified cmdlet's module is not installed.
    fn need_module(&self, cmdlet: &str) -> Cmdlet<()> {
        if self.knobs.no_hyperv_module {
            return Err(thrown(
                format!(
                    "The term 'Hyper-V\\{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
                ),
                "CommandNotFoundException",
            ));
        }
        Ok(())
    }

    /// `$PSVersionTable.PSVersion`.
    pub fn powershell_version(&self) -> String {
        self.knobs
            .powershell_version
            .clone()
            .unwrap_or_else(|| "5.1.20348.2400".into())
    }

    /// The newest `Get-Module -ListAvailable -Name Hyper-V`'s version.
    pub fn hyperv_module(&self) -> Option<&'static str> {
        (!self.knobs.no_hyperv_module).then_some("2.0.0.0")
    }

    /// The session's account (`WindowsIdentity::GetCurrent().Name`) and whether its token holds
    /// Hyper-V Administrators: the test user is in that group unless the rights knob says not.
    pub fn identity(&self) -> (String, bool) {
        (
            format!("{}\\{}", self.state.host_name, crate::host::USER),
            !self.knobs.permission_denied,
        )
    }

    /// `Test-Path -LiteralPath p -PathType Container`.
    pub fn test_folder(&self, text: &str) -> Cmdlet<bool> {
        let (_, local) = self.path(text)?;
        Ok(local.is_dir())
    }

    /// A folder's access rules for the account, as `check.ps1` sums them up: allow and deny
    /// masks for the folder and for the files created in it. The test user owns the whole fs
    /// root, so its owner permission bits say what it may do: write and search (0o300) is
    /// Modify, read and search (0o500) ReadAndExecute, less is nothing.
    pub fn folder_acl(&self, text: &str) -> Cmdlet<[i64; 4]> {
        use std::os::unix::fs::PermissionsExt;
        const MODIFY: i64 = 0x13_01BF;
        const READ_AND_EXECUTE: i64 = 0x12_00A9;
        let (_, local) = self.path(text)?;
        let mode = std::fs::metadata(&local)
            .map_err(|e| thrown(e.to_string(), "ItemNotFoundException"))?
            .permissions()
            .mode();
        let mask = if mode & 0o300 == 0o300 {
            MODIFY
        } else if mode & 0o500 == 0o500 {
            READ_AND_EXECUTE
        } else {
            0
        };
        Ok([mask, 0, mask, 0])
    }

    /// `Get-VM` without arguments: every VM, or nothing at all without rights.
    pub fn get_vm(&self) -> Vec<Vm> {
        if self.knobs.permission_denied {
            Vec::new()
        } else {
            self.state.vms.clone()
        }
    }

    pub fn get_vmswitch(&self) -> Vec<crate::state::Switch> {
        if self.knobs.permission_denied {
            Vec::new()
        } else {
            self.state.switches.clone()
        }
    }

    pub fn test_path(&self, text: &str, leaf: bool) -> Cmdlet<bool> {
        let (_, local) = self.path(text)?;
        Ok(if leaf {
            local.is_file()
        } else {
            local.exists()
        })
    }

    // ---- files ----

    pub fn copy_item(&mut self, from: &str, to: &str) -> Cmdlet<()> {
        self.inject("CopyItemCommand")?;
        let (_, src) = self.path(from)?;
        let (_, dst) = self.path(to)?;
        if !src.is_file() {
            return Err(thrown(
                format!("Cannot find path '{from}' because it does not exist."),
                "PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand",
            ));
        }
        let parent_missing = dst.parent().is_none_or(|d| !d.is_dir());
        if parent_missing {
            return Err(thrown(
                format!("Could not find a part of the path '{to}'."),
                "System.IO.DirectoryNotFoundException,Microsoft.PowerShell.Commands.CopyItemCommand",
            ));
        }
        std::fs::copy(&src, &dst).map(drop).map_err(|e| {
            thrown(
                e.to_string(),
                "System.IO.IOException,Microsoft.PowerShell.Commands.CopyItemCommand",
            )
        })
    }

    pub fn move_item(&mut self, from: &str, to: &str) -> Cmdlet<()> {
        self.inject("MoveItemCommand")?;
        let (_, src) = self.path(from)?;
        let (_, dst) = self.path(to)?;
        if dst.exists() {
            return Err(thrown(
                "Cannot create a file when that file already exists.",
                "MoveItemIOError,Microsoft.PowerShell.Commands.MoveItemCommand",
            ));
        }
        std::fs::rename(&src, &dst).map_err(|e| {
            thrown(
                e.to_string(),
                "MoveItemIOError,Microsoft.PowerShell.Commands.MoveItemCommand",
            )
        })
    }

    pub fn remove_item(&mut self, text: &str) -> Cmdlet<()> {
        self.inject("RemoveItemCommand")?;
        let (_, local) = self.path(text)?;
        if self.state.vms.iter().any(|v| {
            v.disks
                .iter()
                .any(|d| WinPath::parse(d).is_ok_and(|d| d.local(&self.fs_root) == local))
        }) {
            return Err(thrown(
                format!(
                    "Cannot remove item {text}: The process cannot access the file '{text}' because it is being used by another process."
                ),
                "RemoveFileSystemItemIOError,Microsoft.PowerShell.Commands.RemoveItemCommand",
            ));
        }
        std::fs::remove_file(&local).map_err(|_| {
            thrown(
                format!("Cannot find path '{text}' because it does not exist."),
                "PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand",
            )
        })
    }

    pub fn new_vhd(&mut self, text: &str, size: u64) -> Cmdlet<()> {
        self.inject("NewVHD")?;
        let (p, local) = self.path(text)?;
        let ext = p
            .file_name()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("vhd" | "vhdx")) {
            return Err(thrown(
                "Failed to create the virtual hard disk. The file name extension must be .vhd or .vhdx.",
                "InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd",
            ));
        }
        if !(3 * 1024 * 1024..=64 * 1024u64.pow(4)).contains(&size) {
            return Err(thrown(
                format!("The size {size} is not valid for a virtual hard disk."),
                "InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd",
            ));
        }
        if local.exists() {
            return Err(thrown(
                format!(
                    "Failed to create the virtual hard disk. The file '{text}' already exists."
                ),
                "InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd",
            ));
        }
        let file = std::fs::File::create(&local).map_err(|e| {
            thrown(
                format!("Could not find a part of the path '{text}'. ({e})"),
                "ObjectNotFound,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd",
            )
        })?;
        // Dynamic: a sparse file of the requested size.
        file.set_len(size)
            .map_err(|e| thrown(e.to_string(), "IOError"))
    }

    // ---- VMs ----

    pub fn new_vm(
        &mut self,
        name: &str,
        generation: i64,
        memory: i64,
        vhd: &str,
        path: &str,
    ) -> Cmdlet<String> {
        self.inject("NewVM")?;
        if name.is_empty() || name.chars().count() > 100 {
            return Err(thrown(
                "The virtual machine name is not valid.",
                "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.NewVM",
            ));
        }
        if !matches!(generation, 1 | 2) {
            return Err(thrown(
                format!(
                    "Cannot validate argument on parameter 'Generation'. The {generation} argument is not in the set 1,2."
                ),
                "ParameterArgumentValidationError,Microsoft.HyperV.PowerShell.Commands.NewVM",
            ));
        }
        let mb = 1024 * 1024;
        if memory < 32 * mb || memory % mb != 0 || (memory / mb) % 2 != 0 {
            return Err(thrown(
                format!(
                    "The memory value assigned ('{}' MB) is not properly aligned. Memory must be a multiple of 2 MB and at least 32 MB.",
                    memory / mb
                ),
                "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.NewVM",
            ));
        }
        let (disk, disk_local) = self.path(vhd)?;
        if !disk_local.is_file() {
            return Err(thrown(
                format!(
                    "Failed to add device 'Virtual Hard Disk'. The system cannot find the file specified. ('{vhd}')"
                ),
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.NewVM",
            ));
        }
        let (dir, dir_local) = self.path(path)?;
        if !dir_local.is_dir() {
            return Err(thrown(
                format!("The path '{path}' does not exist."),
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.NewVM",
            ));
        }
        let id = self.state.new_id();
        let config = dir
            .join(name)
            .join("Virtual Machines")
            .join(&format!("{id}.vmcx"));
        let config_local = config.local(&self.fs_root);
        std::fs::create_dir_all(config_local.parent().expect("has parent"))
            .map_err(|e| thrown(e.to_string(), "IOError"))?;
        std::fs::write(&config_local, format!("config of {name}\n"))
            .map_err(|e| thrown(e.to_string(), "IOError"))?;
        self.state.vms.push(Vm {
            id: id.clone(),
            name: name.into(),
            state: "Off".into(),
            generation: u8::try_from(generation).expect("checked: 1 or 2"),
            memory_bytes: u64::try_from(memory).expect("checked: at least 32 MiB"),
            cpus: 1,
            notes: String::new(),
            config: config.display(),
            disks: vec![disk.display()],
            dvds: Vec::new(),
            // New-VM always adds one (unconnected) adapter.
            adapters: vec![Adapter {
                name: "Network Adapter".into(),
                mac: "000000000000".into(),
                switch: None,
                vlan: None,
            }],
            firmware: (generation == 2).then(|| Firmware {
                secure_boot: "On".into(),
                secure_boot_template: "MicrosoftWindows".into(),
                first_boot: "disk".into(),
            }),
            checkpoint_type: "Production".into(),
            checkpoints: Vec::new(),
            parent_checkpoint: None,
            guest_shutdown: "works".into(),
            last_stop: None,
        });
        Ok(id)
    }

    /// `Set-VM -NewVMName -Notes -ProcessorCount`: one change of the VM's settings, all or
    /// nothing. The VM's folder (named at New-VM) stays as it is; like New-VM, Hyper-V does
    /// not mind another VM of the new name.
    pub fn set_vm(&mut self, id: &str, name: &str, notes: &str, cpus: i64) -> Cmdlet<()> {
        self.inject("SetVM")?;
        let vm = self.vm_mut(id)?;
        if !(1..=240).contains(&cpus) {
            return Err(thrown(
                format!("The processor count {cpus} is not valid."),
                "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.SetVM",
            ));
        }
        if vm.state != "Off" {
            return Err(invalid_state("SetVM", vm));
        }
        vm.name = name.into();
        vm.notes = notes.into();
        vm.cpus = u32::try_from(cpus).expect("checked: 1 to 240");
        Ok(())
    }

    /// `Set-VM -Notes` alone: allowed in any state (unlike the processor count).
    pub fn set_notes(&mut self, id: &str, notes: &str) -> Cmdlet<()> {
        self.inject("SetVM")?;
        self.vm_mut(id)?.notes = notes.into();
        Ok(())
    }

    pub fn remove_vm(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("RemoveVM")?;
        let vm = self.vm_mut(id)?.clone();
        if !matches!(vm.state.as_str(), "Off" | "Saved") {
            return Err(invalid_state("RemoveVM", &vm));
        }
        // The configuration goes; the disks stay (Remove-VM's documented behaviour).
        if let Ok(config) = WinPath::parse(&vm.config) {
            let _ = std::fs::remove_file(config.local(&self.fs_root));
        }
        self.state.vms.retain(|v| v.id != id);
        Ok(())
    }

    pub fn start_vm(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("StartVM")?;
        let vm = self.vm_mut(id)?;
        if !matches!(vm.state.as_str(), "Off" | "Saved") {
            return Err(invalid_state("StartVM", vm));
        }
        vm.state = "Running".into();
        Ok(())
    }

    /// `Stop-VM -TurnOff`.
    pub fn turn_off(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("StopVM")?;
        let vm = self.vm_mut(id)?;
        if !matches!(vm.state.as_str(), "Running" | "Paused" | "Saved") {
            return Err(invalid_state("StopVM", vm));
        }
        vm.state = "Off".into();
        vm.last_stop = Some("turnoff".into());
        Ok(())
    }

    /// `Stop-VM -Force -AsJob` then `Wait-Job -Timeout wait`: `Ok(true)` when the guest shut
    /// down, `Ok(false)` when the job was still running at the timeout (after waiting it).
    pub fn shutdown_guest(
        &mut self,
        id: &str,
        wait_secs: u64,
        sleep: &mut dyn FnMut(std::time::Duration) -> bool,
    ) -> Cmdlet<bool> {
        self.inject("StopVM")?;
        let vm = self.vm_mut(id)?;
        if vm.state != "Running" {
            return Err(invalid_state("StopVM", vm));
        }
        match vm.guest_shutdown.as_str() {
            "fails" => Err(thrown(
                format!(
                    "'{}' failed to shut down. The device is not ready for use.",
                    vm.name
                ),
                "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM",
            )),
            "hangs" => {
                sleep(std::time::Duration::from_secs(wait_secs));
                Ok(false)
            }
            _ => {
                vm.state = "Off".into();
                vm.last_stop = Some("graceful".into());
                Ok(true)
            }
        }
    }

    pub fn suspend_vm(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("SuspendVM")?;
        let vm = self.vm_mut(id)?;
        if vm.state != "Running" {
            return Err(invalid_state("SuspendVM", vm));
        }
        vm.state = "Paused".into();
        Ok(())
    }

    pub fn resume_vm(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("ResumeVM")?;
        let vm = self.vm_mut(id)?;
        if vm.state != "Paused" {
            return Err(invalid_state("ResumeVM", vm));
        }
        vm.state = "Running".into();
        Ok(())
    }

    // ---- devices ----

    pub fn remove_all_adapters(&mut self, id: &str) -> Cmdlet<()> {
        self.inject("RemoveVMNetworkAdapter")?;
        self.vm_mut(id)?.adapters.clear();
        Ok(())
    }

    /// `Add-VMNetworkAdapter -StaticMacAddress`, returning the adapter's index.
    pub fn add_adapter(&mut self, id: &str, name: &str, mac: &str) -> Cmdlet<usize> {
        self.inject("AddVMNetworkAdapter")?;
        let valid = mac.len() == 12 && mac.bytes().all(|b| b.is_ascii_hexdigit());
        let octet0 = u8::from_str_radix(mac.get(..2).unwrap_or("01"), 16).unwrap_or(1);
        if !valid || octet0 & 1 == 1 || mac.bytes().all(|b| b == b'0') {
            return Err(thrown(
                format!(
                    "Failed to modify device 'Synthetic Ethernet Port'. Invalid MAC address '{mac}'."
                ),
                "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.AddVMNetworkAdapter",
            ));
        }
        let vm = self.vm_mut(id)?;
        vm.adapters.push(Adapter {
            name: name.into(),
            mac: mac.to_ascii_uppercase(),
            switch: None,
            vlan: None,
        });
        Ok(vm.adapters.len() - 1)
    }

    pub fn connect_adapter(&mut self, id: &str, adapter: usize, switch_id: &str) -> Cmdlet<()> {
        self.inject("ConnectVMNetworkAdapter")?;
        let name = self
            .state
            .switches
            .iter()
            .find(|s| s.id == switch_id)
            .map(|s| s.name.clone());
        let name = name.ok_or_else(|| {
            thrown(
                "The virtual switch was not found.",
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.ConnectVMNetworkAdapter",
            )
        })?;
        self.vm_mut(id)?.adapters[adapter].switch = Some(name);
        Ok(())
    }

    pub fn set_vlan(&mut self, id: &str, adapter: usize, vlan: Option<i64>) -> Cmdlet<()> {
        self.inject("SetVMNetworkAdapterVlan")?;
        if let Some(tag) = vlan
            && !(1..=4094).contains(&tag)
        {
            return Err(thrown(
                format!(
                    "Cannot validate argument on parameter 'VlanId'. The {tag} argument is not in the range 1..4094."
                ),
                "ParameterArgumentValidationError,Microsoft.HyperV.PowerShell.Commands.SetVMNetworkAdapterVlan",
            ));
        }
        self.vm_mut(id)?.adapters[adapter].vlan =
            vlan.map(|t| u16::try_from(t).expect("checked: 1 to 4094"));
        Ok(())
    }

    pub fn add_dvd(&mut self, id: &str, iso: &str) -> Cmdlet<()> {
        self.inject("AddVMDvdDrive")?;
        let (p, local) = self.path(iso)?;
        if !local.is_file() {
            return Err(thrown(
                format!(
                    "Failed to add device 'Virtual CD/DVD Disk'. The system cannot find the file specified. ('{iso}')"
                ),
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.AddVMDvdDrive",
            ));
        }
        self.vm_mut(id)?.dvds.push(p.display());
        Ok(())
    }

    pub fn set_firmware(
        &mut self,
        id: &str,
        secure_boot: &str,
        template: Option<&str>,
        dvd_first: bool,
    ) -> Cmdlet<()> {
        self.inject("SetVMFirmware")?;
        let vm = self.vm_mut(id)?;
        let Some(fw) = vm.firmware.as_mut() else {
            return Err(thrown(
                "Set-VMFirmware applies to generation 2 virtual machines only.",
                "InvalidOperation,Microsoft.HyperV.PowerShell.Commands.SetVMFirmware",
            ));
        };
        if !matches!(secure_boot, "On" | "Off") {
            return Err(thrown(
                format!(
                    "Cannot bind parameter 'EnableSecureBoot'. Cannot convert value \"{secure_boot}\" to type \"Microsoft.HyperV.PowerShell.OnOffState\"."
                ),
                "CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.SetVMFirmware",
            ));
        }
        fw.secure_boot = secure_boot.into();
        if let Some(t) = template {
            if !matches!(
                t,
                "MicrosoftWindows" | "MicrosoftUEFICertificateAuthority" | "OpenSourceShieldedVM"
            ) {
                return Err(thrown(
                    format!("The secure boot template '{t}' was not found."),
                    "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.SetVMFirmware",
                ));
            }
            fw.secure_boot_template = t.into();
        }
        if dvd_first {
            fw.first_boot = "dvd".into();
        }
        Ok(())
    }

    // ---- checkpoints ----

    pub fn checkpoint_vm(&mut self, id: &str, name: &str) -> Cmdlet<Checkpoint> {
        self.inject("CheckpointVM")?;
        let now = self.now.clone();
        let cid = self.state.new_id();
        let vm = self.vm_mut(id)?;
        if !matches!(vm.state.as_str(), "Off" | "Running" | "Saved" | "Paused") {
            return Err(invalid_state("CheckpointVM", vm));
        }
        let checkpoint = Checkpoint {
            id: cid.clone(),
            name: name.into(),
            created: now,
            parent: vm.parent_checkpoint.clone(),
            kind: vm.checkpoint_type.clone(),
            vm_state: vm.state.clone(),
        };
        vm.checkpoints.push(checkpoint.clone());
        vm.parent_checkpoint = Some(cid);
        Ok(checkpoint)
    }

    pub fn restore_checkpoint(&mut self, id: &str, checkpoint_id: &str) -> Cmdlet<()> {
        self.inject("RestoreVMSnapshot")?;
        let vm = self.vm_mut(id)?;
        if !matches!(vm.state.as_str(), "Off" | "Saved") {
            return Err(invalid_state("RestoreVMSnapshot", vm));
        }
        let cp = vm
            .checkpoints
            .iter()
            .find(|c| c.id == checkpoint_id)
            .cloned();
        let cp = cp.ok_or_else(|| {
            thrown(
                "The checkpoint was not found.",
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.RestoreVMSnapshot",
            )
        })?;
        // A production checkpoint holds no memory: the VM comes back Off. A standard one of a
        // running VM comes back with its memory, i.e. Saved (Start-VM resumes it).
        vm.state = match (cp.kind.as_str(), cp.vm_state.as_str()) {
            ("Standard", "Running" | "Paused" | "Saved") => "Saved".into(),
            _ => "Off".into(),
        };
        vm.parent_checkpoint = Some(cp.id);
        Ok(())
    }

    pub fn remove_checkpoint(&mut self, id: &str, checkpoint_id: &str) -> Cmdlet<()> {
        self.inject("RemoveVMSnapshot")?;
        let vm = self.vm_mut(id)?;
        let Some(pos) = vm.checkpoints.iter().position(|c| c.id == checkpoint_id) else {
            return Err(thrown(
                "The checkpoint was not found.",
                "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.RemoveVMSnapshot",
            ));
        };
        let removed = vm.checkpoints.remove(pos);
        // Children are re-parented; the running state merges into the parent.
        for c in &mut vm.checkpoints {
            if c.parent.as_deref() == Some(&removed.id) {
                c.parent = removed.parent.clone();
            }
        }
        if vm.parent_checkpoint.as_deref() == Some(&removed.id) {
            vm.parent_checkpoint = removed.parent;
        }
        Ok(())
    }
}

/// Now, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_now_is_iso() {
        let now = super::utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && &now[10..11] == "T");
    }
}
