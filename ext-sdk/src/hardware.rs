//! The VM's hardware as CloudStack describes it, checked once for every hypervisor: vCPUs,
//! memory, and the NICs in device order with their MAC address and VLAN.
//!
//! # NIC order
//!
//! NICs are taken in `deviceId` order, and a NIC without a `deviceId` comes after every NIC
//! that has one, in payload order. Why:
//! - `deviceId` is the device slot: CloudStack's own hypervisor plugins attach NIC *n* at the
//!   slot its `deviceId` names, and the array is **not** in device order (CloudStack puts the
//!   default NIC first when it prepares the VM's networks), so the position in the array says
//!   nothing about the slot;
//! - `NicTO.deviceId` is a Java `int`, which Gson always writes, so every payload CloudStack
//!   sends has it; a NIC without one comes from a hand-written or foreign payload, and putting
//!   it last never moves a NIC whose slot CloudStack did name (treating the array position as
//!   its id could collide with a real `deviceId`).
//!
//! The i-th NIC in that order is "NIC i" in messages and the extension's i-th device.

use std::fmt;

use crate::details::DetailReader;
use crate::net::{MacAddress, Vlan};
use crate::payload::Nic;

const MIB: u64 = 1024 * 1024;

/// What a hypervisor accepts as a VM's size, for [`vcpus`] and [`memory_mib`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// The hypervisor's name in messages, e.g. `Hyper-V`.
    pub hypervisor: &'static str,
    /// The most vCPUs a VM may have, if the hypervisor has a limit worth checking early.
    pub max_cpus: Option<u32>,
    /// The least memory a VM may have, in MiB.
    pub min_memory_mib: u64,
    /// Memory must be a multiple of this many MiB (1 for any whole number).
    pub memory_multiple_mib: u64,
}

/// The vCPU count (`cloudstack.vm.details.cpus`), at least 1 and within the limit.
pub fn vcpus(cpus: Option<u32>, limits: &SizeLimits) -> Result<u32, String> {
    let hypervisor = limits.hypervisor;
    match (cpus, limits.max_cpus) {
        (None, _) => Err("the payload has no CPU count (cloudstack.vm.details.cpus)".to_owned()),
        (Some(n), Some(max)) if n == 0 || n > max => Err(format!(
            "{n} CPUs: {hypervisor} VMs have 1 to {max} virtual processors"
        )),
        (Some(0), None) => Err(format!(
            "0 CPUs: {hypervisor} VMs have at least 1 virtual processor"
        )),
        (Some(n), _) => Ok(n),
    }
}

/// The memory in MiB, from `minRam` (bytes, what CloudStack's samples use): a whole number of
/// MiB, at least the hypervisor's minimum, and a multiple of its step.
pub fn memory_mib(min_ram: Option<u64>, limits: &SizeLimits) -> Result<u64, String> {
    let hypervisor = limits.hypervisor;
    let bytes = min_ram
        .filter(|&b| b > 0)
        .ok_or("the payload has no memory size (cloudstack.vm.details.minRam)")?;
    if !bytes.is_multiple_of(MIB) {
        return Err(format!(
            "memory {bytes} bytes is not a whole number of MiB; use a service offering with whole MiB"
        ));
    }
    let mib = bytes / MIB;
    if mib < limits.min_memory_mib {
        return Err(format!(
            "memory {mib} MiB is below {hypervisor}'s minimum of {} MiB",
            limits.min_memory_mib
        ));
    }
    let step = limits.memory_multiple_mib.max(1);
    if !mib.is_multiple_of(step) {
        let below = mib - mib % step;
        let what = if step == 2 {
            "odd".to_owned()
        } else {
            format!("not a multiple of {step} MiB")
        };
        return Err(format!(
            "memory {mib} MiB is {what}; {hypervisor} needs a multiple of {step} MiB, use {below} or {} MiB",
            below + step
        ));
    }
    Ok(mib)
}

/// The NICs in device order; see the module docs for the rule.
pub fn in_device_order(nics: &[Nic]) -> Vec<&Nic> {
    let mut ordered: Vec<&Nic> = nics.iter().collect();
    // A stable sort: NICs without a deviceId (and any sharing one) keep their payload order.
    ordered.sort_by_key(|nic| (nic.device_id.is_none(), nic.device_id));
    ordered
}

/// One NIC, checked: usable as it is.
#[derive(Debug, Clone, Copy)]
pub struct CheckedNic<'p> {
    /// Its place in device order, 0 first: "NIC 0" in messages.
    pub position: usize,
    /// Its unicast MAC address.
    pub mac: MacAddress,
    /// The VLAN it attaches to.
    pub vlan: Vlan,
    /// Everything else CloudStack sent about it.
    pub nic: &'p Nic,
}

/// The label of the NIC at `position` in messages.
struct NicLabel(usize);

impl fmt::Display for NicLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NIC {}", self.0)
    }
}

