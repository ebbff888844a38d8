//! Every way a Proxmox request can fail, as one concrete error type.
//!
//! PVE reports errors in several shapes depending on its version, the response format and
//! what sits in front of it (proxmox-api.md §1.3):
//! - `/api2/extjs` (what this client uses): HTTP 200 with `{"success":0,"status":N,
//!   "message":...,"errors":{...}}`, on every PVE version;
//! - `/api2/json` since libpve-http-server-perl 5.2.0: the HTTP status plus
//!   `{"data":null,"message":...,"errors":{...}}`; before 5.2.0 no `message` at all (the text
//!   was only in the HTTP reason phrase, which ureq 3 does not expose);
//! - plain-text bodies from pveproxy's own errors, bare 595/596 pseudo-statuses when pveproxy
//!   cannot reach pvedaemon or another node, HTML pages from a reverse proxy;
//! - 401 with an empty body for any authentication failure.
//!
//! [`read_answer`] turns any of them into either the answer's `data` or an [`Error`] whose
//! message a CloudStack operator can act on.

use std::collections::BTreeMap;
use std::fmt;

use ext_sdk::DeadlineExceeded;
use serde_json::Value;

use crate::transport::{Delivery, Response, TransportError, TransportErrorKind};
use crate::upid::Upid;

/// Where a failure status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The HTTP status line: pveproxy, a proxy in front of it, or the json format.
    Http,
    /// The extjs envelope: the API handler itself answered with an error.
    Envelope,
}

/// PVE (or something in front of it) answered with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    pub origin: Origin,
    /// The message, trimmed; empty when the answer carried none.
    pub message: String,
    /// Per-parameter errors (`{"net0": "invalid format ..."}`).
    pub errors: BTreeMap<String, String>,
    /// The answer was an HTML page (a reverse proxy's), `message` holds its title.
    pub html: bool,
}

/// A task that ended with an error exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// What the task was doing, e.g. "starting VM 100".
    pub what: String,
    pub upid: Upid,
    /// The exit status: PVE's error text.
    pub exitstatus: String,
    /// The last lines of the task log (without the final `TASK ERROR` line).
    pub log_tail: Vec<String>,
}

/// A failed Proxmox request or task.
#[derive(Debug)]
pub enum Error {
    /// An error answer.
    Api(ApiFailure),
    /// 401: the token was refused.
    Unauthorized { token_id: String },
    /// No HTTP answer at all.
    Transport(TransportError),
    /// A successful answer that is not what the endpoint returns.
    BadResponse { what: String, detail: String },
    /// A task ended with an error.
    Task(Box<TaskFailure>),
    /// The invocation's deadline passed.
    Deadline(DeadlineExceeded),
    /// The request was sent, and the deadline passed before its answer came: PVE may have
    /// acted on it.
    Unanswered(DeadlineExceeded),
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(e)
    }
}

