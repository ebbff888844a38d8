//! Removing what a failed `create` made, and only that, within the cleanup reserve; the
//! error then says what was rolled back, or exactly what is left and what removes it.
//!
//! The reserve is sized from what a rollback does on a real PVE ([`RESERVE`]): stop the task
//! still at work on the VM (a slow clone or start) instead of waiting for it, power the VM
//! off, destroy it and wait for that task. What is removed must carry the mark saying this
//! run (or the earlier run this one was finishing) is making it; when a rollback cannot
//! finish, that mark stays on the VM, so the next `create` of the instance finishes it and
//! `delete` removes it: no failed deploy leaves a VM nothing will remove.

use std::time::Duration;

use log::{info, warn};

use crate::actions::DESTROY;
use crate::actions::power::stop_vm;
use crate::api::Client;
use crate::identity::Ownership;
use crate::running;
use crate::task;
use crate::upid::Upid;
use crate::vm::{NotOurs, VmRef};

/// What a rollback may need on a real PVE, step by step: stopping a task and seeing it end
/// (a clone's worker waits a second before it frees the volumes it made), a hard stop of the
/// VM, its destruction, and the few reads that find and check it. `create`'s work ends this
/// long before the deadline's hard end (at most half the timeout; see
/// [`ext_sdk::Deadline::reserving`]).
pub(super) const RESERVE: Duration = Duration::from_secs(3 + 5 + 5 + 2);

/// Who made the VM at the VMID, as far as this run knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Maker {
    /// This run: PVE accepted its request (or its mark shows it did).
    ThisRun,
    /// An earlier `create` of this instance, which left it half-made; this run finishes it.
    EarlierRun(String),
}

/// What a `create` run has made so far, as [`super::build`] records it.
#[derive(Debug, Default)]
pub(super) struct Progress {
    maker: Option<Maker>,
    /// A request of this run may have made the VM without an answer saying so.
    unsure: bool,
    /// A task of ours that may still run.
    pending: Option<Upid>,
}

impl Progress {
    /// PVE accepted the request that makes the VM; `task` is making it.
    pub fn made(&mut self, task: &Upid) {
        self.maker = Some(Maker::ThisRun);
        self.waiting_for(task);
    }

    /// The task [`Progress::made`] recorded ended without making the VM (another request
    /// had the VMID first).
    pub fn made_nothing(&mut self) {
        self.maker = None;
        self.pending = None;
    }

    /// The VM carries the mark of `run`: this run made it although the answer was lost, or
    /// an earlier run left it half-made and this run takes it over.
    pub fn found(&mut self, run: &str, this_run: &str) {
        self.maker = Some(if run == this_run {
            Maker::ThisRun
        } else {
            Maker::EarlierRun(run.to_string())
        });
    }

    /// A request of this run may have made the VM, and nothing shows whether it did.
    pub fn unsure(&mut self) {
        self.unsure = true;
    }

    /// `task` of ours is changing the VM.
    pub fn waiting_for(&mut self, task: &Upid) {
        self.pending = Some(task.clone());
    }

    /// The pending task ended (well).
    pub fn task_ended(&mut self) {
        self.pending = None;
    }

    /// Whether a failure must roll back: this run made (or took over) a VM, or may have.
    pub fn made_a_vm(&self) -> bool {
        self.maker.is_some() || self.unsure
    }

    /// This run finishes a half-made VM an earlier run left.
    pub fn finishes_an_earlier_run(&self) -> bool {
        matches!(self.maker, Some(Maker::EarlierRun(_)))
    }

    /// Whether the mark of `run` makes the VM this run's to remove.
    fn owns(&self, run: &str, this_run: &str) -> bool {
        run == this_run || self.maker == Some(Maker::EarlierRun(run.to_string()))
    }
}

/// Removes the VM this run created, within the cleanup reserve, and says what happened.
pub(super) fn roll_back(
    client: &Client,
    vm: &VmRef,
    run: &str,
    progress: &Progress,
    cause: anyhow::Error,
) -> anyhow::Error {
    let cleanup = client.with_deadline(client.deadline().cleanup());
    let mut left = Left::Unknown;
    match remove(&cleanup, vm, run, progress, &mut left) {
        Ok(done) => {
            info!("rolled back: {done}");
            anyhow::anyhow!("{cause:#}; rolled back: {done}")
        }
        Err(e) => {
            warn!("rollback of VM {} failed: {e:#}", vm.vmid);
            let what = match left {
                Left::Marked => format!(
                    "Proxmox VM {} on node {} is left half-made and marked as this deploy's (create run {run}): deploying the instance again finishes it, deleting (expunging) the instance removes it",
                    vm.vmid, vm.node
                ),
                Left::Untouched => format!("nothing of this run's was removed on node {}", vm.node),
                Left::BeingMade => format!(
                    "Proxmox VM {} on node {} is still being made by a task and carries no mark yet, so it was left to that task; if it is this deploy's, it carries its mark once made: deploying the instance again finishes it, deleting (expunging) the instance removes it",
                    vm.vmid, vm.node
                ),
                Left::Unknown => format!(
                    "Proxmox VM {} on node {} may be left half-made; if it is, it carries this deploy's mark: deploying the instance again finishes it, deleting (expunging) the instance removes it",
                    vm.vmid, vm.node
                ),
            };
            anyhow::anyhow!("{cause:#}; rolling back did not finish ({e:#}): {what}")
        }
    }
}

