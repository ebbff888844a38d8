//! Waiting for a Proxmox task to finish.
//!
//! Polling starts at about 100 ms so that short tasks (most starts, stops and config changes)
//! are noticed at once, and backs off to about 1 s for long ones (clones), always bounded by
//! the invocation's deadline. The status is read on the node the UPID names.
//!
//! Success follows PVE's own definition (`PVE::UPID::status_is_error`): `OK` and
//! `WARNINGS: N` both succeed; the warnings are logged. Any other exit status fails, and the
//! error carries the last lines of the task log, which say why.

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::api::Client;
use crate::error::{Error, TaskFailure};
use crate::upid::Upid;

const FIRST_POLL_DELAY: Duration = Duration::from_millis(100);
const MAX_POLL_DELAY: Duration = Duration::from_secs(1);
/// PVE may not know a task for a moment after handing out its UPID (bpg retries the same).
const NOT_YET_VISIBLE: Duration = Duration::from_secs(5);
/// Task log lines quoted in an error.
const LOG_TAIL: usize = 6;

/// A task that finished successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub upid: Upid,
    /// The `WARN:` lines of a task that ended `WARNINGS: N` (empty for `OK`).
    pub warnings: Vec<String>,
}

/// How a task ended, read from its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Ok,
    Warnings(u32),
    Failed(String),
}

impl ExitStatus {
    pub fn parse(text: &str) -> ExitStatus {
        let text = text.trim();
        if text == "OK" {
            return ExitStatus::Ok;
        }
        if let Some(n) = text
            .strip_prefix("WARNINGS:")
            .map(str::trim)
            .and_then(|n| n.parse().ok())
        {
            return ExitStatus::Warnings(n);
        }
        ExitStatus::Failed(if text.is_empty() {
            "unexpected status".into()
        } else {
            text.to_string()
        })
    }
}

/// The pause before the next poll: ×1.5 from 100 ms up to 1 s.
fn next_delay(current: Duration) -> Duration {
    (current * 3 / 2).min(MAX_POLL_DELAY)
}

/// Waits for `upid` to stop; `what` ("starting VM 100") names it in errors.
pub fn wait(client: &Client, upid: &Upid, what: &str) -> Result<Finished, Error> {
    let started = Instant::now();
    let mut delay = FIRST_POLL_DELAY;
    loop {
        match client.task_status(upid) {
            Ok(status) if status.status.as_deref() == Some("stopped") => {
                let exit = status.exitstatus.unwrap_or_default();
                debug!(
                    "task {upid} stopped after {} ms: {exit}",
                    started.elapsed().as_millis()
                );
                return finish(client, upid, what, ExitStatus::parse(&exit));
            }
            Ok(_) => {}
            // Just dispatched: PVE may not list the task yet.
            Err(Error::Api(a))
                if started.elapsed() < NOT_YET_VISIBLE && matches!(a.status, 400 | 404 | 500) =>
            {
                debug!("task {upid} not visible yet: {a}");
            }
            Err(e) => return Err(e),
        }
        client.deadline().sleep(delay).map_err(|_| {
            Error::Deadline(client.deadline().exceeded(&format!("{what} (task {upid})")))
        })?;
        delay = next_delay(delay);
    }
}

fn finish(client: &Client, upid: &Upid, what: &str, exit: ExitStatus) -> Result<Finished, Error> {
    match exit {
        ExitStatus::Ok => Ok(Finished {
            upid: upid.clone(),
            warnings: Vec::new(),
        }),
        ExitStatus::Warnings(n) => {
            let warnings: Vec<String> = log_lines(client, upid)
                .into_iter()
                .filter(|l| l.starts_with("WARN"))
                .filter(|l| !l.starts_with("TASK WARNINGS"))
                .collect();
            warn!(
                "{what} succeeded with {n} warning(s) (task {upid}): {}",
                warnings.join(" | ")
            );
            Ok(Finished {
                upid: upid.clone(),
                warnings,
            })
        }
        ExitStatus::Failed(exitstatus) => {
            let lines = log_lines(client, upid);
            let log_tail = tail(&lines, &exitstatus);
            info!(
                "{what} failed (task {upid}): {exitstatus}; log: {}",
                lines.join(" | ")
            );
            Err(Error::Task(Box::new(TaskFailure {
                what: what.to_string(),
                upid: upid.clone(),
                exitstatus,
                log_tail,
            })))
        }
    }
}

/// The task log's last lines (best effort: a failure to read it must not hide the task's own
/// error).
fn log_lines(client: &Client, upid: &Upid) -> Vec<String> {
    const PAGE: u64 = 50;
    let read = || -> Result<Vec<String>, Error> {
        let (mut lines, total) = client.task_log(upid, 0, PAGE)?;
        if let Some(total) = total.filter(|&t| t > PAGE) {
            lines = client.task_log(upid, total - PAGE, PAGE)?.0;
        }
        Ok(lines.into_iter().filter_map(|l| l.t).collect())
    };
    read().unwrap_or_else(|e| {
        debug!("cannot read the log of task {upid}: {e}");
        Vec::new()
    })
}

