//! Removing what a failed `create` made, and only that, within the deadline's cleanup
//! reserve; the error then says what was rolled back.

use log::{info, warn};

use crate::actions::DESTROY;
use crate::actions::power::stop_vm;
use crate::api::Client;
use crate::task;
use crate::upid::Upid;
use crate::vm::{NotOurs, VmRef};

/// What a `create` run has made so far, as [`super::build`] records it.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// The VMID is ours: PVE accepted our create/clone request with a task id.
    made_vm: bool,
    /// A task of ours that may still run.
    pending: Option<Upid>,
    /// The tags a clone got from its template, read before this run wrote its mark: a
    /// template made from a CloudStack VM passes that VM's mark on, and the rollback must
    /// recognise the clone by its name then, not refuse it as someone else's.
    inherited_tags: Option<Option<String>>,
}

impl Progress {
    /// PVE accepted the request that makes the VM; `task` is making it.
    pub fn made(&mut self, task: &Upid) {
        self.made_vm = true;
        self.waiting_for(task);
    }

    /// `task` of ours is changing the VM.
    pub fn waiting_for(&mut self, task: &Upid) {
        self.pending = Some(task.clone());
    }

    /// The pending task ended (well).
    pub fn task_ended(&mut self) {
        self.pending = None;
    }

    /// The fresh clone's tags, before this run marked it.
    pub fn inherited(&mut self, tags: Option<&str>) {
        self.inherited_tags = Some(tags.map(str::to_string));
    }

    /// Whether this run made a VM, which a failure must roll back.
    pub fn made_a_vm(&self) -> bool {
        self.made_vm
    }
}

/// Removes the VM this run created, within the cleanup reserve, and says what happened.
pub(super) fn roll_back(
    client: &Client,
    vm: &VmRef,
    progress: &Progress,
    cause: anyhow::Error,
) -> anyhow::Error {
    let cleanup = client.with_deadline(client.deadline().cleanup());
    match remove(&cleanup, vm, progress) {
        Ok(done) => {
            info!("rolled back: {done}");
            anyhow::anyhow!("{cause:#}; rolled back: {done}")
        }
        Err(e) => {
            warn!("rollback of VM {} failed: {e:#}", vm.vmid);
            anyhow::anyhow!(
                "{cause:#}; rolling back failed too ({e:#}): remove Proxmox VM {} on node {} by hand",
                vm.vmid,
                vm.node
            )
        }
    }
}

fn remove(cleanup: &Client, vm: &VmRef, progress: &Progress) -> anyhow::Result<String> {
    // A task of ours still holds the VM (a slow clone): let it end first.
    if let Some(upid) = &progress.pending
        && let Err(e) = task::wait(
            cleanup,
            upid,
            &format!("the interrupted task of VM {}", vm.vmid),
        )
    {
        warn!("the interrupted task {upid} did not end well: {e}");
    }
    let Some(found) = vm.locate(cleanup)? else {
        return Ok(format!("Proxmox VM {} is already gone", vm.vmid));
    };
    // Only what this run made, and still looks like it, is removed: it carries this VM's
    // mark, or (mark not written yet) this VM's name and what it got from the template.
    let inherited = progress
        .inherited_tags
        .as_ref()
        .is_some_and(|tags| *tags == found.status.tags);
    if inherited {
        vm.expected
            .check(found.status.name.as_deref(), None)
            .map_err(|m| NotOurs {
                vmid: vm.vmid,
                node: found.node.clone(),
                why: m.0,
            })?;
    } else {
        vm.check(&found)?;
    }
    if found.status.is_running() {
        stop_vm(cleanup, &found.node, vm.vmid)?;
    }
    match cleanup
        .destroy_vm(&found.node, vm.vmid, &DESTROY)
        .and_then(|upid| task::wait(cleanup, &upid, &format!("removing VM {}", vm.vmid)))
    {
        Ok(_) => Ok(format!(
            "removed Proxmox VM {} that this run had created",
            vm.vmid
        )),
        Err(e) if e.is_missing_vm() => Ok(format!("Proxmox VM {} is already gone", vm.vmid)),
        Err(e) => Err(e.into()),
    }
}
