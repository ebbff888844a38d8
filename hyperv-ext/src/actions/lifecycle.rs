//! create (with rollback, and cleanup after a timeout) and delete (with the VM's disks).

use std::fmt::Write as _;

use ext_sdk::{DetailReader, Invocation, Response};
use hyperv_protocol::Failure;
use hyperv_protocol::call::{CLEANUP_CREATE, CREATE, DELETE};
use hyperv_protocol::data::{
    CleanupData, CreateData, DeleteFields, MAX_VM_NAME, NicData, creating_name,
};
use hyperv_protocol::reply::{Deleted, Lookup};

use super::{VmRef, VmReply, explain, read_settings, run_on_vm};
use crate::remote::{self, RemoteError};
use crate::settings::{self, Source};
use crate::transport::{Connector, Transport};
use crate::validate;

/// The NICs in device order, each with a unicast MAC and a VLAN (or untagged).
fn nics(d: &mut DetailReader) -> Vec<NicData> {
    d.nics()
        .iter()
        .map(|nic| NicData {
            mac: nic.mac.to_bare_upper(),
            vlan: nic.vlan.tag(),
        })
        .collect()
}

pub fn create(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let vm_details = inv.payload.vm.as_ref();
    let (target, switch, vhd_path, vm_path, instance, vm, mem, cpus, nics) =
        read_settings(&inv.payload, |d| {
            (
                settings::connection(d),
                settings::switch(d),
                settings::vhd_path(d),
                settings::vm_path(d),
                settings::instance(d),
                VmRef::read(&inv.payload, d),
                d.check(validate::memory_bytes(vm_details.and_then(|v| v.min_ram)))
                    .unwrap_or_default(),
                d.check(validate::cpus(vm_details.and_then(|v| v.cpus)))
                    .unwrap_or_default(),
                nics(d),
            )
        })?;

    let (tpl, iso, size, extension) = match &instance.source {
        Source::Template(path) => {
            let ext = if path.to_ascii_lowercase().ends_with(".vhd") {
                "vhd"
            } else {
                "vhdx"
            };
            (Some(path.clone()), None, None, ext)
        }
        Source::Iso { iso, size_bytes } => (None, Some(iso.clone()), Some(*size_bytes), "vhdx"),
    };
    let disk = validate::join(&vhd_path, &format!("{}.{extension}", vm.name));
    let (sb, sbt) = instance.secure_boot.firmware();
    let gen2 = instance.generation == 2;
    let data = CreateData {
        name: vm.name.clone(),
        uuid: vm.uuid.clone(),
        generation: instance.generation,
        mem,
        cpus,
        switch: switch.clone(),
        disk: disk.clone(),
        template: tpl,
        iso,
        size,
        vm_path,
        secure_boot: gen2.then(|| sb.to_owned()),
        secure_boot_template: sbt.filter(|_| gen2).map(str::to_owned),
        nics,
    };
    let doing = format!("creating VM {}", vm.name);
    // The VM is made under this name until its Notes are written (create.ps1).
    let creating = creating_name(&vm.name, &inv.id);
    if creating.len() > MAX_VM_NAME {
        anyhow::bail!(
            "{doing}: the name is {} characters; create names the VM {creating} until it is \
             marked, and Hyper-V takes at most {MAX_VM_NAME}: use an instance name of at most {} \
             characters; nothing was created",
            vm.name.len(),
            MAX_VM_NAME - (creating.len() - vm.name.len())
        );
    }
    vm.remember();
    let host = hosts.transport(target);
    let host = &*host;
    match remote::run(host, CREATE, &data, &inv.deadline, &inv.id) {
        Ok(created) => Ok(Response::success(format!(
            "VM {} created and started on {}",
            vm.name,
            host.host()
        ))
        .with("vm_id", created.id)
        .with("disk", disk.as_str())),
        Err(RemoteError::Failed(Failure::CreateFailed {
            step,
            error,
            rollback,
        })) => Err(create_failed(&step, &error, &rollback, &doing, host)),
        Err(RemoteError::Failed(f)) => Err(create_refused(f, &doing, host, &vm, &switch, &disk)),
        // Cut off mid-way (the deadline, a dropped session): PowerShell was killed before its
        // own rollback could run; clean up what it may have left, within the reserved time.
        Err(e) if e.interrupted() => {
            let outcome = cleanup(inv, host, &vm, &disk);
            Err(anyhow::anyhow!(
                "{doing} on {}:{}: {e}; {outcome}",
                host.host(),
                host.port()
            ))
        }
        Err(e) => Err(explain(e, &doing, host, &vm)),
    }
}

