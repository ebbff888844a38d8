//! `status` (one VM) and `statuses` (every CloudStack VM on the host, in one call), with one
//! meaning of "gone" (docs/reliability.md, "What 'gone' means"): a VM no VM of the host
//! answers to (after the rights were proven) is `poweroff` to `status` and absent from
//! `statuses`; a host that cannot be asked fails both; a VM that is not this instance's is
//! refused by `status` and left out of `statuses`.

use std::collections::BTreeMap;

use ext_sdk::{Invocation, PowerState, Response};
use hyperv_protocol::call::{STATUS, STATUSES};
use hyperv_protocol::data::{NoFields, is_creating_name};
use hyperv_protocol::reply::{Lookup, NamedState, VmState};

use super::{VmRef, VmReply, explain, read_settings, run_script};
use crate::known::Known;
use crate::transport::Connector;
use crate::{remote, settings};

/// Hyper-V's `VMState` name to CloudStack's power state. Guest memory resident (running,
/// paused and the transitions around them) is on, as KVM reports a paused domain; not
/// executing (off, saved) is off; `Other` and every `*Critical` state need an operator.
pub fn power_state(state: &str) -> PowerState {
    match state {
        "Running" | "Paused" | "Pausing" | "Resuming" | "Starting" | "Reset" => PowerState::On,
        "Off" | "Stopping" | "Saved" | "Saving" | "FastSaved" | "FastSaving" => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

pub fn status(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let VmReply {
        host, vm, reply, ..
    } = run_script(inv, hosts, STATUS, "reading the state of VM")?;
    let Lookup::Found(VmState { state }) = reply else {
        // Rights were proven first, so absent really means absent: report it as off.
        log::warn!(
            "VM {} does not exist on {}; reporting poweroff",
            vm.name,
            host.host()
        );
        return Ok(Response::power(PowerState::Off).with(
            "message",
            format!("VM {} does not exist on the host", vm.name),
        ));
    };
    Ok(Response::power(power_state(&state)).with("state", state))
}

pub fn statuses(inv: &Invocation, hosts: &dyn Connector) -> anyhow::Result<Response> {
    let (target, adopt, state_dir) = read_settings(&inv.payload, |d| {
        (
            settings::connection(d),
            settings::adopt_unmarked_vms(d),
            settings::state_dir(d),
        )
    })?;
    let host = hosts.transport(target);
    let reply = remote::run(&*host, STATUSES, &NoFields {}, &inv.deadline, &inv.id)
        .map_err(|e| explain(e, "listing the VMs' states", &*host, &VmRef::default()))?;
    let known = Known::open(state_dir);
    let states = instance_states(&reply.vms, adopt, |name| {
        known.as_ref().and_then(|k| k.uuid_of(name))
    });
    log::info!(
        "statuses: {} CloudStack VMs on {} (of {} VMs)",
        states.len(),
        host.host(),
        reply.vms.len()
    );
    Ok(Response::statuses(states))
}

/// How a VM of the host may be CloudStack's, in the order `Find-Ours` (find.ps1) looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Named as the instance, with an ownership line.
    Marked,
    /// Named `<instance>-<uuid>` (upstream's naming), with that UUID's line or none.
    Upstream,
    /// Named as the instance, without any line; only with `adopt_unmarked_vms`.
    Unmarked,
}

/// One VM of the host as a candidate for an instance.
struct Candidate<'a> {
    instance: &'a str,
    tier: Tier,
    /// The CloudStack UUID it is marked (or named) for; `None` when unmarked.
    uuid: Option<&'a str>,
    state: &'a str,
}

