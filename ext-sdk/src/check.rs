//! The answer of a preflight `check`: one row per probe, shown by CloudStack's UI as a table.
//!
//! A check answers with exit 0 whenever it could run, failed probes included, because the UI
//! shows a custom action's table only on success; the first row sums the others up. Every
//! row says what was probed, the verdict, what was found and, when something is wrong, the
//! fix in one sentence.

use serde_json::{Map, Value};

use crate::logging::{self, LogConfig, LogStatus};
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

    /// One `warn` row per misspelt, misplaced or invalid detail of the payload
    /// ([`crate::typos::scan`]), or one `ok` row saying there is none.
    pub fn details(&mut self, payload: &Payload) {
        let findings = crate::typos::scan(payload);
        if findings.is_empty() {
            self.ok(
                "details",
                "no detail is misspelt, set at a level it is not read from, or set to a value it does not take",
            );
        }
        for finding in findings {
            self.warn(
                format!("detail {}", finding.key),
                finding.to_string(),
                finding.fix(),
            );
        }
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
/// `log_file` detail or the default) and whether this user may append to it. When the runner
/// set logging up ([`logging::status`]), its outcome is the answer, fallback included: a file
/// it could not open fails, naming where this run's log went instead. Otherwise the file is
/// opened as the runner would (append, created 0640 if missing), leaving nothing the runner
/// would not have left already.
pub fn probe_log_file(report: &mut Report, exe_name: &str, payload: &Payload) -> Verdict {
    let status = logging::status().unwrap_or_else(|| {
        let config = LogConfig::resolve(exe_name, Some(payload));
        LogStatus {
            wanted: config.path,
            origin: config.origin,
            used: None,
            problem: None,
        }
    });
    probe_log_status(report, &status)
}

fn probe_log_status(report: &mut Report, status: &LogStatus) -> Verdict {
    const PROBE: &str = "log_file";
    let origin = &status.origin;
    let Some(path) = status.wanted.as_deref() else {
        return report.warn(
            PROBE,
            format!("logging is off (from {origin}): remote errors are recorded nowhere"),
            "set log_file to a file the management server's user can write",
        );
    };
    if status.used.as_deref() == Some(path) {
        return report.ok(
            PROBE,
            format!("{} is writable (from {origin})", path.display()),
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    let Err(error) = options.open(path) else {
        return report.ok(
            PROBE,
            format!("{} is writable (from {origin})", path.display()),
        );
    };
    let instead = match &status.used {
        Some(used) => format!("; this run logs to {} instead", used.display()),
        None if status.problem.is_some() => "; no log is written".to_owned(),
        None => String::new(),
    };
    report.fail(
        PROBE,
        format!(
            "cannot append to {} (from {origin}): {error}{instead}",
            path.display()
        ),
        format!(
            "set log_file (host, cluster mapping or extension detail) to a file the management \
             server's user can write, or make {} a directory it can write",
            path.parent()
                .map_or_else(|| ".".into(), |d| d.display().to_string())
        ),
    )
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
        let fallback = dir.path().join("fallback.log");
        let status = |wanted: Option<&std::path::Path>, used: Option<&std::path::Path>| LogStatus {
            wanted: wanted.map(ToOwned::to_owned),
            origin: "the host detail 'log_file'".into(),
            used: used.map(ToOwned::to_owned),
            problem: used.is_none().then(|| "cannot open it".to_owned()),
        };
        let mut report = Report::new();
        let ok = probe_log_status(&mut report, &status(Some(&writable), Some(&writable)));
        assert_eq!(ok, Verdict::Ok);
        let opened = probe_log_status(&mut report, &status(Some(&writable), None));
        assert_eq!(opened, Verdict::Ok);
        assert!(writable.is_file());
        let fell_back = probe_log_status(&mut report, &status(Some(&unwritable), Some(&fallback)));
        assert_eq!(fell_back, Verdict::Fail);
        let nowhere = probe_log_status(&mut report, &status(Some(&unwritable), None));
        assert_eq!(nowhere, Verdict::Fail);
        assert_eq!(
            probe_log_status(&mut report, &status(None, None)),
            Verdict::Warn
        );
        let rows = report.rows();
        assert_eq!(
            rows[0].found,
            format!(
                "{} is writable (from the host detail 'log_file')",
                writable.display()
            )
        );
        let prefix = format!(
            "cannot append to {} (from the host detail 'log_file'): ",
            unwritable.display()
        );
        assert!(rows[2].found.starts_with(&prefix), "{:?}", rows[2]);
        assert!(
            rows[2].found.ends_with(&format!(
                "; this run logs to {} instead",
                fallback.display()
            )),
            "{:?}",
            rows[2]
        );
        assert!(rows[2].fix.contains("missing-dir"), "{:?}", rows[2]);
        assert!(
            rows[3].found.ends_with("; no log is written"),
            "{:?}",
            rows[3]
        );
        assert!(
            rows[4]
                .found
                .contains("logging is off (from the host detail 'log_file')")
        );
        assert!(!unwritable.parent().unwrap().exists());
    }

    #[test]
    fn an_empty_report_is_skip() {
        assert_eq!(Report::new().worst(), Verdict::Skip);
    }
}
