//! The typed Proxmox VE API this extension uses, over any [`Transport`].
//!
//! Each PVE call is one method taking the call's parameter struct ([`params`]); how those
//! become a form body or query string is private to this module, so callers never spell a
//! PVE parameter name.
//!
//! Requests go to `/api2/extjs`: its envelope carries PVE's error message on every PVE
//! version (the json format lost it before libpve-http-server-perl 5.2.0, and ureq cannot
//! read reason phrases), which is also what Proxmox's own Rust client does. Paths are built
//! from percent-encoded segments and never end in a slash. Every request is bounded by the
//! invocation's [`Deadline`] and retried according to [`RetryPolicy`].

use std::rc::Rc;
use std::time::Duration;

use ext_sdk::Deadline;
use ext_sdk::text::truncate;
use log::{debug, warn};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::model::{
    ClusterMember, ClusterNode, ClusterVm, LogLine, NetworkInterface, NodeStorage, NodeVm,
    Snapshot, StorageVolume, TaskEntry, TaskStatus, VmStatus, Vmid, VncProxy,
};
use crate::retry::{Idempotency, RetryPolicy};
use crate::settings::Connection;
use crate::transport::{Method, Request, Transport, TransportErrorKind, UreqTransport};
use crate::upid::Upid;

mod envelope;
mod form;
pub mod params;

use envelope::Answer;

use form::{Form, encode};
use params::{
    CloneVm, ClusterResources, CreateSnapshot, CreateVm, DestroyVm, FinishCreate, NextId,
    NodeTasks, Permissions, Reboot, ResourceKind, SetTags, Shutdown, StorageContent, TaskLog,
    UpdateConfig,
};

/// How long one request may take at most (upstream uses the same), within the deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `/seg/seg/...` with every segment percent-encoded and no trailing slash.
fn path(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{}", encode(s))).collect()
}

fn vm_path(node: &str, vmid: Vmid, rest: &[&str]) -> String {
    let id = vmid.to_string();
    let mut segments = vec!["nodes", node, "qemu", id.as_str()];
    segments.extend_from_slice(rest);
    path(&segments)
}

/// A client of the API `conn` names, bounded by `deadline`: one connection pool for the whole
/// invocation.
pub fn connect(conn: &Connection, deadline: Deadline) -> Result<Client, Error> {
    let transport = UreqTransport::new(
        &conn.address(),
        &conn.url.api_base(),
        &conn.token_id,
        &conn.secret,
        &conn.tls,
    )?;
    debug!(
        "Proxmox API {} as {} on node {}",
        conn.url, conn.token_id, conn.node
    );
    Ok(Client::new(Rc::new(transport), deadline, &conn.token_id).at(&conn.address()))
}

/// A power command under `…/status/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PowerCommand {
    Start,
    Stop,
    Shutdown,
    Reboot,
    Reset,
    Suspend,
    Resume,
}

impl PowerCommand {
    fn as_str(self) -> &'static str {
        match self {
            PowerCommand::Start => "start",
            PowerCommand::Stop => "stop",
            PowerCommand::Shutdown => "shutdown",
            PowerCommand::Reboot => "reboot",
            PowerCommand::Reset => "reset",
            PowerCommand::Suspend => "suspend",
            PowerCommand::Resume => "resume",
        }
    }
}

/// A Proxmox API client for one invocation. Cheap to clone: clones share the transport (and
/// so its connection pool).
#[derive(Clone)]
pub struct Client {
    transport: Rc<dyn Transport>,
    deadline: Deadline,
    token_id: Rc<str>,
    retry: RetryPolicy,
    /// The API's address and the detail it came from, named when time runs out.
    at: Rc<str>,
}

impl Client {
    pub fn new(transport: Rc<dyn Transport>, deadline: Deadline, token_id: &str) -> Client {
        Client {
            transport,
            deadline,
            token_id: token_id.into(),
            retry: RetryPolicy::default(),
            at: "".into(),
        }
    }

