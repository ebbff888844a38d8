//! What `prepare` reads to hand out a VMID.

use std::path::PathBuf;

use ext_sdk::DetailReader;

use super::{Connection, STATE_DIR, VMID_RANGE};
use crate::allocation::VmidRange;

/// The settings of `prepare`.
#[derive(Debug, Clone)]
pub struct Prepare {
    pub conn: Connection,
    /// The ids it may hand out; the whole id space when `None`.
    pub vmid_range: Option<VmidRange>,
    /// The configured state directory, if any (see [`crate::state::resolve`]).
    pub state_dir: Option<PathBuf>,
}

impl Prepare {
    pub fn read(d: &mut DetailReader<'_>) -> Prepare {
        Prepare {
            conn: Connection::read(d),
            vmid_range: d.optional_with(&VMID_RANGE, str::parse),
            state_dir: d.optional(&STATE_DIR),
        }
    }
}
