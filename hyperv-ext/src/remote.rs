//! One remote operation: the script for it, over one SSH connection, and its parsed result.

use ext_sdk::Deadline;
use serde::Serialize;

use hyperv_protocol::{self as protocol, CommandTooLong, Failure, Reply, ReplyError, Script};

use crate::clixml;
use crate::ssh::{self, Exit, SshError, Target};

#[derive(Debug)]
pub enum RemoteError {
    TooLong(CommandTooLong),
    Ssh(SshError),
    /// PowerShell ran (or not) but left no usable result line.
    NoResult {
        why: ReplyError,
        exit: Exit,
    },
    /// The script reported a failure.
    Failed(Failure),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::TooLong(e) => e.fmt(f),
            RemoteError::Ssh(e) => e.fmt(f),
            RemoteError::NoResult { why, exit } => write!(
                f,
                "{why} ({exit}); is powershell.exe with the Hyper-V module available to the SSH \
                 user? The log has the remote error output"
            ),
            RemoteError::Failed(failure) => write!(f, "the remote script failed: {failure}"),
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoteError::Ssh(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs `script` with `data` on the host: exactly one connection and one PowerShell start.
/// `id` (the invocation's) marks the script's result line.
pub fn run<T: Serialize>(
    target: &Target,
    script: Script,
    data: &T,
    deadline: &Deadline,
    id: &str,
) -> Result<Reply, RemoteError> {
    let text = script
        .render(data, id)
        .expect("script data is a JSON object");
    let line = protocol::command_line(script, &text).map_err(RemoteError::TooLong)?;
    log::info!(
        "running script '{}' on {}@{}:{} ({} characters)",
        script.name(),
        target.username,
        target.host,
        target.port,
        line.len()
    );
    let output = ssh::run_command(target, &line, deadline).map_err(RemoteError::Ssh)?;
    let stderr = clixml::decode_for_log(&output.stderr, 4000);
    let result = protocol::parse_reply(&output.stdout, id);
    match &result {
        Ok(Ok(_)) => log::debug!(
            "script '{}' succeeded ({}); stderr: {stderr}",
            script.name(),
            output.exit
        ),
        _ => log::warn!(
            "script '{}' did not succeed ({}); stderr ({} bytes, {} dropped): {stderr}",
            script.name(),
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
        }),
    }
}
