//! One remote operation, whatever the transport: the command line for a script, one run of
//! it, its framed result read as the script's reply type, and what a failure means.

use ext_sdk::Deadline;
use hyperv_protocol::{Call, CommandError, Failure, ReplyError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clixml;
use crate::transport::{Exit, Progress, Sent, Silent, Transport, TransportError};

#[derive(Debug)]
pub enum RemoteError {
    /// The command line could not be built; nothing was sent.
    Command(CommandError),
    /// The transport failed; [`TransportError::sent`] says whether the script may have run.
    Transport(TransportError),
    /// The command ran (or not) but left no usable result line.
    NoResult {
        why: ReplyError,
        exit: Exit,
        /// The transport's name, for the hint.
        via: &'static str,
    },
    /// The script reported a failure: its own checks or its own rollback ran.
    Failed(Failure),
}

impl RemoteError {
    /// Whether the script may have been cut off part-way: it was handed to the host but no
    /// answer came back (the deadline, a lost connection, no usable result line). What it
    /// changed is then unknown, and an action that builds something must clean up after it.
    /// Not for a command that never left (nothing ran) or a reported failure (the script
    /// finished, rollback included).
    pub fn interrupted(&self) -> bool {
        match self {
            RemoteError::Transport(e) => e.sent() == Sent::Maybe,
            RemoteError::NoResult { .. } => true,
            RemoteError::Command(_) | RemoteError::Failed(_) => false,
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Command(e) => e.fmt(f),
            RemoteError::Transport(e) => e.fmt(f),
            RemoteError::NoResult { why, exit, via } => write!(
                f,
                "{why} ({exit}); is powershell.exe with the Hyper-V module available to the {via} \
                 user? The log has the remote error output"
            ),
            RemoteError::Failed(failure) => write!(f, "the remote script failed: {failure}"),
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoteError::Command(e) => Some(e),
            RemoteError::Transport(e) => Some(e),
            RemoteError::NoResult { why, .. } => Some(why),
            RemoteError::Failed(_) => None,
        }
    }
}

/// Runs `call`'s script with `data` on the host: exactly one run of one command line (one
/// connection, one PowerShell start). `id` (the invocation's) marks the script's result line.
pub fn run<D: Serialize, R: DeserializeOwned>(
    host: &dyn Transport,
    call: Call<D, R>,
    data: &D,
    deadline: &Deadline,
    id: &str,
) -> Result<R, RemoteError> {
    run_with_progress(host, call, data, deadline, id, &mut Silent)
}

/// [`run`], telling `progress` how far the transport got ([`Transport::run_with_progress`]).
pub fn run_with_progress<D: Serialize, R: DeserializeOwned>(
    host: &dyn Transport,
    call: Call<D, R>,
    data: &D,
    deadline: &Deadline,
    id: &str,
    progress: &mut dyn Progress,
) -> Result<R, RemoteError> {
    let script = call.script().name();
    let line = call.command(data, id).map_err(RemoteError::Command)?;
    log::info!(
        "running script '{script}' on {}@{}:{} over {} ({} characters)",
        host.username(),
        host.host(),
        host.port(),
        host.name(),
        line.as_str().len()
    );
    let output = host
        .run_with_progress(&line, deadline, progress)
        .map_err(|e| {
            log::warn!("script '{script}': {e} (sent: {:?})", e.sent());
            RemoteError::Transport(e)
        })?;
    let stderr = clixml::decode_for_log(&output.stderr, 4000);
    let result = call.read_result(&output.stdout, id);
    match hyperv_protocol::frame::adopted(&output.stdout, id) {
        Some(Ok(())) => log::info!(
            "script '{script}': adopted the VM, which had no ownership line: it now carries the CloudStack mark"
        ),
        Some(Err(e)) => log::warn!(
            "script '{script}': the action succeeded, but the VM found without an ownership line could not be marked ({e}); the next action tries again"
        ),
        None => {}
    }
    match &result {
        Ok(Ok(_)) => log::debug!(
            "script '{script}' succeeded ({}); stderr: {stderr}",
            output.exit
        ),
        Ok(Err(failure)) => log::warn!(
            "script '{script}' failed: {failure} ({}); stderr ({} bytes, {} dropped): {stderr}",
            output.exit,
            output.stderr.len(),
            output.stderr_dropped
        ),
        Err(why) => log::warn!(
            "script '{script}' left no usable result: {why} ({}); stderr ({} bytes, {} \
             dropped): {stderr}",
            output.exit,
            output.stderr.len(),
            output.stderr_dropped
        ),
    }
    match result {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(failure)) => Err(RemoteError::Failed(failure)),
        Err(why) => Err(RemoteError::NoResult {
            why,
            exit: output.exit,
            via: host.name(),
        }),
    }
}
