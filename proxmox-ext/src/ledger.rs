//! The ledger of VMIDs `prepare` handed out recently, shared by every process of one
//! management server through the state directory.
//!
//! Proxmox reserves nothing: `/cluster/nextid` answers the lowest free id until a VM with it
//! exists, and CloudStack runs `prepare` and `create` as separate processes, so concurrent
//! deploys get the same id. Each id handed out is therefore written down here, under an
//! exclusive file lock, and skipped by later `prepare`s until a VM holds it (then Proxmox
//! itself reports it taken) or the entry expires.
//!
//! The lock is held only while the ledger is read and rewritten (no network request under it),
//! so a hung request never blocks other deploys. Files: `vmid-ledger.lock` (the lock, never
//! replaced) and `vmid-ledger` (one `<vmid> <expiry, Unix seconds>` line per id, rewritten
//! through a temporary file and an atomic rename, so a crash never leaves half a ledger).

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ext_sdk::{Deadline, DeadlineExceeded};
use log::warn;

use crate::model::Vmid;

/// How long an id stays reserved after `prepare` handed it out: longer than CloudStack takes
/// from `prepare` to `create` (network preparation, a virtual router to start), short enough
/// that ids of deploys that never came are soon free again.
pub const RESERVATION: Duration = Duration::from_secs(30 * 60);
/// The ledger file in the state directory.
pub const FILE_NAME: &str = "vmid-ledger";
const LOCK_NAME: &str = "vmid-ledger.lock";
/// The ledger and its lock: the management server's user writes them, its group may read
/// them; nobody else, whatever the umask.
const FILE_MODE: u32 = 0o640;
/// Pause between attempts to take a busy lock (holders keep it for microseconds).
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// The ledger could not be used.
#[derive(Debug)]
pub enum LedgerError {
    Io { path: PathBuf, source: io::Error },
    Deadline(DeadlineExceeded),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Io { path, source } => {
                write!(f, "VMID ledger {}: {source}", path.display())
            }
            LedgerError::Deadline(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Display already shows the source's text.
        match self {
            LedgerError::Io { .. } => None,
            LedgerError::Deadline(e) => e.source(),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The ledger, locked for as long as this value lives.
pub struct Ledger {
    path: PathBuf,
    /// Dropping the file releases the lock.
    _lock: File,
    /// id → expiry (Unix seconds) of the live entries.
    entries: Vec<(u32, u64)>,
    now: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Ledger {
    /// Takes the lock (waiting at most until the deadline) and reads the live entries.
    pub fn open(dir: &Path, deadline: &Deadline) -> Result<Ledger, LedgerError> {
        let lock_path = dir.join(LOCK_NAME);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => deadline.sleep(LOCK_RETRY).map_err(|_| {
                    LedgerError::Deadline(deadline.exceeded("waiting for the VMID ledger lock"))
                })?,
                Err(TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
            }
        }
        let path = dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let now = unix_now();
        let mut entries = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut fields = line.split_whitespace();
            match (
                fields.next().and_then(|v| v.parse::<u32>().ok()),
                fields.next().and_then(|e| e.parse::<u64>().ok()),
            ) {
                (Some(vmid), Some(expires)) if expires > now => entries.push((vmid, expires)),
                (Some(_), Some(_)) => {} // expired
                _ => warn!("ignoring a malformed line in {}: {line:?}", path.display()),
            }
        }
        Ok(Ledger {
            path,
            _lock: lock,
            entries,
            now,
        })
    }

    /// The ids handed out and still reserved.
    pub fn reserved(&self) -> BTreeSet<u32> {
        self.entries.iter().map(|&(vmid, _)| vmid).collect()
    }

    /// Writes `vmid` down as handed out (reserved for [`RESERVATION`]); expired entries are
    /// dropped on the way.
    pub fn record(&mut self, vmid: Vmid) -> Result<(), LedgerError> {
        self.entries
            .push((vmid.get(), self.now + RESERVATION.as_secs()));
        let mut text = String::with_capacity(self.entries.len() * 20);
        for (id, expires) in &self.entries {
            let _ = writeln!(text, "{id} {expires}");
        }
        let temp = self
            .path
            .with_file_name(format!("{FILE_NAME}.{}.tmp", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&temp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&temp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(io_error(&self.path))
    }

    /// Where the ledger lives (for messages).
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[test]
    fn entries_persist_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let expired = unix_now() - 1;
        fs::write(
            dir.path().join(FILE_NAME),
            format!("150 {expired}\ngarbage\n\n"),
        )
        .unwrap();
        {
            let mut ledger = Ledger::open(dir.path(), &deadline()).unwrap();
            assert!(
                ledger.reserved().is_empty(),
                "expired and malformed lines are dropped"
            );
            ledger.record(Vmid::new(100).unwrap()).unwrap();
            ledger.record(Vmid::new(101).unwrap()).unwrap();
        }
        let ledger = Ledger::open(dir.path(), &deadline()).unwrap();
        assert_eq!(ledger.reserved(), BTreeSet::from([100, 101]));
        let text = fs::read_to_string(ledger.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn the_lock_is_exclusive_and_bounded_by_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let held = Ledger::open(dir.path(), &deadline()).unwrap();
        let short = Deadline::after(Duration::from_millis(50));
        match Ledger::open(dir.path(), &short) {
            Err(LedgerError::Deadline(_)) => {}
            Err(e) => panic!("expected a deadline error, got {e}"),
            Ok(_) => panic!("a second holder got the lock"),
        }
        drop(held);
        Ledger::open(dir.path(), &short).expect("free again once dropped");
    }
}
