//! The one document on stdout, and keeping everything else off stdout and stderr.
//!
//! CloudStack merges stderr into stdout and parses the result, so a stray line from any library
//! breaks `status`, `prepare` and `getconsole`. At start-up the runner therefore moves the real
//! stdout to a private descriptor and points descriptors 0, 1 and 2 at `/dev/null` (stderr
//! later at the log file). The result is written through `emit` exactly once: by the runner,
//! or by the deadline watchdog, whichever comes first.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};
use serde_json::{Map, Value};

/// The largest document written: CloudStack reads stdout only after the process exits, so a
/// document larger than the 64 KiB pipe buffer would block the process until it is killed.
pub const MAX_OUTPUT_BYTES: usize = 60 * 1024;

/// JSON formatter that escapes every non-ASCII character as `\uXXXX` (UTF-16 units), because
/// the JVM reading stdout may not decode UTF-8.
struct AsciiFormatter(CompactFormatter);

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut ascii_start = 0;
        for (i, ch) in fragment.char_indices() {
            if ch.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[ascii_start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            ascii_start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[ascii_start..])
    }
}

/// Serialises `value` as compact, ASCII-only JSON.
pub fn to_ascii_json(value: &Value) -> String {
    ascii_json(value)
}

/// [`to_ascii_json`] of `Value::Object(map)`, without building (or copying into) it.
pub(crate) fn map_to_ascii_json(map: &Map<String, Value>) -> String {
    ascii_json(map)
}

fn ascii_json<T: Serialize + ?Sized>(document: &T) -> String {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, AsciiFormatter(CompactFormatter));
    // Serialising a JSON document (string keys only) into memory cannot fail.
    let _ = document.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// The saved real stdout, `None` once the document has been written.
static STDOUT: Mutex<Option<Channel>> = Mutex::new(None);

enum Channel {
    /// The original descriptor 1, moved aside.
    Saved(File),
    /// Descriptors could not be rearranged; write to the process's stdout.
    Inherited,
}

/// Why the standard descriptors could not be moved out of the way. The runner then refuses
/// to run the action: a library's stray line could reach CloudStack beside the answer (or a
/// library could read CloudStack's stdin pipe), and nothing has been done yet.
#[derive(Debug)]
pub(crate) struct StdioError {
    /// What failed, e.g. "pointing descriptor 1 at /dev/null".
    pub what: String,
    pub error: io::Error,
}

impl fmt::Display for StdioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot keep stray output away from the answer: {} failed ({}); refusing to run the action, nothing was changed",
            self.what, self.error
        )
    }
}

/// The descriptor operations [`protect_stdio`] needs, so that their failures can be tested.
trait Descriptors {
    /// A private duplicate of descriptor 1 (close-on-exec, numbered 3 or above).
    fn save_stdout(&mut self) -> io::Result<File>;
    /// Points descriptor `fd` (0, 1 or 2) at `/dev/null`.
    fn point_at_null(&mut self, fd: i32) -> io::Result<()>;
}

/// The process's real descriptors.
#[cfg(unix)]
struct System {
    null: Option<File>,
}

#[cfg(unix)]
impl Descriptors for System {
    fn save_stdout(&mut self) -> io::Result<File> {
        use std::os::fd::AsFd;
        // F_DUPFD_CLOEXEC from 3 up: never one of 0, 1, 2.
        Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
    }

    fn point_at_null(&mut self, fd: i32) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let null = match &self.null {
            Some(null) => null,
            None => self.null.insert(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")?,
            ),
        };
        dup2(null.as_raw_fd(), fd)
    }
}

/// `dup2(from, onto)`, repeated while the kernel says "interrupted" or "busy" (a race with
/// another thread's `open`, which the man page allows for).
#[cfg(unix)]
fn dup2(from: i32, onto: i32) -> io::Result<()> {
    for _ in 0..100 {
        #[expect(
            unsafe_code,
            reason = "std has no dup2; this is the one place it is called"
        )]
        // SAFETY: dup2 only reads its two integer arguments; `from` is a descriptor the
        // caller keeps open, and `onto` is one of the standard descriptors, which no Rust
        // object owns (std's stdio handles write to the number, whatever it points at).
        let done = unsafe { libc::dup2(from, onto) };
        if done >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if !matches!(error.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) {
            return Err(error);
        }
    }
    Err(io::Error::last_os_error())
}

