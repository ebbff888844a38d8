//! The runner: everything between `main` and an extension's action handler.
//!
//! It parses argv, reads the payload, sets up the deadline and logging, calls the handler
//! (catching panics), and writes exactly one ASCII JSON document to stdout. Exit codes: 0 on
//! success, 1 on failure, 2 on usage errors; every one of them comes with a JSON document.

use std::borrow::Cow;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, Command, error::ErrorKind};

use crate::action::Action;
use crate::catalog::{self, ActionSpec, Registration};
use crate::deadline::{DEFAULT_TIMEOUT, Deadline};
use crate::details::Detail;
use crate::logging::{self, LogConfig, LogContext};
use crate::output::{self, MAX_OUTPUT_BYTES, to_ascii_json};
use crate::payload::Payload;
use crate::redact;
use crate::reference;
use crate::response::{Response, error_document};
use crate::text;

/// Error messages longer than this are cut: an error quoting a whole HTML page helps nobody
/// and could push the document past the output limit.
const MAX_ERROR_CHARS: usize = 4000;

/// Identifies an extension binary for `--help`, `--version` and the log.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Executable name, e.g. `proxmox-ext`; also names the default log file.
    pub name: &'static str,
    /// Version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Every action the extension answers, listed in `--help`; custom actions with what
    /// `--register` tells CloudStack about them.
    pub actions: &'static [ActionSpec],
    /// How `--register` creates the extension in CloudStack; `None`: no `--register`.
    pub registration: Option<Registration>,
    /// Every detail the extension reads (the SDK adds its own, [`logging::DETAILS`]): what
    /// `--settings` prints and what a payload's keys are checked against for typos.
    pub details: &'static [Detail],
}

impl Meta {
    /// The extension's details, then the SDK's own.
    pub fn declared(&self) -> impl Iterator<Item = &'static Detail> + Clone {
        self.details.iter().chain(logging::DETAILS.iter())
    }
}

/// One run of the extension, as the handler sees it.
#[derive(Debug)]
pub struct Invocation {
    /// A short random id that tags every log line of this run.
    pub id: String,
    /// argv\[1\].
    pub action: Action,
    /// The parsed payload file (argv\[2\]).
    pub payload: Payload,
    /// Where the payload was read from.
    pub payload_path: PathBuf,
    /// The time this run has (argv\[3\]).
    pub deadline: Deadline,
}

impl Invocation {
    /// The VM's CloudStack instance name, or an error saying the payload has none.
    pub fn vm_name(&self) -> anyhow::Result<&str> {
        self.payload.vm_name().ok_or_else(|| {
            anyhow::anyhow!(
                "action '{}' needs a VM, but the payload names none (virtualmachinename and cloudstack.vm.details.name are missing)",
                self.action
            )
        })
    }

    /// The VM's CloudStack UUID, or an error saying the payload has none.
    pub fn vm_uuid(&self) -> anyhow::Result<&str> {
        self.payload.vm_uuid().ok_or_else(|| {
            anyhow::anyhow!(
                "action '{}' needs a VM, but the payload has no VM UUID (virtualmachineid and cloudstack.vm.details.uuid are missing)",
                self.action
            )
        })
    }
}

/// How a run ended.
enum Outcome {
    Success(Response),
    Failure(String),
    Usage(String),
    Human(String),
}

/// The parsed command line.
struct Args {
    action: String,
    payload: PathBuf,
    timeout: Duration,
}

fn command(meta: &Meta) -> Command {
    // Built once per process, so leaking it is harmless (clap wants a 'static string).
    let version: &'static str =
        Box::leak(crate::build_info::version(meta.version).into_boxed_str());
    let operator = match &meta.registration {
        Some(r) => format!(
            "\nOperator commands: --register [--name NAME] [--dry-run] [--cmk PATH] creates or updates the extension (default name {}) and its custom actions in CloudStack with CloudMonkey; --entry-point [--name NAME] prints the path CloudStack runs.",
            r.default_name
        ),
        None => String::new(),
    };
    Command::new(meta.name)
        .version(version)
        .about(meta.about)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("action")
                .required_unless_present("settings")
                .help(format!(
                    "Action to run: {}",
                    catalog::names(meta.actions).join(", ")
                )),
        )
        .arg(
            Arg::new("payload")
                .required_unless_present("settings")
                .value_parser(clap::value_parser!(PathBuf))
                .help("JSON payload file written by CloudStack"),
        )
        .arg(Arg::new("timeout").required(false).allow_hyphen_values(true).help(
            "Seconds before CloudStack kills the process (default 600); the extension answers before then",
        ))
        .arg(
            Arg::new("settings")
                .long("settings")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["action", "payload", "timeout"])
                .help("Print every detail this extension reads (where, type, default, actions, meaning) and exit"),
        )
        .arg(
            Arg::new("format")
                .long("format")
                .requires("settings")
                .value_parser(reference::Format::NAMES)
                .help("Format of --settings: markdown (default) or json"),
        )
        .after_help(format!(
            "Writes exactly one JSON document to stdout and nothing to stderr. Exit status: 0 success, 1 failure, 2 usage error.\nLogs go to ${} (a path or 'off'), else the 'log_file' detail, else {}/{}.log; a file that cannot be opened falls back to that default, then to $TMPDIR/{}-<uid>/{}.log. Level from RUST_LOG or the 'log_level' detail.{operator}",
            logging::LOG_ENV,
            logging::DEFAULT_LOG_DIR,
            meta.name,
            meta.name,
            meta.name
        ))
}

