//! Every log of the suite, and every secret value the suite used, in one place for a final scan.
//!
//! When `E2E_LOG_DIR` is set (scripts/test.sh sets it, together with `RUST_LOG=trace`), each run
//! of an extension binary leaves behind:
//! - `logs/<its log path, flattened>`: a copy of its log file after it exited (runs of one test
//!   share a log file, so the last copy holds all of them);
//! - `secrets/<test process id>.txt`: the secret values it was given or answered (the values of
//!   secret-named keys of the payload and of its answer; key files named by `private_key` are
//!   read, one line of key material per entry), one per line.
//!
//! The harnesses add what only they know (the fakepve harness: console tickets it issued).
//! `tests/scan_logs.py` then searches every log for every secret, also inside the hex dumps a
//! library may write of raw traffic, where a value is split over two lines.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

/// The variable naming the collection directory.
pub const ENV: &str = "E2E_LOG_DIR";

/// Secret values shorter than this are not collected: they cannot be found by value without
/// false matches (ext-sdk masks them by key only).
const MIN_LEN: usize = 8;

static NOTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The collection directory, when the suite runs with one.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Keeps a copy of the log file `log` (when there is a collection directory and the file exists).
pub fn keep_log(log: &Path) {
    let Some(dir) = dir() else { return };
    let Ok(text) = std::fs::read(log) else { return };
    let name: String = log
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let logs = dir.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    let _ = std::fs::write(logs.join(name), text);
}

/// Notes the secret values inside a JSON document (a payload or an answer).
pub fn note_json(doc: &Value) {
    let mut found = Vec::new();
    collect(doc, false, &mut found);
    note(found);
}

/// Notes the secret values of a payload file, if `path` is one.
pub fn note_payload_file(path: &Path) {
    if dir().is_none() || path.extension().is_none_or(|e| e != "json") {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    if let Ok(doc) = serde_json::from_str::<Value>(&text) {
        note_json(&doc);
    }
}

/// Notes secret values directly (e.g. a test host's password).
pub fn note(values: impl IntoIterator<Item = String>) {
    let Some(dir) = dir() else { return };
    let mut noted = NOTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut new = String::new();
    for value in values {
        for piece in pieces(&value) {
            if noted.insert(piece.clone()) {
                new.push_str(&piece);
                new.push('\n');
            }
        }
    }
    if new.is_empty() {
        return;
    }
    let secrets = dir.join("secrets");
    let _ = std::fs::create_dir_all(&secrets);
    let file = secrets.join(format!("{}.txt", std::process::id()));
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(new.as_bytes());
    }
}

fn collect(value: &Value, secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, secret || ext_sdk::redact::is_secret_key(k), out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, secret, out)),
        Value::String(s) if secret => {
            out.push(s.clone());
            // A private key given as a file name: the file's contents are the secret.
            if !s.contains('\n')
                && Path::new(s).is_file()
                && let Ok(text) = std::fs::read_to_string(s)
            {
                out.push(text);
            }
        }
        _ => {}
    }
}

/// What to search for: the value itself, or for multi-line values (keys) each line of material.
fn pieces(value: &str) -> Vec<String> {
    let value = value.trim();
    let lines: Vec<&str> = value
        .split(['\n', '\r'])
        .flat_map(|l| l.split("\\n"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let candidates = if lines.len() > 1 { lines } else { vec![value] };
    candidates
        .into_iter()
        .filter(|p| p.chars().count() >= MIN_LEN)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_searched_line_by_line() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(pieces(pem), ["b3BlbnNzaC1rZXktdjEAAAAA", "QyNTUxOQAAACB"]);
        assert_eq!(pieces(&pem.replace('\n', "\\n")).len(), 2);
        assert_eq!(pieces("s3cret-1234"), ["s3cret-1234"]);
        assert!(pieces("short").is_empty());
        let mut found = Vec::new();
        collect(
            &serde_json::json!({"host": {"secret": "s3cret-1234", "url": "https://x"},
                                "console": {"password": "PVEVNC:abc"}, "name": "i-2-VM"}),
            false,
            &mut found,
        );
        assert_eq!(found, ["s3cret-1234", "PVEVNC:abc"]);
    }
}
