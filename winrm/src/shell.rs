//! One run: create a shell, start one command, receive until it is done, signal terminate,
//! delete the shell. The shell is deleted whatever happened after it was created, within the
//! deadline's reserve.

use std::time::Duration;

use ext_sdk::Deadline;

use crate::error::{Error, ErrorKind, Stage};
use crate::soap::{self, ReplyError, Writer};
use crate::transport::Transport;
use crate::{Auth, Config, Scheme};

/// Most we keep of each stream; the rest is counted and dropped. Results are a few KiB.
const MAX_STDOUT: usize = 1024 * 1024;
const MAX_STDERR: usize = 256 * 1024;
/// A Receive asks the service to answer this long before the deadline, so that its answer
/// (output or the TimedOut fault) arrives while the connection can still delete the shell.
const RECEIVE_MARGIN: Duration = Duration::from_millis(500);
/// Shorter waits are not worth a round trip.
const MIN_RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// How long past its OperationTimeout a Receive's answer may take to arrive.
const RECEIVE_GRACE: Duration = Duration::from_secs(10);
/// The shortest shell idle timeout Windows applies, whatever a client asks for.
const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the command left, and what the run cost.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_dropped: usize,
    pub stderr_dropped: usize,
    /// The command's exit code (as Windows reports it, a DWORD seen as `i32`).
    pub exit_code: i32,
    /// HTTP round trips, authentication included.
    pub round_trips: u32,
    /// TCP+TLS connections opened (1 unless the service closed one).
    pub connections: u32,
    /// Deleting the shell failed after the command had finished (the output is still
    /// valid; the shell stays until the service's idle timeout ends it).
    pub cleanup_error: Option<Error>,
}

fn append(buf: &mut Vec<u8>, dropped: &mut usize, data: Vec<u8>, max: usize) {
    let room = max.saturating_sub(buf.len());
    if data.len() <= room {
        buf.extend(data);
    } else {
        buf.extend_from_slice(&data[..room]);
        *dropped += data.len() - room;
    }
}

fn reply_error(stage: Stage) -> impl Fn(ReplyError) -> Error {
    move |e| match e {
        ReplyError::Fault(f) => Error::new(stage, ErrorKind::Fault(f)),
        ReplyError::Garbage(why) => Error::new(stage, ErrorKind::Protocol(why)),
    }
}

/// Runs `command_line` in a new `cmd` shell on the host: exactly one shell and one command.
///
/// Plain HTTP is refused before connecting (this client does not seal NTLM messages, so the
/// commands and their output would travel in clear), as is a Basic password over it.
pub fn run_command(
    config: &Config,
    command_line: &str,
    deadline: &Deadline,
) -> Result<Output, Error> {
    if config.endpoint.scheme == Scheme::Http {
        return Err(Error::new(
            Stage::Connect,
            ErrorKind::Config(format!(
                "{} is plain HTTP: this client talks to WinRM only over HTTPS (port 5986), \
                 so that neither credentials nor commands travel in clear",
                config.endpoint
            )),
        ));
    }
    if config.username.is_empty() {
        return Err(Error::new(
            Stage::Connect,
            ErrorKind::Config("no username".into()),
        ));
    }
    let url = config.endpoint.url();
    let w = Writer { to: &url };
    let mut t = Transport::new(config);
    let started = std::time::Instant::now();

    let m = w.create_shell(idle_timeout(config, deadline), config.request_timeout);
    let reply = t.call(
        Stage::CreateShell,
        &m.body,
        config.request_timeout,
        deadline,
    )?;
    let shell = soap::shell_id(&reply, &m.id).map_err(reply_error(Stage::CreateShell))?;
    log::debug!(
        "winrm: shell {shell} created on {}",
        config.endpoint.authority()
    );

    let mut command_id = None;
    let mut command_sent = false;
    let result = execute(
        &mut t,
        &w,
        config,
        &shell,
        command_line,
        deadline,
        &mut command_sent,
        &mut command_id,
    );

    // Clean up within the reserve, whatever happened: a finished command still gets its
    // Signal ([MS-WSMV] 3.1.4.14 asks for it), and the shell is always deleted (that also
    // ends a command still running).
    let cleanup = deadline.cleanup();
    if let Some(command) = &command_id {
        let m = w.signal_terminate(&shell, command, config.request_timeout);
        if let Err(e) = t
            .call(Stage::Signal, &m.body, config.request_timeout, &cleanup)
            .and_then(|r| soap::acknowledged(&r, &m.id).map_err(reply_error(Stage::Signal)))
        {
            log::warn!("winrm: signalling the command failed ({e}); deleting the shell anyway");
        }
    }
    let m = w.delete_shell(&shell, config.request_timeout);
    let deleted = t
        .call(
            Stage::DeleteShell,
            &m.body,
            config.request_timeout,
            &cleanup,
        )
        .and_then(|r| soap::acknowledged(&r, &m.id).map_err(reply_error(Stage::DeleteShell)));
    let cleanup_error = match deleted {
        Ok(()) => None,
        Err(e) => {
            log::warn!("winrm: shell {shell} was not deleted: {e}");
            Some(e)
        }
    };
    log::debug!(
        "winrm: run on {} took {} round trips, {} connection(s), {} ms",
        config.endpoint.authority(),
        t.round_trips,
        t.connections,
        started.elapsed().as_millis()
    );
    match result {
        Ok(mut out) => {
            out.round_trips = t.round_trips;
            out.connections = t.connections;
            out.cleanup_error = cleanup_error;
            Ok(out)
        }
        Err(mut e) => {
            e.command_sent = command_sent;
            e.cleanup = cleanup_error.map(Box::new);
            Err(e)
        }
    }
}

