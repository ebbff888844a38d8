//! Shared support for the end-to-end tests: locating the real binaries, running them the way
//! CloudStack does, checking every run against the output contract, and payload fixtures.

pub mod hyperv;
pub mod logs;
pub mod proxmox;
pub mod pve;
pub mod winrm;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A workspace binary built in the same profile as the running test (`target/<profile>/<name>`).
///
/// Binaries of other packages are not built for this package's tests by `cargo test -p e2e`;
/// build them first (`cargo build --release --workspace`), as `scripts/test.sh` does.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (cargo build --release --workspace)",
        path.display()
    );
    path
}

/// A scratch directory for one test, removed at the end.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("csext-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `payload` as compact JSON, like CloudStack (one line, no trailing newline).
    pub fn payload(&self, name: &str, payload: &Value) -> PathBuf {
        self.write(
            name,
            serde_json::to_string(payload).expect("json").as_bytes(),
        )
    }

    /// Writes raw bytes to a file in the scratch directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }

    /// The log file the runs of this test write to (`CLOUDSTACK_EXT_LOG`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("extension.log")
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// One finished run of an extension binary.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: Vec<u8>,
    pub code: Option<i32>,
    pub elapsed: Duration,
}

impl Run {
    /// The one JSON document on stdout, after checking the output contract: nothing on stderr,
    /// ASCII only, exactly one line with a trailing newline, a JSON object under 60 KiB, and
    /// an exit code that agrees with `status`.
    pub fn json(&self) -> Value {
        assert!(
            self.stderr.is_empty(),
            "stderr must stay empty, got: {}",
            String::from_utf8_lossy(&self.stderr)
        );
        assert!(
            self.stdout.is_ascii(),
            "stdout must be ASCII: {}",
            self.stdout
        );
        assert!(
            self.stdout.ends_with('\n'),
            "stdout must end with a newline: {:?}",
            self.stdout
        );
        assert_eq!(
            self.stdout.matches('\n').count(),
            1,
            "stdout must be exactly one line: {:?}",
            self.stdout
        );
        assert!(self.stdout.len() <= 60 * 1024, "stdout over 60 KiB");
        let doc: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout));
        assert!(doc.is_object(), "stdout must be a JSON object: {doc}");
        let is_error = doc.get("status").and_then(Value::as_str) == Some("error");
        match self.code {
            Some(0) => assert!(!is_error, "exit 0 with an error document: {doc}"),
            Some(1 | 2) => {
                assert!(is_error, "failure exit without an error document: {doc}");
                assert!(
                    doc["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "error document without a message: {doc}"
                );
            }
            other => panic!("unexpected exit status {other:?}: {doc}"),
        }
        doc
    }

    /// The document of a successful run.
    pub fn success(&self) -> Value {
        let doc = self.json();
        assert_eq!(self.code, Some(0), "expected success, got {doc}");
        doc
    }

    /// The error message of a failed run with exit code `code`.
    pub fn failure(&self, code: i32) -> String {
        let doc = self.json();
        assert_eq!(self.code, Some(code), "expected exit {code}, got {doc}");
        doc["error"].as_str().unwrap_or_default().to_owned()
    }

    /// [`Run::failure`] of a run that answered within `limit` (CloudStack kills at argv\[3\]).
    pub fn failure_within(&self, code: i32, limit: Duration) -> String {
        let err = self.failure(code);
        assert!(self.elapsed < limit, "answered after {:?}", self.elapsed);
        err
    }
}

/// How to run a binary.
pub struct Invoke<'a> {
    binary: PathBuf,
    args: Vec<&'a OsStr>,
    env: Vec<(&'a str, &'a OsStr)>,
    limit: Duration,
    rust_log: Option<&'a str>,
    umask: Option<u32>,
}

