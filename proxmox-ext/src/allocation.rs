//! Choosing the VMID `prepare` hands out, so that concurrent deploys never share one.
//!
//! 1. The lowest id worth trying: the start of `vmid_range` when set, else what
//!    `/cluster/nextid` answers (it honours the datacenter's `next-id` bounds).
//! 2. The ids the cluster already uses (`/cluster/resources?type=vm`, VMs and containers).
//! 3. Under the ledger's lock: the lowest id from there that is neither used nor handed out
//!    recently by this management server; it is written down before the lock is released.
//! 4. Proxmox confirms the id is free (`/cluster/nextid?vmid=N`); when it is not (a VM the
//!    token cannot see, or another management server's deploy), the next candidate is tried.
//!
//! The ledger covers one management server (every process that shares the state directory).
//! Several management servers, or zones, deploying into one Proxmox cluster each get their
//! own part of the id space with `vmid_range`; a deploy that still finds its id taken fails
//! in `create` without deleting anything.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use log::{debug, info};

use crate::api::Client;
use crate::api::params::NextId;
use crate::error::Error;
use crate::ledger::{self, Ledger, LedgerError};
use crate::model::Vmid;

/// Candidates Proxmox may refuse before `prepare` gives up.
const MAX_CONFIRMATIONS: usize = 32;

/// The `vmid_range` detail: `20000-29999`, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmidRange {
    pub first: Vmid,
    pub last: Vmid,
}

impl FromStr for VmidRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "expected two VMIDs like 20000-29999 (first-last, from {} to {})",
                Vmid::MIN,
                Vmid::MAX
            )
        };
        let (first, last) = s.split_once('-').ok_or_else(usage)?;
        let first: Vmid = first.parse().map_err(|_| usage())?;
        let last: Vmid = last.parse().map_err(|_| usage())?;
        if first > last {
            return Err(format!("{first} is above {last}"));
        }
        Ok(VmidRange { first, last })
    }
}

impl fmt::Display for VmidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Why no VMID was handed out.
#[derive(Debug)]
pub enum AllocationError {
    Api(Error),
    Ledger(LedgerError),
    /// Every id from `from` to `to` is used or reserved.
    Exhausted {
        from: Vmid,
        to: Vmid,
        used: usize,
        reserved: usize,
        range: bool,
    },
    /// Proxmox refused every candidate it was asked about.
    Refused {
        tried: Vec<u32>,
    },
}

impl fmt::Display for AllocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocationError::Api(e) => e.fmt(f),
            AllocationError::Ledger(e) => e.fmt(f),
            AllocationError::Exhausted {
                from,
                to,
                used,
                reserved,
                range,
            } => {
                write!(
                    f,
                    "no free VMID from {from} to {to}: {used} are used in the Proxmox cluster and {reserved} were handed out by this management server in the last {} minutes",
                    ledger::RESERVATION.as_secs() / 60
                )?;
                if *range {
                    f.write_str(" (widen the vmid_range detail)")?;
                }
                Ok(())
            }
            AllocationError::Refused { tried } => write!(
                f,
                "Proxmox reported every candidate VMID as taken ({}); the API token may lack VM.Audit on VMs that use them, or another management server is handing out the same ids (give each its own vmid_range)",
                tried
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl std::error::Error for AllocationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: Display already shows the wrapped error's text.
        match self {
            AllocationError::Api(e) => e.source(),
            AllocationError::Ledger(e) => e.source(),
            _ => None,
        }
    }
}

impl From<Error> for AllocationError {
    fn from(e: Error) -> Self {
        AllocationError::Api(e)
    }
}

impl From<LedgerError> for AllocationError {
    fn from(e: LedgerError) -> Self {
        AllocationError::Ledger(e)
    }
}

