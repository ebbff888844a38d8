//! For tests: a `hyperv-testhost` process, its info line, and access to its state.
//!
//! A test fixture: where the host cannot be started, read or changed, it panics (with what
//! failed), since a test cannot go on without its peer and a panic is a failed test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::control::Knobs;
use crate::host::Info;
use crate::state::{State, StateFile};

/// A running `hyperv-testhost --dir <dir>`; terminated (sshd with it) on drop.
pub struct TestHost {
    pub info: Info,
    child: Child,
}

impl TestHost {
    /// Starts `binary` (the `hyperv-testhost` executable) on `dir` and waits for its line.
    pub fn start(binary: &Path, dir: &Path) -> TestHost {
        let mut child = Command::new(binary)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("hyperv-testhost printed nothing within 30 s");
        };
        let info: Info = match serde_json::from_str(&line) {
            Ok(info) => info,
            Err(e) => {
                let status = child.wait().ok();
                panic!("hyperv-testhost did not start ({status:?}): {e}: {line:?}");
            }
        };
        TestHost { info, child }
    }

    pub fn state_file(&self) -> StateFile {
        StateFile::new(&self.info.state)
    }

    /// A consistent copy of the host's state.
    pub fn state(&self) -> State {
        self.state_file()
            .read()
            .expect("read the test host's state")
    }

    /// Changes the state (seeding VMs, breaking things), under the same lock the fake uses.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.state_file()
            .update(f)
            .expect("update the test host's state")
    }

    /// Sets the fault knobs (all of them; `Knobs::default()` for normal behaviour).
    pub fn knobs(&self, knobs: &Knobs) {
        knobs
            .save(Path::new(&self.info.control))
            .expect("write the control file");
    }

    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(&self.info.sshd_log).unwrap_or_default()
    }

    /// TCP connections sshd has accepted so far.
    pub fn connections(&self) -> usize {
        self.sshd_log().matches("Connection from 127.0.0.1").count()
    }

    /// Where a Windows path of this host lives on the local disk.
    pub fn local(&self, windows_path: &str) -> PathBuf {
        crate::winpath::WinPath::parse(windows_path)
            .expect("a valid Windows path")
            .local(Path::new(&self.info.fs_root))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // A pid always fits pid_t (Linux caps it far below i32::MAX).
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            #[expect(
                unsafe_code,
                reason = "std's Child::kill sends only SIGKILL; SIGTERM lets it stop sshd"
            )]
            // SAFETY: kill(2) only takes a pid and a signal number; the pid is our own child,
            // not yet reaped, so it cannot belong to another process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        for _ in 0..250 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
