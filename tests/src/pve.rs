//! One fakepve instance per test, driven through `tests/pve/harness.py`.
//!
//! The harness (our code) runs fakepve (installed into the venv by `scripts/setup.sh`,
//! never vendored) on a loopback address of its own, port 8006, and answers JSON control
//! commands on its stdin/stdout. [`FakePve`] starts it, waits for its "ready" line, wraps
//! the commands in typed methods and kills the process when dropped.
//!
//! In front of the simulator sits the harness's fault proxy: [`FakePve::fault`] arms a
//! [`Fault`] (an answer dropped, cut off, held back or replaced after PVE acted, or a redirect),
//! [`FakePve::faults`] reports what the proxy did ([`FaultEvent`]: forwarded or not, what PVE
//! answered, what the client saw), and [`FakePve::hold_tasks`] keeps tasks `running`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use ureq::unversioned::transport::Connector as _;

/// The API token the harness accepts (`user@realm!tokenid`).
pub const TOKEN_ID: &str = "root@pam!cs";
/// The node every VM lives on unless a test moves it.
pub const NODE: &str = "pve1";
/// The template VM the harness provides (a `base-` disk on local-lvm).
pub const TEMPLATE_VMID: u32 = 9000;
/// The ISO volume the harness provides.
pub const ISO_VOLUME: &str = "local:iso/debian.iso";

/// How a test wants its simulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// Real seconds per PVE second; 0 finishes every task before the request returns.
    pub time_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { time_scale: 0.0 }
    }
}

/// A running fakepve; dropping it stops the server.
pub struct FakePve {
    child: Child,
    control: Mutex<Control>,
    /// The loopback address it listens on (port 8006).
    pub host: String,
    /// PEM certificate of the server (self-signed, `host` in its SAN): use it as the CA.
    pub ca: PathBuf,
    /// Secret of [`TOKEN_ID`].
    pub secret: String,
    dir: tempfile::TempDir,
}

struct Control {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// One request the server received, as the harness logged it.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub method: String,
    /// Path without the query, percent-decoded, e.g. `/api2/extjs/nodes/pve1/qemu/100/status/start`.
    pub path: String,
    /// The path as sent, still percent-encoded.
    pub raw_path: String,
    pub query: String,
    /// Raw request body.
    pub body: String,
    /// The body decoded as a form.
    pub form: BTreeMap<String, String>,
    /// Token id of the `Authorization` header (the secret is never logged).
    pub token: Option<String>,
    /// HTTP status answered, or `"dropped"`.
    pub status: Value,
    /// Set when the harness refused the path (trailing slash).
    #[serde(default)]
    pub violation: Option<String>,
    /// Set when the fault proxy interfered with this request.
    #[serde(default)]
    pub fault: Option<FaultEvent>,
}

/// A fault for the harness's proxy to inject: what it does to the matching requests.
///
/// Built from one of the kinds, then narrowed: `Fault::drop().method("POST").path(r"/clone$")`.
/// Unless said otherwise a fault hits the first matching request once, *after* forwarding it
/// to the simulator (PVE acts; only the answer is lost or changed); a redirect is not forwarded.
#[derive(Debug, Clone)]
pub struct Fault {
    spec: Value,
}

impl Fault {
    fn kind(kind: &str) -> Fault {
        Fault {
            spec: json!({"kind": kind}),
        }
    }

    /// The connection is closed without an answer.
    pub fn drop() -> Fault {
        Self::kind("drop")
    }

    /// The answer's headers promise the whole body, `keep` bytes of it arrive (half when
    /// `None`), then the connection is closed.
    pub fn truncate(keep: Option<usize>) -> Fault {
        let mut f = Self::kind("truncate");
        f.spec["keep"] = json!(keep);
        f
    }

    /// No answer for `secs` seconds (until [`FakePve::release`] when `None`), then the real
    /// answer (or, with [`Fault::then_drop`], a closed connection).
    pub fn hang(secs: Option<f64>) -> Fault {
        let mut f = Self::kind("hang");
        f.spec["secs"] = json!(secs);
        f
    }

