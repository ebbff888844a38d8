//! Logging to a file, never to stdout or stderr.
//!
//! Where: `CLOUDSTACK_EXT_LOG` (a path, or `off`), else the `log_file` detail, else
//! `/var/log/cloudstack/management/extensions/<exe>.log`. A file that cannot be opened falls
//! back to that default, then to `<temp dir>/<exe>-<uid>/<exe>.log` (a directory private to
//! the user, usually under `/tmp`), and the first line logged there says why; [`status`] tells
//! a `check` action where the log went.
//! How much: `RUST_LOG` (env_logger syntax), else the `log_level` detail, else `info`; other
//! crates (HTTP, TLS) stay at `warn` unless `RUST_LOG` says otherwise, since their debug output
//! is noisy. Every line carries a timestamp, the level, the invocation id, the action and the
//! VM name, and passes through [`crate::redact::redact`].
//!
//! Whatever the filter says, other crates never log at `trace`: that is where they dump raw
//! traffic (ureq-proto prints every byte sent and received, 16 to a line, so a token secret or a
//! console ticket is split over two lines where redaction by value cannot see it). The cap is
//! applied to each record before it is formatted, so no `RUST_LOG` spelling can lift it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::details::{Detail, Kind, Level};
use crate::payload::Payload;
use crate::redact;

/// Environment variable naming the log file (`off` disables logging).
pub const LOG_ENV: &str = "CLOUDSTACK_EXT_LOG";

/// Directory of the default log file, next to CloudStack's management-server logs.
pub const DEFAULT_LOG_DIR: &str = "/var/log/cloudstack/management/extensions";

/// Detail naming the log file.
pub const LOG_FILE: Detail = Detail::new(
    "log_file",
    &[Level::Host, Level::ResourceMap, Level::Extension],
)
.kind(Kind::Path)
.default_described("/var/log/cloudstack/management/extensions/<exe>.log; off for no log")
.hint(
    "path of the extension's log file (the CLOUDSTACK_EXT_LOG environment variable wins over it)",
);

/// The values of `log_level`.
pub const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Detail setting the log level (`error`, `warn`, `info`, `debug`, `trace`, `off`).
pub const LOG_LEVEL: Detail = Detail::new(
    "log_level",
    &[Level::Host, Level::ResourceMap, Level::Extension],
)
.kind(Kind::Choice(LEVELS))
.default_value("info")
.hint("how much the log says (the RUST_LOG environment variable wins over it)");

/// The details the SDK itself reads, beside each extension's own.
pub const DETAILS: &[Detail] = &[LOG_FILE, LOG_LEVEL];

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file, `None` when logging is off.
    pub path: Option<PathBuf>,
    /// Where the path came from: "the CLOUDSTACK_EXT_LOG environment variable", "the host
    /// detail 'log_file'", "the default".
    pub origin: String,
    /// An env_logger filter.
    pub filter: String,
    /// The executable's name: its crate (and the SDK) may log at `trace`, no other crate may.
    pub exe_name: String,
}

/// What every log line is tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogContext {
    /// The invocation id.
    pub invocation: String,
    /// The action name.
    pub action: String,
    /// The VM's instance name, or `-`.
    pub vm: String,
}

impl LogConfig {
    /// Resolves the configuration from the environment and, when it parsed, the payload.
    pub fn resolve(exe_name: &str, payload: Option<&Payload>) -> LogConfig {
        let from_env = std::env::var_os(LOG_ENV).map(|p| {
            (
                PathBuf::from(p),
                format!("the {LOG_ENV} environment variable"),
            )
        });
        let from_detail = || {
            payload.and_then(|p| p.lookup(&LOG_FILE)).map(|f| {
                (
                    PathBuf::from(f.value.as_ref()),
                    format!("the {} '{}'", f.level.describe(), f.key),
                )
            })
        };
        let (path, origin) = match from_env.or_else(from_detail) {
            Some((p, origin)) if is_off(&p) => (None, origin),
            Some((p, origin)) => (Some(p), origin),
            None => (Some(default_path(exe_name)), "the default".to_owned()),
        };
        let filter = match std::env::var("RUST_LOG") {
            Ok(f) if !f.trim().is_empty() => f,
            _ => {
                let level = payload
                    .and_then(|p| p.lookup(&LOG_LEVEL))
                    .map(|f| f.value.to_ascii_lowercase())
                    .filter(|l| LEVELS.contains(&l.as_str()))
                    .unwrap_or_else(|| "info".to_owned());
                format!(
                    "warn,{}={level},ext_sdk={level}",
                    exe_name.replace('-', "_")
                )
            }
        };
        LogConfig {
            path,
            origin,
            filter,
            exe_name: exe_name.to_owned(),
        }
    }
}