fn usage_line(meta: &Meta) -> String {
    format!(
        "usage: {0} <action> <payload-file> [timeout-seconds], or {0} --settings [--format markdown|json]",
        meta.name
    )
}

/// Parses a timeout argument: a positive whole number of seconds.
pub fn parse_timeout(arg: Option<&str>) -> Result<Duration, String> {
    let Some(text) = arg else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match text.trim().parse::<u64>() {
        Ok(secs) if secs > 0 && text.trim().bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Duration::from_secs(secs))
        }
        _ => Err(format!(
            "timeout must be a positive whole number of seconds, got '{}'",
            text.escape_debug()
        )),
    }
}

fn parse_args(meta: &Meta, argv: Vec<OsString>) -> Result<Args, Outcome> {
    let matches = command(meta)
        .try_get_matches_from(argv)
        .map_err(|e| match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Outcome::Human(e.to_string()),
            _ => {
                // clap's text is "error: <what>", indented details, then usage and help hints;
                // keep what and details, on one line.
                let text = e.to_string();
                let what: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| {
                        !l.starts_with("Usage:") && !l.starts_with("For more information")
                    })
                    .filter(|l| !l.is_empty())
                    .collect();
                let what = what.join(" ");
                let what = what.strip_prefix("error: ").unwrap_or(&what);
                Outcome::Usage(format!("{what} ({})", usage_line(meta)))
            }
        })?;
    if matches.get_flag("settings") {
        let format = matches
            .get_one::<String>("format")
            .and_then(|f| reference::Format::from_name(f))
            .unwrap_or(reference::Format::Markdown);
        return Err(Outcome::Human(reference::render(meta, format)));
    }
    let action = matches
        .get_one::<String>("action")
        .cloned()
        .unwrap_or_default();
    if action.trim().is_empty() {
        return Err(Outcome::Usage(format!(
            "the action is empty ({})",
            usage_line(meta)
        )));
    }
    let payload = matches
        .get_one::<PathBuf>("payload")
        .cloned()
        .unwrap_or_default();
    let timeout = parse_timeout(matches.get_one::<String>("timeout").map(String::as_str))
        .map_err(|e| Outcome::Usage(format!("{e} ({})", usage_line(meta))))?;
    Ok(Args {
        action,
        payload,
        timeout,
    })
}

