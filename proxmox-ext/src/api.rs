//! The typed Proxmox VE API this extension uses, over any [`Transport`].
//!
//! Requests go to `/api2/extjs`: its envelope carries PVE's error message on every PVE
//! version (the json format lost it before libpve-http-server-perl 5.2.0, and ureq cannot
//! read reason phrases), which is also what Proxmox's own Rust client does. Paths are built
//! from percent-encoded segments and never end in a slash. Every request is bounded by the
//! invocation's [`Deadline`] and retried according to [`RetryPolicy`].

use std::time::Duration;

use ext_sdk::Deadline;
use ext_sdk::text::truncate;
use log::{debug, warn};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, read_answer};
use crate::model::{
    ClusterMember, ClusterVm, LogLine, NetworkInterface, NodeVm, Snapshot, TaskStatus, VmStatus,
    Vmid, VncProxy,
};
use crate::retry::{Idempotency, RetryPolicy};
use crate::transport::{Form, Method, Request, Transport, TransportErrorKind, encode};
use crate::upid::Upid;

/// How long one request may take at most (upstream uses the same), within the deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `/seg/seg/...` with every segment percent-encoded and no trailing slash.
pub fn path(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{}", encode(s))).collect()
}

fn vm_path(node: &str, vmid: Vmid, rest: &[&str]) -> String {
    let id = vmid.to_string();
    let mut segments = vec!["nodes", node, "qemu", id.as_str()];
    segments.extend_from_slice(rest);
    path(&segments)
}

/// A power command under `…/status/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerCommand {
    Start,
    Stop,
    Shutdown,
    Reboot,
    Reset,
    Suspend,
    Resume,
}

impl PowerCommand {
    pub fn as_str(self) -> &'static str {
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

/// A Proxmox API client for one invocation.
pub struct Client<T: Transport> {
    transport: T,
    deadline: Deadline,
    token_id: String,
    retry: RetryPolicy,
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T, deadline: Deadline, token_id: &str) -> Client<T> {
        Client {
            transport,
            deadline,
            token_id: token_id.to_string(),
            retry: RetryPolicy::default(),
        }
    }

