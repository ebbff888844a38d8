//! create (with rollback, and cleanup after a timeout) and delete (with the VM's disks).

use ext_sdk::{DetailReader, Invocation, MacAddress, Nic, Response, Vlan};
use serde::Serialize;

use super::{VmRef, VmReply, explain, finish, run_on_vm, take};
use crate::remote::{self, RemoteError};
use crate::settings::{self, Source};
use crate::ssh::{SshError, Target};
use crate::validate;
use hyperv_protocol::{Failure, Script};

/// `create.ps1`'s data. Short keys: this blob is base64 inside base64 on the longest command
/// line of all, and must fit cmd.exe's limit.
#[derive(Serialize)]
struct CreateData<'a> {
    name: &'a str,
    uuid: &'a str,
    #[serde(rename = "gen")]
    generation: u8,
    mem: u64,
    cpus: u32,
    sw: &'a str,
    disk: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpl: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iso: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    dir: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sb: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sbt: Option<&'a str>,
    /// `"MAC:VLAN"`, `"MAC:"` when untagged; MAC as 12 upper-case hex digits, as Hyper-V
    /// takes and reports it.
    nics: Vec<String>,
}

#[derive(Serialize)]
struct CleanupData<'a> {
    name: &'a str,
    uuid: &'a str,
    disk: &'a str,
}

/// What the delete script receives besides the VM: where its disks may be removed.
#[derive(Serialize)]
struct DeleteFields {
    vhd_path: String,
}

/// The NICs in device order, each with a unicast MAC and a VLAN (or untagged).
fn nics(list: &[Nic], d: &mut DetailReader) -> Vec<String> {
    let mut ordered: Vec<&Nic> = list.iter().collect();
    ordered.sort_by_key(|n| n.device_id.unwrap_or(u32::MAX));
    ordered
        .iter()
        .enumerate()
        .map(|(i, nic)| {
            let mac = match nic.mac.as_deref() {
                Some(m) => take(
                    d,
                    MacAddress::parse_nic(m)
                        .map(|m| m.to_bare_upper())
                        .map_err(|e| format!("NIC {i}: {e}")),
                ),
                None => take(d, Err(format!("NIC {i} has no MAC address"))),
            };
            let vlan = take(
                d,
                nic.vlan()
                    .map(Vlan::tag)
                    .map_err(|e| format!("NIC {i}: {e}")),
            );
            format!("{mac}:{}", vlan.map(|t| t.to_string()).unwrap_or_default())
        })
        .collect()
}

pub fn create(inv: &Invocation) -> anyhow::Result<Response> {
    let mut d = inv.payload.details();
    let target = settings::connection(&mut d);
    let switch = settings::switch(&mut d);
    let vhd_path = settings::vhd_path(&mut d);
    let vm_path = settings::vm_path(&mut d);
    let instance = settings::instance(&mut d);
    let vm = VmRef::read(&inv.payload, &mut d);
    let details = inv.payload.vm.clone().unwrap_or_default();
    let mem = take(&mut d, validate::memory_bytes(details.min_ram));
    let cpus = take(&mut d, validate::cpus(details.cpus));
    let nics = nics(inv.payload.nics(), &mut d);
    finish(d)?;

    let (tpl, iso, size, extension) = match &instance.source {
        Source::Template(path) => {
            let ext = if path.to_ascii_lowercase().ends_with(".vhd") {
                "vhd"
            } else {
                "vhdx"
            };
            (Some(path.as_str()), None, None, ext)
        }
        Source::Iso { iso, size_bytes } => (None, Some(iso.as_str()), Some(*size_bytes), "vhdx"),
    };
    let disk = validate::join(&vhd_path, &format!("{}.{extension}", vm.name));
    let (sb, sbt) = instance.secure_boot.firmware();
    let gen2 = instance.generation == 2;
    let data = CreateData {
        name: &vm.name,
        uuid: &vm.uuid,
        generation: instance.generation,
        mem,
        cpus,
        sw: &switch,
        disk: &disk,
        tpl,
        iso,
        size,
        dir: &vm_path,
        sb: gen2.then_some(sb),
        sbt: if gen2 { sbt } else { None },
        nics,
    };
    let doing = format!("creating VM {}", vm.name);
    match remote::run(&target, Script::Create, &data, &inv.deadline, &inv.id) {
        Ok(reply) => Ok(Response::success(format!(
            "VM {} created and started on {}",
            vm.name, target.host
        ))
        .with("vm_id", reply.str("id").unwrap_or_default())
        .with("disk", disk.as_str())),
        Err(RemoteError::Failed(f)) if f.code == "CREATE_FAILED" => {
            Err(create_failed(&f, &doing, &target))
        }
        Err(RemoteError::Failed(f)) => Err(create_refused(f, &doing, &target, &vm, &switch, &disk)),
        // Cut off mid-way (timeout, dropped session): PowerShell was killed before its own
        // rollback could run; clean up what it may have left, within the reserved time.
        Err(e @ (RemoteError::Ssh(SshError::Deadline(_)) | RemoteError::NoResult { .. })) => {
            let outcome = cleanup(inv, &target, &vm, &disk);
            Err(anyhow::anyhow!(
                "{doing} on {}:{}: {e}; {outcome}",
                target.host,
                target.port
            ))
        }
        Err(e) => Err(explain(e, &doing, &target, &vm)),
    }
}

