//! One remote operation: the script for it, over one SSH connection, and its parsed result.

use ext_sdk::Deadline;
use hyperv_protocol::{Call, CommandError, Failure, ReplyError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clixml;
use crate::ssh::{self, Exit, SshError, Target};

#[derive(Debug)]
pub enum RemoteError {
    /// The command line could not be built; nothing was sent.
    Command(CommandError),
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
            RemoteError::Command(e) => e.fmt(f),
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
            RemoteError::Command(e) => Some(e),
            RemoteError::Ssh(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs `call`'s script with `data` on the host: exactly one connection and one PowerShell
/// start. `id` (the invocation's) marks the script's result line.
pub fn run<D: Serialize, R: DeserializeOwned>(
    target: &Target,
    call: Call<D, R>,
    data: &D,
    deadline: &Deadline,
    id: &str,
) -> Result<R, RemoteError> {
    let script = call.script().name();
    let line = call.command(data, id).map_err(RemoteError::Command)?;
    log::info!(
        "running script '{script}' on {}@{}:{} ({} characters)",
        target.username,
        target.host,
        target.port,
        line.as_str().len()
    );
    let output = ssh::run_command(target, line.as_str(), deadline).map_err(RemoteError::Ssh)?;
    let stderr = clixml::decode_for_log(&output.stderr, 4000);
    let result = call.read_result(&output.stdout, id);
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
        }),
    }
}
