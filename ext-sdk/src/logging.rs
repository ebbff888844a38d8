//! Logging to a file, never to stdout or stderr.
//!
//! Where: `CLOUDSTACK_EXT_LOG` (a path, or `off`), else the `log_file` detail, else
//! `/var/log/cloudstack/management/extensions/<exe>.log` when that can be written, else nowhere.
//! How much: `RUST_LOG` (env_logger syntax), else the `log_level` detail, else `info`; other
//! crates (HTTP, TLS) stay at `warn` unless `RUST_LOG` says otherwise, since their debug output
//! is noisy. Every line carries a timestamp, the level, the invocation id, the action and the
//! VM name, and passes through [`crate::redact::redact`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::details::{Detail, Level};
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
.hint("path of the extension's log file");

/// Detail setting the log level (`error`, `warn`, `info`, `debug`, `trace`).
pub const LOG_LEVEL: Detail = Detail::new(
    "log_level",
    &[Level::Host, Level::ResourceMap, Level::Extension],
)
.hint("error, warn, info, debug or trace");

/// The details the SDK itself reads, beside each extension's own.
pub const DETAILS: &[Detail] = &[LOG_FILE, LOG_LEVEL];

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file, `None` when logging is off.
    pub path: Option<PathBuf>,
    /// An env_logger filter.
    pub filter: String,
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
        let from_env = std::env::var_os(LOG_ENV).map(PathBuf::from);
        let from_detail = || {
            payload
                .and_then(|p| p.lookup(&LOG_FILE))
                .map(|f| PathBuf::from(f.value.as_ref()))
        };
        let path = match from_env.or_else(from_detail) {
            Some(p) if is_off(&p) => None,
            Some(p) => Some(p),
            None => Some(Path::new(DEFAULT_LOG_DIR).join(format!("{exe_name}.log"))),
        };
        let filter = match std::env::var("RUST_LOG") {
            Ok(f) if !f.trim().is_empty() => f,
            _ => {
                let level = payload
                    .and_then(|p| p.lookup(&LOG_LEVEL))
                    .map(|f| f.value.to_ascii_lowercase())
                    .filter(|l| {
                        ["error", "warn", "info", "debug", "trace", "off"].contains(&l.as_str())
                    })
                    .unwrap_or_else(|| "info".to_owned());
                format!(
                    "warn,{}={level},ext_sdk={level}",
                    exe_name.replace('-', "_")
                )
            }
        };
        LogConfig { path, filter }
    }
}

fn is_off(path: &Path) -> bool {
    let s = path.to_string_lossy();
    let s = s.trim();
    s.is_empty() || ["off", "none", "false", "0"].contains(&s.to_ascii_lowercase().as_str())
}

fn open_log(path: &Path) -> Option<File> {
    // Create at most the last directory level (`extensions/` under CloudStack's log
    // directory): on a machine without CloudStack's tree, logging is simply off.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
        && dir.parent().is_some_and(Path::exists)
    {
        let _ = std::fs::create_dir(dir);
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path).ok()
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

/// Installs the logger. Returns the open log file (to receive stray stderr), or `None` when
/// logging is off or the file cannot be opened.
pub fn init(config: &LogConfig, context: LogContext) -> Option<File> {
    let path = config.path.as_ref()?;
    let file = open_log(path)?;
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
    builder.try_init().ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_spellings() {
        for off in ["off", "OFF", "none", "", " 0 "] {
            assert!(is_off(Path::new(off)), "{off}");
        }
        assert!(!is_off(Path::new("/tmp/x.log")));
    }
}