/// `/var/log/cloudstack/management/extensions/<exe>.log`.
pub fn default_path(exe_name: &str) -> PathBuf {
    Path::new(DEFAULT_LOG_DIR).join(format!("{exe_name}.log"))
}

/// The last resort when neither the configured nor the default file can be opened:
/// `<temp dir>/<exe>-<uid>/<exe>.log` (usually under `/tmp`), in a directory private to the
/// user.
pub fn fallback_path(exe_name: &str) -> std::io::Result<PathBuf> {
    crate::files::private_dir_in(&std::env::temp_dir(), exe_name)
        .map(|dir| dir.join(format!("{exe_name}.log")))
}

/// Where this run logs, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStatus {
    /// The file asked for (`None`: logging is off).
    pub wanted: Option<PathBuf>,
    /// Where `wanted` came from.
    pub origin: String,
    /// The file written to, `None` when nothing could be opened (or logging is off).
    pub used: Option<PathBuf>,
    /// Why `wanted` (and the default) could not be opened, when the log went elsewhere.
    pub problem: Option<String>,
}

static STATUS: Mutex<Option<LogStatus>> = Mutex::new(None);

/// Where this run logs (set by [`init`]); `None` before logging was set up.
pub fn status() -> Option<LogStatus> {
    STATUS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn set_status(status: LogStatus) {
    *STATUS.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
}

/// Opens the wanted file, else the default one, else the fallback: the file and its path,
/// and what went wrong on the way.
fn open_with_fallback(
    config: &LogConfig,
    wanted: &Path,
) -> (Option<(File, PathBuf)>, Option<String>) {
    let mut problems = Vec::new();
    let mut candidates = vec![wanted.to_path_buf()];
    let default = default_path(&config.exe_name);
    if default != wanted {
        candidates.push(default);
    }
    match fallback_path(&config.exe_name) {
        Ok(path) => candidates.push(path),
        Err(e) => problems.push(format!(
            "the fallback in {} cannot be used: {e}",
            std::env::temp_dir().display()
        )),
    }
    for path in candidates {
        match open_log(&path) {
            Ok(file) => {
                let problem = (!problems.is_empty()).then(|| problems.join("; "));
                return (Some((file, path)), problem);
            }
            Err(e) => problems.push(format!("cannot open {}: {e}", path.display())),
        }
    }
    (None, Some(problems.join("; ")))
}

fn is_off(path: &Path) -> bool {
    let s = path.to_string_lossy();
    let s = s.trim();
    s.is_empty() || ["off", "none", "false", "0"].contains(&s.to_ascii_lowercase().as_str())
}

fn open_log(path: &Path) -> std::io::Result<File> {
    // Create at most the last directory level (`extensions/` under CloudStack's log
    // directory): on a machine without CloudStack's tree, logging is simply off. Modes are
    // explicit (0750, 0640), so a umask of 000 makes nothing world-writable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
        && dir.parent().is_some_and(Path::exists)
    {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o750);
        }
        let _ = builder.create(dir);
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path)
}

/// Appends whole records: each formatted line reaches the file in one `write`, so lines from
/// concurrent invocations sharing the file do not interleave.
struct RecordWriter(File);