impl From<DeadlineExceeded> for Error {
    fn from(e: DeadlineExceeded) -> Self {
        Error::Deadline(e)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: Display already shows the wrapped error's text.
        match self {
            Error::Transport(e) => e.source(),
            Error::Deadline(e) | Error::Unanswered(e) => e.source(),
            _ => None,
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        // AnyEvent::HTTP pseudo-statuses pveproxy answers when it cannot reach the daemon or
        // the node that owns the request.
        595 => "pveproxy could not connect to the node",
        596 => "pveproxy lost the connection to the node",
        597 => "pveproxy got a broken answer from the node",
        599 => "pveproxy failed to forward the request",
        _ => "error",
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.html {
            write!(
                f,
                "HTTP {} from a proxy in front of the Proxmox API (page: \"{}\")",
                self.status, self.message
            )?;
            return Ok(());
        }
        let message = self.message.trim_end_matches('.');
        match (message.is_empty(), self.errors.is_empty()) {
            (true, true) if (595..=599).contains(&self.status) => {
                write!(f, "HTTP {}: {}", self.status, reason_phrase(self.status))?;
            }
            (true, true) => write!(f, "HTTP {} {}", self.status, reason_phrase(self.status))?,
            (true, false) if self.status == 400 => f.write_str("parameter verification failed")?,
            (true, false) => write!(f, "HTTP {} {}", self.status, reason_phrase(self.status))?,
            (false, _) if (595..=599).contains(&self.status) => write!(
                f,
                "{} ({}): {message}",
                reason_phrase(self.status),
                self.status
            )?,
            (false, _) => f.write_str(message)?,
        }
        if !self.errors.is_empty() {
            let fields: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, ": {}", fields.join("; "))?;
        }
        if self.status == 403 {
            f.write_str(" (the API token lacks this privilege; a token with privilege separation needs its own ACL entries)")?;
        }
        Ok(())
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {} (task {} on node {}",
            self.what, self.exitstatus, self.upid.worker_type, self.upid.node
        )?;
        if !self.log_tail.is_empty() {
            write!(f, "; task log: {}", self.log_tail.join(" | "))?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(a) => a.fmt(f),
            Error::Unauthorized { token_id } => write!(
                f,
                "authentication failed: check user, token id and secret (Proxmox refused the API token '{token_id}')"
            ),
            Error::Transport(e) => e.fmt(f),
            Error::BadResponse { what, detail } => write!(
                f,
                "unexpected answer from the Proxmox API for {what}: {detail}"
            ),
            Error::Task(t) => t.fmt(f),
            Error::Deadline(d) | Error::Unanswered(d) => d.fmt(f),
        }
    }
}

impl Error {
    /// The text PVE gave (message, per-field errors or task exit status), for matching.
    pub fn pve_text(&self) -> String {
        match self {
            Error::Api(a) => {
                let mut text = a.message.clone();
                for v in a.errors.values() {
                    text.push('\n');
                    text.push_str(v);
                }
                text
            }
            Error::Task(t) => t.exitstatus.clone(),
            _ => String::new(),
        }
    }

    /// What PVE's own words (message, per-field errors or a task's exit status) say.
    pub fn pve_says(&self) -> Option<PveSays> {
        PveSays::classify(&self.pve_text())
    }

    /// What a failed task's exit status says; `None` for an error answer to the request
    /// itself (PVE reports some conditions only one way, e.g. `already running` from the
    /// start task, and a lock timeout answered to a request is not a guest's).
    pub fn task_says(&self) -> Option<PveSays> {
        match self {
            Error::Task(t) => PveSays::classify(&t.exitstatus),
            _ => None,
        }
    }

    /// PVE says the VM (its config file) does not exist on the node asked.
    pub fn is_missing_vm(&self) -> bool {
        self.pve_says() == Some(PveSays::NoSuchVm)
    }

    /// pveproxy could not reach the node the request is for (595-599): the node is down or
    /// cut off, as when HA is about to move (or has moved) its VMs elsewhere.
    pub fn is_node_unreachable(&self) -> bool {
        matches!(self, Error::Api(a) if (595..=599).contains(&a.status))
    }

    /// PVE refused to create a VM, or to hand out an id, because the VMID is taken.
    pub fn is_vmid_taken(&self) -> bool {
        self.pve_says() == Some(PveSays::VmidTaken)
    }

    /// The transient "could not fork a worker" failure PVE reports before it starts anything.
    pub fn is_no_worker(&self) -> bool {
        self.pve_says() == Some(PveSays::NoWorker)
    }

    /// Whether PVE may have received and carried out the request although no answer says
    /// so: the connection broke or timed out after the request left, the deadline passed
    /// while waiting, pveproxy lost its connection to the node after forwarding (596, 597,
    /// 599), a proxy in front answered in PVE's stead (502, 503, 504 ...), or the answer
    /// could not be read. PVE's own error answers, 595 (pveproxy could not connect: nothing
    /// was forwarded) and a redirect (PVE never redirects) are definite.
    pub fn may_have_acted(&self) -> bool {
        match self {
            Error::Transport(e) => {
                e.delivery == Delivery::MaybeSent && e.kind != TransportErrorKind::Redirect
            }
            Error::Unanswered(_) | Error::BadResponse { .. } => true,
            Error::Api(a) => a.origin == Origin::Http && a.status >= 500 && a.status != 595,
            Error::Unauthorized { .. } | Error::Task(_) | Error::Deadline(_) => false,
        }
    }
}

