//! Proxmox task ids (UPIDs).
//!
//! `UPID:{node}:{pid:08X}:{pstart:08X|9 hex}:{starttime:08X}:{type}:{id}:{user}:` (pve-common
//! `PVE/UPID.pm`). The node in the UPID is where the task runs, and so where its status must
//! be polled.

use std::fmt;
use std::str::FromStr;

/// A parsed UPID; [`fmt::Display`] gives back the exact text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    /// The task type, e.g. `qmclone`, `qmstart`.
    pub worker_type: String,
    /// The task's object, usually a VMID (for a clone: the source VM).
    pub worker_id: String,
    /// Who started it: `user@realm` or `user@realm!tokenid`.
    pub auth_id: String,
    text: String,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpidError(pub String);

impl fmt::Display for UpidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Proxmox task id (UPID): {:?}", self.0)
    }
}

impl std::error::Error for UpidError {}

fn is_node_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn hex(s: &str, widths: &[usize]) -> Option<u64> {
    (widths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

fn is_field(s: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !s.is_empty()) && !s.bytes().any(|b| b == b'/' || b.is_ascii_whitespace())
}

impl FromStr for Upid {
    type Err = UpidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || UpidError(text.to_string());
        let parts: Vec<&str> = text.split(':').collect();
        let [
            "UPID",
            node,
            pid,
            pstart,
            starttime,
            worker_type,
            worker_id,
            auth_id,
            "",
        ] = parts.as_slice()
        else {
            return Err(bad());
        };
        if !is_node_name(node)
            || !is_field(worker_type, false)
            || !is_field(worker_id, true)
            || !is_field(auth_id, false)
        {
            return Err(bad());
        }
        Ok(Upid {
            node: node.to_string(),
            pid: hex(pid, &[8])
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(bad)?,
            pstart: hex(pstart, &[8, 9]).ok_or_else(bad)?,
            starttime: hex(starttime, &[8]).ok_or_else(bad)?,
            worker_type: worker_type.to_string(),
            worker_id: worker_id.to_string(),
            auth_id: auth_id.to_string(),
            text: text.to_string(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let text = "UPID:pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam!cs:";
        let upid: Upid = text.parse().unwrap();
        assert_eq!(upid.node, "pve1");
        assert_eq!(upid.pid, 0x3E9);
        assert_eq!(upid.pstart, 0x1B5F);
        assert_eq!(upid.starttime, 0x6B01_28C0);
        assert_eq!(upid.worker_type, "qmclone");
        assert_eq!(upid.worker_id, "9000");
        assert_eq!(upid.auth_id, "root@pam!cs");
        assert_eq!(upid.to_string(), text);
    }

    #[test]
    fn accepts_long_pstart_and_empty_id() {
        let upid: Upid = "UPID:node-2:0000ABCD:1000000AB:6B0128C0:vzdump::root@pam:"
            .parse()
            .unwrap();
        assert_eq!(upid.pstart, 0x0001_0000_00AB);
        assert_eq!(upid.worker_id, "");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "UPID:pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam!cs", // no trailing ':'
            "UPID:pve1:3E9:00001B5F:6B0128C0:qmclone:9000:root@pam:",
            "UPID:-pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam:",
            "UPID:pve1:000003E9:00001B5F:6B0128C0::9000:root@pam:",
            "UPID:pve1:000003E9:00001B5F:6B0128C0:qm clone:9000:root@pam:",
            "UPID:pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam::",
            "TASK:pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam:",
            "null",
        ] {
            assert!(bad.parse::<Upid>().is_err(), "{bad:?} parsed");
        }
    }
}
