//! The requests that make the VM: clone (then configure) or create from an ISO, start, and
//! finally drop the mark's `cs-creating` (the VM is finished only then). What each request
//! made is recorded in [`Progress`] as soon as PVE has answered it, so a failure at any later
//! point knows what to roll back.
//!
//! The request that makes the VM carries the mark saying this run makes it (a clone's in its
//! description, an ISO install's in its tags), so the VM is recognisable from the moment PVE
//! writes its config. That is what lets `create` find out what happened when the answer is
//! lost after the request may have reached PVE (the connection dropped or cut off, no answer
//! before the deadline, pveproxy's 596 after forwarding): the VMID is looked at, and
//! - a VM carrying this run's mark was made by this run: it is finished (or, past the
//!   deadline, rolled back);
//! - a VM carrying the mark of an earlier run of this instance is that run's half-made VM:
//!   it is finished too (so is one found when PVE refuses the VMID as taken);
//! - no VM: the request is sent once more (the VMID makes it safe: PVE refuses a second VM
//!   on it, and a second clone worker for it fails on the first one's lock);
//! - anything else belongs to someone else and is never touched.

use anyhow::Context;
use log::{info, warn};

use super::plan::CreatePlan;
use super::rollback::Progress;
use crate::actions::power::{start_vm, start_vm_then, stop_vm};
use crate::api::Client;
use crate::error::{Error, PveSays};
use crate::identity::{Mark, Ownership};
use crate::model::Vmid;
use crate::running;
use crate::settings::Source;
use crate::task;
use crate::upid::Upid;
use crate::vm::{Located, NotOurs, VmRef};

/// How often a VM being made by a task that cannot be found is looked at again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// How `create` ended well.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Built {
    Created,
    /// An earlier run for this very VM had left it half-made; this run finished it.
    Finished,
    /// An earlier run for this very VM (CloudStack retried) had already created it.
    AlreadyThere,
}

/// What is at the VMID once the make request was dealt with.
enum Made {
    /// This run's request made it just now: a fresh clone (or ISO install), stopped.
    Fresh,
    /// A half-made VM of this deploy, in the state found.
    Found(Located),
    /// This VM, finished by an earlier run.
    Finished(Located),
}

/// One `create` run: what each of its steps needs.
pub(super) struct Job<'a> {
    pub client: &'a Client,
    pub vm: &'a VmRef,
    pub plan: &'a CreatePlan,
    /// This invocation's id: the run the mark names while it makes the VM.
    pub run: &'a str,
}

pub(super) fn build(job: &Job<'_>, progress: &mut Progress) -> anyhow::Result<Built> {
    let Job { client, vm, .. } = *job;
    let found = match make(job, progress)? {
        Made::Finished(found) => {
            if !found.status.is_running() {
                start_vm(client, &found.node, vm.vmid)?;
            }
            info!("VM {} was already created for this CloudStack VM", vm.vmid);
            return Ok(Built::AlreadyThere);
        }
        Made::Fresh => None,
        Made::Found(found) => Some(found),
    };
    complete(job, progress, found)?;
    info!(
        "created and started VM {} ('{}') on node {}",
        vm.vmid, vm.expected.proxmox_name, vm.node
    );
    Ok(if progress.finishes_an_earlier_run() {
        Built::Finished
    } else {
        Built::Created
    })
}

/// Sends the request that makes the VM, and deals with what is at the VMID when PVE refuses
/// it as taken or its answer is lost.
fn make(job: &Job<'_>, progress: &mut Progress) -> anyhow::Result<Made> {
    let Job { client, vm, .. } = *job;
    // An answer was lost: the VM at the VMID may be this run's even when PVE refuses the
    // request sent again.
    let mut lost_before = false;
    loop {
        let (sent, what) = send(job);
        let error = match sent {
            Ok(upid) => return made(job, progress, &upid, &what, lost_before),
            Err(e) => e,
        };
        if error.is_vmid_taken() {
            let why = error.to_string();
            return match vm.locate(client)? {
                Some(found) => claim(job, progress, found, &why, lost_before),
                None => Err(taken(vm, &why)),
            };
        }
        if !error.may_have_acted() {
            return Err(refused(vm, error, template_of(job.plan)));
        }
        warn!(
            "{what}: the request may have reached Proxmox, but its answer was lost ({error}); looking at VM {}",
            vm.vmid
        );
        let lost = anyhow::Error::new(error).context(format!(
            "{what}: the request may have reached Proxmox, but its answer was lost"
        ));
        if client.deadline().expired() {
            progress.unsure();
            return Err(lost);
        }
        let found = match vm.locate(client) {
            Ok(found) => found,
            Err(e) => {
                progress.unsure();
                return Err(lost.context(format!("looking for VM {} failed too: {e}", vm.vmid)));
            }
        };
        match found {
            Some(found) => {
                let why = format!("{lost:#}");
                return claim(job, progress, found, &why, true);
            }
            None if !lost_before => info!(
                "VM {} does not exist: sending the request again (PVE refuses a second VM on one VMID)",
                vm.vmid
            ),
            None => {
                progress.unsure();
                return Err(lost.context(format!(
                    "the answer was lost twice, and VM {} does not exist",
                    vm.vmid
                )));
            }
        }
        lost_before = true;
    }
}

