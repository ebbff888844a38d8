//! Tasks still running on a VM: found through the node's task list, and stopped through the
//! API (`DELETE /nodes/{node}/tasks/{upid}`, as the GUI's Stop button does).
//!
//! Only tasks this API token started are ever found, and so ever stopped: another user's task
//! (a backup job, an operator's migration) is none of this extension's business. A task's
//! id names its VM, except a clone's, which names the source; the clone worker's first log
//! line names the new VM (`creating a clone of VM 9000 with ID 100`).

use log::{debug, info};

use crate::api::Client;
use crate::api::params::{NodeTasks, TaskSource};
use crate::error::{Error, clone_log_target};
use crate::model::{TaskEntry, Vmid};
use crate::task;
use crate::upid::Upid;

/// Tasks looked at per list request: more than one VM ever has running at once.
const LISTED: u32 = 50;
/// Clone log lines read to find the target: PVE prints it first.
const CLONE_LOG_LINES: u64 = 5;

/// The running tasks of `kind` (any when `None`) with this `id`, started by this client's token.
fn ours(
    client: &Client,
    node: &str,
    kind: Option<&'static str>,
    id: Option<Vmid>,
) -> Result<Vec<Upid>, Error> {
    let params = NodeTasks {
        typefilter: kind,
        vmid: id,
        source: TaskSource::Active,
        limit: LISTED,
    };
    Ok(client
        .node_tasks(node, &params)?
        .into_iter()
        .filter(TaskEntry::is_running)
        .filter_map(|t| t.upid?.parse::<Upid>().ok())
        .filter(|upid| upid.auth_id == client.token_id())
        .filter(|upid| kind.is_none_or(|k| upid.worker_type == k))
        .filter(|upid| id.is_none_or(|id| upid.worker_id == id.to_string()))
        .collect())
}

/// The running clone task of this token that makes `vmid` (from `source` when known).
pub fn clone_making(
    client: &Client,
    node: &str,
    source: Option<Vmid>,
    vmid: Vmid,
) -> Result<Option<Upid>, Error> {
    for upid in ours(client, node, Some("qmclone"), source)? {
        let (lines, _) = client.task_log(&upid, 0, CLONE_LOG_LINES)?;
        let target = lines
            .iter()
            .filter_map(|l| l.t.as_deref())
            .find_map(clone_log_target);
        if target.is_some_and(|(_, new)| new == vmid.get()) {
            return Ok(Some(upid));
        }
    }
    Ok(None)
}

/// The running task of this token that makes `vmid`: a clone, or an ISO install
/// (`qmcreate`, whose id is the VM).
pub fn making(
    client: &Client,
    node: &str,
    source: Option<Vmid>,
    vmid: Vmid,
) -> Result<Option<Upid>, Error> {
    if let Some(upid) = ours(client, node, Some("qmcreate"), Some(vmid))?.pop() {
        return Ok(Some(upid));
    }
    clone_making(client, node, source, vmid)
}

/// Every running task of this token on `vmid`: its own (start, config change, create ...)
/// and a clone making it.
pub fn on_vm(client: &Client, node: &str, vmid: Vmid) -> Result<Vec<Upid>, Error> {
    let mut tasks = ours(client, node, None, Some(vmid))?;
    tasks.extend(clone_making(client, node, None, vmid)?);
    Ok(tasks)
}

/// Stops `upid` if it still runs and waits until it ended, however it ended (a stopped task
/// fails with `received interrupt`; a stopped clone's worker removes the VM it was making).
/// Whether it had to be stopped.
pub fn stop_if_running(client: &Client, upid: &Upid, what: &str) -> Result<bool, Error> {
    if client.task_status(upid)?.status.as_deref() == Some("stopped") {
        return Ok(false);
    }
    stop(client, upid, what).map(|()| true)
}

/// Stops `upid` and waits until it ended, however it ended (a stopped task fails with
/// `received interrupt`; a stopped clone's worker removes the VM it was making).
pub fn stop(client: &Client, upid: &Upid, what: &str) -> Result<(), Error> {
    info!("stopping task {upid} ({what})");
    client.stop_task(upid)?;
    match task::wait(client, upid, what) {
        Ok(_) => Ok(()),
        Err(Error::Task(t)) => {
            debug!("task {upid} ended: {}", t.exitstatus);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeTransport, client, data};
    use crate::transport::Method;
    use serde_json::json;

    const OURS: &str = "UPID:pve1:00000A01:00001B5F:6B0128C0:qmclone:9000:root@pam!cs:";
    const OTHER_TOKEN: &str = "UPID:pve1:00000A02:00001B5F:6B0128C0:qmclone:9000:root@pam!ops:";
    const ENDED: &str = "UPID:pve1:00000A03:00001B5F:6B0128C0:qmclone:9000:root@pam!cs:";
    const ELSEWHERE: &str = "UPID:pve1:00000A04:00001B5F:6B0128C0:qmclone:9000:root@pam!cs:";

    #[test]
    fn a_clone_is_found_by_its_log_among_this_tokens_running_tasks() {
        let t = FakeTransport::new();
        // What PVE lists with source=active: running tasks say RUNNING, ended ones their
        // exit status and end time; the listing's user drops the token id.
        t.on(
            Method::Get,
            "/nodes/pve1/tasks?",
            vec![data(json!([
                {"upid": OTHER_TOKEN, "user": "root@pam", "tokenid": "ops", "status": "RUNNING"},
                {"upid": ENDED, "user": "root@pam", "tokenid": "cs", "status": "OK", "endtime": 1_700_000_000},
                {"upid": ELSEWHERE, "user": "root@pam", "tokenid": "cs", "status": "RUNNING"},
                {"upid": OURS, "user": "root@pam", "tokenid": "cs", "status": "RUNNING"},
            ]))],
        );
        t.on(
            Method::Get,
            "/nodes/pve1/tasks/UPID%3Apve1%3A00000A04",
            vec![data(
                json!([{"n": 1, "t": "creating a clone of VM 9000 with ID 101"}]),
            )],
        );
        t.on(
            Method::Get,
            "/nodes/pve1/tasks/UPID%3Apve1%3A00000A01",
            vec![data(
                json!([{"n": 1, "t": "creating a clone of VM 9000 with ID 100"}]),
            )],
        );
        let found = clone_making(
            &client(&t),
            "pve1",
            Some(Vmid::new(9000).unwrap()),
            Vmid::new(100).unwrap(),
        )
        .unwrap();
        assert_eq!(found.map(|u| u.to_string()).as_deref(), Some(OURS));
        let lines = t.lines();
        assert_eq!(
            lines[0],
            "GET /nodes/pve1/tasks?typefilter=qmclone&vmid=9000&source=active&limit=50"
        );
        // Only this token's running tasks had their logs read.
        assert_eq!(lines.len(), 3, "{lines:?}");
    }
}