/// How long the service keeps the shell once no request touches it (`IdleTimeOut`), so that
/// a shell we could not delete (the Delete failed, or the Create's reply was lost) goes away
/// soon: the longest silence between two of our requests on a live shell (a Receive's wait
/// or another request's limit, plus the grace), but never longer than the action has left,
/// after which nothing will use the shell again; at least Windows' own minimum.
fn idle_timeout(config: &Config, deadline: &Deadline) -> Duration {
    let longest_silence = config.operation_timeout.max(config.request_timeout) + RECEIVE_GRACE;
    longest_silence
        .min(deadline.remaining())
        .max(MIN_IDLE_TIMEOUT)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one run's state, threaded through once; a struct would be used only here"
)]
fn execute(
    t: &mut Transport,
    w: &Writer,
    config: &Config,
    shell: &str,
    command_line: &str,
    deadline: &Deadline,
    command_sent: &mut bool,
    command_id: &mut Option<String>,
) -> Result<Output, Error> {
    let m = w.command(
        shell,
        command_line,
        config.skip_cmd_shell,
        config.request_timeout,
    );
    *command_sent = true;
    let reply = t.call(Stage::Command, &m.body, config.request_timeout, deadline)?;
    let id = soap::command_id(&reply, &m.id).map_err(reply_error(Stage::Command))?;
    *command_id = Some(id.clone());

    let mut out = Output::default();
    loop {
        let wait = config
            .operation_timeout
            .min(deadline.remaining().saturating_sub(RECEIVE_MARGIN));
        if wait < MIN_RECEIVE_WAIT {
            return Err(Error::new(
                Stage::Receive,
                ErrorKind::Deadline(deadline.exceeded(&format!(
                    "waiting for the command's output on {} (WinRM)",
                    config.endpoint.authority()
                ))),
            ));
        }
        let m = w.receive(shell, &id, wait);
        match t.call(Stage::Receive, &m.body, wait + RECEIVE_GRACE, deadline) {
            Ok(reply) => {
                let got =
                    soap::received(&reply, &m.id, &id).map_err(reply_error(Stage::Receive))?;
                append(
                    &mut out.stdout,
                    &mut out.stdout_dropped,
                    got.stdout,
                    MAX_STDOUT,
                );
                append(
                    &mut out.stderr,
                    &mut out.stderr_dropped,
                    got.stderr,
                    MAX_STDERR,
                );
                if let Some(code) = got.done {
                    out.exit_code = code;
                    return Ok(out);
                }
            }
            // No output within OperationTimeout: the expected answer while a command runs.
            Err(Error {
                kind: ErrorKind::Fault(f),
                ..
            }) if f.is_timed_out() => {}
            Err(e) => return Err(e),
        }
    }
}

impl Config {
    /// The method's name for messages.
    pub fn auth_name(&self) -> &'static str {
        match self.auth {
            Auth::Ntlm => "NTLM",
            Auth::Basic => "Basic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_idles_out_soon_after_the_last_request() {
        let config = Config::new(
            crate::Endpoint::parse("hv1").unwrap(),
            Auth::Ntlm,
            "u",
            ext_sdk::Secret::new("p"),
            ext_tls::ClientTls::new(&ext_tls::Trust::Insecure).unwrap(),
        );
        let after = |s| Deadline::for_timeout(std::time::Instant::now(), Duration::from_secs(s));
        // Windows' minimum, which covers our longest silence (30 s + 10 s) with the defaults.
        assert_eq!(idle_timeout(&config, &after(3600)), MIN_IDLE_TIMEOUT);
        let slow = Config {
            request_timeout: Duration::from_secs(120),
            ..config
        };
        assert_eq!(idle_timeout(&slow, &after(3600)), Duration::from_secs(130));
        // Never past what the action has left.
        let left = idle_timeout(&slow, &after(100));
        assert!(
            left > MIN_IDLE_TIMEOUT && left < Duration::from_secs(100),
            "{left:?}"
        );
    }

    #[test]
    fn output_is_capped_and_the_rest_counted() {
        let (mut buf, mut dropped) = (Vec::new(), 0);
        append(&mut buf, &mut dropped, vec![1; 6], 8);
        append(&mut buf, &mut dropped, vec![2; 6], 8);
        append(&mut buf, &mut dropped, vec![3; 2], 8);
        assert_eq!(buf.len(), 8);
        assert_eq!(dropped, 6);
    }
}