/// Whether `text` has the shape of a CloudStack UUID (8-4-4-4-12 hex digits).
fn uuid_shaped(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn candidate(vm: &NamedState, adopt: bool) -> Option<Candidate<'_>> {
    // A create still under way (or killed before its rename): no instance is named so.
    if is_creating_name(&vm.name) {
        return None;
    }
    let marked = (!vm.uuid.is_empty()).then_some(vm.uuid.as_str());
    // `<instance>-<uuid>`: the UUID of the line, or for an unmarked VM one of that shape.
    let upstream = vm.name.len().checked_sub(37).and_then(|cut| {
        let (instance, rest) = vm.name.split_at_checked(cut)?;
        let uuid = rest.strip_prefix('-')?;
        let fits = match marked {
            Some(line) => line == uuid,
            None => uuid_shaped(uuid),
        };
        (fits && !instance.is_empty()).then_some((instance, uuid))
    });
    let (instance, tier, uuid) = match (upstream, marked) {
        (Some((instance, uuid)), _) => (instance, Tier::Upstream, Some(uuid)),
        (None, Some(uuid)) => (vm.name.as_str(), Tier::Marked, Some(uuid)),
        (None, None) if adopt => (vm.name.as_str(), Tier::Unmarked, None),
        (None, None) => return None,
    };
    Some(Candidate {
        instance,
        tier,
        uuid,
        state: &vm.state,
    })
}