/// The conditions actions decide on that PVE reports only in words. Every match on PVE's
/// messages is here, tested against each message PVE really sends (proxmox-api.md §1.2 and
/// fakepve's catalogue of PVE's errors): a new PVE wording is then one line to add, not a
/// hunt through the actions. Each condition matches the shape of PVE's whole sentence (the
/// VMID, the quoted path), not a fragment several messages share: `got timeout` ends both a
/// lock wait and an ignored ACPI request, which call for opposite reactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PveSays {
    /// `Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist`: no such VM on
    /// the node asked.
    NoSuchVm,
    /// `VM 100 already exists` (nextid), `unable to create VM 100 - VM 100 already exists on
    /// node 'pve1'` (create), `unable to create VM 100: config file already exists` (clone).
    VmidTaken,
    /// `got no worker upid - start worker failed`: PVE could not fork the task and started
    /// nothing, so the request may be sent again.
    NoWorker,
    /// `VM 100 already running` (the start task).
    AlreadyRunning,
    /// `VM 100 not running` (reboot, shutdown).
    NotRunning,
    /// `can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout`: another task
    /// held the VM's config lock for as long as PVE waits for it; the VM itself was not
    /// touched.
    LockTimeout,
    /// `VM quit/powerdown failed - got timeout`: the guest did not react to the ACPI
    /// shutdown or reboot request in time.
    PowerdownTimeout,
}

impl PveSays {
    /// In the order they are tried: the first condition a line of PVE's text matches wins.
    const ALL: [PveSays; 7] = [
        PveSays::NoSuchVm,
        PveSays::VmidTaken,
        PveSays::NoWorker,
        PveSays::AlreadyRunning,
        PveSays::NotRunning,
        PveSays::LockTimeout,
        PveSays::PowerdownTimeout,
    ];

    /// Reads PVE's text (one message, or several lines of them).
    pub fn classify(text: &str) -> Option<PveSays> {
        Self::ALL
            .into_iter()
            .find(|says| text.lines().any(|line| says.is_said_by(line.trim())))
    }

    fn is_said_by(self, line: &str) -> bool {
        match self {
            PveSays::NoSuchVm => quoted(line, "Configuration file '", "' does not exist")
                .is_some_and(|path| path.contains("qemu-server/") && path.ends_with(".conf")),
            PveSays::VmidTaken => {
                vm_then(line, "already exists") || line.contains("config file already exists")
            }
            PveSays::NoWorker => line.contains("got no worker upid"),
            PveSays::AlreadyRunning => vm_then(line, "already running"),
            PveSays::NotRunning => vm_then(line, "not running"),
            PveSays::LockTimeout => quoted(line, "can't lock file '", "' - got timeout").is_some(),
            PveSays::PowerdownTimeout => line.contains("VM quit/powerdown failed - got timeout"),
        }
    }
}

/// The text between `open` and the next `close` in `line`.
fn quoted<'l>(line: &'l str, open: &str, close: &str) -> Option<&'l str> {
    let from = line.find(open)? + open.len();
    let len = line[from..].find(close)?;
    Some(&line[from..from + len])
}

/// Whether `line` says `VM <vmid> <rest>`.
fn vm_then(line: &str, rest: &str) -> bool {
    line.match_indices("VM ").any(|(at, _)| {
        let after = &line[at + 3..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0
            && after[digits..]
                .strip_prefix(' ')
                .is_some_and(|tail| tail.starts_with(rest))
    })
}

/// The VM a clone task makes, from the first line of its log: PVE's clone worker prints
/// `creating a clone of VM 9000 with ID 100` once it holds the new VM's lock, and the task's
/// own id names only the source. `(source, new)`.
pub fn clone_log_target(line: &str) -> Option<(u32, u32)> {
    let rest = line.trim().strip_prefix("creating a clone of VM ")?;
    let (source, new) = rest.split_once(" with ID ")?;
    Some((source.parse().ok()?, new.parse().ok()?))
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !matches!(s.trim(), "" | "0" | "false"),
        _ => false,
    }
}