    /// The same client naming `at` (`https://pve1:8006 (host detail 'url')`) when a request
    /// runs out of time.
    pub fn at(mut self, at: &str) -> Client {
        self.at = at.into();
        self
    }

    /// `what`, plus where it went when that is known.
    fn to_api(&self, what: &str) -> String {
        if self.at.is_empty() {
            what.to_string()
        } else {
            format!("{what} from {}", self.at)
        }
    }

    /// The same client bounded by another deadline (e.g. the cleanup reserve).
    pub fn with_deadline(&self, deadline: Deadline) -> Client {
        Client {
            deadline,
            ..self.clone()
        }
    }

    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// The API token this client acts as (`user@realm!tokenid`): the user of its tasks.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// Sends one request (retrying as the policy allows); returns the answer's `data`, decoded
    /// as `T` straight from the body, and its `total` (the one attribute beside `data` a call
    /// needs).
    fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: Form,
        idempotency: Idempotency,
    ) -> Result<Answer<T>, Error> {
        let what = format!("{method} {path}");
        let (path_and_query, body) = match method {
            Method::Get | Method::Delete if form.is_empty() => (path.to_string(), None),
            Method::Get | Method::Delete => (format!("{path}?{}", form.encode()), None),
            Method::Post | Method::Put => (path.to_string(), Some(form.encode())),
        };
        let request = Request {
            method,
            path_and_query,
            form: body,
        };
        let mut attempt = 1;
        loop {
            self.deadline
                .check(&self.to_api(&format!("sending {what}")))?;
            let timeout = self.deadline.bound(REQUEST_TIMEOUT);
            debug!(
                "{} {} {}",
                request.method,
                request.path_and_query,
                request.form.as_deref().unwrap_or("")
            );
            let result = self
                .transport
                .send(&request, timeout)
                .map_err(Error::from)
                .and_then(|response| envelope::read(&response, &what, &self.token_id));
            match result {
                Ok(answer) => return Ok(answer),
                Err(Error::Transport(e))
                    if e.kind == TransportErrorKind::Timeout && self.deadline.expired() =>
                {
                    return Err(Error::Unanswered(
                        self.deadline
                            .exceeded(&self.to_api(&format!("waiting for {what}"))),
                    ));
                }
                Err(e) if self.retry.should_retry(&e, idempotency, attempt) => {
                    attempt += 1;
                    let delay = self.retry.delay_before(attempt);
                    warn!(
                        "{what} failed ({e}); attempt {attempt} in {} ms",
                        delay.as_millis()
                    );
                    if self.deadline.sleep(delay).is_err() {
                        return Err(e);
                    }
                }
                Err(e) => {
                    debug!("{what} failed: {e}");
                    return Err(e);
                }
            }
        }
    }

    /// Sends one request and returns its `data` as a `T`.
    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: Form,
        idempotency: Idempotency,
    ) -> Result<T, Error> {
        Ok(self.exchange(method, path, form, idempotency)?.data)
    }

    fn get<D: DeserializeOwned>(&self, path: &str, query: Form) -> Result<D, Error> {
        self.call(Method::Get, path, query, Idempotency::Read)
    }

    fn task(&self, method: Method, path: &str, form: Form) -> Result<Upid, Error> {
        let data: Value = self.call(method, path, form, Idempotency::Write)?;
        upid_of(data, &format!("{method} {path}"))
    }

    fn power(
        &self,
        node: &str,
        vmid: Vmid,
        command: PowerCommand,
        form: Form,
    ) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &vm_path(node, vmid, &["status", command.as_str()]),
            form,
        )
    }

    // ---------------------------------------------------------------- cluster

    /// `GET /cluster/nextid`: the lowest free VMID (nothing is reserved), or with a `vmid`,
    /// that id itself if it is free.
    pub fn next_id(&self, params: &NextId) -> Result<Vmid, Error> {
        let data: Value = self.get("/cluster/nextid", Form::of(params)?)?;
        let text = match &data {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        text.parse().map_err(|detail| Error::BadResponse {
            what: "GET /cluster/nextid".into(),
            detail,
        })
    }

    /// `GET /cluster/resources?type=vm`: every guest of the cluster with its node.
    pub fn cluster_vms(&self) -> Result<Vec<ClusterVm>, Error> {
        let params = ClusterResources {
            kind: ResourceKind::Vm,
        };
        self.get("/cluster/resources", Form::of(&params)?)
    }

    /// `GET /cluster/status`: the cluster and its nodes with their addresses.
    pub fn cluster_members(&self) -> Result<Vec<ClusterMember>, Error> {
        self.get("/cluster/status", Form::default())
    }

    /// `GET /version`: the PVE version (every authenticated token may read it).
    pub fn version(&self) -> Result<Value, Error> {
        self.get("/version", Form::default())
    }

    /// `GET /access/permissions?path=...`: the privileges this token holds, by path.
    pub fn permissions(&self, on: &str) -> Result<serde_json::Map<String, Value>, Error> {
        self.get("/access/permissions", Form::of(&Permissions { path: on })?)
    }

    /// `GET /nodes/{node}/storage`: the storages the node sees.
    pub fn node_storages(&self, node: &str) -> Result<Vec<NodeStorage>, Error> {
        self.get(&path(&["nodes", node, "storage"]), Form::default())
    }

    /// `GET /nodes/{node}/storage/{storage}/content?content=...`.
    pub fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: &str,
    ) -> Result<Vec<StorageVolume>, Error> {
        self.get(
            &path(&["nodes", node, "storage", storage, "content"]),
            Form::of(&StorageContent { content })?,
        )
    }

    /// `GET /nodes`: the cluster's nodes and whether they are online.
    pub fn nodes(&self) -> Result<Vec<ClusterNode>, Error> {
        self.get("/nodes", Form::default())
    }

    // ------------------------------------------------------------------- node

    /// `GET /nodes/{node}/qemu`: the VMs (templates included) on one node.
    pub fn node_vms(&self, node: &str) -> Result<Vec<NodeVm>, Error> {
        self.get(&path(&["nodes", node, "qemu"]), Form::default())
    }

    /// `GET /nodes/{node}/network`.
    pub fn network(&self, node: &str) -> Result<Vec<NetworkInterface>, Error> {
        self.get(&path(&["nodes", node, "network"]), Form::default())
    }

    /// `POST /nodes/{node}/qemu`: create a VM.
    pub fn create_vm(&self, node: &str, params: &CreateVm) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &path(&["nodes", node, "qemu"]),
            Form::of(params)?,
        )
    }

    // --------------------------------------------------------------------- vm

    /// `GET …/status/current`.
    pub fn vm_status(&self, node: &str, vmid: Vmid) -> Result<VmStatus, Error> {
        self.get(
            &vm_path(node, vmid, &["status", "current"]),
            Form::default(),
        )
    }

    /// `GET …/config`: the current config, keys as PVE stores them.
    pub fn vm_config(
        &self,
        node: &str,
        vmid: Vmid,
    ) -> Result<serde_json::Map<String, Value>, Error> {
        self.get(&vm_path(node, vmid, &["config"]), Form::default())
    }

    /// `POST /nodes/{node}/qemu/{source}/clone`.
    pub fn clone_vm(&self, node: &str, source: Vmid, params: &CloneVm) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &vm_path(node, source, &["clone"]),
            Form::of(params)?,
        )
    }

    /// `POST …/config`: the asynchronous config change; `None` when PVE finished it inline.
    pub fn update_config(
        &self,
        node: &str,
        vmid: Vmid,
        params: &UpdateConfig,
    ) -> Result<Option<Upid>, Error> {
        let path = vm_path(node, vmid, &["config"]);
        match self.call::<Value>(Method::Post, &path, Form::of(params)?, Idempotency::Write)? {
            Value::Null => Ok(None),
            data => upid_of(data, &format!("POST {path}")).map(Some),
        }
    }

    /// `PUT …/config` with the tags alone: a synchronous change PVE applies at once (and the
    /// same again when repeated).
    pub fn set_tags(&self, node: &str, vmid: Vmid, params: &SetTags) -> Result<(), Error> {
        self.call::<Value>(
            Method::Put,
            &vm_path(node, vmid, &["config"]),
            Form::of(params)?,
            Idempotency::Repeatable,
        )
        .map(drop)
    }

    /// `PUT …/config` with the finished VM's tags and without `create`'s note: the last step
    /// of `create`, synchronous, and the same again when repeated.
    pub fn finish_create(
        &self,
        node: &str,
        vmid: Vmid,
        params: &FinishCreate,
    ) -> Result<(), Error> {
        self.call::<Value>(
            Method::Put,
            &vm_path(node, vmid, &["config"]),
            Form::of(params)?,
            Idempotency::Repeatable,
        )
        .map(drop)
    }

    /// `POST …/status/start`.
    pub fn start(&self, node: &str, vmid: Vmid) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Start, Form::default())
    }

    /// `POST …/status/stop`: off at once, as pulling the plug.
    pub fn stop(&self, node: &str, vmid: Vmid) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Stop, Form::default())
    }

    /// `POST …/status/shutdown`: ACPI shutdown.
    pub fn shutdown(&self, node: &str, vmid: Vmid, params: &Shutdown) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Shutdown, Form::of(params)?)
    }

    /// `POST …/status/reboot`: ACPI reboot.
    pub fn reboot(&self, node: &str, vmid: Vmid, params: &Reboot) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Reboot, Form::of(params)?)
    }

    /// `POST …/status/reset`: a hard reset.
    pub fn reset(&self, node: &str, vmid: Vmid) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Reset, Form::default())
    }

    /// `POST …/status/suspend`: pause in memory.
    pub fn suspend(&self, node: &str, vmid: Vmid) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Suspend, Form::default())
    }

    /// `POST …/status/resume`.
    pub fn resume(&self, node: &str, vmid: Vmid) -> Result<Upid, Error> {
        self.power(node, vmid, PowerCommand::Resume, Form::default())
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}` (parameters in the query string).
    pub fn destroy_vm(&self, node: &str, vmid: Vmid, params: &DestroyVm) -> Result<Upid, Error> {
        self.task(Method::Delete, &vm_path(node, vmid, &[]), Form::of(params)?)
    }

    /// `GET …/snapshot` (includes the `current` pseudo-snapshot).
    pub fn snapshots(&self, node: &str, vmid: Vmid) -> Result<Vec<Snapshot>, Error> {
        self.get(&vm_path(node, vmid, &["snapshot"]), Form::default())
    }

    /// `POST …/snapshot`.
    pub fn create_snapshot(
        &self,
        node: &str,
        vmid: Vmid,
        params: &CreateSnapshot,
    ) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &vm_path(node, vmid, &["snapshot"]),
            Form::of(params)?,
        )
    }

    /// `DELETE …/snapshot/{name}`.
    pub fn delete_snapshot(&self, node: &str, vmid: Vmid, name: &str) -> Result<Upid, Error> {
        self.task(
            Method::Delete,
            &vm_path(node, vmid, &["snapshot", name]),
            Form::default(),
        )
    }

    /// `POST …/snapshot/{name}/rollback`.
    pub fn rollback_snapshot(&self, node: &str, vmid: Vmid, name: &str) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &vm_path(node, vmid, &["snapshot", name, "rollback"]),
            Form::default(),
        )
    }

    /// `POST …/vncproxy`: a console ticket. Its `upid` is the proxy waiting for the client,
    /// not something to wait for.
    pub fn vnc_proxy(&self, node: &str, vmid: Vmid) -> Result<VncProxy, Error> {
        let p = vm_path(node, vmid, &["vncproxy"]);
        self.call(Method::Post, &p, Form::default(), Idempotency::Write)
    }

    // ------------------------------------------------------------------ tasks

    /// `GET /nodes/{node}/tasks`: the node's tasks, newest first.
    pub fn node_tasks(&self, node: &str, params: &NodeTasks) -> Result<Vec<TaskEntry>, Error> {
        self.get(&path(&["nodes", node, "tasks"]), Form::of(params)?)
    }

    /// `DELETE /nodes/{node}/tasks/{upid}`: PVE stops the task's worker (it ends with
    /// `received interrupt`); a task that already ended is left as it is.
    pub fn stop_task(&self, upid: &Upid) -> Result<(), Error> {
        self.call::<Value>(
            Method::Delete,
            &path(&["nodes", &upid.node, "tasks", &upid.to_string()]),
            Form::default(),
            Idempotency::Repeatable,
        )
        .map(drop)
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`, on the node the UPID names.
    pub fn task_status(&self, upid: &Upid) -> Result<TaskStatus, Error> {
        self.get(
            &path(&["nodes", &upid.node, "tasks", &upid.to_string(), "status"]),
            Form::default(),
        )
    }

    /// `GET /nodes/{node}/tasks/{upid}/log`: `limit` lines from line `start`, and the total
    /// count when PVE gives it.
    pub fn task_log(
        &self,
        upid: &Upid,
        start: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, Option<u64>), Error> {
        let p = path(&["nodes", &upid.node, "tasks", &upid.to_string(), "log"]);
        let answer = self.exchange(
            Method::Get,
            &p,
            Form::of(&TaskLog { start, limit })?,
            Idempotency::Read,
        )?;
        Ok((answer.data, answer.total))
    }
}