    /// The same client bounded by another deadline (e.g. the cleanup reserve).
    pub fn with_deadline(&self, deadline: Deadline) -> Client<&T> {
        Client {
            transport: &self.transport,
            deadline,
            token_id: self.token_id.clone(),
            retry: self.retry,
        }
    }

    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// Sends one request (retrying as the policy allows); returns the answer's `data` and the
    /// raw body (for the few calls that need attributes beside `data`, such as `total`).
    fn exchange(
        &self,
        method: Method,
        path: &str,
        form: Form,
        idempotency: Idempotency,
    ) -> Result<(Value, Vec<u8>), Error> {
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
            self.deadline.check(&format!("sending {what}"))?;
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
                .and_then(|response| {
                    Ok((
                        read_answer(&response, &what, &self.token_id)?,
                        response.body,
                    ))
                });
            match result {
                Ok(answer) => return Ok(answer),
                Err(Error::Transport(e))
                    if e.kind == TransportErrorKind::Timeout && self.deadline.expired() =>
                {
                    return Err(Error::Deadline(
                        self.deadline.exceeded(&format!("waiting for {what}")),
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

    /// Sends one request and returns its `data`.
    fn call(
        &self,
        method: Method,
        path: &str,
        form: Form,
        idempotency: Idempotency,
    ) -> Result<Value, Error> {
        Ok(self.exchange(method, path, form, idempotency)?.0)
    }

    fn get<D: DeserializeOwned>(&self, path: &str, query: Form) -> Result<D, Error> {
        let data = self.call(Method::Get, path, query, Idempotency::Read)?;
        decode(data, &format!("GET {path}"))
    }

    fn task(&self, method: Method, path: &str, form: Form) -> Result<Upid, Error> {
        let data = self.call(method, path, form, Idempotency::Write)?;
        upid_of(data, &format!("{method} {path}"))
    }

    // ---------------------------------------------------------------- cluster

    /// `GET /cluster/nextid`: the lowest free VMID (nothing is reserved), or with `Some(id)`,
    /// `id` itself if it is free.
    pub fn next_id(&self, wanted: Option<Vmid>) -> Result<Vmid, Error> {
        let data: Value = self.get("/cluster/nextid", Form::new().set_opt("vmid", wanted))?;
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
        self.get("/cluster/resources", Form::new().set("type", "vm"))
    }

    /// `GET /cluster/status`: the cluster and its nodes with their addresses.
    pub fn cluster_members(&self) -> Result<Vec<ClusterMember>, Error> {
        self.get("/cluster/status", Form::new())
    }

    // ------------------------------------------------------------------- node

    /// `GET /nodes/{node}/qemu`: the VMs (templates included) on one node.
    pub fn node_vms(&self, node: &str) -> Result<Vec<NodeVm>, Error> {
        self.get(&path(&["nodes", node, "qemu"]), Form::new())
    }

    /// `GET /nodes/{node}/network`.
    pub fn network(&self, node: &str) -> Result<Vec<NetworkInterface>, Error> {
        self.get(&path(&["nodes", node, "network"]), Form::new())
    }

    /// `POST /nodes/{node}/qemu`: create a VM (`vmid` and config keys in `form`).
    pub fn create_vm(&self, node: &str, form: Form) -> Result<Upid, Error> {
        self.task(Method::Post, &path(&["nodes", node, "qemu"]), form)
    }

    // --------------------------------------------------------------------- vm

    /// `GET …/status/current`.
    pub fn vm_status(&self, node: &str, vmid: Vmid) -> Result<VmStatus, Error> {
        self.get(&vm_path(node, vmid, &["status", "current"]), Form::new())
    }

    /// `GET …/config`: the current config, keys as PVE stores them.
    pub fn vm_config(
        &self,
        node: &str,
        vmid: Vmid,
    ) -> Result<serde_json::Map<String, Value>, Error> {
        self.get(&vm_path(node, vmid, &["config"]), Form::new())
    }

    /// `POST /nodes/{node}/qemu/{source}/clone`.
    pub fn clone_vm(&self, node: &str, source: Vmid, form: Form) -> Result<Upid, Error> {
        self.task(Method::Post, &vm_path(node, source, &["clone"]), form)
    }

    /// `POST …/config`: the asynchronous config change; `None` when PVE finished it inline.
    pub fn update_config(&self, node: &str, vmid: Vmid, form: Form) -> Result<Option<Upid>, Error> {
        let what = format!("POST {}", vm_path(node, vmid, &["config"]));
        match self.call(
            Method::Post,
            &vm_path(node, vmid, &["config"]),
            form,
            Idempotency::Write,
        )? {
            Value::Null => Ok(None),
            data => upid_of(data, &what).map(Some),
        }
    }

    /// `PUT …/config`: a synchronous change of options PVE applies at once (such as `tags`).
    pub fn put_config(&self, node: &str, vmid: Vmid, form: Form) -> Result<(), Error> {
        self.call(
            Method::Put,
            &vm_path(node, vmid, &["config"]),
            form,
            Idempotency::Write,
        )
        .map(drop)
    }

    /// `POST …/status/{command}`.
    pub fn power(
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

    /// `DELETE /nodes/{node}/qemu/{vmid}` (options as query parameters).
    pub fn destroy_vm(&self, node: &str, vmid: Vmid, options: Form) -> Result<Upid, Error> {
        self.task(Method::Delete, &vm_path(node, vmid, &[]), options)
    }

    /// `GET …/snapshot` (includes the `current` pseudo-snapshot).
    pub fn snapshots(&self, node: &str, vmid: Vmid) -> Result<Vec<Snapshot>, Error> {
        self.get(&vm_path(node, vmid, &["snapshot"]), Form::new())
    }

    /// `POST …/snapshot`.
    pub fn create_snapshot(&self, node: &str, vmid: Vmid, form: Form) -> Result<Upid, Error> {
        self.task(Method::Post, &vm_path(node, vmid, &["snapshot"]), form)
    }

    /// `DELETE …/snapshot/{name}`.
    pub fn delete_snapshot(&self, node: &str, vmid: Vmid, name: &str) -> Result<Upid, Error> {
        self.task(
            Method::Delete,
            &vm_path(node, vmid, &["snapshot", name]),
            Form::new(),
        )
    }

    /// `POST …/snapshot/{name}/rollback`.
    pub fn rollback_snapshot(&self, node: &str, vmid: Vmid, name: &str) -> Result<Upid, Error> {
        self.task(
            Method::Post,
            &vm_path(node, vmid, &["snapshot", name, "rollback"]),
            Form::new(),
        )
    }

    /// `POST …/vncproxy`: a console ticket. Its `upid` is the proxy waiting for the client,
    /// not something to wait for.
    pub fn vnc_proxy(&self, node: &str, vmid: Vmid) -> Result<VncProxy, Error> {
        let p = vm_path(node, vmid, &["vncproxy"]);
        let data = self.call(Method::Post, &p, Form::new(), Idempotency::Write)?;
        decode(data, &format!("POST {p}"))
    }

    // ------------------------------------------------------------------ tasks

    /// `GET /nodes/{node}/tasks/{upid}/status`, on the node the UPID names.
    pub fn task_status(&self, upid: &Upid) -> Result<TaskStatus, Error> {
        self.get(
            &path(&["nodes", &upid.node, "tasks", &upid.to_string(), "status"]),
            Form::new(),
        )
    }

    /// `GET /nodes/{node}/tasks/{upid}/log`: lines from `start`, and the total count when PVE
    /// gives it.
    pub fn task_log(
        &self,
        upid: &Upid,
        start: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, Option<u64>), Error> {
        let p = path(&["nodes", &upid.node, "tasks", &upid.to_string(), "log"]);
        let (data, body) = self.exchange(
            Method::Get,
            &p,
            Form::new().set("start", start).set("limit", limit),
            Idempotency::Read,
        )?;
        let total = serde_json::from_slice::<Value>(&body).ok().and_then(|b| {
            b.get("total")
                .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
        });
        let lines = decode(data, &format!("GET {p}"))?;
        Ok((lines, total))
    }
}

fn decode<D: DeserializeOwned>(data: Value, what: &str) -> Result<D, Error> {
    serde_json::from_value(data.clone()).map_err(|e| Error::BadResponse {
        what: what.to_string(),
        detail: format!("{e} in {}", truncate(&data.to_string(), 200)),
    })
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
pub(crate) mod fake {
    //! An in-memory transport: answers scripted per request line, and a log of what was sent.

    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::time::Duration;

    use crate::transport::{Method, Request, Response, Transport, TransportError};

    pub type Answer = Result<Response, TransportError>;

    #[derive(Default)]
    pub struct FakeTransport {
        /// (method, path prefix) → queued answers; the last answer repeats.
        pub script: RefCell<Vec<(Method, String, VecDeque<Answer>)>>,
        pub sent: RefCell<Vec<Request>>,
    }

    pub fn json(status: u16, body: &str) -> Answer {
        Ok(Response {
            status,
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
        })
    }

    pub fn data(value: serde_json::Value) -> Answer {
        json(
            200,
            &serde_json::json!({"data": value, "success": 1}).to_string(),
        )
    }

    impl FakeTransport {
        pub fn on(&self, method: Method, path: &str, answers: Vec<Answer>) -> &Self {
            self.script
                .borrow_mut()
                .push((method, path.to_string(), answers.into()));
            self
        }

        pub fn lines(&self) -> Vec<String> {
            self.sent
                .borrow()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path_and_query))
                .collect()
        }
    }

    impl Transport for FakeTransport {
        fn send(&self, request: &Request, _timeout: Duration) -> Answer {
            self.sent.borrow_mut().push(request.clone());
            let mut script = self.script.borrow_mut();
            let entry = script
                .iter_mut()
                .find(|(m, p, _)| {
                    *m == request.method && request.path_and_query.starts_with(p.as_str())
                })
                .unwrap_or_else(|| {
                    panic!(
                        "unexpected request {} {}",
                        request.method, request.path_and_query
                    )
                });
            if entry.2.len() > 1 {
                entry.2.pop_front().expect("answer")
            } else {
                entry.2.front().cloned().expect("answer")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeTransport, data, json};
    use super::*;
    use crate::transport::{Delivery, TransportError};
    use serde_json::json;

    fn client(t: &FakeTransport) -> Client<&FakeTransport> {
        Client::new(t, Deadline::after(Duration::from_secs(10)), "root@pam!cs")
    }

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
        let t = FakeTransport::default();
        t.on(
            Method::Get,
            "/cluster/nextid",
            vec![data(json!("100")), data(json!(101))],
        );
        let c = client(&t);
        assert_eq!(c.next_id(None).unwrap().get(), 100);
        assert_eq!(c.next_id(None).unwrap().get(), 101);
        let t = FakeTransport::default();
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("abc"))]);
        assert!(matches!(
            client(&t).next_id(None),
            Err(Error::BadResponse { .. })
        ));
    }

    #[test]
    fn task_status_is_polled_on_the_upids_node() {
        let t = FakeTransport::default();
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
        let t = FakeTransport::default();
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

        let t = FakeTransport::default();
        let reset = Err(TransportError {
            kind: TransportErrorKind::Io,
            delivery: Delivery::MaybeSent,
            message: "connection reset".into(),
        });
        t.on(
            Method::Post,
            "/nodes/pve1/qemu/100/status/start",
            vec![reset, data(json!("x"))],
        );
        let err = client(&t)
            .power(
                "pve1",
                Vmid::new(100).unwrap(),
                PowerCommand::Start,
                Form::new(),
            )
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
        let t = FakeTransport::default();
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
        let got = client(&t)
            .power(
                "pve1",
                Vmid::new(100).unwrap(),
                PowerCommand::Start,
                Form::new(),
            )
            .unwrap();
        assert_eq!(got.to_string(), upid);
        assert_eq!(t.lines().len(), 3);
    }

    #[test]
    fn deadline_bounds_requests() {
        let t = FakeTransport::default();
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("100"))]);
        let c = Client::new(&t, Deadline::after(Duration::ZERO), "root@pam!cs");
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(c.next_id(None), Err(Error::Deadline(_))));
        assert!(
            t.lines().is_empty(),
            "nothing is sent once the deadline passed"
        );
    }
}