/// The power state of each instance the host's VMs answer for, as `status` would find each
/// (`find.ps1`): by instance name, the first tier that has candidates decides; one candidate
/// gives its state, several `unknown`. Where this management server knows the instance's
/// UUID (`known`), a VM marked or named for another UUID is no candidate: `status` refuses it,
/// so it is left out rather than reported as that instance.
fn instance_states(
    vms: &[NamedState],
    adopt: bool,
    known: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, PowerState> {
    let mut by_instance: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for c in vms.iter().filter_map(|vm| candidate(vm, adopt)) {
        by_instance.entry(c.instance).or_default().push(c);
    }
    let mut states = BTreeMap::new();
    for (instance, candidates) in by_instance {
        let expected = known(instance);
        let (ours, theirs): (Vec<Candidate>, Vec<Candidate>) =
            candidates
                .into_iter()
                .partition(|c| match (&expected, c.uuid) {
                    (Some(expected), Some(uuid)) => expected == uuid,
                    _ => true,
                });
        for c in &theirs {
            log::info!(
                "statuses: left out a VM answering for {instance} marked for CloudStack VM {}, \
                 where this management server knows {instance} as {}",
                c.uuid.unwrap_or_default(),
                expected.as_deref().unwrap_or_default()
            );
        }
        let Some(first) = ours.iter().map(|c| c.tier).min() else {
            continue;
        };
        let tier: Vec<&Candidate> = ours.iter().filter(|c| c.tier == first).collect();
        // Adopted without a line only when it is the only VM of the name at all.
        let alone = vms.iter().filter(|vm| vm.name == instance).count() == 1;
        let power = match tier.as_slice() {
            [one] if first != Tier::Unmarked || alone => power_state(one.state),
            [_] => continue,
            _ => PowerState::Unknown,
        };
        states.insert(instance.to_owned(), power);
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "126f4562-1f0f-4313-875e-6150cabeb72f";
    const U2: &str = "00000000-1111-2222-3333-444444444444";

    fn vm(name: &str, state: &str, uuid: &str) -> NamedState {
        NamedState {
            name: name.into(),
            state: state.into(),
            uuid: uuid.into(),
        }
    }

    fn states(
        vms: &[NamedState],
        adopt: bool,
        known: &[(&str, &str)],
    ) -> BTreeMap<String, PowerState> {
        instance_states(vms, adopt, |name| {
            known
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, u)| (*u).to_owned())
        })
    }

    fn map(entries: &[(&str, PowerState)]) -> BTreeMap<String, PowerState> {
        entries.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
    }

    #[test]
    fn marked_vms_by_name_and_nothing_else() {
        let vms = [
            vm("i-2-45-VM", "Running", U1),
            vm("i-2-46-VM", "Off", U2),
            vm("web", "Running", ""),
        ];
        assert_eq!(
            states(&vms, false, &[]),
            map(&[
                ("i-2-45-VM", PowerState::On),
                ("i-2-46-VM", PowerState::Off)
            ])
        );
    }

    #[test]
    fn a_vm_under_a_creates_temporary_name_is_no_instance() {
        let vms = [
            vm("i-2-45-VM.cs-create-0a1b2c3d", "Off", U1),
            vm("i-2-46-VM.cs-create-0a1b2c3e", "Off", ""),
        ];
        assert_eq!(states(&vms, true, &[]), map(&[]));
    }

    #[test]
    fn a_same_named_vm_of_another_uuid_is_left_out_where_the_uuid_is_known() {
        let vms = [vm("i-2-45-VM", "Running", U2)];
        // Unknown here: nothing tells it apart.
        assert_eq!(
            states(&vms, false, &[]),
            map(&[("i-2-45-VM", PowerState::On)])
        );
        // Known as U1: status refuses the VM marked U2, statuses leaves it out.
        assert_eq!(states(&vms, false, &[("i-2-45-VM", U1)]), map(&[]));
        // Ours beside it: ours decides, as for status.
        let both = [vm("i-2-45-VM", "Running", U2), vm("i-2-45-VM", "Off", U1)];
        assert_eq!(
            states(&both, false, &[("i-2-45-VM", U1)]),
            map(&[("i-2-45-VM", PowerState::Off)])
        );
        assert_eq!(
            states(&both, false, &[]),
            map(&[("i-2-45-VM", PowerState::Unknown)]),
            "two marked VMs of one name, no UUID known"
        );
    }

    #[test]
    fn upstream_vms_answer_for_their_instance() {
        let upstream = format!("i-2-45-VM-{U1}");
        let vms = [vm(&upstream, "Running", "")];
        assert_eq!(
            states(&vms, false, &[]),
            map(&[("i-2-45-VM", PowerState::On)])
        );
        // Adopted (marked since): the same.
        let adopted = [vm(&upstream, "Off", U1)];
        assert_eq!(
            states(&adopted, false, &[]),
            map(&[("i-2-45-VM", PowerState::Off)])
        );
        // Named for another UUID than the instance's known one: left out.
        assert_eq!(states(&vms, false, &[("i-2-45-VM", U2)]), map(&[]));
        // Not UUID-shaped, or marked for another UUID than its name says: no upstream name.
        let odd = [
            vm("backup-2024-01-01", "Running", ""),
            vm(&upstream, "Running", U2),
        ];
        assert_eq!(
            states(&odd, false, &[]),
            map(&[(&*upstream, PowerState::On)])
        );
        // A VM of the instance's own name comes first.
        let both = [vm(&upstream, "Running", ""), vm("i-2-45-VM", "Off", U1)];
        assert_eq!(
            states(&both, false, &[]),
            map(&[("i-2-45-VM", PowerState::Off)])
        );
    }

    #[test]
    fn unmarked_vms_only_when_adoption_is_allowed_and_alone() {
        let vms = [vm("i-2-45-VM", "Running", "")];
        assert_eq!(states(&vms, false, &[]), map(&[]));
        assert_eq!(
            states(&vms, true, &[]),
            map(&[("i-2-45-VM", PowerState::On)])
        );
        let crowded = [vm("i-2-45-VM", "Running", ""), vm("i-2-45-VM", "Off", U2)];
        assert_eq!(states(&crowded, true, &[("i-2-45-VM", U1)]), map(&[]));
        let twins = [vm("i-2-45-VM", "Running", ""), vm("i-2-45-VM", "Off", "")];
        assert_eq!(
            states(&twins, true, &[]),
            map(&[("i-2-45-VM", PowerState::Unknown)])
        );
    }

    #[test]
    fn state_mapping() {
        for on in [
            "Running", "Paused", "Pausing", "Resuming", "Starting", "Reset",
        ] {
            assert_eq!(power_state(on), PowerState::On, "{on}");
        }
        for off in [
            "Off",
            "Stopping",
            "Saved",
            "Saving",
            "FastSaved",
            "FastSaving",
        ] {
            assert_eq!(power_state(off), PowerState::Off, "{off}");
        }
        for unknown in ["Other", "RunningCritical", "OffCritical", "", "2"] {
            assert_eq!(power_state(unknown), PowerState::Unknown, "{unknown}");
        }
    }
}