fn field_errors(value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| text_of(v).map(|t| (k.clone(), t.replace('\n', " "))))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The first meaningful line(s) of a message, newlines folded.
fn clean_message(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ext_sdk::text::truncate(&lines.join("; "), 600).into_owned()
}

/// The text between `<title>` and `</title>` (or of the first `<h1>`), tags stripped.
fn html_title(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    for (open, close) in [("<title", "</title>"), ("<h1", "</h1>")] {
        let found = lower.find(open).and_then(|start| {
            let from = start + lower[start..].find('>')? + 1;
            let len = lower[from..].find(close)?;
            Some(clean_message(&body[from..from + len]))
        });
        if let Some(title) = found {
            return title;
        }
    }
    String::from("no title")
}

fn looks_like_html(response: &Response, body: &str) -> bool {
    response
        .content_type
        .as_deref()
        .is_some_and(|c| c.contains("html"))
        || body.trim_start().starts_with('<')
}

impl ApiFailure {
    /// A failure from a JSON error object: its `message` (absent before PVE 5.2) and its
    /// per-parameter `errors`.
    fn from_object(status: u16, origin: Origin, object: &serde_json::Map<String, Value>) -> Self {
        ApiFailure {
            status,
            origin,
            message: object
                .get("message")
                .and_then(text_of)
                .map(|m| clean_message(&m))
                .unwrap_or_default(),
            errors: field_errors(object.get("errors")),
            html: false,
        }
    }
}