impl<'a> Invoke<'a> {
    /// Runs `binary` with `args` (argv\[1..\]).
    pub fn new(binary: impl Into<PathBuf>, args: &[&'a OsStr]) -> Invoke<'a> {
        Invoke {
            binary: binary.into(),
            args: args.to_vec(),
            env: Vec::new(),
            limit: Duration::from_secs(180),
            rust_log: None,
            umask: None,
        }
    }

    /// The `RUST_LOG` filter of the run unless the suite runs with its own `RUST_LOG` (as
    /// scripts/test.sh does, at `trace`) or the test sets one with [`Invoke::env`].
    pub fn rust_log(mut self, filter: &'a str) -> Self {
        self.rust_log = Some(filter);
        self
    }

    /// Runs the binary with this umask (e.g. `0o000`, to prove its files get explicit modes).
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &'a str, value: &'a OsStr) -> Self {
        self.env.push((key, value));
        self
    }

    /// Kills the process after `limit` (a test failure, never expected).
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Runs it like CloudStack: no shell, stdin a pipe that is never written nor closed, and
    /// stdout and stderr captured separately (CloudStack merges them; keeping them apart lets
    /// the tests prove stderr stays empty).
    pub fn run(self) -> Run {
        let started = Instant::now();
        let mut command = Command::new(&self.binary);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        let suite_filter = std::env::var("RUST_LOG")
            .ok()
            .filter(|f| !f.trim().is_empty());
        if let Some(filter) = suite_filter.as_deref().or(self.rust_log) {
            command.env("RUST_LOG", filter);
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if let Some(mask) = self.umask {
            use std::os::unix::process::CommandExt;
            let mask = mask as libc::mode_t;
            #[expect(
                unsafe_code,
                reason = "std has no umask for a child; pre_exec is the only way to set one"
            )]
            // SAFETY: umask(2) is async-signal-safe and touches nothing but the child's mask.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        // Held open (never written) until the child exits, as CloudStack does.
        let _stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > self.limit {
                let _ = child.kill();
                panic!(
                    "{} did not exit within {:?}",
                    self.binary.display(),
                    self.limit
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = started.elapsed();
        let stdout = out_reader.join().expect("stdout reader");
        let stderr = err_reader.join().expect("stderr reader");
        self.collect(&stdout);
        Run {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
            code: status.code(),
            elapsed,
        }
    }
}

impl Invoke<'_> {
    /// With `E2E_LOG_DIR` set: keep the run's log and note the secrets it was given and answered
    /// (see [`logs`]).
    fn collect(&self, stdout: &[u8]) {
        if logs::dir().is_none() {
            return;
        }
        for arg in &self.args {
            logs::note_payload_file(Path::new(arg));
        }
        if let Ok(doc) = serde_json::from_slice::<Value>(stdout) {
            logs::note_json(&doc);
        }
        if let Some((_, log)) = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| *k == "CLOUDSTACK_EXT_LOG")
        {
            logs::keep_log(Path::new(log));
        }
    }
}

/// Runs `binary action payload timeout` with the log going to the scratch directory.
pub fn run_action(
    binary: &Path,
    scratch: &Scratch,
    action: &str,
    payload: &Path,
    timeout: &str,
) -> Run {
    let log = scratch.log_path();
    Invoke::new(
        binary,
        &[action.as_ref(), payload.as_os_str(), timeout.as_ref()],
    )
    .env("CLOUDSTACK_EXT_LOG", log.as_os_str())
    .run()
}

/// A payload fixture from `tests/fixtures/payloads/<name>.json`.
pub fn fixture(name: &str) -> Value {
    let path = repo_root()
        .join("tests/fixtures/payloads")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Sets `value` at a JSON pointer, creating objects on the way (`/externaldetails/host/url`).
pub fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut cur = doc;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::default());
        }
        cur = cur
            .as_object_mut()
            .expect("object")
            .entry(part)
            .or_insert(Value::Null);
    }
    *cur = value;
}

/// Removes the value at a JSON pointer, if present.
pub fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(obj) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
        obj.remove(&key.replace("~1", "/").replace("~0", "~"));
    }
}

/// A TCP port on `host` that nothing listens on (one the system just gave out and took back),
/// for tests of a refused connection.
pub fn closed_port(host: &str) -> u16 {
    let listener = std::net::TcpListener::bind((host, 0)).expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Polls `condition` until it holds or `limit` passes (generous: CI machines are loaded);
/// returns whether it held.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
