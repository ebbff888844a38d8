//! A Hyper-V host for tests, without Windows.
//!
//! `hyperv-testhost --dir DIR` starts a real OpenSSH sshd on loopback whose `ForceCommand` is
//! `hyperv-fake-powershell`: it accepts only the exact `powershell.exe` command line
//! hyperv-ext sends and only hyperv-ext's constant scripts, and applies each to a JSON state
//! file with Hyper-V's semantics (see [`hyperv`]). Tests drive the real `hyperv-ext` binary
//! against it and assert on its answer and on the state afterwards.

pub mod control;
pub mod fake;
pub mod handle;
pub mod host;
pub mod hyperv;
pub mod ops;
pub mod state;
pub mod winpath;
pub mod winrm;

pub use control::Knobs;
pub use handle::TestHost;
pub use host::Info;
pub use state::{State, StateFile};
pub use winrm::{Counters as WinrmCounters, WinrmKnobs};