impl Write for RecordWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The crates allowed to log at `trace`: the SDK and the extension itself (`exe_name` with `-`
/// as `_`, the name of its library and binary crates). Our own code logs no raw traffic.
fn own_crates(exe_name: &str) -> Vec<String> {
    vec!["ext_sdk".to_owned(), exe_name.replace('-', "_")]
}

/// Whether `target` (a module path) belongs to one of `own` crates.
fn is_own(target: &str, own: &[String]) -> bool {
    own.iter().any(|c| {
        target
            .strip_prefix(c.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether a record may be written at all: dependencies are capped at `debug`.
fn admissible(metadata: &log::Metadata<'_>, own: &[String]) -> bool {
    metadata.level() < log::Level::Trace || is_own(metadata.target(), own)
}

/// env_logger behind the dependency cap.
struct CappedLogger {
    inner: env_logger::Logger,
    own: Vec<String>,
}

impl log::Log for CappedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        admissible(metadata, &self.own) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if admissible(record.metadata(), &self.own) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the logger. Returns the open log file (to receive stray stderr), or `None` when
/// logging is off or the file cannot be opened.
pub fn init(config: &LogConfig, context: LogContext) -> Option<File> {
    let mut status = LogStatus {
        wanted: config.path.clone(),
        origin: config.origin.clone(),
        used: None,
        problem: None,
    };
    let Some(wanted) = config.path.as_ref() else {
        set_status(status);
        return None;
    };
    let (opened, problem) = open_with_fallback(config, wanted);
    status.problem = problem;
    let Some((file, used)) = opened else {
        set_status(status);
        return None;
    };
    status.used = Some(used.clone());
    set_status(status.clone());
    let for_logger = file.try_clone().ok()?;
    let mut builder = env_logger::Builder::new();
    builder
        .parse_filters(&config.filter)
        .target(env_logger::Target::Pipe(Box::new(RecordWriter(for_logger))))
        .write_style(env_logger::WriteStyle::Never)
        .format(move |buf, record| {
            let message = redact::redact(&record.args().to_string());
            let line = format!(
                "{} {:<5} {} [{} {}] {}\n",
                buf.timestamp_millis(),
                record.level(),
                context.invocation,
                context.action,
                context.vm,
                message.replace('\n', "\n    ")
            );
            buf.write_all(line.as_bytes())
        });
    let inner = builder.build();
    let max_level = inner.filter();
    let logger = CappedLogger {
        inner,
        own: own_crates(&config.exe_name),
    };
    log::set_boxed_logger(Box::new(logger)).ok()?;
    log::set_max_level(max_level);
    if &used != wanted {
        log::warn!(
            "the log file {} (from {}) cannot be used, logging to {} instead: {}",
            wanted.display(),
            config.origin,
            used.display(),
            status.problem.as_deref().unwrap_or("")
        );
    }
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_never_log_at_trace() {
        use log::Level::{Debug, Trace};
        let own = own_crates("proxmox-ext");
        let meta = |level, target| log::Metadata::builder().level(level).target(target).build();
        assert!(admissible(&meta(Trace, "proxmox_ext::api"), &own));
        assert!(admissible(&meta(Trace, "proxmox_ext"), &own));
        assert!(admissible(&meta(Trace, "ext_sdk::runner"), &own));
        // ureq-proto's hex dump of the raw traffic, whatever RUST_LOG says.
        assert!(!admissible(&meta(Trace, "ureq_proto::util"), &own));
        assert!(!admissible(&meta(Trace, "rustls::client::hs"), &own));
        // A crate whose name merely starts like ours is not ours.
        assert!(!admissible(&meta(Trace, "proxmox_extra::x"), &own));
        assert!(admissible(&meta(Debug, "ureq::run"), &own));
    }

    #[test]
    fn off_spellings() {
        for off in ["off", "OFF", "none", "", " 0 "] {
            assert!(is_off(Path::new(off)), "{off}");
        }
        assert!(!is_off(Path::new("/tmp/x.log")));
    }
}
