//! A hard deadline for blocking libssh2 calls. `Session::set_timeout` bounds each call, not
//! the whole operation (libssh2 retries internally), so a thread shuts the socket down when
//! the deadline passes; every blocked call then fails at once.

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

pub struct Watchdog {
    stop: Option<Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Shuts `socket` down at `until` unless dropped first.
    pub fn arm(socket: TcpStream, until: Instant) -> std::io::Result<Watchdog> {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = std::thread::Builder::new()
            .name("ssh-watchdog".into())
            .spawn(move || {
                let wait = until.saturating_duration_since(Instant::now());
                if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    flag.store(true, Ordering::SeqCst);
                    let _ = socket.shutdown(Shutdown::Both);
                    log::warn!("deadline reached: SSH connection shut down");
                }
            })?;
        Ok(Watchdog {
            stop: Some(stop),
            fired,
            thread: Some(thread),
        })
    }

    /// Whether the deadline passed and the socket was shut down.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