impl<'p> DetailReader<'p> {
    /// The payload's NICs in device order, each with a usable MAC address and VLAN. A NIC
    /// with a missing or unusable MAC or VLAN is recorded as a problem ("NIC 1: ...") and left
    /// out, so [`DetailReader::finish`] fails naming every one.
    pub fn nics(&mut self) -> Vec<CheckedNic<'p>> {
        let payload = self.payload();
        let mut checked = Vec::new();
        for (position, nic) in in_device_order(payload.nics()).into_iter().enumerate() {
            let label = NicLabel(position);
            let mac = match nic.mac.as_deref() {
                Some(mac) => {
                    self.check(MacAddress::parse_nic(mac).map_err(|e| format!("{label}: {e}")))
                }
                None => {
                    self.problem(format!("{label}: no MAC address in the payload"));
                    None
                }
            };
            let vlan = self.check(nic.vlan().map_err(|e| format!("{label}: {e}")));
            if let (Some(mac), Some(vlan)) = (mac, vlan) {
                checked.push(CheckedNic {
                    position,
                    mac,
                    vlan,
                    nic,
                });
            }
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    const PROXMOX: SizeLimits = SizeLimits {
        hypervisor: "Proxmox VE",
        max_cpus: None,
        min_memory_mib: 16,
        memory_multiple_mib: 1,
    };
    const HYPERV: SizeLimits = SizeLimits {
        hypervisor: "Hyper-V",
        max_cpus: Some(240),
        min_memory_mib: 32,
        memory_multiple_mib: 2,
    };

    #[test]
    fn cpus_and_memory() {
        assert_eq!(vcpus(Some(2), &HYPERV), Ok(2));
        assert_eq!(vcpus(Some(4096), &PROXMOX), Ok(4096));
        assert_eq!(
            vcpus(Some(241), &HYPERV),
            Err("241 CPUs: Hyper-V VMs have 1 to 240 virtual processors".to_owned())
        );
        assert!(vcpus(None, &PROXMOX).unwrap_err().contains("no CPU count"));
        assert!(vcpus(Some(0), &HYPERV).unwrap_err().starts_with("0 CPUs"));
        assert!(vcpus(Some(0), &PROXMOX).unwrap_err().starts_with("0 CPUs"));
        assert_eq!(memory_mib(Some(512 * MIB), &HYPERV), Ok(512));
        assert_eq!(memory_mib(Some(17 * MIB), &PROXMOX), Ok(17));
        assert!(
            memory_mib(Some(4077 * MIB), &HYPERV)
                .unwrap_err()
                .ends_with(
                    "4077 MiB is odd; Hyper-V needs a multiple of 2 MiB, use 4076 or 4078 MiB"
                )
        );
        assert!(
            memory_mib(Some(16 * MIB), &HYPERV)
                .unwrap_err()
                .contains("below Hyper-V's minimum of 32 MiB")
        );
        assert!(
            memory_mib(Some(512 * MIB + 1), &PROXMOX)
                .unwrap_err()
                .contains("not a whole number of MiB")
        );
        for none in [None, Some(0)] {
            assert!(memory_mib(none, &PROXMOX).unwrap_err().contains("minRam"));
        }
    }

    fn payload(nics: &str) -> Payload {
        let json = format!(r#"{{"cloudstack.vm.details":{{"nics":{nics}}}}}"#);
        Payload::from_slice(json.as_bytes(), "test").unwrap()
    }

    #[test]
    fn nics_in_device_order_unnumbered_last() {
        // The default NIC (device 1) first, as CloudStack orders the array; one NIC without a
        // deviceId, which must not take slot 1 because of its place in the array.
        let p = payload(
            r#"[{"deviceId":1,"mac":"02:00:00:00:00:01","broadcastUri":"vlan://11"},
                {"mac":"02:00:00:00:00:0f"},
                {"deviceId":0,"mac":"02:00:00:00:00:00","broadcastUri":"vlan://untagged"},
                {"deviceId":2,"mac":"02:00:00:00:00:02"}]"#,
        );
        let mut d = p.details();
        let nics = d.nics();
        d.finish().unwrap();
        let order: Vec<(usize, String, Option<u16>)> = nics
            .iter()
            .map(|n| (n.position, n.mac.to_colon_string(), n.vlan.tag()))
            .collect();
        assert_eq!(
            order,
            [
                (0, "02:00:00:00:00:00".to_owned(), None),
                (1, "02:00:00:00:00:01".to_owned(), Some(11)),
                (2, "02:00:00:00:00:02".to_owned(), None),
                (3, "02:00:00:00:00:0f".to_owned(), None),
            ]
        );
    }

    #[test]
    fn every_nic_problem_is_reported() {
        let p = payload(
            r#"[{"deviceId":0,"broadcastUri":"vlan://5000"},
                {"deviceId":1,"mac":"01:00:5e:00:00:01"},
                {"deviceId":2,"mac":"02:00:00:00:00:02","broadcastUri":"vxlan://7"}]"#,
        );
        let mut d = p.details();
        assert!(d.nics().is_empty());
        let problems = d.finish().unwrap_err().other;
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0], "NIC 0: no MAC address in the payload");
        assert!(problems[1].starts_with("NIC 0: invalid VLAN in broadcast URI 'vlan://5000'"));
        assert!(
            problems[2].starts_with("NIC 1: invalid MAC address '01:00:5e:00:00:01': multicast")
        );
        assert!(problems[3].starts_with("NIC 2: unsupported network isolation 'vxlan://7'"));
    }
}