/// The clone or ISO create request, and what it does in words ("linked clone of template
/// 9000 into VM 100").
fn send(job: &Job<'_>) -> (Result<Upid, Error>, String) {
    let Job {
        client,
        vm,
        plan,
        run,
    } = *job;
    match &plan.source {
        Source::Clone {
            template,
            full,
            storage,
        } => {
            let params = plan.clone_params(vm, run, *full, storage.as_deref());
            let kind = if *full { "full" } else { "linked" };
            (
                client.clone_vm(&vm.node, *template, &params),
                format!("{kind} clone of template {template} into VM {}", vm.vmid),
            )
        }
        Source::Iso {
            iso,
            os_type,
            disk_gb,
            storage,
        } => (
            client.create_vm(
                &vm.node,
                &plan.iso_params(vm, run, iso, os_type, *disk_gb, storage),
            ),
            format!("creating VM {} from {iso}", vm.vmid),
        ),
    }
}

/// PVE accepted the request: its task `upid` makes the VM.
fn made(
    job: &Job<'_>,
    progress: &mut Progress,
    upid: &Upid,
    what: &str,
    lost_before: bool,
) -> anyhow::Result<Made> {
    progress.made(upid);
    match task::wait(job.client, upid, what) {
        Ok(_) => {
            progress.task_ended();
            Ok(Made::Fresh)
        }
        // Sent again after a lost answer, and the first request's worker had the VMID first
        // (this one found its config, or waited for its lock in vain).
        Err(e)
            if lost_before
                && matches!(
                    e.task_says(),
                    Some(PveSays::VmidTaken | PveSays::LockTimeout)
                ) =>
        {
            progress.made_nothing();
            let why = e.to_string();
            match job.vm.locate(job.client)? {
                Some(found) => claim(job, progress, found, &why, true),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn template_of(plan: &CreatePlan) -> Option<Vmid> {
    match &plan.source {
        Source::Clone { template, .. } => Some(*template),
        Source::Iso { .. } => None,
    }
}

/// A VM is at the VMID where this run makes one: this deploy's (half-made, or finished by an
/// earlier run) is taken over; anything else is someone else's and left untouched. `why` says
/// how this run learnt of it (PVE's refusal, or the lost answer: `lost`, then this run's
/// request may be what is making it).
fn claim(
    job: &Job<'_>,
    progress: &mut Progress,
    mut found: Located,
    why: &str,
    lost: bool,
) -> anyhow::Result<Made> {
    let Job {
        client, vm, run, ..
    } = *job;
    let mut waited = false;
    loop {
        let being_made = found.status.is_being_made();
        match vm.identify(client, &found) {
            Ok(Ownership::HalfMade { run: by }) => {
                progress.found(&by, run);
                if by == run {
                    info!(
                        "VM {} carries this run's mark: the lost request made it",
                        vm.vmid
                    );
                } else {
                    info!(
                        "VM {} is half-made by an earlier create of this instance (run {by}): finishing it",
                        vm.vmid
                    );
                }
                if being_made {
                    wait_for_maker(job, Some(progress), &found)?;
                    found = vm.locate(client)?.ok_or_else(|| {
                        anyhow::anyhow!("Proxmox VM {} vanished while it was made", vm.vmid)
                    })?;
                }
                return Ok(Made::Found(found));
            }
            Ok(Ownership::Marked) if !being_made => return Ok(Made::Finished(found)),
            Err(e) if !e.is::<NotOurs>() => return Err(e),
            // PVE writes a clone's name and notes only once its first disk is copied: the task
            // making it is waited for, then the VM looked at again.
            _ if being_made && !waited => {
                if lost {
                    progress.unsure();
                }
                wait_for_maker(job, None, &found)?;
                waited = true;
                found = vm.locate(client)?.ok_or_else(|| taken(vm, why))?;
            }
            _ => return Err(taken(vm, why)),
        }
    }
}

/// Waits for the task making the VM to end; with `progress` (the VM is this deploy's), the
/// task is recorded, so a deadline stops it in the rollback.
fn wait_for_maker(
    job: &Job<'_>,
    mut progress: Option<&mut Progress>,
    found: &Located,
) -> anyhow::Result<()> {
    let Job {
        client, vm, plan, ..
    } = *job;
    let what = format!("the task making VM {}", vm.vmid);
    if let Some(upid) = running::making(client, &found.node, template_of(plan), vm.vmid)? {
        if let Some(p) = progress.as_deref_mut() {
            p.waiting_for(&upid);
        }
        task::wait(client, &upid, &what)?;
        if let Some(p) = progress {
            p.task_ended();
        }
        return Ok(());
    }
    // Not a task of this token: its lock tells when it is done.
    loop {
        match vm.locate(client)? {
            Some(now) if now.status.is_being_made() => {}
            _ => return Ok(()),
        }
        client.deadline().sleep(LOCK_POLL).map_err(|_| {
            Error::Deadline(client.deadline().exceeded(&format!("waiting for {what}")))
        })?;
    }
}

/// Configures (a clone), starts and finishes the VM; `found` is its state when this run did
/// not see it made (a lost answer, an earlier run's VM), `None` for a fresh one.
fn complete(job: &Job<'_>, progress: &mut Progress, found: Option<Located>) -> anyhow::Result<()> {
    let Job {
        client, vm, plan, ..
    } = *job;
    let node = found
        .as_ref()
        .map_or(vm.node.clone(), |found| found.node.clone());
    let mut tags = found.as_ref().and_then(|found| found.status.tags.clone());
    let cloned = matches!(plan.source, Source::Clone { .. });
    let mut running = found
        .as_ref()
        .is_some_and(|found| found.status.is_running());
    // A running clone went through the config step (its tags carry the mark) before its
    // start; one that runs without it was started by someone else as the template's copy,
    // and must not run as this instance before it is configured.
    let configured = found.as_ref().is_some_and(|found| {
        vm.expected
            .half_made_by(vm.vmid, Mark::from_tags(found.status.tags.as_deref()))
            .is_some()
    });
    if cloned && running && !configured {
        warn!("VM {} runs without its config; stopping it first", vm.vmid);
        stop_vm(client, &node, vm.vmid)?;
        running = false;
    }
    // A stopped clone is configured (again: this run's size and NICs, whatever an earlier
    // run wrote).
    if cloned && !running {
        tags = Some(configure(job, &node, progress)?);
    }
    if !running {
        start_vm_then(client, &node, vm.vmid, |upid| progress.waiting_for(upid))
            .with_context(|| format!("VM {} was created but did not start", vm.vmid))?;
        progress.task_ended();
    }
    client
        .finish_create(&node, vm.vmid, &plan.finish(vm, tags.as_deref()))
        .with_context(|| {
            format!(
                "VM {} was created and started, but removing create's marks from it failed",
                vm.vmid
            )
        })?;
    Ok(())
}

/// The config step of a clone: size, NICs and mark (NICs the template had beyond ours are
/// removed); returns the tags written.
fn configure(job: &Job<'_>, node: &str, progress: &mut Progress) -> anyhow::Result<String> {
    let Job {
        client,
        vm,
        plan,
        run,
    } = *job;
    let current = client.vm_config(node, vm.vmid)?;
    let change = plan.clone_config(vm, run, &current);
    let tags = change.config.tags.clone();
    if let Some(upid) = client.update_config(node, vm.vmid, &change)? {
        progress.waiting_for(&upid);
        task::wait(client, &upid, &format!("configuring VM {}", vm.vmid))?;
        progress.task_ended();
    }
    Ok(tags)
}

/// Another deploy (or a person) holds the VMID; `why` is how this run learnt of it.
fn taken(vm: &VmRef, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Proxmox VMID {} is already taken ({why}): another deploy (another management server, or a VM made outside CloudStack) took it after prepare handed it out. Nothing was changed and nothing was deleted. Deploy the instance again: prepare hands out a new id. If this repeats, give each management server or zone deploying into this Proxmox cluster its own vmid_range",
        vm.vmid
    )
}

/// PVE refused the request that makes the VM, so this run made nothing and removes nothing.
fn refused(vm: &VmRef, error: Error, template: Option<Vmid>) -> anyhow::Error {
    if let Some(template) = template.filter(|_| error.is_missing_vm()) {
        return anyhow::anyhow!(
            "template {template} does not exist on node {} (check the template detail template_id); nothing was changed",
            vm.node
        );
    }
    anyhow::Error::new(error).context(format!(
        "creating Proxmox VM {} failed; nothing was changed",
        vm.vmid
    ))
}
