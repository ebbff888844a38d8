//! Everything `create` will do, read and checked before the first request: one error names
//! every problem in the details, the NICs and the VM's size.

use std::fmt::Write as _;

use ext_sdk::hardware::{self, SizeLimits};
use ext_sdk::{DetailReader, MacAddress, Vlan};

use crate::api::params::{CloneVm, CreateVm, FinishCreate, NetDevices, UpdateConfig, VmConfig};
use crate::settings::{Create, Source};
use crate::vm::VmRef;

/// What Proxmox VE accepts as a VM's size (checked before anything is sent).
const SIZE_LIMITS: SizeLimits = SizeLimits {
    hypervisor: "Proxmox VE",
    max_cpus: None,
    min_memory_mib: 16,
    memory_multiple_mib: 1,
};

/// The SCSI controller of an ISO install's disk (one I/O thread per disk).
const ISO_SCSI_CONTROLLER: &str = "virtio-scsi-single";

/// One NIC as Proxmox gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NicPlan {
    /// `netN`: its place in device order.
    index: usize,
    mac: MacAddress,
    vlan: Vlan,
}

impl NicPlan {
    /// `virtio=MAC,bridge=BR[,tag=N],firewall=0`: no `tag` for untagged networks.
    fn value(&self, bridge: &str) -> String {
        let mut value = format!(
            "virtio={},bridge={bridge}",
            self.mac.to_colon_string().to_ascii_uppercase()
        );
        if let Some(tag) = self.vlan.tag() {
            let _ = write!(value, ",tag={tag}");
        }
        value.push_str(",firewall=0");
        value
    }
}

/// Everything `create` will do, validated before the first request.
#[derive(Debug, Clone)]
pub(super) struct CreatePlan {
    pub source: Source,
    cores: u32,
    memory_mib: u64,
    bridge: String,
    nics: Vec<NicPlan>,
}

impl CreatePlan {
    /// Reads and checks every input of `create`; problems in details and NICs are recorded
    /// in `d`, to be reported together.
    pub fn read(d: &mut DetailReader<'_>) -> CreatePlan {
        let payload = d.payload();
        let settings = Create::read(d, !payload.nics().is_empty());
        let nics = d
            .nics()
            .into_iter()
            .map(|nic| NicPlan {
                index: nic.position,
                mac: nic.mac,
                vlan: nic.vlan,
            })
            .collect();
        let vm = payload.vm.as_ref();
        let cores = d.check(hardware::vcpus(vm.and_then(|v| v.cpus), &SIZE_LIMITS));
        let memory_mib = d.check(hardware::memory_mib(
            vm.and_then(|v| v.min_ram),
            &SIZE_LIMITS,
        ));
        CreatePlan {
            source: settings.source,
            // Only used once every check passed.
            cores: cores.unwrap_or(1),
            memory_mib: memory_mib.unwrap_or(SIZE_LIMITS.min_memory_mib),
            bridge: settings.bridge.unwrap_or_default(),
            nics,
        }
    }

    /// The config every new VM gets: size, NICs and the ownership mark saying run `run` is
    /// making it (replacing any mark in `existing_tags`, keeping the other tags).
    fn config(&self, vm: &VmRef, run: &str, existing_tags: Option<&str>) -> VmConfig {
        VmConfig {
            cores: self.cores,
            memory: self.memory_mib,
            tags: vm.mark().creating(run).merge_into(existing_tags),
            nets: NetDevices(
                self.nics
                    .iter()
                    .map(|nic| (nic.index, nic.value(&self.bridge)))
                    .collect(),
            ),
        }
    }

    /// The clone request for a [`Source::Clone`], made by run `run`: the mark saying so goes
    /// into the description, so the new VM is recognisably this deploy's as soon as PVE
    /// writes its config.
    pub fn clone_params(
        &self,
        vm: &VmRef,
        run: &str,
        full: bool,
        storage: Option<&str>,
    ) -> CloneVm {
        CloneVm {
            newid: vm.vmid,
            name: vm.expected.proxmox_name.clone(),
            full,
            storage: storage.map(str::to_string),
            description: Some(vm.mark().creating(run).creating_note()),
        }
    }

    /// The config change that makes a fresh clone this VM: size, NICs and mark (still saying
    /// run `run` is making it), and no NIC the template had beyond ours (`current` is the
    /// clone's config).
    pub fn clone_config(
        &self,
        vm: &VmRef,
        run: &str,
        current: &serde_json::Map<String, serde_json::Value>,
    ) -> UpdateConfig {
        let existing_tags = current.get("tags").and_then(|t| t.as_str());
        let delete = current
            .keys()
            .filter(|key| {
                key.strip_prefix("net")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| !self.nics.iter().any(|nic| nic.index == n))
            })
            .cloned()
            .collect();
        UpdateConfig {
            config: self.config(vm, run, existing_tags),
            delete,
        }
    }

    /// `create`'s last step: the mark without `cs-creating` (the other tags kept from
    /// `tags`, the VM's current ones), and for a clone without the note its description
    /// carried while it was made.
    pub fn finish(&self, vm: &VmRef, tags: Option<&str>) -> FinishCreate {
        let cloned = matches!(self.source, Source::Clone { .. });
        FinishCreate {
            tags: vm.mark().merge_into(tags),
            delete: if cloned {
                vec!["description".to_string()]
            } else {
                Vec::new()
            },
        }
    }

    /// The create request for a [`Source::Iso`], made by run `run`: it carries the whole
    /// config, the mark saying so included.
    pub fn iso_params(
        &self,
        vm: &VmRef,
        run: &str,
        iso: &str,
        os_type: &str,
        disk_gb: u32,
        storage: &str,
    ) -> CreateVm {
        CreateVm {
            vmid: vm.vmid,
            name: vm.expected.proxmox_name.clone(),
            ostype: os_type.to_string(),
            scsihw: ISO_SCSI_CONTROLLER,
            scsi0: format!("{storage}:{disk_gb},iothread=1"),
            ide2: format!("{iso},media=cdrom"),
            sockets: 1,
            config: self.config(vm, run, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_values() {
        let mac: MacAddress = "02:01:00:cc:00:01".parse().unwrap();
        let tagged = NicPlan {
            index: 0,
            mac,
            vlan: Vlan::Tag(1577),
        };
        assert_eq!(
            tagged.value("vmbr1"),
            "virtio=02:01:00:CC:00:01,bridge=vmbr1,tag=1577,firewall=0"
        );
        let untagged = NicPlan {
            vlan: Vlan::Untagged,
            ..tagged
        };
        assert_eq!(
            untagged.value("vmbr1"),
            "virtio=02:01:00:CC:00:01,bridge=vmbr1,firewall=0"
        );
    }
}