/// The original error first; rollback problems after it.
fn create_failed(f: &Failure, doing: &str, target: &Target) -> anyhow::Error {
    let step = f.fields.get("step").and_then(|s| s.as_str()).unwrap_or("?");
    let detail = f.detail.as_deref().unwrap_or("");
    let rollback: Vec<&str> = f
        .fields
        .get("rollback")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    let undone = if rollback.is_empty() {
        "everything created so far was removed".to_owned()
    } else {
        format!(
            "the rollback failed too, check the host for leftovers: {}",
            rollback.join(" | ")
        )
    };
    anyhow::anyhow!(
        "{doing} on {} failed at step '{step}': {detail}; {undone}",
        target.host
    )
}

/// A pre-check refused the create: nothing was changed.
fn create_refused(
    f: Failure,
    doing: &str,
    target: &Target,
    vm: &VmRef,
    switch: &str,
    disk: &str,
) -> anyhow::Error {
    let host = &target.host;
    match f.code.as_str() {
        "VM_EXISTS" => anyhow::anyhow!(
            "{doing}: a VM named {} already exists on {host}; nothing was created",
            vm.name
        ),
        "SWITCH_NOT_FOUND" => match f.count() {
            Some(0) | None => anyhow::anyhow!(
                "{doing}: {host} has no virtual switch named '{switch}' (network_switch); nothing was created"
            ),
            Some(n) => anyhow::anyhow!(
                "{doing}: {n} virtual switches on {host} are named '{switch}'; rename them so the name is unique; nothing was created"
            ),
        },
        "DISK_EXISTS" => anyhow::anyhow!(
            "{doing}: the disk {disk} already exists on {host}; remove it if it is a leftover; nothing was created"
        ),
        _ => explain(RemoteError::Failed(f), doing, target, vm),
    }
}

fn cleanup(inv: &Invocation, target: &Target, vm: &VmRef, disk: &str) -> String {
    let deadline = inv.deadline.cleanup();
    let data = CleanupData {
        name: &vm.name,
        uuid: &vm.uuid,
        disk,
    };
    match remote::run(target, Script::CleanupCreate, &data, &deadline, &inv.id) {
        Ok(reply) => {
            let vm_removed = reply.bool("removed_vm") == Some(true);
            let files = reply.array("removed").map(Vec::len).unwrap_or(0);
            log::warn!(
                "cleanup after the interrupted create: VM removed: {vm_removed}, files removed: {files}"
            );
            format!("cleaned up: VM removed: {vm_removed}, files removed: {files}")
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

pub fn delete(inv: &Invocation) -> anyhow::Result<Response> {
    let VmReply { vm, reply, .. } = run_on_vm(
        inv,
        Script::Delete,
        "deleting VM",
        settings::vhd_path,
        |vhd_path| DeleteFields {
            vhd_path: vhd_path.clone(),
        },
    )?;
    if reply.bool("found") != Some(true) {
        return Ok(Response::success(format!(
            "VM {} does not exist on the host: nothing to delete",
            vm.name
        )));
    }
    let list = |key| -> Vec<String> {
        reply
            .array(key)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (removed, kept) = (list("removed"), list("kept"));
    let mut message = format!("VM {} deleted with {} disk(s)", vm.name, removed.len());
    if !kept.is_empty() {
        log::warn!(
            "VM {} deleted; disks kept (outside vhd_path or in use): {}",
            vm.name,
            kept.join(", ")
        );
        message.push_str(&format!(
            "; kept {} disk(s) outside vhd_path or in use: {}",
            kept.len(),
            kept.join(", ")
        ));
    }
    Ok(Response::success(message)
        .with("removed_disks", removed)
        .with("kept_disks", kept))
}