fn invocation_id() -> String {
    // RandomState is seeded randomly per process: no extra crate needed for a log tag.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    // Eight hex digits are plenty to tell concurrent invocations apart.
    format!("{:08x}", h.finish() & 0xFFFF_FFFF)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn start_watchdog(deadline: Deadline) {
    let spawned = std::thread::Builder::new()
        .name("deadline-watchdog".into())
        .spawn(move || {
            let wait = deadline.hard_end().saturating_duration_since(Instant::now());
            std::thread::sleep(wait);
            let message = format!(
                "no result within {} s: the extension gave up just before CloudStack's timeout; the operation may still be running on the hypervisor, check its task log",
                deadline.timeout().as_secs()
            );
            log::error!("deadline watchdog: {message}");
            if output::emit(&to_ascii_json(&error_document(&message))) {
                std::process::exit(1);
            }
        });
    if let Err(e) = spawned {
        log::warn!("could not start the deadline watchdog: {e}");
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text::truncate(text, max) {
        Cow::Owned(cut) => format!("{cut} [truncated]"),
        Cow::Borrowed(whole) => whole.to_owned(),
    }
}

/// Renders an outcome to the document line and exit code.
fn render(outcome: Outcome) -> (String, u8) {
    let error = |message: &str, code| {
        let message = truncate_chars(&redact::redact(message), MAX_ERROR_CHARS);
        (to_ascii_json(&error_document(&message)), code)
    };
    match outcome {
        Outcome::Success(response) => {
            let text = response.to_ascii_json();
            if text.len() + 1 > MAX_OUTPUT_BYTES {
                error(
                    &format!(
                        "the result is {} bytes, more than the {MAX_OUTPUT_BYTES} bytes CloudStack can safely read from an extension; refusing to print it",
                        text.len() + 1
                    ),
                    1,
                )
            } else {
                (text, 0)
            }
        }
        Outcome::Failure(message) => error(&message, 1),
        Outcome::Usage(message) => error(&message, 2),
        Outcome::Human(text) => (text, 0),
    }
}

/// Runs an extension: call it from `main` and return its exit code.
///
/// `handler` gets the parsed [`Invocation`] and returns the result document, or an error that
/// becomes `{"status":"error","error":"<error and its causes>"}` with exit code 1.
pub fn run<F>(meta: &Meta, handler: F) -> ExitCode
where
    F: FnOnce(&Invocation) -> anyhow::Result<Response>,
{
    run_with_args(meta, std::env::args_os().collect(), handler)
}

/// [`run`] with an explicit argv (argv\[0\] included).
pub fn run_with_args<F>(meta: &Meta, argv: Vec<OsString>, handler: F) -> ExitCode
where
    F: FnOnce(&Invocation) -> anyhow::Result<Response>,
{
    if let Some(code) = crate::operator::dispatch(meta, &argv) {
        return code;
    }
    let started = Instant::now();
    let protected = output::protect_stdio();
    // The default hook prints to stderr; log instead (a no-op until the logger is up).
    std::panic::set_hook(Box::new(|info| log::error!("panic: {info}")));

    let outcome = match protected {
        Ok(()) => execute(meta, argv, started, handler),
        // Nothing has run yet, and nothing does: the action could not keep its output apart.
        Err(e) => {
            init_logging(meta, None, "-", "-", "-");
            Outcome::Failure(e.to_string())
        }
    };
    let failed = match &outcome {
        Outcome::Success(_) | Outcome::Human(_) => None,
        Outcome::Failure(m) | Outcome::Usage(m) => Some(m.clone()),
    };
    let is_human = matches!(outcome, Outcome::Human(_));
    let (line, code) = render(outcome);
    if is_human {
        output::emit_human(&line);
    } else {
        match failed {
            None => log::info!("success in {} ms", started.elapsed().as_millis()),
            Some(m) => log::error!("failed in {} ms: {m}", started.elapsed().as_millis()),
        }
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&line) {
            log::debug!(
                "result: {}",
                truncate_chars(&redact::redact_json(&doc).to_string(), 2000)
            );
        }
        output::emit(&line);
    }
    ExitCode::from(code)
}

fn execute<F>(meta: &Meta, argv: Vec<OsString>, started: Instant, handler: F) -> Outcome
where
    F: FnOnce(&Invocation) -> anyhow::Result<Response>,
{
    let args = match parse_args(meta, argv) {
        Ok(a) => a,
        Err(outcome) => {
            if matches!(outcome, Outcome::Usage(_)) {
                init_logging(meta, None, "-", "-", "-");
            }
            return outcome;
        }
    };
    let id = invocation_id();
    let deadline = Deadline::for_timeout(started, args.timeout);
    start_watchdog(deadline);
    let action = Action::parse(&args.action);

    let payload = Payload::from_file(&args.payload);
    let vm = payload
        .as_ref()
        .ok()
        .and_then(|p| p.vm_name())
        .unwrap_or("-")
        .to_owned();
    init_logging(meta, payload.as_ref().ok(), &id, action.name(), &vm);
    log::info!(
        "{} {} started: payload {}, timeout {} s",
        meta.name,
        meta.version,
        args.payload.display(),
        args.timeout.as_secs()
    );
    let payload = match payload {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    crate::typos::declare(meta.details);
    for finding in crate::typos::scan(&payload) {
        log::warn!("{finding}; {}", finding.fix());
    }
    let invocation = Invocation {
        id,
        action,
        payload,
        payload_path: args.payload,
        deadline,
    };
    match catch_unwind(AssertUnwindSafe(|| handler(&invocation))) {
        Ok(Ok(response)) => Outcome::Success(response),
        Ok(Err(e)) => Outcome::Failure(format!("{e:#}")),
        Err(panic) => Outcome::Failure(format!(
            "internal error in {} (a bug; please report it with the log): {}",
            meta.name,
            panic_message(panic.as_ref())
        )),
    }
}

fn init_logging(meta: &Meta, payload: Option<&Payload>, id: &str, action: &str, vm: &str) {
    let config = LogConfig::resolve(meta.name, payload);
    let context = LogContext {
        invocation: id.to_owned(),
        action: action.to_owned(),
        vm: vm.to_owned(),
    };
    if let Some(file) = logging::init(&config, context) {
        output::redirect_stderr(&file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_argument() {
        assert_eq!(parse_timeout(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(parse_timeout(Some("1800")), Ok(Duration::from_secs(1800)));
        for bad in ["0", "-5", "abc", "1.5", "", "+3", "99999999999999999999999"] {
            assert!(parse_timeout(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn oversized_results_become_errors() {
        let big = Response::success("x".repeat(MAX_OUTPUT_BYTES));
        let (line, code) = render(Outcome::Success(big));
        assert_eq!(code, 1);
        assert!(line.contains("refusing to print it"), "{line}");
        let (line, code) = render(Outcome::Success(Response::success("é")));
        assert_eq!(
            (line.as_str(), code),
            (r#"{"status":"success","message":"\u00e9"}"#, 0)
        );
    }

    #[test]
    fn errors_are_redacted_and_truncated() {
        redact::register("runner-test-secret");
        let (line, code) = render(Outcome::Failure(format!(
            "bad runner-test-secret {}",
            "y".repeat(10_000)
        )));
        assert_eq!(code, 1);
        assert!(!line.contains("runner-test-secret") && line.contains("[truncated]"));
        assert!(line.len() < MAX_ERROR_CHARS + 200);
    }
}
