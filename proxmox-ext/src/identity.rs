//! Which CloudStack VM a Proxmox VM is, and the mark that says so.
//!
//! `create` tags every VM it makes with its CloudStack identity:
//! `cloudstack;cs-uuid.<uuid>;cs-name.<instance name>;cs-vmid.<vmid>`.
//!
//! Why tags and not the description (the two config fields that could carry it):
//! - both survive a clone (PVE copies the config), config changes and migration (the config
//!   file moves with the VM), so neither loses the mark;
//! - only tags are part of `GET /cluster/resources` and `GET /nodes/{node}/qemu`: `statuses`
//!   and the cluster-wide search after an HA move read every VM's owner in one request, where
//!   a description needs one config read per VM (2,000 reads for a busy node);
//! - tags are a list: the mark sits beside an operator's own tags and is replaced without
//!   touching them, where the description is free text operators edit in the UI ("Notes");
//! - the cost: tags allow only `[a-z0-9_][a-z0-9_+.-]*` (compared without case on most
//!   setups), hence the encoding below, and a datacenter that restricts tags
//!   (`user-tag-access`, `registered-tags`) must let the API token set `cs-*` tags.
//!
//! A clone copies the tags, so a copy an operator makes of a CloudStack VM carries the
//! original's mark; `cs-vmid` tells the original (mark and VMID agree) from such a copy.
//!
//! The instance name (`i-2-45-VM`) is encoded case-proof: lower-case letters, digits, `-` and
//! `.` stay, an upper-case letter becomes `+` and the letter, anything else `_` and two hex
//! digits per byte (`i-2-45-+v+m`).
//!
//! While `create` makes a VM, the mark also says so: `cs-creating.<run>` names the
//! invocation that is making it, and `create` removes it as its very last step, once the VM
//! is configured and running. A VM that still carries it is *half-made*: not a usable
//! instance (it may lack its NICs and size), recognised as this CloudStack VM's by a retried
//! `create` (which finishes it) and by `delete` (which removes it), and refused by the other
//! actions. A clone gets its tags from the template, so `create` puts this marked mark into
//! the clone request's description too (the one field a clone request sets besides the
//! name): the new VM is recognisable as this deploy's from the moment PVE writes its config,
//! before the config step writes the tags.

use std::fmt::{self, Write as _};

use crate::model::Vmid;

/// The ownership mark of a VM, read from or written to its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    pub uuid: Option<String>,
    pub instance_name: Option<String>,
    /// The VMID the mark was written for (absent in marks written before it existed).
    pub vmid: Option<u32>,
    /// Set while `create` makes the VM: the invocation id of the run making it.
    pub creating: Option<String>,
}

/// Marks every CloudStack VM; lets operators filter them in the Proxmox UI.
pub const OWNER_TAG: &str = "cloudstack";
const UUID_PREFIX: &str = "cs-uuid.";
const NAME_PREFIX: &str = "cs-name.";
const VMID_PREFIX: &str = "cs-vmid.";
const CREATING_PREFIX: &str = "cs-creating.";
/// What a clone's description says below the mark while `create` makes it (PVE shows it as
/// the VM's notes).
const CREATING_NOTE: &str = "CloudStack is creating this VM (proxmox-ext create). Until this note is gone it is not a usable instance: a retried create of the instance finishes it, deleting (expunging) the instance removes it.";

/// Encodes text into tag characters, reversibly and case-proof.
pub fn encode_tag_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => out.push(byte as char),
            b'A'..=b'Z' => {
                out.push('+');
                out.push(byte.to_ascii_lowercase() as char);
            }
            other => {
                let _ = write!(out, "_{other:02x}");
            }
        }
    }
    out
}