/// What a rollback that did not finish leaves.
enum Left {
    /// A VM carrying the mark of this run (or the run it was finishing).
    Marked,
    /// A VM that is not this run's: never touched.
    Untouched,
    /// A VM a task is still making, not recognisable yet (PVE writes a clone's notes once its
    /// first disk is copied).
    BeingMade,
    /// The rollback could not tell.
    Unknown,
}

/// What the rollback did: the outcome, then the tasks it stopped to get there.
fn said(outcome: String, stopped: &[String]) -> String {
    if stopped.is_empty() {
        outcome
    } else {
        format!(
            "{outcome} (after stopping its {} task)",
            stopped.join(" and ")
        )
    }
}

fn remove(
    cleanup: &Client,
    vm: &VmRef,
    run: &str,
    progress: &Progress,
    left: &mut Left,
) -> anyhow::Result<String> {
    let mut stopped = Vec::new();
    // A task of ours still at work on the VM (a slow clone, a slow start): waiting for it
    // could take the whole reserve, so it is stopped. A stopped clone's worker removes the
    // VM it was making.
    if let Some(upid) = &progress.pending {
        let what = format!(
            "the interrupted {} task of VM {}",
            upid.worker_type, vm.vmid
        );
        if running::stop_if_running(cleanup, upid, &what)? {
            stopped.push(upid.worker_type.clone());
        }
    }
    let Some(found) = vm.locate(cleanup)? else {
        let outcome = if progress.unsure && progress.maker.is_none() {
            format!(
                "Proxmox VM {} does not exist, so nothing of this run is left (should Proxmox still make it, it carries this deploy's mark: deploying the instance again finishes it, deleting it removes it)",
                vm.vmid
            )
        } else {
            format!("Proxmox VM {} is gone", vm.vmid)
        };
        return Ok(said(outcome, &stopped));
    };
    // Only what carries the mark of this run (or of the earlier run it was finishing) is
    // removed.
    match vm.identify(cleanup, &found) {
        Ok(Ownership::HalfMade { run: by }) if progress.owns(&by, run) => *left = Left::Marked,
        // Finished but the last answer was lost: still this run's deploy, which failed.
        Ok(Ownership::Marked) if progress.maker.is_some() => *left = Left::Marked,
        Ok(_) => {
            *left = Left::Untouched;
            anyhow::bail!(
                "Proxmox VM {} does not carry the mark of this run, so it was left untouched",
                vm.vmid
            );
        }
        Err(e) => {
            if e.is::<NotOurs>() {
                *left = if found.status.is_being_made() {
                    Left::BeingMade
                } else {
                    Left::Untouched
                };
            }
            return Err(e.context(format!("Proxmox VM {} was left untouched", vm.vmid)));
        }
    }
    // Tasks of ours whose answers were lost may still hold the VM's lock.
    for upid in running::on_vm(cleanup, &found.node, vm.vmid)? {
        running::stop(cleanup, &upid, &format!("a task of VM {}", vm.vmid))?;
        stopped.push(upid.worker_type.clone());
    }
    if found.status.is_running() {
        stop_vm(cleanup, &found.node, vm.vmid)?;
    }
    match cleanup
        .destroy_vm(&found.node, vm.vmid, &DESTROY)
        .and_then(|upid| task::wait(cleanup, &upid, &format!("removing VM {}", vm.vmid)))
    {
        Ok(_) => Ok(said(
            format!(
                "removed Proxmox VM {} that this run had {}",
                vm.vmid,
                if progress.finishes_an_earlier_run() {
                    "taken over"
                } else {
                    "created"
                }
            ),
            &stopped,
        )),
        Err(e) if e.is_missing_vm() => {
            Ok(said(format!("Proxmox VM {} is gone", vm.vmid), &stopped))
        }
        Err(e) => Err(e.into()),
    }
}