/// Moves the real stdout aside into the channel, then points 0, 1 and 2 at `/dev/null`.
fn protect(fds: &mut impl Descriptors) -> (Channel, Result<(), StdioError>) {
    let saved = match fds.save_stdout() {
        Ok(file) => file,
        Err(error) => {
            let what = "moving descriptor 1 (stdout) aside".to_owned();
            return (Channel::Inherited, Err(StdioError { what, error }));
        }
    };
    for (fd, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        if let Err(error) = fds.point_at_null(fd) {
            let what = format!("pointing descriptor {fd} ({name}) at /dev/null");
            return (Channel::Saved(saved), Err(StdioError { what, error }));
        }
    }
    (Channel::Saved(saved), Ok(()))
}

/// Moves the real stdout aside and points stdin, stdout and stderr at `/dev/null`. On an
/// error the answer can still be written: through the saved stdout, or the inherited one
/// when even saving it failed.
pub(crate) fn protect_stdio() -> Result<(), StdioError> {
    let mut guard = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_some() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        let (channel, result) = protect(&mut System { null: None });
        *guard = Some(channel);
        result
    }
    #[cfg(not(unix))]
    {
        *guard = Some(Channel::Inherited);
        Ok(())
    }
}

/// Sends whatever still reaches descriptor 2 (a C library's warning, say) to the log file.
/// When that fails, descriptor 2 stays on `/dev/null`: nothing is lost but such warnings.
pub(crate) fn redirect_stderr(to: &File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        if let Err(e) = dup2(to.as_raw_fd(), 2) {
            log::warn!("stray stderr output cannot go to the log ({e}); it is discarded");
        }
    }
    #[cfg(not(unix))]
    let _ = to;
}

/// Writes `line` and a newline to the real stdout, once per process. Returns `false` if a
/// document was already written (the watchdog and the runner race at the deadline).
pub(crate) fn emit(line: &str) -> bool {
    let mut guard = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(channel) = guard.take() else {
        // Either already emitted, or protect_stdio never ran (library use in tests).
        return false;
    };
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = match channel {
        Channel::Saved(mut f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
        Channel::Inherited => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    };
    true
}

/// Writes text meant for a person (`--help`, `--version`) to the real stdout.
pub(crate) fn emit_human(text: &str) {
    emit(text.trim_end_matches('\n'));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Descriptors that fail at a chosen step, recording what was done.
    struct Failing {
        save: bool,
        fail_fd: Option<i32>,
        pointed: Vec<i32>,
    }

    impl Descriptors for Failing {
        fn save_stdout(&mut self) -> io::Result<File> {
            if self.save {
                tempfile::tempfile()
            } else {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            }
        }

        fn point_at_null(&mut self, fd: i32) -> io::Result<()> {
            if self.fail_fd == Some(fd) {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            self.pointed.push(fd);
            Ok(())
        }
    }

    fn failing(save: bool, fail_fd: Option<i32>) -> Failing {
        Failing {
            save,
            fail_fd,
            pointed: Vec::new(),
        }
    }

    #[test]
    fn every_descriptor_failure_is_reported_with_a_way_to_answer() {
        let mut fds = failing(true, None);
        let (channel, result) = protect(&mut fds);
        assert!(matches!(channel, Channel::Saved(_)) && result.is_ok());
        assert_eq!(fds.pointed, [0, 1, 2]);

        let mut fds = failing(true, Some(1));
        let (channel, result) = protect(&mut fds);
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("pointing descriptor 1 (stdout) at /dev/null failed"),
            "{text}"
        );
        assert!(text.contains("nothing was changed"), "{text}");
        assert!(
            matches!(channel, Channel::Saved(_)),
            "the answer still goes to the real stdout"
        );
        assert_eq!(fds.pointed, [0], "nothing after the failure");

        let mut fds = failing(false, None);
        let (channel, result) = protect(&mut fds);
        assert!(matches!(channel, Channel::Inherited));
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("moving descriptor 1 (stdout) aside failed")
        );
        assert!(fds.pointed.is_empty());
    }

    #[test]
    fn non_ascii_is_escaped_as_utf16() {
        let v = json!({"msg": "é 😀 \u{2019} \"q\" \n", "ключ": 1});
        let text = to_ascii_json(&v);
        assert!(text.is_ascii(), "{text}");
        assert!(
            text.contains("\\u00e9 \\ud83d\\ude00 \\u2019 \\\"q\\\" \\n"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }
}