/// Reads an answer: `Ok(data)` for success, or the error it reports, whatever its shape.
/// `what` names the request for messages about malformed answers; `token_id` is named in
/// authentication errors.
pub fn read_answer(response: &Response, what: &str, token_id: &str) -> Result<Value, Error> {
    if response.status == 401 {
        return Err(Error::Unauthorized {
            token_id: token_id.to_string(),
        });
    }
    let body = String::from_utf8_lossy(&response.body);
    let json: Option<Value> = serde_json::from_str(&body).ok();
    if (200..300).contains(&response.status) {
        let Some(Value::Object(mut object)) = json else {
            let detail = if looks_like_html(response, &body) {
                format!("an HTML page (\"{}\") instead of JSON", html_title(&body))
            } else {
                format!("not a JSON object: {:?}", clean_message(&body))
            };
            return Err(Error::BadResponse {
                what: what.to_string(),
                detail,
            });
        };
        let failed = object.get("success").is_some_and(|s| !is_truthy(s));
        if failed {
            let status = object
                .get("status")
                .and_then(|s| {
                    s.as_u64()
                        .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
                })
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(500);
            if status == 401 {
                return Err(Error::Unauthorized {
                    token_id: token_id.to_string(),
                });
            }
            return Err(Error::Api(ApiFailure::from_object(
                status,
                Origin::Envelope,
                &object,
            )));
        }
        return Ok(object.remove("data").unwrap_or(Value::Null));
    }
    // An error status: json-format bodies, plain text, HTML or nothing.
    let failure = match json {
        Some(Value::Object(object)) => {
            ApiFailure::from_object(response.status, Origin::Http, &object)
        }
        _ if looks_like_html(response, &body) => ApiFailure {
            status: response.status,
            origin: Origin::Http,
            message: html_title(&body),
            errors: BTreeMap::new(),
            html: true,
        },
        _ => ApiFailure {
            status: response.status,
            origin: Origin::Http,
            message: clean_message(&body),
            errors: BTreeMap::new(),
            html: false,
        },
    };
    Err(Error::Api(failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: Option<&str>, body: &str) -> Result<Value, Error> {
        let response = Response {
            status,
            content_type: content_type.map(str::to_string),
            body: body.as_bytes().to_vec(),
        };
        read_answer(&response, "GET /cluster/nextid", "root@pam!cs")
    }

    fn message(status: u16, content_type: Option<&str>, body: &str) -> String {
        answer(status, content_type, body).unwrap_err().to_string()
    }

    #[test]
    fn success_gives_data() {
        assert_eq!(
            answer(
                200,
                Some("application/json"),
                r#"{"data":"100","success":1}"#
            )
            .unwrap(),
            "100"
        );
        assert_eq!(answer(200, None, r#"{"data":"100"}"#).unwrap(), "100");
        assert_eq!(answer(200, None, r#"{"success":1}"#).unwrap(), Value::Null);
    }

    #[test]
    fn extjs_envelope_errors() {
        let err = answer(
            200,
            Some("application/json"),
            r#"{"data":null,"success":0,"status":500,"message":"parameter 'storage' not allowed for linked clones\n"}"#,
        )
        .unwrap_err();
        assert!(matches!(&err, Error::Api(a) if a.status == 500), "{err}");
        assert_eq!(
            err.to_string(),
            "parameter 'storage' not allowed for linked clones"
        );
        let err = message(
            200,
            None,
            r#"{"success":0,"status":400,"message":"Parameter verification failed.\n",
                "errors":{"net0":"invalid format - format error\nnet0.tag: type check ('integer') failed - got 'untagged'\n"}}"#,
        );
        assert_eq!(
            err,
            "Parameter verification failed: net0: invalid format - format error net0.tag: type check ('integer') failed - got 'untagged'"
        );
    }

    #[test]
    fn json_errors_with_and_without_message() {
        assert_eq!(
            message(
                500,
                Some("application/json"),
                r#"{"data":null,"message":"VM 100 not running\n"}"#
            ),
            "VM 100 not running"
        );
        // PVE before libpve-http-server-perl 5.2.0: the text was only in the reason phrase.
        assert_eq!(
            message(500, Some("application/json"), r#"{"data":null}"#),
            "HTTP 500 Internal Server Error"
        );
        assert_eq!(
            message(
                400,
                Some("application/json"),
                r#"{"data":null,"errors":{"vmid":"VM 100 already exists"}}"#
            ),
            "parameter verification failed: vmid: VM 100 already exists"
        );
    }

    #[test]
    fn auth_proxy_and_pseudo_statuses() {
        let auth = message(401, None, "");
        assert!(
            auth.starts_with("authentication failed: check user, token id and secret"),
            "{auth}"
        );
        assert!(auth.contains("root@pam!cs"), "{auth}");
        assert!(matches!(
            answer(
                200,
                None,
                r#"{"success":0,"status":401,"message":"authentication failure"}"#
            ),
            Err(Error::Unauthorized { .. })
        ));
        let html = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
        assert_eq!(
            message(502, Some("text/html"), html),
            "HTTP 502 from a proxy in front of the Proxmox API (page: \"502 Bad Gateway\")"
        );
        assert_eq!(
            message(595, None, ""),
            "HTTP 595: pveproxy could not connect to the node"
        );
        assert_eq!(
            message(596, Some("text/plain"), "Connection timed out\n"),
            "pveproxy lost the connection to the node (596): Connection timed out"
        );
        let html_ok = answer(200, Some("text/html"), html)
            .unwrap_err()
            .to_string();
        assert!(
            html_ok.contains("an HTML page (\"502 Bad Gateway\")"),
            "{html_ok}"
        );
        let err = message(
            403,
            None,
            r#"{"message":"Permission check failed (/vms/100, VM.PowerMgmt)\n"}"#,
        );
        assert!(
            err.starts_with(
                "Permission check failed (/vms/100, VM.PowerMgmt) (the API token lacks"
            ),
            "{err}"
        );
    }

    #[test]
    fn every_message_pve_sends_is_classified() {
        use PveSays::*;
        for (text, says) in [
            (
                "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist",
                Some(NoSuchVm),
            ),
            ("VM 100 already exists", Some(VmidTaken)),
            (
                "Parameter verification failed.\nVM 20017 already exists",
                Some(VmidTaken),
            ),
            (
                "unable to create VM 100 - VM 100 already exists on node 'pve2'",
                Some(VmidTaken),
            ),
            (
                "unable to create VM 100: config file already exists",
                Some(VmidTaken),
            ),
            ("got no worker upid - start worker failed", Some(NoWorker)),
            ("VM 100 already running", Some(AlreadyRunning)),
            ("VM 100 not running", Some(NotRunning)),
            (
                "VM quit/powerdown failed - got timeout",
                Some(PowerdownTimeout),
            ),
            (
                "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
                Some(LockTimeout),
            ),
            // A clone waiting for its storage's lock: a lock wait too, not a guest's.
            (
                "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
                Some(LockTimeout),
            ),
            // QEMU's monitor not answering is neither a lock nor an ignored ACPI request.
            (
                "VM 100 qmp command 'query-status' failed - got timeout",
                None,
            ),
            ("CT 100 already running", None),
            ("disk import already running as PID '4242'", None),
            ("CT 100 not running", None),
            ("Disk 'scsi1' for VM '100' does not exist", None),
            ("ACME account config file 'default' already exists.", None),
            ("Storage ID 'local' already exists on node pve1", None),
            ("clone failed: received interrupt", None),
            ("clone failed: interrupted by signal", None),
            ("snapshot 'before' does not exist", None),
            ("volume local:iso/x.iso does not exist", None),
            ("VM is locked (clone)", None),
            ("start failed: QEMU exited with code 1", None),
            ("", None),
        ] {
            assert_eq!(PveSays::classify(text), says, "{text}");
        }
    }

    #[test]
    fn clone_tasks_name_their_target_in_the_log() {
        assert_eq!(
            clone_log_target("creating a clone of VM 9000 with ID 100"),
            Some((9000, 100))
        );
        assert_eq!(clone_log_target("create linked clone of drive scsi0"), None);
        assert_eq!(
            clone_log_target("creating a clone of VM x with ID 100"),
            None
        );
    }

    #[test]
    fn what_may_have_reached_pve() {
        let transport = |kind, delivery| Error::Transport(TransportError::new(kind, delivery, "x"));
        assert!(transport(TransportErrorKind::Io, Delivery::MaybeSent).may_have_acted());
        assert!(transport(TransportErrorKind::Timeout, Delivery::MaybeSent).may_have_acted());
        assert!(!transport(TransportErrorKind::Connect, Delivery::NotSent).may_have_acted());
        assert!(!transport(TransportErrorKind::Redirect, Delivery::MaybeSent).may_have_acted());
        let status = |status, body: &str| answer(status, Some("text/plain"), body).unwrap_err();
        assert!(status(596, "Connection timed out").may_have_acted());
        assert!(status(502, "<html><title>502</title></html>").may_have_acted());
        assert!(!status(595, "Connection refused").may_have_acted());
        let refused = answer(
            200,
            None,
            r#"{"success":0,"status":500,"message":"VM is locked (backup)"}"#,
        )
        .unwrap_err();
        assert!(!refused.may_have_acted());
        let deadline = ext_sdk::Deadline::after(std::time::Duration::ZERO).exceeded("x");
        assert!(Error::Unanswered(deadline.clone()).may_have_acted());
        assert!(!Error::Deadline(deadline).may_have_acted());
    }

    #[test]
    fn a_task_speaks_only_through_its_exit_status() {
        let upid: Upid = "UPID:pve1:000003E9:00001B5F:6B0128C0:qmstart:100:root@pam!cs:"
            .parse()
            .unwrap();
        let task = Error::Task(Box::new(TaskFailure {
            what: "starting VM 100".into(),
            upid,
            exitstatus: "VM 100 already running".into(),
            log_tail: Vec::new(),
        }));
        assert_eq!(task.task_says(), Some(PveSays::AlreadyRunning));
        let answered = answer(
            500,
            None,
            r#"{"message":"can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout\n"}"#,
        )
        .unwrap_err();
        assert_eq!(answered.pve_says(), Some(PveSays::LockTimeout));
        assert_eq!(answered.task_says(), None);
    }

    #[test]
    fn classifies_messages() {
        let missing = answer(
            200,
            None,
            r#"{"success":0,"status":500,"message":"Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist\n"}"#,
        )
        .unwrap_err();
        assert!(missing.is_missing_vm());
        let taken = answer(
            200,
            None,
            r#"{"success":0,"status":500,"message":"unable to create VM 100: config file already exists\n"}"#,
        )
        .unwrap_err();
        assert!(taken.is_vmid_taken() && !taken.is_missing_vm());
        let no_worker = answer(
            500,
            None,
            r#"{"message":"got no worker upid - start worker failed"}"#,
        )
        .unwrap_err();
        assert!(no_worker.is_no_worker());
    }
}