/// Reverses [`encode_tag_text`]; `None` if `tag` is not such an encoding.
pub fn decode_tag_text(tag: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(tag.len());
    let mut rest = tag.as_bytes();
    loop {
        // A run of plain characters in one go (statuses decodes a mark per VM).
        let plain = rest
            .iter()
            .position(|&b| b == b'+' || b == b'_')
            .unwrap_or(rest.len());
        bytes.extend(rest[..plain].iter().map(u8::to_ascii_lowercase));
        rest = &rest[plain..];
        match *rest {
            [] => break,
            [b'+', letter, ref tail @ ..] => {
                bytes.push(letter.to_ascii_uppercase());
                rest = tail;
            }
            [b'_', hi, lo, ref tail @ ..] => {
                let hi = char::from(hi).to_digit(16)?;
                let lo = char::from(lo).to_digit(16)?;
                bytes.push(u8::try_from(hi * 16 + lo).ok()?);
                rest = tail;
            }
            // An escape cut short.
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

/// Splits PVE's tag list (`;`, `,` or spaces between tags).
pub fn split_tags(tags: &str) -> impl Iterator<Item = &str> {
    // Byte by byte (the separators are ASCII, so every piece is still text): `statuses` reads
    // the tags of every VM on the node, and a char pattern decodes each character.
    let mut rest = tags;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let end = rest
                .bytes()
                .position(|b| matches!(b, b';' | b',' | b' '))
                .unwrap_or(rest.len());
            let tag = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or_default();
            if !tag.is_empty() {
                return Some(tag);
            }
        }
        None
    })
}

fn strip_prefix_ci<'t>(tag: &'t str, prefix: &str) -> Option<&'t str> {
    // Compared as bytes: the prefix is ASCII, so where it matches, the rest starts on a
    // character boundary.
    let n = prefix.len();
    (tag.len() > n && tag.as_bytes()[..n].eq_ignore_ascii_case(prefix.as_bytes()))
        .then(|| &tag[n..])
}

impl Mark {
    pub fn new(uuid: Option<&str>, instance_name: &str, vmid: Vmid) -> Mark {
        Mark {
            uuid: uuid.map(str::to_ascii_lowercase),
            instance_name: Some(instance_name.to_string()),
            vmid: Some(vmid.get()),
            creating: None,
        }
    }

    /// The same mark, saying that run `run` of `create` is making the VM.
    pub fn creating(self, run: &str) -> Mark {
        Mark {
            creating: Some(run.to_ascii_lowercase()),
            ..self
        }
    }

    /// The description of a VM `create` is making: this mark's tags on the first line, then
    /// a sentence for the operator.
    pub fn creating_note(&self) -> String {
        format!("{}\n{CREATING_NOTE}", self.tags().join(";"))
    }

    /// The mark on the first line of a VM's description, as [`Mark::creating_note`] writes it.
    pub fn from_description(description: Option<&str>) -> Option<Mark> {
        Mark::from_tags(description?.lines().next())
    }

    /// A copy of a marked VM (a clone carries its source's tags): the mark names another
    /// VMID than the one the VM has.
    pub fn is_copy_at(&self, vmid: u64) -> bool {
        self.vmid.is_some_and(|marked| u64::from(marked) != vmid)
    }

    /// Reads the mark from a VM's tags; `None` when the VM carries none.
    pub fn from_tags(tags: Option<&str>) -> Option<Mark> {
        let mut mark = Mark::default();
        for tag in split_tags(tags.unwrap_or("")) {
            if let Some(uuid) = strip_prefix_ci(tag, UUID_PREFIX) {
                mark.uuid = decode_tag_text(uuid).map(|mut u| {
                    u.make_ascii_lowercase();
                    u
                });
            } else if let Some(name) = strip_prefix_ci(tag, NAME_PREFIX) {
                mark.instance_name = decode_tag_text(name);
            } else if let Some(vmid) = strip_prefix_ci(tag, VMID_PREFIX) {
                mark.vmid = vmid.parse().ok();
            } else if let Some(run) = strip_prefix_ci(tag, CREATING_PREFIX) {
                mark.creating = decode_tag_text(run).map(|r| r.to_ascii_lowercase());
            }
        }
        (mark.uuid.is_some() || mark.instance_name.is_some()).then_some(mark)
    }

    /// The tags that carry this mark.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![OWNER_TAG.to_string()];
        if let Some(uuid) = &self.uuid {
            tags.push(format!("{UUID_PREFIX}{}", encode_tag_text(uuid)));
        }
        if let Some(name) = &self.instance_name {
            tags.push(format!("{NAME_PREFIX}{}", encode_tag_text(name)));
        }
        if let Some(vmid) = self.vmid {
            tags.push(format!("{VMID_PREFIX}{vmid}"));
        }
        if let Some(run) = &self.creating {
            tags.push(format!("{CREATING_PREFIX}{}", encode_tag_text(run)));
        }
        tags
    }

    /// `existing` tags with this mark in place of any earlier one (a template's tags are
    /// copied into its clones; an operator's own tags are kept).
    pub fn merge_into(&self, existing: Option<&str>) -> String {
        let mut tags: Vec<String> = split_tags(existing.unwrap_or(""))
            .filter(|t| {
                !t.eq_ignore_ascii_case(OWNER_TAG)
                    && [UUID_PREFIX, NAME_PREFIX, VMID_PREFIX, CREATING_PREFIX]
                        .iter()
                        .all(|prefix| strip_prefix_ci(t, prefix).is_none())
            })
            .map(str::to_string)
            .collect();
        tags.extend(self.tags());
        tags.join(";")
    }
}

