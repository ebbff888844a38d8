//! The protocol between `hyperv-ext` and a Hyper-V host, shared with the test host.
//!
//! Every action runs one constant PowerShell script ([`Script`], composed from `scripts/`)
//! through one `powershell.exe ... -EncodedCommand <base64>` command line ([`command`]), with
//! user and operator data only in a base64 JSON blob inside it ([`data`]). The script answers
//! with one framed result line on stdout ([`frame`]): its answer ([`reply`]) or a
//! [`Failure`]. [`call`] pairs each script with the types of its data and answer.
//!
//! This crate depends on no transport (SSH, WinRM) and no CloudStack code, so the test host
//! can speak the protocol without linking the product (as Cargo's `cargo-test-support`
//! depends on the shared crates, not on `cargo`).

#![forbid(unsafe_code)]

pub mod call;
pub mod command;
pub mod data;
mod failure;
pub mod frame;
pub mod reply;
mod script;
#[cfg(feature = "test-support")]
mod test_support;

pub use call::{Call, CommandError};
pub use command::{
    COMMAND_PREFIX, CommandLine, CommandTooLong, MAX_COMMAND_LINE, command_line, encode_command,
};
pub use failure::Failure;
pub use frame::ReplyError;
pub use script::Script;
#[cfg(feature = "test-support")]
pub use test_support::decode_command;
