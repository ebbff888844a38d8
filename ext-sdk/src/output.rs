//! The one document on stdout, and keeping everything else off stdout and stderr.
//!
//! CloudStack merges stderr into stdout and parses the result, so a stray line from any library
//! breaks `status`, `prepare` and `getconsole`. At start-up the runner therefore moves the real
//! stdout to a private descriptor and points descriptors 0, 1 and 2 at `/dev/null` (stderr
//! later at the log file). The result is written through `emit` exactly once: by the runner,
//! or by the deadline watchdog, whichever comes first.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

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
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, AsciiFormatter(CompactFormatter));
    // Serialising a `Value` into memory cannot fail.
    let _ = value.serialize(&mut ser);
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

#[cfg(unix)]
fn null_fd() -> Option<std::os::fd::OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
        .map(Into::into)
}

/// Moves the real stdout aside and points stdin, stdout and stderr at `/dev/null`.
pub(crate) fn protect_stdio() {
    let mut guard = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.is_some() {
        return;
    }
    *guard = Some(Channel::Inherited);
    #[cfg(unix)]
    {
        use std::os::fd::{AsRawFd, FromRawFd};
        let Some(null) = null_fd() else { return };
        // SAFETY: plain descriptor duplication on descriptors this process owns; the duplicate
        // is wrapped in a File that owns it from here on.
        unsafe {
            let saved = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
            if saved < 0 {
                return;
            }
            *guard = Some(Channel::Saved(File::from_raw_fd(saved)));
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// Sends whatever still reaches descriptor 2 (a C library's warning, say) to the log file.
pub(crate) fn redirect_stderr(to: &File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: duplicating a descriptor owned by `to` onto 2.
        unsafe {
            libc::dup2(to.as_raw_fd(), 2);
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
        Channel::Saved(mut f) => f.write_all(text.as_bytes()).and_then(|_| f.flush()),
        Channel::Inherited => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush())
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