/// What CloudStack says the VM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// CloudStack's instance name, e.g. `i-2-45-VM`.
    pub instance_name: String,
    /// CloudStack's VM UUID, when the payload has one.
    pub uuid: Option<String>,
    /// The name the VM has in Proxmox: `vm_name`, else the instance name.
    pub proxmox_name: String,
}

/// Why a VM is not the one CloudStack means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a VM counts as this CloudStack VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// It carries this VM's mark.
    Marked,
    /// No mark, but the expected name: made before marks existed (or by upstream's scripts).
    /// It is adopted: the mark is added once an action on it succeeded.
    Unmarked,
    /// `create` run `run` began making it for this VM and never finished (its tags or its
    /// description still carry the mark with `cs-creating`): not a usable instance.
    HalfMade { run: String },
}

impl Expected {
    /// The mark `create` (or an adoption) puts on this VM at `vmid`.
    pub fn mark(&self, vmid: Vmid) -> Mark {
        Mark::new(self.uuid.as_deref(), &self.instance_name, vmid)
    }

    /// The run of `create` making this VM at `vmid`, when `mark` (from its tags or its
    /// description) says one is: a half-made VM of this CloudStack VM. A copy (the mark names
    /// another VMID) or another VM's mark is not.
    pub fn half_made_by(&self, vmid: Vmid, mark: Option<Mark>) -> Option<String> {
        let mark = mark?;
        let run = mark.creating.clone()?;
        if mark.vmid != Some(vmid.get()) {
            return None;
        }
        let same = match (&self.uuid, &mark.uuid) {
            (Some(ours), Some(theirs)) => ours.eq_ignore_ascii_case(theirs),
            _ => mark.instance_name.as_deref() == Some(self.instance_name.as_str()),
        };
        same.then_some(run)
    }

    /// Whether the tags carry this VM's own mark (its CloudStack UUID), as only `create` for
    /// this very VM writes it.
    pub fn carries_our_mark(&self, tags: Option<&str>) -> bool {
        match (&self.uuid, Mark::from_tags(tags)) {
            (
                Some(ours),
                Some(Mark {
                    uuid: Some(theirs), ..
                }),
            ) => ours.eq_ignore_ascii_case(&theirs),
            _ => false,
        }
    }

    /// Checks a VM's name and tags against this identity. A marked VM must carry this
    /// UUID (or, without a UUID to compare, this instance name); an unmarked one (made before
    /// marks existed, or by upstream's scripts) must carry the expected name.
    pub fn check(&self, name: Option<&str>, tags: Option<&str>) -> Result<Ownership, Mismatch> {
        match Mark::from_tags(tags) {
            Some(Mark {
                uuid: Some(uuid), ..
            }) if self.uuid.is_some() => {
                let ours = self
                    .uuid
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if uuid == ours {
                    Ok(Ownership::Marked)
                } else {
                    Err(Mismatch(format!(
                        "it is marked as CloudStack VM {uuid}, not {ours}"
                    )))
                }
            }
            Some(Mark {
                instance_name: Some(owner),
                ..
            }) => {
                if owner == self.instance_name {
                    Ok(Ownership::Marked)
                } else {
                    Err(Mismatch(format!(
                        "it is marked as CloudStack instance '{owner}', not '{}'",
                        self.instance_name
                    )))
                }
            }
            _ => match name {
                Some(n) if n == self.proxmox_name => Ok(Ownership::Unmarked),
                Some(n) => Err(Mismatch(format!(
                    "it is named '{n}', not '{}', and carries no CloudStack mark",
                    self.proxmox_name
                ))),
                None => Err(Mismatch(format!(
                    "it has no name (expected '{}') and no CloudStack mark",
                    self.proxmox_name
                ))),
            },
        }
    }
}

/// Whether `name` has the shape of a CloudStack instance name, `i-<account>-<id>-<suffix>`
/// (`i-2-45-VM`): how `statuses` recognises VMs made by upstream's scripts, which carry no
/// mark, from VMs that are none of CloudStack's business.
pub fn looks_like_instance_name(name: &str) -> bool {
    let mut parts = name.splitn(4, '-');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    parts.next() == Some("i")
        && number(parts.next())
        && number(parts.next())
        && parts.next().is_some_and(|suffix| !suffix.is_empty())
}