/// The lines worth quoting: the last few, without the closing `TASK ERROR`/`TASK OK` line and
/// without a line that only repeats the exit status.
fn tail(lines: &[String], exitstatus: &str) -> Vec<String> {
    let useful: Vec<&String> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.starts_with("TASK ERROR")
                && !l.starts_with("TASK OK")
                && !l.starts_with("TASK WARNINGS")
        })
        .filter(|l| l.trim() != exitstatus.trim())
        .collect();
    useful[useful.len().saturating_sub(LOG_TAIL)..]
        .iter()
        .map(|l| (*l).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeTransport, data};
    use crate::transport::Method;
    use ext_sdk::Deadline;
    use serde_json::json;
    use std::rc::Rc;

    const UPID: &str = "UPID:pve1:000003E9:00001B5F:6B0128C0:qmstart:100:root@pam!cs:";

    fn run(t: &Rc<FakeTransport>, within: Duration) -> Result<Finished, Error> {
        let client = Client::new(t.clone(), Deadline::after(within), "root@pam!cs");
        wait(&client, &UPID.parse().unwrap(), "starting VM 100")
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(ExitStatus::parse("OK"), ExitStatus::Ok);
        assert_eq!(ExitStatus::parse("WARNINGS: 3"), ExitStatus::Warnings(3));
        assert_eq!(
            ExitStatus::parse("unexpected status"),
            ExitStatus::Failed("unexpected status".into())
        );
        assert_eq!(
            ExitStatus::parse("WARNINGS: x"),
            ExitStatus::Failed("WARNINGS: x".into())
        );
        assert_eq!(
            ExitStatus::parse(""),
            ExitStatus::Failed("unexpected status".into())
        );
    }

    #[test]
    fn polls_fast_then_backs_off() {
        let mut d = FIRST_POLL_DELAY;
        let mut total = Duration::ZERO;
        for _ in 0..20 {
            total += d;
            d = next_delay(d);
        }
        assert_eq!(d, MAX_POLL_DELAY);
        assert!(total < Duration::from_secs(20));
    }

    #[test]
    fn warnings_are_success() {
        let t = FakeTransport::new();
        t.on(Method::Get, "/nodes/pve1/tasks/UPID%3Apve1%3A000003E9%3A00001B5F%3A6B0128C0%3Aqmstart%3A100%3Aroot%40pam%21cs%3A/status",
            vec![data(json!({"status": "running"})), data(json!({"status": "stopped", "exitstatus": "WARNINGS: 1"}))]);
        t.on(Method::Get, "/nodes/pve1/tasks/", vec![data(json!([
            {"n": 1, "t": "start VM 100"}, {"n": 2, "t": "WARN: no efidisk configured"}, {"n": 3, "t": "TASK WARNINGS: 1"}]))]);
        let done = run(&t, Duration::from_secs(5)).unwrap();
        assert_eq!(done.warnings, ["WARN: no efidisk configured"]);
    }

    #[test]
    fn failures_quote_the_log() {
        let t = FakeTransport::new();
        t.on(Method::Get, "/nodes/pve1/tasks/UPID%3Apve1%3A000003E9%3A00001B5F%3A6B0128C0%3Aqmstart%3A100%3Aroot%40pam%21cs%3A/status",
            vec![data(json!({"status": "stopped", "exitstatus": "start failed: QEMU exited with code 1"}))]);
        t.on(
            Method::Get,
            "/nodes/pve1/tasks/",
            vec![data(json!([
            {"n": 1, "t": "kvm: -drive file=/dev/pve/vm-100-disk-0: Could not open"},
            {"n": 2, "t": "start failed: QEMU exited with code 1"},
            {"n": 3, "t": "TASK ERROR: start failed: QEMU exited with code 1"}]))],
        );
        let err = run(&t, Duration::from_secs(5)).unwrap_err().to_string();
        assert_eq!(
            err,
            "starting VM 100 failed: start failed: QEMU exited with code 1 (task qmstart on node pve1; task log: kvm: -drive file=/dev/pve/vm-100-disk-0: Could not open)"
        );
    }

    #[test]
    fn waits_are_bounded_by_the_deadline() {
        let t = FakeTransport::new();
        t.on(
            Method::Get,
            "/nodes/pve1/tasks/",
            vec![data(json!({"status": "running"}))],
        );
        let started = Instant::now();
        let err = run(&t, Duration::from_millis(400)).unwrap_err();
        assert!(matches!(err, Error::Deadline(_)), "{err}");
        assert!(
            err.to_string()
                .contains("deadline reached while starting VM 100 (task UPID:pve1:"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
