//! The answer of a preflight `check`: one row per probe, shown by CloudStack's UI as a table.
//!
//! A check answers with exit 0 whenever it could run, failed probes included, because the UI
//! shows a custom action's table only on success; the first row sums the others up. Every
//! row says what was probed, the verdict, what was found and, when something is wrong, the
//! fix in one sentence.

use serde_json::{Map, Value};

use crate::logging::{self, LogConfig};
use crate::payload::Payload;
use crate::response::Response;

/// The verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Does not apply to this set-up (e.g. the ISO probe for a template deploy), or could
    /// not run because an earlier probe failed.
    Skip,
    /// As it should be.
    Ok,
    /// Works, but is risky or will fail in some cases.
    Warn,
    /// Broken: an action that needs it will fail.
    Fail,
}

impl Verdict {
    /// The word shown in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Skip => "skip",
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was probed, e.g. `tcp`, `token privileges`.
    pub probe: String,
    /// The verdict.
    pub result: Verdict,
    /// What was found, naming the address, detail or object probed.
    pub found: String,
    /// The fix in one sentence; empty when there is nothing to fix.
    pub fix: String,
}

/// The rows of one check, in the order the probes ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds a row.
    pub fn push(
        &mut self,
        probe: impl Into<String>,
        result: Verdict,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Verdict {
        self.rows.push(Row {
            probe: probe.into(),
            result,
            found: found.into(),
            fix: fix.into(),
        });
        result
    }

    /// A probe that passed.
    pub fn ok(&mut self, probe: impl Into<String>, found: impl Into<String>) -> Verdict {
        self.push(probe, Verdict::Ok, found, "")
    }

    /// A probe that found something risky.
    pub fn warn(
        &mut self,
        probe: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Verdict {
        self.push(probe, Verdict::Warn, found, fix)
    }

    /// A probe that failed.
    pub fn fail(
        &mut self,
        probe: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Verdict {
        self.push(probe, Verdict::Fail, found, fix)
    }

    /// A probe that does not apply, or could not run; `why` says which.
    pub fn skip(&mut self, probe: impl Into<String>, why: impl Into<String>) -> Verdict {
        self.push(probe, Verdict::Skip, why, "")
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The worst verdict of all rows (`Skip` for an empty report).
    pub fn worst(&self) -> Verdict {
        self.rows
            .iter()
            .map(|r| r.result)
            .max()
            .unwrap_or(Verdict::Skip)
    }

    /// The summary row: the worst verdict, the counts, and the first fix to make.
    pub fn summary(&self) -> Row {
        let count = |v: Verdict| self.rows.iter().filter(|r| r.result == v).count();
        let worst = self.worst();
        let found = format!(
            "{} probes: {} ok, {} warn, {} fail, {} skip",
            self.rows.len(),
            count(Verdict::Ok),
            count(Verdict::Warn),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
        let first_fix = self
            .rows
            .iter()
            .filter(|r| r.result == worst && !r.fix.is_empty())
            .map(|r| format!("{}: {}", r.probe, r.fix))
            .next();
        let fix = match (worst, first_fix) {
            (Verdict::Fail | Verdict::Warn, Some(fix)) => fix,
            _ => String::new(),
        };
        Row {
            probe: "summary".into(),
            result: worst,
            found,
            fix,
        }
    }

    /// The answer: `"printmessage":"true"` and the table, the summary first.
    pub fn into_response(self) -> Response {
        let summary = self.summary();
        let rows = std::iter::once(&summary)
            .chain(self.rows.iter())
            .map(row_json)
            .collect();
        Response::table(rows)
    }
}

/// The `log_file` probe: where this extension logs for `payload` (the environment, the
/// `log_file` detail or the default, as the runner chose at start) and whether this user may
/// append to it. It opens the file as the runner does (append, created 0640 if missing), so it
/// leaves nothing the runner would not have left already.
pub fn probe_log_file(report: &mut Report, exe_name: &str, payload: &Payload) -> Verdict {
    let config = LogConfig::resolve(exe_name, Some(payload));
    let source = log_source(std::env::var_os(logging::LOG_ENV).is_some(), payload);
    probe_log_path(report, config.path.as_deref(), &source)
}

/// Where the log's path came from, as the runner chose it.
fn log_source(from_environment: bool, payload: &Payload) -> String {
    if from_environment {
        format!("from the environment variable {}", logging::LOG_ENV)
    } else if let Some(found) = payload.lookup(&logging::LOG_FILE) {
        format!("from {} ({})", found.key, found.level.describe())
    } else {
        "the default".to_owned()
    }
}

fn probe_log_path(report: &mut Report, path: Option<&std::path::Path>, source: &str) -> Verdict {
    const PROBE: &str = "log_file";
    let Some(path) = path else {
        return report.warn(
            PROBE,
            format!("logging is off ({source}): remote errors are recorded nowhere"),
            "set log_file to a file the management server's user can write",
        );
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    match options.open(path) {
        Ok(_) => report.ok(PROBE, format!("{} is writable ({source})", path.display())),
        Err(e) => report.fail(
            PROBE,
            format!("cannot append to {} ({source}): {e}", path.display()),
            format!(
                "set log_file (host, cluster mapping or extension detail) to a file the \
                 management server's user can write, or create {} for it",
                path.parent()
                    .map_or_else(|| ".".into(), |d| d.display().to_string())
            ),
        ),
    }
}

fn row_json(row: &Row) -> Value {
    let mut object = Map::new();
    object.insert("probe".into(), row.probe.clone().into());
    object.insert("result".into(), row.result.as_str().into());
    object.insert("found".into(), row.found.clone().into());
    object.insert("fix".into(), row.fix.clone().into());
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_summary_comes_first_with_the_worst_verdict_and_its_fix() {
        let mut report = Report::new();
        report.ok("url", "https://pve1:8006 resolves to 192.0.2.10");
        report.warn("tls", "not verified", "set tls_fingerprint");
        report.fail(
            "node",
            "pve9 is not in the cluster (pve1, pve2)",
            "set node to pve1",
        );
        report.skip("iso", "template deploy");
        let json = report.into_response().to_json();
        assert_eq!(json["status"], "success");
        assert_eq!(json["printmessage"], "true");
        let rows = json["message"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            json!({"probe": "summary", "result": "fail",
                   "found": "4 probes: 1 ok, 1 warn, 1 fail, 1 skip",
                   "fix": "node: set node to pve1"})
        );
        assert_eq!(
            rows[3],
            json!({"probe": "node", "result": "fail",
                   "found": "pve9 is not in the cluster (pve1, pve2)", "fix": "set node to pve1"})
        );
    }

    #[test]
    fn a_healthy_report_has_nothing_to_fix() {
        let mut report = Report::new();
        report.ok("tcp", "reached hv1:22");
        report.skip("iso", "template deploy");
        let summary = report.summary();
        assert_eq!(summary.result, Verdict::Ok);
        assert_eq!(summary.fix, "");
        assert_eq!(report.worst(), Verdict::Ok);
    }

    #[test]
    fn the_log_file_probe_names_the_file_and_where_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let writable = dir.path().join("ext.log");
        let unwritable = dir.path().join("missing-dir/ext.log");
        let payload = |details: Value| {
            let json = json!({"externaldetails": details});
            Payload::from_slice(json.to_string().as_bytes(), "test").unwrap()
        };
        let host = log_source(false, &payload(json!({"host": {"log_file": "/x.log"}})));
        assert_eq!(host, "from log_file (host detail)");
        let extension = log_source(false, &payload(json!({"extension": {"log_file": "off"}})));
        assert_eq!(extension, "from log_file (extension detail)");
        assert_eq!(log_source(false, &payload(json!({}))), "the default");
        assert_eq!(
            log_source(true, &payload(json!({"host": {"log_file": "/x.log"}}))),
            "from the environment variable CLOUDSTACK_EXT_LOG"
        );
        let mut report = Report::new();
        assert_eq!(
            probe_log_path(&mut report, Some(&writable), &host),
            Verdict::Ok
        );
        assert!(writable.is_file());
        assert_eq!(
            probe_log_path(&mut report, Some(&unwritable), &host),
            Verdict::Fail
        );
        assert_eq!(probe_log_path(&mut report, None, &extension), Verdict::Warn);
        let rows = report.rows();
        assert_eq!(
            rows[0].found,
            format!(
                "{} is writable (from log_file (host detail))",
                writable.display()
            )
        );
        assert!(
            rows[1].found.starts_with(&format!(
                "cannot append to {} (from log_file (host detail)): ",
                unwritable.display()
            )),
            "{:?}",
            rows[1]
        );
        assert!(rows[1].fix.contains("missing-dir"), "{:?}", rows[1]);
        assert!(
            rows[2]
                .found
                .contains("logging is off (from log_file (extension detail))")
        );
    }

    #[test]
    fn an_empty_report_is_skip() {
        assert_eq!(Report::new().worst(), Verdict::Skip);
    }
}