    /// The answer replaced by a bare `status` with `message` as its reason and plain-text body
    /// (pveproxy's 595/596/597/599, or any status).
    pub fn status(status: u16, message: &str) -> Fault {
        let mut f = Self::kind("status");
        f.spec["status"] = json!(status);
        f.spec["message"] = json!(message);
        f
    }

    /// The answer replaced by a reverse proxy's HTML error page with this status.
    pub fn html(status: u16) -> Fault {
        let mut f = Self::kind("html");
        f.spec["status"] = json!(status);
        f
    }

    /// A redirect with this status (301, 302, 307, 308 ...) to the same path on the decoy server
    /// (see [`FakePve::decoy`]) unless [`Fault::location`] says where.
    pub fn redirect(status: u16) -> Fault {
        let mut f = Self::kind("redirect");
        f.spec["status"] = json!(status);
        f
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> Fault {
        self.spec["method"] = json!(method);
        self
    }

    /// Only requests whose path (e.g. `/api2/extjs/nodes/pve1/qemu/9000/clone`) this regular
    /// expression matches (searched, not anchored).
    pub fn path(mut self, pattern: &str) -> Fault {
        self.spec["path"] = json!(pattern);
        self
    }

    /// Let the first `n` matching requests through untouched.
    pub fn skip(mut self, n: u32) -> Fault {
        self.spec["skip"] = json!(n);
        self
    }

    /// Hit `n` matching requests (0: every one).
    pub fn times(mut self, n: u32) -> Fault {
        self.spec["times"] = json!(n);
        self
    }

    /// Whether the request reaches the simulator first.
    pub fn forward(mut self, forward: bool) -> Fault {
        self.spec["forward"] = json!(forward);
        self
    }

    /// A hang ends with a closed connection instead of the late answer.
    pub fn then_drop(mut self) -> Fault {
        self.spec["then"] = json!("drop");
        self
    }

    /// Where a redirect points.
    pub fn location(mut self, url: &str) -> Fault {
        self.spec["location"] = json!(url);
        self
    }
}

/// What the fault proxy did to one request.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultEvent {
    /// The id [`FakePve::fault`] returned for the rule.
    pub rule: u32,
    pub kind: String,
    pub method: String,
    pub path: String,
    /// The simulator received (and acted on) the request.
    pub forwarded: bool,
    /// What the simulator answered, when forwarded.
    pub pve_status: Option<u16>,
    /// The start of the simulator's answer body, when forwarded.
    pub pve_body: Option<String>,
    /// What the client got instead, e.g. "connection closed, no answer".
    pub client_saw: Option<String>,
}

impl FaultEvent {
    /// The `data` of the simulator's (withheld) answer, e.g. the UPID of a clone.
    pub fn pve_data(&self) -> Value {
        self.pve_body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .map(|v| v["data"].clone())
            .unwrap_or(Value::Null)
    }
}

/// A task the harness held `running`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldTask {
    pub upid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub vmid: Option<u32>,
    /// `None` while held; then "released", "timed out" or "stopped" (by a client's DELETE).
    pub ended: Option<String>,
    pub stopped: bool,
}

/// The server redirects point at, and what reached it.
#[derive(Debug, Clone, Deserialize)]
pub struct Decoy {
    pub url: String,
    pub requests: Vec<Value>,
}

impl Request {
    /// The API path without the `/api2/json` or `/api2/extjs` prefix.
    pub fn api_path(&self) -> &str {
        ["/api2/extjs", "/api2/json"]
            .iter()
            .find_map(|prefix| self.path.strip_prefix(prefix))
            .unwrap_or(&self.path)
    }

    /// `"POST /nodes/pve1/qemu/9000/clone"`: handy in assertion messages.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.api_path())
    }

    /// True for requests that change something on the hypervisor.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// A VM as the simulator holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct Vm {
    pub vmid: u32,
    pub name: String,
    pub node: String,
    pub status: String,
    pub qmpstatus: String,
    pub template: bool,
    pub lock: Option<String>,
    pub config: BTreeMap<String, Value>,
    pub pending: BTreeMap<String, Value>,
    pub snapshots: BTreeMap<String, Value>,
}

