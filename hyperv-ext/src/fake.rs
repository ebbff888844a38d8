//! A scripted Hyper-V host for unit tests: a [`Connector`] whose transport reads back which
//! script and data each command line carries, records them, and answers with the next
//! scripted [`Answer`], framed as a real script frames it. No sshd, no network.

use std::cell::RefCell;
use std::collections::VecDeque;

use ext_sdk::Deadline;
use hyperv_protocol::{COMMAND_PREFIX, CommandLine, Script, decode_command};
use serde_json::Value;

use crate::settings::HostTarget;
use crate::transport::{
    Connector, Exit, Hosts, Output, Progress, Sent, Step, Transport, TransportError,
};

/// What the fake host does with the next command line.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The script succeeds with these fields (`ok` is added).
    Done(Value),
    /// The script fails: `{"code": ..., "detail": ...}` (`ok` is added).
    Fail(Value),
    /// The process leaves exactly this.
    Raw(Output),
    /// The transport fails, having sent the command or not.
    Broken(Sent, String),
}

/// One command line the fake host received.
#[derive(Debug, Clone)]
pub struct Received {
    pub script: Script,
    /// The decoded data blob, the invocation id included.
    pub data: Value,
    /// `user@host:port`.
    pub to: String,
}

#[derive(Default)]
pub struct FakeHost {
    answers: RefCell<VecDeque<Answer>>,
    received: RefCell<Vec<Received>>,
    /// The steps each run reports before it answers (a transport that reports none: empty).
    steps: Vec<Step>,
    /// What each run's progress said about recording, in order.
    may_record: RefCell<Vec<bool>>,
}

impl FakeHost {
    pub fn answering(answers: impl IntoIterator<Item = Answer>) -> FakeHost {
        FakeHost {
            answers: RefCell::new(answers.into_iter().collect()),
            ..FakeHost::default()
        }
    }

    /// Each run reports `steps` first (as far as they go before its answer).
    pub fn with_steps(mut self, steps: impl IntoIterator<Item = Step>) -> FakeHost {
        self.steps = steps.into_iter().collect();
        self
    }

    /// Whether each run so far was allowed to record what it learnt.
    pub fn may_record(&self) -> Vec<bool> {
        self.may_record.borrow().clone()
    }

    /// Every command line run so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.borrow().clone()
    }

    /// The scripts run so far, in order.
    pub fn scripts(&self) -> Vec<Script> {
        self.received.borrow().iter().map(|r| r.script).collect()
    }
}

impl Connector for FakeHost {
    fn transport(&self, target: HostTarget) -> Box<dyn Transport + '_> {
        Box::new(FakeTransport {
            host: self,
            target: Hosts.transport(target),
        })
    }
}

/// Answers for the host the settings chose, over whichever transport they chose.
struct FakeTransport<'a> {
    host: &'a FakeHost,
    target: Box<dyn Transport + 'static>,
}

impl Transport for FakeTransport<'_> {
    /// The transport the settings chose, as the messages name it.
    fn name(&self) -> &'static str {
        self.target.name()
    }

    fn host(&self) -> &str {
        self.target.host()
    }

    fn port(&self) -> u16 {
        self.target.port()
    }

    fn username(&self) -> &str {
        self.target.username()
    }

    fn run_with_progress(
        &self,
        command: &CommandLine,
        deadline: &Deadline,
        progress: &mut dyn Progress,
    ) -> Result<Output, TransportError> {
        self.host
            .may_record
            .borrow_mut()
            .push(progress.may_record());
        for step in &self.host.steps {
            progress.step(step.clone());
        }
        self.run(command, deadline)
    }

    fn run(&self, command: &CommandLine, _deadline: &Deadline) -> Result<Output, TransportError> {
        let encoded = command
            .as_str()
            .strip_prefix(COMMAND_PREFIX)
            .expect("our command prefix");
        let text = decode_command(encoded).expect("an encoded script");
        let (script, json) = Script::identify(&text).expect("one of our scripts");
        assert_eq!(script, command.script());
        let data: Value = serde_json::from_slice(&json).expect("a JSON data blob");
        let id = data["id"].as_str().expect("the invocation id").to_owned();
        self.host.received.borrow_mut().push(Received {
            script,
            data,
            to: format!(
                "{}@{}:{}",
                self.target.username(),
                self.target.host(),
                self.target.port()
            ),
        });
        let answer = self
            .host
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("no answer scripted for '{}'", script.name()));
        let framed = |mut fields: Value, ok: bool, code| {
            fields["ok"] = Value::Bool(ok);
            Ok(Output {
                stdout: format!("Welcome\r\nHVX1:{id}:{fields}\r\n").into_bytes(),
                stderr: b"#< CLIXML\r\n<Objs></Objs>".to_vec(),
                stderr_dropped: 0,
                exit: Exit::Status(code),
            })
        };
        match answer {
            Answer::Done(fields) => framed(fields, true, 0),
            Answer::Fail(fields) => framed(fields, false, 1),
            Answer::Raw(output) => Ok(output),
            Answer::Broken(sent, why) => Err(TransportError::new(sent, why)),
        }
    }
}