/// PVE's `dns-name` format for VM names: dot-separated labels of letters, digits and '-',
/// not starting or ending with '-' (the SDK's DNS rule, which also bounds a label at 63).
pub fn check_vm_name(name: &str) -> Result<(), String> {
    if ext_sdk::net::is_dns_name(name) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid Proxmox VM name: use letters, digits and '-' (dot-separated parts allowed), not starting or ending with '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(uuid: Option<&str>) -> Expected {
        Expected {
            instance_name: "i-2-45-VM".into(),
            uuid: uuid.map(str::to_string),
            proxmox_name: "web01".into(),
        }
    }

    #[test]
    fn tag_text_round_trips_case_proof() {
        for text in [
            "i-2-45-VM",
            "web01",
            "Mixed_Case+Name.x",
            "ü",
            "126f4562-1f0f-4313-875e-6150cabeb72f",
        ] {
            let tag = encode_tag_text(text);
            assert!(
                tag.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._+".contains(&b)),
                "{tag}"
            );
            assert_eq!(decode_tag_text(&tag).as_deref(), Some(text));
            assert_eq!(
                decode_tag_text(&tag.to_ascii_uppercase()).as_deref(),
                Some(text),
                "case-insensitive storage"
            );
        }
        assert_eq!(encode_tag_text("i-2-45-VM"), "i-2-45-+v+m");
        for (tag, text) in [
            ("I-2-45-+V+M", Some("i-2-45-VM")),
            ("a_2b_2Fc", Some("a+/c")),
            ("_c3_bc", Some("\u{fc}")),
            ("x+", None),
            ("x_4", None),
            ("x_4g", None),
            ("_ff", None),
            ("", Some("")),
        ] {
            assert_eq!(decode_tag_text(tag).as_deref(), text, "{tag}");
        }
    }

    #[test]
    fn tag_lists_split_on_every_separator() {
        let split = |tags| split_tags(tags).collect::<Vec<_>>();
        assert_eq!(split("a;b,c d"), ["a", "b", "c", "d"]);
        assert_eq!(split(";;a ,\tb\t;; ,c;"), ["a", "b", "c"]);
        assert_eq!(
            split("caf\u{e9};\u{e9}t\u{e9}"),
            ["caf\u{e9}", "\u{e9}t\u{e9}"]
        );
        assert!(split("").is_empty() && split(" ; , ").is_empty());
        assert_eq!(strip_prefix_ci("CS-NAME.x", NAME_PREFIX), Some("x"));
        assert_eq!(strip_prefix_ci("cs-name.", NAME_PREFIX), None);
        assert_eq!(strip_prefix_ci("cs-nam\u{e9}.x", NAME_PREFIX), None);
    }

    #[test]
    fn mark_in_tags() {
        let vmid = Vmid::new(20017).unwrap();
        let mark = Mark::new(
            Some("126F4562-1f0f-4313-875e-6150cabeb72f"),
            "i-2-45-VM",
            vmid,
        );
        let tags = mark.merge_into(Some("prod;cloudstack;cs-uuid.0000;cs-name.old;CS-VMID.100"));
        assert_eq!(
            tags,
            "prod;cloudstack;cs-uuid.126f4562-1f0f-4313-875e-6150cabeb72f;cs-name.i-2-45-+v+m;cs-vmid.20017"
        );
        assert_eq!(Mark::from_tags(Some(&tags)), Some(mark.clone()));
        assert_eq!(
            Mark::from_tags(Some(&tags.to_ascii_lowercase())),
            Some(mark.clone())
        );
        assert_eq!(Mark::from_tags(Some("prod, web")), None);
        assert_eq!(Mark::from_tags(Some("cloudstack")), None);
        assert_eq!(Mark::from_tags(None), None);
        // a clone of the VM carries the same tags under another VMID
        assert!(!mark.is_copy_at(20017));
        assert!(mark.is_copy_at(20018));
        let older = Mark::from_tags(Some("cloudstack;cs-uuid.aaaa;cs-name.i-2-45-+v+m")).unwrap();
        assert_eq!(older.vmid, None);
        assert!(
            !older.is_copy_at(20018),
            "marks without a VMID are never copies"
        );
    }

    #[test]
    fn the_mark_of_a_vm_being_created() {
        let vmid = Vmid::new(100).unwrap();
        let ours = expected(Some("aaaa"));
        let mark = ours.mark(vmid).creating("1A2B3C4D");
        let tags = mark.merge_into(Some("prod"));
        assert_eq!(
            tags,
            "prod;cloudstack;cs-uuid.aaaa;cs-name.i-2-45-+v+m;cs-vmid.100;cs-creating.1a2b3c4d"
        );
        assert_eq!(Mark::from_tags(Some(&tags)), Some(mark.clone()));
        // Finishing drops the run, keeps the rest.
        assert_eq!(
            ours.mark(vmid).merge_into(Some(&tags)),
            "prod;cloudstack;cs-uuid.aaaa;cs-name.i-2-45-+v+m;cs-vmid.100"
        );
        assert_eq!(
            ours.half_made_by(vmid, Mark::from_tags(Some(&tags)))
                .as_deref(),
            Some("1a2b3c4d")
        );
        // In a clone's description: the first line.
        let note = mark.creating_note();
        assert!(
            note.starts_with("cloudstack;cs-uuid.aaaa;") && note.is_ascii(),
            "{note}"
        );
        assert_eq!(Mark::from_description(Some(&note)), Some(mark.clone()));
        assert_eq!(
            ours.half_made_by(vmid, Mark::from_description(Some(&note)))
                .as_deref(),
            Some("1a2b3c4d")
        );
        assert_eq!(
            Mark::from_description(Some("just notes\ncloudstack;cs-uuid.aaaa")),
            None
        );
        // Not ours, a copy, finished: not this VM half-made.
        assert_eq!(
            expected(Some("bbbb")).half_made_by(vmid, Some(mark.clone())),
            None
        );
        assert_eq!(ours.half_made_by(Vmid::new(101).unwrap(), Some(mark)), None);
        assert_eq!(ours.half_made_by(vmid, Some(ours.mark(vmid))), None);
        // Without a UUID, the instance name decides.
        let nameless = expected(None);
        assert!(
            nameless
                .half_made_by(vmid, Some(nameless.mark(vmid).creating("x")))
                .is_some()
        );
    }

    #[test]
    fn identity_checks() {
        let ours = "cloudstack;cs-uuid.aaaa;cs-name.i-2-45-+v+m";
        assert_eq!(
            expected(Some("AAAA")).check(Some("renamed"), Some(ours)),
            Ok(Ownership::Marked)
        );
        assert!(
            expected(Some("bbbb"))
                .check(Some("web01"), Some(ours))
                .is_err()
        );
        assert!(expected(None).check(Some("x"), Some(ours)).is_ok());
        assert!(expected(Some("aaaa")).carries_our_mark(Some(ours)));
        assert!(!expected(Some("bbbb")).carries_our_mark(Some(ours)));
        assert!(!expected(None).carries_our_mark(Some(ours)));
        assert!(!expected(Some("aaaa")).carries_our_mark(Some("cs-name.i-2-45-+v+m")));
        assert!(
            expected(None)
                .check(Some("web01"), Some("cs-name.i-9-9-+v+m"))
                .is_err()
        );
        // unmarked: the name decides, and the VM is to be adopted
        assert_eq!(
            expected(Some("aaaa")).check(Some("web01"), None),
            Ok(Ownership::Unmarked)
        );
        assert_eq!(
            expected(Some("aaaa")).check(Some("web01"), Some("prod;cloudstack")),
            Ok(Ownership::Unmarked)
        );
        let err = expected(Some("aaaa"))
            .check(Some("db02"), Some("prod"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is named 'db02', not 'web01', and carries no CloudStack mark"
        );
    }

    #[test]
    fn instance_name_shapes() {
        for name in ["i-2-45-VM", "i-12-10045-VM", "i-2-45-web-01"] {
            assert!(looks_like_instance_name(name), "{name}");
        }
        for name in [
            "payroll-db",
            "i-2-VM",
            "i-x-45-VM",
            "i-2-45-",
            "I-2-45-VM",
            "vm-i-2-45",
        ] {
            assert!(!looks_like_instance_name(name), "{name}");
        }
    }

    #[test]
    fn vm_names() {
        assert!(check_vm_name("i-2-45-VM").is_ok());
        assert!(check_vm_name("web01.example").is_ok());
        assert!(check_vm_name("web_01").is_err());
        assert!(check_vm_name("-web").is_err());
        assert!(check_vm_name("").is_err());
    }
}