impl Vm {
    /// A config value as text (PVE stores numbers and strings alike).
    pub fn conf(&self, key: &str) -> Option<String> {
        self.config.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A task the simulator ran.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub upid: String,
    pub node: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub exitstatus: Option<String>,
    #[serde(default)]
    pub log: Vec<String>,
}

impl FakePve {
    /// A simulator with `time_scale` 0 (tasks finish before their request returns).
    pub fn start() -> FakePve {
        Self::start_with(Options::default())
    }

    /// A simulator with the given options, on a loopback address no other test uses.
    pub fn start_with(options: Options) -> FakePve {
        let python = venv_python();
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup.sh (or set CSEXT_VENV)",
            python.display()
        );
        let mut last_error = String::new();
        for attempt in 0..8 {
            let host = random_loopback(attempt);
            match Self::spawn(&python, &host, &options) {
                Ok(pve) => return pve,
                Err(e) => last_error = e,
            }
        }
        panic!("fakepve harness did not start: {last_error}");
    }

    fn spawn(python: &Path, host: &str, options: &Options) -> Result<FakePve, String> {
        let dir = tempfile::Builder::new()
            .prefix("fakepve-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let secret = format!("s3cret-{}", std::process::id());
        let stderr =
            std::fs::File::create(dir.path().join("harness.stderr")).map_err(|e| e.to_string())?;
        let mut child = Command::new(python)
            .arg(harness_script())
            .args(["--host", host, "--secret", &secret, "--dir"])
            .arg(dir.path())
            .args(["--time-scale", &options.time_scale.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let ready: Value = match read {
            Ok(n) if n > 0 => {
                serde_json::from_str(&line).map_err(|e| format!("bad ready line {line:?}: {e}"))?
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let err =
                    std::fs::read_to_string(dir.path().join("harness.stderr")).unwrap_or_default();
                return Err(format!("harness exited before it was ready: {err}"));
            }
        };
        if ready["ready"] != json!(true) {
            let _ = child.wait();
            return Err(format!("harness on {host}: {}", ready["error"]));
        }
        Ok(FakePve {
            child,
            control: Mutex::new(Control { stdin, stdout }),
            host: host.to_string(),
            ca: PathBuf::from(ready["ca"].as_str().expect("ca path")),
            secret,
            dir,
        })
    }

    /// `https://<host>:8006`.
    pub fn url(&self) -> String {
        format!("https://{}:8006", self.host)
    }

    /// A scratch directory that lives as long as the simulator.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Send one control command; panics with the harness's message when it fails.
    pub fn command(&self, command: Value) -> Value {
        let mut control = self
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut line = serde_json::to_string(&command).expect("serialisable command");
        line.push('\n');
        control
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| control.stdin.flush())
            .expect("write to the harness");
        let mut reply = String::new();
        control
            .stdout
            .read_line(&mut reply)
            .expect("read from the harness");
        let reply: Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("harness reply {reply:?} to {command}: {e}"));
        assert!(
            reply["ok"] == json!(true),
            "harness command {command} failed: {}\n{}",
            reply["error"],
            reply["trace"]
        );
        reply["result"].clone()
    }

    fn typed<T: for<'de> Deserialize<'de>>(&self, command: Value) -> T {
        let value = self.command(command.clone());
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("unexpected harness answer to {command}: {e}: {value}"))
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.typed(json!({"cmd": "requests"}))
    }

