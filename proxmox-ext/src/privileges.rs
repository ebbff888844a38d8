//! The Proxmox VE privileges each action needs, and where: one table, read by the `check`
//! action's privilege probe and rendered into the README (with the `pveum` commands of a
//! least-privilege role), so the two cannot disagree.
//!
//! The table follows the requests each action sends and PVE's permission checks for them
//! (pve-api.json, the schema fakepve ships, and qemu-server's `check_vm_modify_config_perm`):
//! VM calls check `/vms/{vmid}`; new disks `Datastore.AllocateSpace` on their storage; an ISO
//! `Datastore.AllocateSpace` or `Datastore.Audit` on its storage; a NIC on a bridge `SDN.Use` on
//! `/sdn/zones/localnetwork/{bridge}` (PVE 8 and later). CloudStack's VMs get new VMIDs all the
//! time, so the VM privileges belong on `/vms` (propagated), not on single VMs.

/// Where a privilege is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/vms`: every VM CloudStack makes (propagated to `/vms/{vmid}`).
    Vms,
    /// `/vms/{template_id}`: the template a deploy clones.
    Template,
    /// `/storage/{id}`: where new disks go.
    Storage,
    /// `/storage/{id}` of `iso_path`'s storage.
    IsoStorage,
    /// `/sdn/zones/localnetwork/{network_bridge}`.
    Bridge,
    /// `/`: cluster-wide information.
    Root,
}

impl Target {
    /// The path as the README writes it.
    pub fn pattern(self) -> &'static str {
        match self {
            Target::Vms => "/vms",
            Target::Template => "/vms/{template_id}",
            Target::Storage => "/storage/{storage}",
            Target::IsoStorage => "/storage/{storage of iso_path}",
            Target::Bridge => "/sdn/zones/localnetwork/{network_bridge}",
            Target::Root => "/",
        }
    }
}

/// Which deploys a privilege is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// Every use of the action.
    Any,
    /// Only when `create` clones a template.
    Template,
    /// Only when `create` installs from an ISO.
    Iso,
}

/// Privileges an action needs on a target: any one of `privileges`, or with `all` every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub privileges: &'static [&'static str],
    pub all: bool,
    pub on: Target,
    pub deploy: Deploy,
    /// The action works without it, losing what `why` says.
    pub optional: bool,
    pub why: &'static str,
}

const fn need(privileges: &'static [&'static str], on: Target, why: &'static str) -> Need {
    Need {
        privileges,
        all: false,
        on,
        deploy: Deploy::Any,
        optional: false,
        why,
    }
}

const fn for_deploy(mut need: Need, deploy: Deploy) -> Need {
    need.deploy = deploy;
    need
}

const fn optional(mut need: Need) -> Need {
    need.optional = true;
    need
}

const AUDIT: Need = need(
    &["VM.Audit"],
    Target::Vms,
    "find the VM and read its state and mark",
);
const POWER: Need = need(&["VM.PowerMgmt"], Target::Vms, "start, stop or reset it");
const MARK: Need = optional(need(
    &["VM.Config.Options"],
    Target::Vms,
    "mark a VM made before marks existed (adoption retries on the next action)",
));

/// Every action and what it needs; `check` needs nothing beyond what each probe reads.
pub const TABLE: &[(&str, &[Need])] = &[
    (
        "prepare",
        &[need(
            &["VM.Audit"],
            Target::Vms,
            "see the VMIDs in use (/cluster/resources) so it hands out a free one",
        )],
    ),
    (
        "create",
        &[
            need(
                &["VM.Allocate"],
                Target::Vms,
                "make the VM with its new VMID",
            ),
            for_deploy(
                need(&["VM.Clone"], Target::Template, "clone the template"),
                Deploy::Template,
            ),
            need(
                &["Datastore.AllocateSpace"],
                Target::Storage,
                "allocate the new disk (the template's storage for clones)",
            ),
            for_deploy(
                need(
                    &["Datastore.AllocateSpace", "Datastore.Audit"],
                    Target::IsoStorage,
                    "attach the ISO",
                ),
                Deploy::Iso,
            ),
            need(
                &["VM.Config.CPU", "VM.Config.Memory"],
                Target::Vms,
                "set cores and memory",
            )
            .both(),
            need(&["VM.Config.Network"], Target::Vms, "set the NICs"),
            need(
                &["VM.Config.Options"],
                Target::Vms,
                "set the name, OS type and the ownership mark",
            ),
            for_deploy(
                need(
                    &["VM.Config.Disk", "VM.Config.CDROM", "VM.Config.HWType"],
                    Target::Vms,
                    "add the disk, the CD-ROM and the SCSI controller",
                )
                .both(),
                Deploy::Iso,
            ),
            need(
                &["SDN.Use"],
                Target::Bridge,
                "attach NICs to the bridge (PVE 8 and later)",
            ),
            POWER,
            AUDIT,
        ],
    ),
    ("start", &[POWER, AUDIT, MARK]),
    ("stop", &[POWER, AUDIT, MARK]),
    ("reboot", &[POWER, AUDIT, MARK]),
    (
        "delete",
        &[
            need(
                &["VM.Allocate"],
                Target::Vms,
                "destroy the VM and its disks",
            ),
            POWER,
            AUDIT,
        ],
    ),
    ("status", &[AUDIT, MARK]),
    ("statuses", &[AUDIT]),
    (
        "getconsole",
        &[
            need(&["VM.Console"], Target::Vms, "open a VNC ticket"),
            AUDIT,
            optional(need(
                &["Sys.Audit"],
                Target::Root,
                "read the node's address from /cluster/status (else from the node's interfaces)",
            )),
            MARK,
        ],
    ),
    ("ListSnapshots", &[AUDIT, MARK]),
    (
        "CreateSnapshot",
        &[
            need(&["VM.Snapshot"], Target::Vms, "take the snapshot"),
            AUDIT,
            MARK,
        ],
    ),
    (
        "RestoreSnapshot",
        &[
            need(
                &["VM.Snapshot.Rollback", "VM.Snapshot"],
                Target::Vms,
                "roll back",
            ),
            POWER,
            AUDIT,
            MARK,
        ],
    ),
    (
        "DeleteSnapshot",
        &[
            need(&["VM.Snapshot"], Target::Vms, "delete the snapshot"),
            AUDIT,
            MARK,
        ],
    ),
    ("Suspend", &[POWER, AUDIT, MARK]),
    ("Resume", &[POWER, AUDIT, MARK]),
];

