//! Test support: an in-memory [`Transport`] answering scripted requests and recording what
//! was sent, so the API, task and allocation layers are tested without a server.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use ext_sdk::Deadline;

use crate::api::Client;
use crate::transport::{Method, Request, Response, Transport, TransportError};

/// What the fake answers one request with.
pub type Answer = Result<Response, TransportError>;

/// Answers scripted per request line; see [`FakeTransport::on`].
#[derive(Default)]
pub struct FakeTransport {
    /// (method, path prefix) → queued answers; the last answer repeats.
    script: RefCell<Vec<(Method, String, VecDeque<Answer>)>>,
    sent: RefCell<Vec<Request>>,
}

/// A client of `transport` with a 10-second deadline.
pub fn client(transport: &Rc<FakeTransport>) -> Client {
    Client::new(
        transport.clone(),
        Deadline::after(Duration::from_secs(10)),
        "root@pam!cs",
    )
}

/// An answer with this status and JSON body.
pub fn json(status: u16, body: &str) -> Answer {
    Ok(Response {
        status,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    })
}

/// A successful answer carrying `value` as its `data`.
pub fn data(value: serde_json::Value) -> Answer {
    json(
        200,
        &serde_json::json!({"data": value, "success": 1}).to_string(),
    )
}

impl FakeTransport {
    pub fn new() -> Rc<FakeTransport> {
        Rc::new(FakeTransport::default())
    }

    /// Answers requests with `method` whose path starts with `path` (the first matching
    /// entry wins) with `answers` in turn, the last one from then on.
    pub fn on(&self, method: Method, path: &str, answers: Vec<Answer>) -> &Self {
        self.script
            .borrow_mut()
            .push((method, path.to_string(), answers.into()));
        self
    }

    /// `METHOD /path?query` of every request sent, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests().into_iter().map(|(line, _)| line).collect()
    }

    /// Every request sent, with its form body.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.sent
            .borrow()
            .iter()
            .map(|r| (format!("{} {}", r.method, r.path_and_query), r.form.clone()))
            .collect()
    }
}

impl Transport for FakeTransport {
    fn send(&self, request: &Request, _timeout: Duration) -> Answer {
        self.sent.borrow_mut().push(request.clone());
        let mut script = self.script.borrow_mut();
        let Some(entry) = script.iter_mut().find(|(m, p, _)| {
            *m == request.method && request.path_and_query.starts_with(p.as_str())
        }) else {
            panic!(
                "unexpected request {} {}",
                request.method, request.path_and_query
            );
        };
        let answer = if entry.2.len() > 1 {
            entry.2.pop_front()
        } else {
            entry.2.front().cloned()
        };
        answer.unwrap_or_else(|| panic!("no answer scripted for {} {}", entry.0, entry.1))
    }
}

/// Fails unless the generated section `name` of this crate's README is `content`; with
/// `UPDATE_DOCS=1` in the environment it writes `content` there instead.
pub fn assert_readme_section(name: &str, content: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let wanted = ext_sdk::reference::replace_section(&text, name, content).unwrap_or_else(|| {
        panic!(
            "{} has no <!-- {name}:begin/end --> markers",
            path.display()
        )
    });
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &wanted).unwrap();
    } else {
        assert!(
            wanted == text,
            "the '{name}' section of {} is out of date: run UPDATE_DOCS=1 cargo test -p proxmox-ext",
            path.display()
        );
    }
}
