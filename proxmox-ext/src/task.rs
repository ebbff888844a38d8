//! Waiting for a Proxmox task to finish.
//!
//! The status is read on the node the UPID names, on a fixed grid of moments counted from
//! when the task was handed out: at once, then every 250 ms for the first 10 s, every 500 ms
//! until 30 s and every second after that (clones of large disks take minutes), always
//! bounded by the invocation's deadline. A task ending at a random moment within the first
//! 10 s is noticed 125 ms later on average, and PVE's pvedaemon, which every client of the
//! node shares, gets at most one poll per 250 ms. The grid is fixed so that slow answers do
//! not make the polls drift later; a poll that takes longer than a step skips the moments it
//! missed instead of polling twice.
//!
//! Success follows PVE's own definition (`PVE::UPID::status_is_error`): `OK` and
//! `WARNINGS: N` both succeed; the warnings are logged. Any other exit status fails, and the
//! error carries the last lines of the task log, which say why.

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::api::Client;
use crate::error::{Error, TaskFailure};
use crate::upid::Upid;

/// The poll grid: (step, until), each phase starting where the one before ends.
const POLL_GRID: [(Duration, Duration); 3] = [
    (Duration::from_millis(250), Duration::from_secs(10)),
    (Duration::from_millis(500), Duration::from_secs(30)),
    (Duration::from_secs(1), Duration::MAX),
];
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

/// The first moment of the poll grid after `elapsed` (both counted from the task's start).
fn next_poll(elapsed: Duration) -> Duration {
    let mut start = Duration::ZERO;
    for (step, until) in POLL_GRID {
        if elapsed < until {
            let steps = elapsed.saturating_sub(start).as_nanos() / step.as_nanos() + 1;
            let at =
                start.saturating_add(step.saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX)));
            return at.min(until);
        }
        start = until;
    }
    Duration::MAX
}

/// Waits for `upid` to stop; `what` ("starting VM 100") names it in errors.
pub fn wait(client: &Client, upid: &Upid, what: &str) -> Result<Finished, Error> {
    // The task was handed out just now: its POST has been answered.
    let started = Instant::now();
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
        let now = started.elapsed();
        let pause = next_poll(now).saturating_sub(now);
        client.deadline().sleep(pause).map_err(|_| {
            Error::Deadline(client.deadline().exceeded(&format!("{what} (task {upid})")))
        })?;
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The polls of a task whose every status answer takes `answer`, until `until`.
    fn schedule(answer: Duration, until: Duration) -> Vec<Duration> {
        let mut polls = vec![Duration::ZERO];
        let mut now = answer;
        while now < until {
            let at = next_poll(now);
            polls.push(at);
            now = at + answer;
        }
        polls
    }

    #[test]
    fn polls_on_a_250_ms_grid_then_back_off() {
        let polls = schedule(ms(5), Duration::from_secs(5));
        assert_eq!(polls[..4], [ms(0), ms(250), ms(500), ms(750)]);
        // 0 to 5 s: 20 steps of 250 ms.
        assert_eq!(polls.iter().filter(|&&p| p <= ms(5000)).count(), 21);
        let polls = schedule(ms(5), Duration::from_secs(40));
        for pair in polls.windows(2) {
            let step = pair[1].checked_sub(pair[0]).unwrap();
            let expected = match pair[0] {
                p if p < ms(10_000) => ms(250),
                p if p < ms(30_000) => ms(500),
                _ => ms(1000),
            };
            assert_eq!(step, expected, "after {:?}", pair[0]);
        }
        assert_eq!(
            next_poll(Duration::from_secs(3600)),
            Duration::from_secs(3601)
        );
    }

    #[test]
    fn a_slow_answer_skips_the_moments_it_missed() {
        let polls = schedule(ms(300), Duration::from_secs(2));
        assert_eq!(polls[..4], [ms(0), ms(500), ms(1000), ms(1500)]);
        assert_eq!(next_poll(ms(250)), ms(500), "never the moment just passed");
        assert_eq!(next_poll(ms(9_999)), ms(10_000));
        assert_eq!(next_poll(ms(10_000)), ms(10_500));
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
