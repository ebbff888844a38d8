//! What every VM action reads: the connection, and which VM (its Proxmox id and CloudStack's
//! identity of it).

use ext_sdk::DetailReader;

use super::{Connection, PROXMOX_VMID, VM_NAME};
use crate::identity::{Expected, check_vm_name};
use crate::model::Vmid;
use crate::vm::VmRef;

/// The settings of an action on one VM.
#[derive(Debug, Clone)]
pub struct VmAction {
    pub conn: Connection,
    pub vm: VmRef,
}

impl VmAction {
    /// Reads the connection and the VM; problems are recorded in `d`. `None` only when a
    /// problem was recorded (so [`DetailReader::finish`] fails).
    pub fn read(d: &mut DetailReader<'_>) -> Option<VmAction> {
        let conn = Connection::read(d);
        let vmid: Option<Vmid> = d.required_with(&PROXMOX_VMID, |s| s.parse::<Vmid>().map(Some));
        let expected = expected(d);
        Some(VmAction {
            vm: VmRef {
                vmid: vmid?,
                node: conn.node.clone(),
                expected: expected?,
            },
            conn,
        })
    }
}

/// CloudStack's identity of the payload's VM; `vm_name` must be a valid Proxmox name.
fn expected(d: &mut DetailReader<'_>) -> Option<Expected> {
    let payload = d.payload();
    let instance_name = d.check(payload.vm_name().ok_or(
        "the payload names no VM (virtualmachinename and cloudstack.vm.details.name are missing)",
    ))?;
    let proxmox_name: String = d
        .optional_with(&VM_NAME, |s| check_vm_name(s).map(|()| s.to_string()))
        .unwrap_or_else(|| instance_name.to_string());
    Some(Expected {
        instance_name: instance_name.to_string(),
        uuid: payload.vm_uuid().map(str::to_string),
        proxmox_name,
    })
}
