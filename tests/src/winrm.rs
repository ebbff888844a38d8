//! Support for the WinRM tests: a command line the test host's fake PowerShell accepts, and
//! the order of what the WinRM peer did.

use hyperv_protocol::call::STATUS;
use hyperv_protocol::data::{NoFields, VmData};
use hyperv_testhost::WinrmCounters;

use crate::hyperv::{UUID, VM};

/// hyperv-ext's `status` command line for the test VM, its result framed with `id`.
pub fn status_line(id: &str) -> String {
    let data = VmData {
        name: VM.into(),
        uuid: UUID.into(),
        adopt: false,
        fields: NoFields {},
    };
    STATUS
        .command(&data, id)
        .expect("a status command line")
        .as_str()
        .to_owned()
}

/// The peer's operations in order, without the Receives that timed out (how many there are
/// depends on the machine's speed).
pub fn ops(c: &WinrmCounters) -> Vec<&str> {
    c.events
        .iter()
        .map(|e| e["op"].as_str().unwrap_or("?"))
        .filter(|op| *op != "receive_timed_out")
        .collect()
}

/// What every complete run leaves on the peer: one authenticated connection, one shell
/// created and deleted, one command, one signal.
pub fn assert_one_clean_run(c: &WinrmCounters) {
    assert_eq!(
        (
            c.connections,
            c.ntlm_negotiates,
            c.ntlm_authenticated,
            c.auth_failures
        ),
        (1, 1, 1, 0),
        "{c:?}"
    );
    assert_eq!(
        (c.shells_created, c.commands, c.signals, c.shells_deleted),
        (1, 1, 1, 1),
        "{c:?}"
    );
    assert!(c.open_shells.is_empty(), "{c:?}");
    assert_eq!(
        ops(c),
        [
            "authenticated",
            "create",
            "command",
            "done",
            "signal",
            "delete"
        ]
    );
}