    /// Requests as `"METHOD /api/path"` lines.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(Request::line).collect()
    }

    /// The requests that change something (every method but GET), as lines.
    pub fn write_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.is_write())
            .map(Request::line)
            .collect()
    }

    /// The first request whose API path ends with `suffix` (e.g. `/clone`); panics if none.
    pub fn request_ending(&self, suffix: &str) -> Request {
        self.requests()
            .into_iter()
            .find(|r| r.api_path().ends_with(suffix))
            .unwrap_or_else(|| panic!("no request to a path ending with {suffix}"))
    }

    /// Forget the request log (e.g. after setting a scene up through the binary).
    pub fn reset_requests(&self) {
        self.command(json!({"cmd": "reset_requests"}));
    }

    /// The VM with this id, if the simulator holds one.
    pub fn vm(&self, vmid: u32) -> Option<Vm> {
        self.typed(json!({"cmd": "vm", "vmid": vmid}))
    }

    /// Every VM, the template included.
    pub fn vms(&self) -> Vec<Vm> {
        self.typed(json!({"cmd": "vms"}))
    }

    /// Add a VM (`status` "running" or "stopped") on `node` with this config.
    pub fn add_vm(&self, vmid: u32, name: &str, node: &str, status: &str, config: Value) -> Vm {
        self.typed(
            json!({"cmd": "add_vm", "vmid": vmid, "name": name, "node": node,
                          "status": status, "config": config}),
        )
    }

    /// Add many VMs in one command (a busy node seeded fast); each spec is
    /// `{"vmid", "name", "node"?, "status"?, "config"?}`. Returns how many VMs the simulator
    /// holds afterwards.
    pub fn add_vms(&self, specs: Vec<Value>) -> usize {
        self.typed(json!({"cmd": "add_vms", "vms": specs}))
    }

    /// Take a node offline (requests for it get 595 "No route to host", as pveproxy answers
    /// for a node it cannot reach), or bring it back.
    pub fn node_offline(&self, node: &str, offline: bool) {
        self.command(json!({"cmd": "node_offline", "node": node, "offline": offline}));
    }

    /// Set scenario attributes of a VM: `start_error`, `acpi`, `shutdown_secs`,
    /// `start_secs`, `stop_secs`, `status`, `qmpstatus`, `ha_state`.
    pub fn set_vm(&self, vmid: u32, attrs: Value) -> Vm {
        self.typed(json!({"cmd": "set_vm", "vmid": vmid, "attrs": attrs}))
    }

    /// Merge keys into a VM's config (e.g. rename it behind CloudStack's back).
    pub fn set_config(&self, vmid: u32, config: Value) -> Vm {
        self.typed(json!({"cmd": "set_config", "vmid": vmid, "config": config}))
    }

    /// Move a VM to another node, as HA or a manual migration would.
    pub fn move_vm(&self, vmid: u32, node: &str) -> Vm {
        self.typed(json!({"cmd": "move_vm", "vmid": vmid, "node": node}))
    }

    /// Register another API token (`user@realm!tokenid`) with this secret.
    pub fn add_token(&self, token: &str, secret: &str) {
        self.command(json!({"cmd": "add_token", "token": token, "secret": secret}));
    }

    /// Grant `privileges` on `path` (propagated below it) to a user or token; once anything
    /// is granted, only root@pam's tokens hold what is not.
    pub fn grant(&self, user: &str, path: &str, privileges: &[&str]) {
        self.command(json!({"cmd": "grant", "user": user, "path": path, "privileges": privileges}));
    }

    /// Change storage.cfg options of a storage (e.g. `{"disable": 1}`).
    pub fn set_storage(&self, storage: &str, options: Value) {
        self.command(json!({"cmd": "set_storage", "storage": storage, "options": options}));
    }

    /// Add a cluster node.
    pub fn add_node(&self, node: &str) {
        self.command(json!({"cmd": "add_node", "node": node}));
    }

    /// fakepve's `pve.fail` with a status and message: requests whose path ends with
    /// `path` (e.g. `/nodes/pve1/qemu/100/status/start`) get this error, `times` times
    /// (every time when `None`).
    pub fn fail(&self, method: &str, path: &str, status: u16, message: &str, times: Option<u32>) {
        self.command(
            json!({"cmd": "fail", "method": method, "path": api_path(path),
                            "status": status, "message": message, "times": times}),
        );
    }

    /// fakepve's `pve.fail(error=name)`: an error from its catalogue of real PVE errors
    /// (in-task ones make the request succeed and its task fail).
    pub fn fail_named(&self, method: &str, path: &str, error: &str, times: Option<u32>) {
        self.command(
            json!({"cmd": "fail", "method": method, "path": api_path(path),
                            "error": error, "times": times}),
        );
    }

    /// A proxy-style failure for the next `times` requests with this method (any when
    /// `None`) whose path contains `path`, before they reach the simulator: `kind` is
    /// `"status"` (bare status + reason, e.g. 595/596), `"html"` (a reverse proxy's error
    /// page) or `"drop"` (connection closed without an answer). [`FakePve::fault`] does more.
    pub fn inject(&self, method: Option<&str>, path: &str, kind: &str, status: u16, times: u32) {
        self.command(
            json!({"cmd": "inject", "method": method, "path": path, "kind": kind,
                            "status": status, "times": times, "message": reason_for(status)}),
        );
    }

    /// Sends one request to the simulator's API (through the fault proxy) as any client would,
    /// authenticated with [`TOKEN_ID`]: `path` is below `/api2/json` (e.g.
    /// `/nodes/pve1/tasks/<upid>`), `form` the body of a POST or PUT. Returns the HTTP status
    /// and the body as JSON (`Null` when it is not JSON); redirects are not followed.
    pub fn api(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        // The product's own TLS stack (ext-tls), trusting only the simulator's certificate.
        let tls = ext_tls::ClientTls::new(&ext_tls::Trust::Ca(ext_tls::CaCertificate::File(
            self.ca.clone(),
        )))
        .expect("the simulator's certificate");
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        let connector =
            ().chain(ureq::unversioned::transport::TcpConnector::default())
                .chain(tls.ureq_connector());
        let agent = ureq::Agent::with_parts(
            config,
            connector,
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        let url = format!("{}/api2/json{path}", self.url());
        let auth = format!("PVEAPIToken={TOKEN_ID}={}", self.secret);
        let result = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
            "POST" => agent
                .post(&url)
                .header("Authorization", &auth)
                .send_form(form.iter().copied()),
            "PUT" => agent
                .put(&url)
                .header("Authorization", &auth)
                .send_form(form.iter().copied()),
            other => panic!("no such method {other}"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Arms a fault in the proxy; returns its rule id (see [`FaultEvent::rule`]).
    pub fn fault(&self, fault: Fault) -> u32 {
        let mut command = fault.spec;
        command["cmd"] = json!("fault");
        self.typed(command)
    }

    /// Everything the proxy did so far, oldest first.
    pub fn faults(&self) -> Vec<FaultEvent> {
        self.typed(json!({"cmd": "faults"}))
    }

    /// Disarms every fault (and lets hanging answers go).
    pub fn clear_faults(&self) {
        self.command(json!({"cmd": "clear_faults"}));
    }

    /// Lets the answers held by a hang fault (of rule `rule`, or all) go out now; returns how many.
    pub fn release(&self, rule: Option<u32>) -> usize {
        self.typed(json!({"cmd": "release", "rule": rule}))
    }

    /// The decoy server redirects point at: its URL and every request that reached it.
    pub fn decoy(&self) -> Decoy {
        self.typed(json!({"cmd": "decoy"}))
    }

    /// What the decoy answers (as `data` in PVE's envelope) from now on.
    pub fn decoy_answer(&self, data: Value) -> Decoy {
        self.typed(json!({"cmd": "decoy", "data": data}))
    }

    /// The next `times` tasks (0: all) of `kind` (e.g. `qmclone`, `qmstart`) stay `running`
    /// for `secs` seconds, or until [`FakePve::release_tasks`] or a client stops them when
    /// `None`. A held task has taken the VM's config lock (a clone's target carries
    /// `lock: clone`); stopped through the API it ends with `received interrupt`, and a
    /// stopped clone removes its half-made VM.
    pub fn hold_tasks(&self, kind: &str, times: u32, secs: Option<f64>) {
        self.command(json!({"cmd": "hold_tasks", "type": kind, "times": times, "secs": secs}));
    }

    /// Lets held tasks (of `kind`, or all) go on and finish; returns how many.
    pub fn release_tasks(&self, kind: Option<&str>) -> usize {
        self.typed(json!({"cmd": "release_tasks", "type": kind}))
    }

    /// Every task held so far.
    pub fn held_tasks(&self) -> Vec<HeldTask> {
        self.typed(json!({"cmd": "held_tasks"}))
    }

    /// Leave a VM locked (`clone`, `backup`, `snapshot` ...).
    pub fn snapshot_lock(&self, vmid: u32, lock: &str) {
        self.command(json!({"cmd": "snapshot_lock", "vmid": vmid, "lock": lock}));
    }

    /// Hold the VM config lock for `secs` PVE seconds (until released when `None`).
    pub fn hold_config_lock(&self, vmid: u32, secs: Option<f64>) {
        self.command(json!({"cmd": "hold_config_lock", "vmid": vmid, "secs": secs}));
    }

    /// Change the time scale (0: tasks finish at once; 0.01: visibly running tasks).
    pub fn time_scale(&self, value: f64) {
        self.command(json!({"cmd": "time_scale", "value": value}));
    }

    /// Successful tasks of these types (e.g. `qmstart`) end with `WARNINGS: n`.
    pub fn warnings(&self, types: &[(&str, u32)]) {
        let types: BTreeMap<_, _> = types.iter().copied().collect();
        self.command(json!({"cmd": "warnings", "types": types}));
    }

    /// Tasks of these types (e.g. `qmstart`) stay `running` this many real seconds before
    /// they do anything (a slow worker that has not touched the VM yet).
    pub fn task_delay(&self, types: &[(&str, f64)]) {
        let types: BTreeMap<_, _> = types.iter().copied().collect();
        self.command(json!({"cmd": "task_delay", "types": types}));
    }

    /// Toggle the harness's real-PVE emulation: `real_401`, `legacy_errors`,
    /// `close_on_error`, `reject_trailing_slash`.
    pub fn quirks(&self, quirks: Value) {
        let mut command = quirks;
        command["cmd"] = json!("quirks");
        self.command(command);
    }

    /// Every task the simulator ran, oldest first.
    pub fn tasks(&self) -> Vec<Task> {
        self.typed(json!({"cmd": "tasks"}))
    }

    /// The task with this UPID, if the simulator ran one.
    pub fn task(&self, upid: &str) -> Option<Task> {
        self.tasks().into_iter().find(|t| t.upid == upid)
    }

    /// Volume names on a storage (e.g. `local-lvm`).
    pub fn volumes(&self, storage: &str) -> Vec<String> {
        self.typed(json!({"cmd": "storage", "storage": storage}))
    }

    /// Panics if any request had a trailing or double slash (real PVE and fakepve differ there).
    pub fn assert_clean_paths(&self) {
        let bad: Vec<_> = self
            .requests()
            .into_iter()
            .filter(|r| {
                r.violation.is_some() || r.raw_path.ends_with('/') || r.raw_path.contains("//")
            })
            .map(|r| r.line())
            .collect();
        assert!(
            bad.is_empty(),
            "requests with trailing or double slashes: {bad:?}"
        );
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        // Closing stdin stops the harness cleanly; kill is the fallback.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// fakepve matches failure paths against the full request path; tests write API paths.
fn api_path(path: &str) -> String {
    if path.contains('{') {
        path.to_string() // a schema template, matched as such
    } else {
        path.trim_start_matches("/api2/json")
            .trim_start_matches("/api2/extjs")
            .to_string()
    }
}

fn reason_for(status: u16) -> &'static str {
    match status {
        595 => "Connection refused",
        596 => "Connection timed out",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn harness_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pve/harness.py")
}

/// The venv's python: `$CSEXT_VENV/bin/python`, else `<repo>/.venv/bin/python`.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("CSEXT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(".venv"));
    venv.join("bin/python")
}

/// A 127.a.b.c address (never 127.0.0.x) derived from the pid, the time and the attempt,
/// so parallel test processes land on different addresses; a taken one is retried.
fn random_loopback(attempt: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    // Only the low bits matter: they change fastest.
    let nanos = u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or_default();
    let mut x = nanos ^ (u64::from(std::process::id()) << 20) ^ (u64::from(attempt) << 50);
    // splitmix64: spread the bits
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let a = 10 + (x % 240);
    let b = (x >> 8) % 256;
    let c = 2 + (x >> 16) % 252;
    format!("127.{a}.{b}.{c}")
}