impl Need {
    /// Every one of `privileges` is needed (PVE checks cores and memory one by one).
    const fn both(mut self) -> Need {
        self.all = true;
        self
    }

    /// Whether `held` satisfies it.
    pub fn met_by(&self, held: &[String]) -> bool {
        let has = |p: &&str| held.iter().any(|h| h == p);
        if self.all {
            self.privileges.iter().all(has)
        } else {
            self.privileges.iter().any(has)
        }
    }

    /// "VM.Config.CPU and VM.Config.Memory", "VM.Snapshot.Rollback or VM.Snapshot".
    pub fn privileges_text(&self) -> String {
        self.privileges
            .join(if self.all { " and " } else { " or " })
    }
}

/// Every privilege some action needs, sorted: the least-privilege role's.
#[cfg(test)]
pub fn role_privileges() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = TABLE
        .iter()
        .flat_map(|(_, needs)| needs.iter())
        .filter(|n| n.all || n.privileges.len() == 1)
        .flat_map(|n| n.privileges.iter().copied())
        .chain(
            // Of "any one of" groups, the first is the one the role grants.
            TABLE
                .iter()
                .flat_map(|(_, needs)| needs.iter())
                .filter(|n| !n.all && n.privileges.len() > 1)
                .map(|n| n.privileges[0]),
        )
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The README's section: per action the privileges and paths, then the `pveum` commands.
#[cfg(test)]
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("| Action | Privilege | On | For |\n|---|---|---|---|\n");
    for (action, needs) in TABLE {
        for (i, n) in needs.iter().enumerate() {
            let deploy = match n.deploy {
                Deploy::Any => "",
                Deploy::Template => " (template deploys)",
                Deploy::Iso => " (ISO deploys)",
            };
            let optional = if n.optional { " (optional)" } else { "" };
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {}{deploy}{optional} |",
                if i == 0 {
                    format!("`{action}`")
                } else {
                    String::new()
                },
                n.privileges_text()
                    .replace(" and ", "` and `")
                    .replace(" or ", "` or `"),
                n.on.pattern(),
                n.why
            );
        }
    }
    let privs = role_privileges().join(" ");
    let _ = write!(
        out,
        "\nA least-privilege role and a token for it (run on any node; `cloudstack@pve` and \
         `cs` are examples, `local-lvm`, `local` and `vmbr0` stand for your storages and bridge):\n\n\
         ```sh\n\
         pveum role add CloudStack --privs \"{privs}\"\n\
         pveum user add cloudstack@pve --comment \"CloudStack proxmox-ext\"\n\
         pveum user token add cloudstack@pve cs --privsep 1   # prints the secret once\n\
         for path in /vms /storage/local-lvm /storage/local /sdn/zones/localnetwork/vmbr0; do\n\
         \x20   pveum acl modify \"$path\" --roles CloudStack --users cloudstack@pve --tokens 'cloudstack@pve!cs'\n\
         done\n\
         pveum acl modify / --roles CloudStack --propagate 0 --users cloudstack@pve --tokens 'cloudstack@pve!cs'   # optional: Sys.Audit on / only, for getconsole\n\
         ```\n\n\
         A token with privilege separation (`--privsep 1`) holds what both the user and the token \
         are granted, so both get the ACLs; with `--privsep 0` the token has the user's. \
         Then set `user=cloudstack@pve`, `token=cs` and `secret` to the printed value, and run \
         `proxmox-ext check` (or the `check` custom action): its `privileges` row names every \
         privilege missing and the path it is needed on, from this same table.\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_of_the_extension_is_in_the_table() {
        for action in crate::actions::ACTIONS {
            assert!(
                *action == "check" || TABLE.iter().any(|(a, _)| a == action),
                "{action} has no row"
            );
        }
    }

    #[test]
    fn the_role_has_every_privilege_once() {
        let role = role_privileges();
        for p in [
            "VM.Allocate",
            "VM.Clone",
            "VM.Config.CDROM",
            "SDN.Use",
            "Sys.Audit",
            "VM.Snapshot.Rollback",
        ] {
            assert!(role.contains(&p), "{p}: {role:?}");
        }
        assert!(
            !role.contains(&"Datastore.Audit"),
            "AllocateSpace covers it: {role:?}"
        );
        let mut sorted = role.clone();
        sorted.dedup();
        assert_eq!(sorted, role);
    }

    #[test]
    fn the_readme_shows_this_table() {
        crate::testing::assert_readme_section("privileges", &markdown());
    }
}