fn upid_of(data: Value, what: &str) -> Result<Upid, Error> {
    match &data {
        Value::String(s) => s
            .parse()
            .map_err(|e: crate::upid::UpidError| Error::BadResponse {
                what: what.to_string(),
                detail: e.to_string(),
            }),
        other => Err(Error::BadResponse {
            what: what.to_string(),
            detail: format!(
                "expected a task id (UPID), got {}",
                truncate(&other.to_string(), 200)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeTransport, client, data, json};
    use crate::transport::{Delivery, TransportError};
    use serde_json::json;

    #[test]
    fn paths_are_encoded_without_trailing_slashes() {
        assert_eq!(path(&["nodes", "pve1", "qemu"]), "/nodes/pve1/qemu");
        assert_eq!(
            vm_path("pve 1", Vmid::new(100).unwrap(), &["status", "current"]),
            "/nodes/pve%201/qemu/100/status/current"
        );
    }

    #[test]
    fn next_id_reads_strings_and_numbers() {
        let t = FakeTransport::new();
        t.on(
            Method::Get,
            "/cluster/nextid",
            vec![data(json!("100")), data(json!(101))],
        );
        let c = client(&t);
        assert_eq!(c.next_id(&NextId::default()).unwrap().get(), 100);
        assert_eq!(c.next_id(&NextId::default()).unwrap().get(), 101);
        let t = FakeTransport::new();
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("abc"))]);
        assert!(matches!(
            client(&t).next_id(&NextId::default()),
            Err(Error::BadResponse { .. })
        ));
    }

    #[test]
    fn typed_parameters_in_pves_spelling() {
        let t = FakeTransport::new();
        let upid = "UPID:pve1:000003E9:00001B5F:6B0128C0:qmshutdown:100:root@pam!cs:";
        t.on(Method::Post, "/nodes/pve1/qemu/", vec![data(json!(upid))]);
        t.on(Method::Delete, "/nodes/pve1/qemu/", vec![data(json!(upid))]);
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("20001"))]);
        let c = client(&t);
        let vmid = Vmid::new(100).unwrap();
        c.shutdown(
            "pve1",
            vmid,
            &Shutdown {
                force_stop: true,
                timeout: 60,
            },
        )
        .unwrap();
        c.reboot("pve1", vmid, &Reboot { timeout: None }).unwrap();
        c.destroy_vm(
            "pve1",
            vmid,
            &DestroyVm {
                purge: true,
                destroy_unreferenced_disks: true,
            },
        )
        .unwrap();
        c.next_id(&NextId {
            vmid: Some(Vmid::new(20001).unwrap()),
        })
        .unwrap();
        assert_eq!(
            t.requests(),
            [
                (
                    "POST /nodes/pve1/qemu/100/status/shutdown".to_owned(),
                    Some("forceStop=1&timeout=60".to_owned())
                ),
                (
                    "POST /nodes/pve1/qemu/100/status/reboot".to_owned(),
                    Some(String::new())
                ),
                (
                    "DELETE /nodes/pve1/qemu/100?purge=1&destroy-unreferenced-disks=1".to_owned(),
                    None
                ),
                ("GET /cluster/nextid?vmid=20001".to_owned(), None),
            ]
        );
    }

    #[test]
    fn task_status_is_polled_on_the_upids_node() {
        let t = FakeTransport::new();
        t.on(
            Method::Get,
            "/nodes/pve2/tasks/",
            vec![data(json!({"status": "stopped", "exitstatus": "OK"}))],
        );
        let upid: Upid = "UPID:pve2:000003E9:00001B5F:6B0128C0:qmstart:100:root@pam!cs:"
            .parse()
            .unwrap();
        client(&t).task_status(&upid).unwrap();
        assert_eq!(
            t.lines(),
            [
                "GET /nodes/pve2/tasks/UPID%3Apve2%3A000003E9%3A00001B5F%3A6B0128C0%3Aqmstart%3A100%3Aroot%40pam%21cs%3A/status"
            ]
        );
    }

    #[test]
    fn reads_retry_transient_failures_writes_do_not() {
        let t = FakeTransport::new();
        t.on(
            Method::Get,
            "/nodes/pve1/qemu",
            vec![
                json(595, ""),
                json(502, "<html><title>502</title></html>"),
                data(json!([])),
            ],
        );
        assert!(client(&t).node_vms("pve1").unwrap().is_empty());
        assert_eq!(t.lines().len(), 3);

        let t = FakeTransport::new();
        let reset = Err(TransportError::new(
            TransportErrorKind::Io,
            Delivery::MaybeSent,
            "connection reset",
        ));
        t.on(
            Method::Post,
            "/nodes/pve1/qemu/100/status/start",
            vec![reset, data(json!("x"))],
        );
        let err = client(&t)
            .start("pve1", Vmid::new(100).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{err}");
        assert_eq!(
            t.lines().len(),
            1,
            "a write that may have been sent is not repeated"
        );
    }

    #[test]
    fn writes_retry_when_pve_started_nothing() {
        let t = FakeTransport::new();
        let upid = "UPID:pve1:000003E9:00001B5F:6B0128C0:qmstart:100:root@pam!cs:";
        t.on(
            Method::Post,
            "/nodes/pve1/qemu/100/status/start",
            vec![
                json(200, r#"{"success":0,"status":500,"message":"got no worker upid - start worker failed\n"}"#),
                json(595, ""),
                data(json!(upid)),
            ],
        );
        let got = client(&t).start("pve1", Vmid::new(100).unwrap()).unwrap();
        assert_eq!(got.to_string(), upid);
        assert_eq!(t.lines().len(), 3);
    }

    #[test]
    fn deadline_bounds_requests() {
        let t = FakeTransport::new();
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("100"))]);
        let c = Client::new(t.clone(), Deadline::after(Duration::ZERO), "root@pam!cs");
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            c.next_id(&NextId::default()),
            Err(Error::Deadline(_))
        ));
        assert!(
            t.lines().is_empty(),
            "nothing is sent once the deadline passed"
        );
    }
}