/// The original error first; rollback problems after it.
fn create_failed(
    step: &str,
    error: &str,
    rollback: &[String],
    doing: &str,
    target: &dyn Transport,
) -> anyhow::Error {
    let undone = if rollback.is_empty() {
        "everything created so far was removed".to_owned()
    } else {
        format!(
            "the rollback failed too, check the host for leftovers: {}",
            rollback.join(" | ")
        )
    };
    anyhow::anyhow!(
        "{doing} on {} failed at step '{step}': {error}; {undone}",
        target.host()
    )
}

/// A pre-check refused the create: nothing was changed.
fn create_refused(
    f: Failure,
    doing: &str,
    target: &dyn Transport,
    vm: &VmRef,
    switch: &str,
    disk: &str,
) -> anyhow::Error {
    let host = target.host();
    match f {
        Failure::VmExists => anyhow::anyhow!(
            "{doing}: a VM named {} already exists on {host}; nothing was created",
            vm.name
        ),
        Failure::SwitchNotFound { count: 0 } => anyhow::anyhow!(
            "{doing}: {host} has no virtual switch named '{switch}' (network_switch); nothing was created"
        ),
        Failure::SwitchNotFound { count } => anyhow::anyhow!(
            "{doing}: {count} virtual switches on {host} are named '{switch}'; rename them so the name is unique; nothing was created"
        ),
        Failure::DiskExists => anyhow::anyhow!(
            "{doing}: the disk {disk} already exists on {host}; remove it if it is a leftover; nothing was created"
        ),
        _ => explain(RemoteError::Failed(f), doing, target, vm),
    }
}

fn cleanup(inv: &Invocation, target: &dyn Transport, vm: &VmRef, disk: &str) -> String {
    let deadline = inv.deadline.cleanup();
    let data = CleanupData {
        name: vm.name.clone(),
        uuid: vm.uuid.clone(),
        disk: disk.to_owned(),
    };
    match remote::run(target, CLEANUP_CREATE, &data, &deadline, &inv.id) {
        Ok(cleaned) => {
            let vm_removed = cleaned.removed_vm;
            let files = cleaned.removed.len();
            log::warn!(
                "cleanup after the interrupted create: VM removed: {vm_removed}, files removed: {files} ({}), VMs of the name left alone: {}",
                cleaned.removed.join(", "),
                cleaned.kept
            );
            let mut outcome =
                format!("cleaned up: VM removed: {vm_removed}, files removed: {files}");
            if cleaned.kept > 0 {
                // A create sent for a VM that exists, or a VM made by someone else meanwhile:
                // only what bears this run's id is removed.
                let _ = write!(
                    outcome,
                    "; {} VM(s) named {} on {} {} not created by this run (no 'cloudstack-create-id={}' line in the Notes) and {} left alone",
                    cleaned.kept,
                    vm.name,
                    target.host(),
                    if cleaned.kept == 1 { "was" } else { "were" },
                    inv.id,
                    if cleaned.kept == 1 { "was" } else { "were" },
                );
            }
            outcome
        }
        Err(e) => {
            log::error!("cleanup after the interrupted create failed: {e}");
            format!(
                "the cleanup failed as well ({e}); check the host for a VM named {} and {disk}",
                vm.name
            )
        }
    }
}

pub fn delete(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_on_vm(
        inv,
        hosts,
        DELETE,
        "deleting VM",
        settings::vhd_path,
        |vhd_path| DeleteFields {
            vhd_path: vhd_path.clone(),
        },
    )?;
    let Lookup::Found(Deleted { removed, kept }) = reply else {
        return Ok(Response::success(format!(
            "VM {} does not exist on the host: nothing to delete",
            vm.name
        )));
    };
    let mut message = format!("VM {} deleted with {} disk(s)", vm.name, removed.len());
    if !kept.is_empty() {
        log::warn!(
            "VM {} deleted; disks kept (outside vhd_path or in use): {}",
            vm.name,
            kept.join(", ")
        );
        let _ = write!(
            message,
            "; kept {} disk(s) outside vhd_path or in use: {}",
            kept.len(),
            kept.join(", ")
        );
    }
    Ok(Response::success(message)
        .with("removed_disks", removed)
        .with("kept_disks", kept))
}