/// Hands out a VMID no other deploy of this management server holds, confirmed free by
/// Proxmox, and records it in the ledger in `state_dir`.
pub fn allocate(
    client: &Client,
    state_dir: &Path,
    range: Option<VmidRange>,
) -> Result<Vmid, AllocationError> {
    let (first, last) = match range {
        Some(r) => (r.first, r.last),
        None => (
            client.next_id(&NextId::default())?,
            Vmid::new(u64::from(Vmid::MAX)).expect("MAX is a VMID"),
        ),
    };
    let mut used: BTreeSet<u32> = client
        .cluster_vms()?
        .iter()
        .filter_map(|vm| vm.vmid.and_then(|id| u32::try_from(id).ok()))
        .collect();
    let mut tried = Vec::new();
    while tried.len() < MAX_CONFIRMATIONS {
        let candidate = {
            let mut ledger = Ledger::open(state_dir, client.deadline())?;
            let reserved = ledger.reserved();
            let Some(candidate) = lowest_free(first, last, &used, &reserved) else {
                return Err(AllocationError::Exhausted {
                    from: first,
                    to: last,
                    used: used.range(first.get()..=last.get()).count(),
                    reserved: reserved.range(first.get()..=last.get()).count(),
                    range: range.is_some(),
                });
            };
            ledger.record(candidate)?;
            candidate
        }; // the lock is released here, before asking Proxmox
        match client.next_id(&NextId {
            vmid: Some(candidate),
        }) {
            Ok(_) => {
                info!(
                    "VMID {candidate} handed out (range {first}-{last}, ledger in {}; {} ids refused before)",
                    state_dir.display(),
                    tried.len()
                );
                return Ok(candidate);
            }
            Err(e) if e.is_vmid_taken() => {
                debug!("VMID {candidate} is taken after all: {e}");
                used.insert(candidate.get());
                tried.push(candidate.get());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AllocationError::Refused { tried })
}

/// The lowest id in `first..=last` in neither set.
fn lowest_free(
    first: Vmid,
    last: Vmid,
    used: &BTreeSet<u32>,
    reserved: &BTreeSet<u32>,
) -> Option<Vmid> {
    (first.get()..=last.get())
        .find(|id| !used.contains(id) && !reserved.contains(id))
        .and_then(|id| Vmid::new(u64::from(id)).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{Answer, FakeTransport, client, data, json as answer};
    use crate::transport::Method;

    fn vmid(n: u32) -> Vmid {
        Vmid::new(u64::from(n)).unwrap()
    }

    fn taken(n: u32) -> Answer {
        answer(
            200,
            &json!({"success": 0, "status": 400, "message": "Parameter verification failed.\n",
                    "errors": {"vmid": format!("VM {n} already exists")}})
            .to_string(),
        )
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(
            "20000-29999".parse::<VmidRange>(),
            Ok(VmidRange {
                first: vmid(20000),
                last: vmid(29999)
            })
        );
        assert_eq!(
            " 100 - 100 ".parse::<VmidRange>().unwrap().to_string(),
            "100-100"
        );
        for bad in [
            "",
            "20000",
            "20000-",
            "-5",
            "50-200",
            "300-200",
            "a-b",
            "100-1000000000",
        ] {
            assert!(bad.parse::<VmidRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn skips_used_reserved_and_refused_ids() {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTransport::new();
        t.on(Method::Get, "/cluster/nextid?vmid=101", vec![taken(101)]);
        t.on(
            Method::Get,
            "/cluster/nextid?vmid=103",
            vec![data(json!("103"))],
        );
        t.on(
            Method::Get,
            "/cluster/nextid?vmid=104",
            vec![data(json!(104))],
        );
        t.on(Method::Get, "/cluster/nextid", vec![data(json!("100"))]);
        t.on(
            Method::Get,
            "/cluster/resources",
            vec![data(
                json!([{"vmid": 100, "type": "qemu"}, {"vmid": 102, "type": "lxc"}]),
            )],
        );
        let c = client(&t);
        // 100 used, 101 refused by Proxmox (a VM the token cannot see), 102 a container
        assert_eq!(allocate(&c, dir.path(), None).unwrap(), vmid(103));
        assert_eq!(
            t.lines(),
            [
                "GET /cluster/nextid",
                "GET /cluster/resources?type=vm",
                "GET /cluster/nextid?vmid=101",
                "GET /cluster/nextid?vmid=103",
            ]
        );
        // The next prepare skips what the ledger holds: 101 (refused) and 103 (handed out).
        assert_eq!(allocate(&c, dir.path(), None).unwrap(), vmid(104));
        let ledger = Ledger::open(dir.path(), c.deadline()).unwrap();
        assert_eq!(ledger.reserved(), BTreeSet::from([101, 103, 104]));
    }

    #[test]
    fn a_range_is_used_without_asking_for_the_lowest_free_id() {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTransport::new();
        t.on(
            Method::Get,
            "/cluster/nextid?vmid=20001",
            vec![data(json!("20001"))],
        );
        t.on(
            Method::Get,
            "/cluster/nextid?vmid=20002",
            vec![data(json!("20002"))],
        );
        t.on(
            Method::Get,
            "/cluster/resources",
            vec![data(json!([{"vmid": 20000, "type": "qemu"}]))],
        );
        let c = client(&t);
        let range: VmidRange = "20000-20002".parse().unwrap();
        assert_eq!(allocate(&c, dir.path(), Some(range)).unwrap(), vmid(20001));
        assert_eq!(allocate(&c, dir.path(), Some(range)).unwrap(), vmid(20002));
        let err = allocate(&c, dir.path(), Some(range)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free VMID from 20000 to 20002: 1 are used in the Proxmox cluster and 2 were handed out by this management server in the last 30 minutes (widen the vmid_range detail)"
        );
        assert!(t.lines().iter().all(|l| l != "GET /cluster/nextid"));
    }
}
