//! Misspelt and misplaced details: a key no action reads is otherwise silently ignored.
//!
//! [`scan`] looks at every key an operator or a template can set (the host, cluster mapping,
//! extension, template/instance and custom-action details, and the action's parameters) and
//! reports, as [`Finding`]s:
//! - a key this extension does not read that is close to one it reads at the same level
//!   ([`is_close`]: the same but for case or `-`/`_`, an edit or two, or one key a prefix of
//!   the other: `netwrok_bridge`, `Network-Bridge`, `token_id`, `verify_tls_cert`);
//! - a key it reads, set at a level it is not read from (`node` as an extension detail);
//! - a value of a [`crate::Kind::Choice`] or [`crate::Kind::Bool`] detail that is not one of its values
//!   (`log_level=debgu`), with the closest value.
//!
//! CloudStack's own keys never reach the scanned maps except `cloudstack.*` (which is skipped):
//! host details arrive only when prefixed `External:`, template and instance details likewise,
//! and the unprefixed VM details (offering settings such as `cpuOvercommitRatio`, and what
//! `prepare` wrote back) are not scanned at all.
//!
//! The runner [`declare`]s the extension's details and logs every finding as a warning on
//! every action; a missing required detail names the finding that explains it
//! ([`crate::DetailsError`]); a `check` action shows them as `warn` rows.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::details::{Detail, Level};
use crate::lenient;
use crate::payload::Payload;

static DECLARED: Mutex<&'static [Detail]> = Mutex::new(&[]);

/// Declares the details this extension reads (besides the SDK's own); the runner does it with
/// [`crate::Meta::details`] before the action runs.
pub fn declare(details: &'static [Detail]) {
    *DECLARED.lock().unwrap_or_else(PoisonError::into_inner) = details;
}

/// The declared details: the extension's, then the SDK's own.
pub fn declared() -> Vec<&'static Detail> {
    let own = *DECLARED.lock().unwrap_or_else(PoisonError::into_inner);
    own.iter().chain(crate::logging::DETAILS.iter()).collect()
}

/// What is wrong with one key of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not read by this extension; close to `meant`, which is read at this level.
    Unknown {
        /// The detail probably meant.
        meant: Detail,
        /// The spelling of it the key is closest to.
        name: &'static str,
    },
    /// Read by this extension, but not from this level.
    WrongLevel {
        /// The detail.
        detail: Detail,
    },
    /// Not one of the detail's values.
    BadValue {
        /// The detail.
        detail: Detail,
        /// The value as set.
        value: String,
        /// The closest allowed value.
        suggestion: Option<&'static str>,
    },
}

/// One key of the payload that is probably a mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where it is set.
    pub level: Level,
    /// The key as set.
    pub key: String,
    /// What is wrong.
    pub problem: Problem,
}

/// "a host detail or an extension detail".
fn levels_text(levels: &[Level]) -> String {
    let mut names: Vec<&str> = levels.iter().map(|l| l.describe()).collect();
    names.dedup();
    names
        .iter()
        .map(|n| with_article(n))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// "a host detail", "an extension detail".
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.level.describe();
        match &self.problem {
            Problem::Unknown { name, .. } => write!(
                f,
                "{at} '{}' is not read by this extension, so it is ignored: did you mean {name}?",
                self.key
            ),
            Problem::WrongLevel { detail } => write!(
                f,
                "'{}' is set as {}, but it is read only as {}, so it is ignored there",
                self.key,
                with_article(at),
                levels_text(detail.levels)
            ),
            Problem::BadValue {
                detail,
                value,
                suggestion,
            } => {
                let allowed = detail.kind.choices().unwrap_or_default().join(", ");
                write!(f, "{at} '{}' = '{value}' is not one of {allowed}", self.key)?;
                match suggestion {
                    Some(s) => write!(f, ": did you mean {s}?"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Finding {
    /// The fix in one sentence.
    pub fn fix(&self) -> String {
        match &self.problem {
            Problem::Unknown { name, .. } => {
                format!(
                    "rename the {} '{}' to '{name}'",
                    self.level.describe(),
                    self.key
                )
            }
            Problem::WrongLevel { detail } => format!(
                "set '{}' as {} instead",
                self.key,
                levels_text(detail.levels)
            ),
            Problem::BadValue {
                detail, suggestion, ..
            } => match suggestion {
                Some(s) => format!("set {} to {s}", self.key),
                None => format!(
                    "set {} to one of {}",
                    self.key,
                    detail.kind.choices().unwrap_or_default().join(", ")
                ),
            },
        }
    }

    /// Whether the finding may explain why `detail` was not found.
    pub fn explains(&self, detail: &Detail) -> bool {
        match &self.problem {
            Problem::Unknown { meant, .. } => meant.key == detail.key,
            Problem::WrongLevel { detail: d } => d.key == detail.key,
            Problem::BadValue { .. } => false,
        }
    }

    /// How it explains a missing detail: "the host has 'netwrok_bridge': did you mean
    /// network_bridge?".
    pub fn as_hint(&self) -> String {
        match &self.problem {
            Problem::Unknown { name, .. } => format!(
                "{} '{}': did you mean {name}?",
                self.level.holder(),
                self.key
            ),
            _ => self.to_string(),
        }
    }
}

/// Every `(level, key, value)` an operator or a template sets.
fn entries(payload: &Payload) -> Vec<(Level, String, Option<String>)> {
    let ext = &payload.externaldetails;
    let mut out = Vec::new();
    for (level, map) in [
        (Level::Host, &ext.host),
        (Level::ResourceMap, &ext.resourcemap),
        (Level::Extension, &ext.extension),
        (Level::VirtualMachine, &ext.virtualmachine),
        (Level::Action, &ext.action),
    ] {
        out.extend(
            map.iter()
                .map(|(k, v)| (level, k.clone(), Some(v.trim().to_owned()))),
        );
    }
    // Template and instance details also arrive prefixed in the VM's details; older
    // CloudStack versions send only those.
    if let Some(vm) = &payload.vm {
        for (k, v) in &vm.details {
            if let Some(key) = k.strip_prefix("External:")
                && !ext.virtualmachine.contains_key(key)
            {
                out.push((
                    Level::VirtualMachine,
                    key.to_owned(),
                    Some(v.trim().to_owned()),
                ));
            }
        }
    }
    out.extend(payload.parameters.iter().map(|(k, v)| {
        (
            Level::Parameter,
            k.clone(),
            lenient::scalar_text(v).map(|t| t.trim().to_owned()),
        )
    }));
    out.retain(|(_, k, _)| !k.to_ascii_lowercase().starts_with("cloudstack."));
    out
}

/// Every likely mistake among the payload's keys, checked against the [`declare`]d details.
pub fn scan(payload: &Payload) -> Vec<Finding> {
    scan_with(payload, &declared())
}

/// [`scan`] against these details.
pub fn scan_with(payload: &Payload, declared: &[&'static Detail]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (level, key, value) in entries(payload) {
        if let Some(detail) = declared.iter().find(|d| d.names().any(|n| n == key)) {
            if !detail.levels.contains(&level) {
                findings.push(Finding {
                    level,
                    key,
                    problem: Problem::WrongLevel { detail: **detail },
                });
            } else if let Some(problem) = value.as_deref().and_then(|v| bad_value(detail, v)) {
                findings.push(Finding {
                    level,
                    key,
                    problem,
                });
            }
            continue;
        }
        let candidates = declared
            .iter()
            .filter(|d| d.levels.contains(&level))
            .flat_map(|d| d.names().map(move |n| (*d, n)));
        if let Some((meant, name)) = closest(&key, candidates) {
            findings.push(Finding {
                level,
                key,
                problem: Problem::Unknown {
                    meant: *meant,
                    name,
                },
            });
        }
    }
    findings
}

fn bad_value(detail: &Detail, value: &str) -> Option<Problem> {
    let choices = detail.kind.choices()?;
    if value.is_empty() || detail.secret {
        return None;
    }
    let valid = match detail.kind {
        crate::details::Kind::Bool => lenient::parse_bool(value).is_some(),
        _ => choices.iter().any(|c| c.eq_ignore_ascii_case(value)),
    };
    (!valid).then(|| Problem::BadValue {
        detail: *detail,
        value: value.to_owned(),
        suggestion: suggest(value, choices),
    })
}

/// The closest of `choices` to `value`, when one is close (see [`is_close`]).
pub fn suggest(value: &str, choices: &[&'static str]) -> Option<&'static str> {
    closest(value, choices.iter().map(|c| ((), *c))).map(|((), c)| c)
}

/// The candidate whose name is closest to `key`, if any is close.
fn closest<T>(
    key: &str,
    candidates: impl Iterator<Item = (T, &'static str)>,
) -> Option<(T, &'static str)> {
    candidates
        .filter_map(|(item, name)| distance(key, name).map(|d| (d, item, name)))
        .min_by_key(|(d, _, _)| *d)
        .map(|(_, item, name)| (item, name))
}

/// Lower case, `-` and spaces as `_`.
fn normalize(key: &str) -> String {
    key.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether `typed` is probably a misspelling of `name` (see the module docs).
pub fn is_close(typed: &str, name: &str) -> bool {
    distance(typed, name).is_some()
}

/// How far `typed` is from `name` when it is close, else `None`: 0 for a difference of case
/// or `-`/`_` only; the edit distance (a swap of neighbours counting one) when it is at most 1
/// for keys of up to 5 characters, 2 for longer ones; the difference in length when one is a
/// prefix of the other (the shorter of at least 4 characters, followed by `_` in the longer or
/// at least half of it).
fn distance(typed: &str, name: &str) -> Option<usize> {
    let (a, b) = (normalize(typed), normalize(name));
    if a == b {
        return Some(0);
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if short.len() < 3 {
        return None;
    }
    let limit = if short.len() <= 5 { 1 } else { 2 };
    let edits = edit_distance(&a, &b);
    if edits <= limit {
        return Some(edits);
    }
    let prefix = long.starts_with(short.as_str())
        && short.len() >= 4
        && (long.as_bytes()[short.len()] == b'_' || short.len() * 2 >= long.len());
    prefix.then(|| long.len() - short.len())
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::details::Kind;

    const HOST_EXT: &[Level] = &[Level::Host, Level::Extension];
    const TABLE: &[Detail] = &[
        Detail::new("url", HOST_EXT),
        Detail::new("token", HOST_EXT),
        Detail::new("node", &[Level::Host]),
        Detail::new("network_bridge", &[Level::Host]),
        Detail::new("verify_tls_certificate", HOST_EXT).kind(Kind::Bool),
        Detail::new("template_type", &[Level::VirtualMachine])
            .kind(Kind::Choice(&["template", "iso"])),
        Detail::new("vhd_path", &[Level::Host]),
        Detail::new("vm_path", &[Level::Host]),
        Detail::new("snapshot_name", &[Level::Parameter]).alias(&["snap_name"]),
    ];

    fn table() -> Vec<&'static Detail> {
        TABLE.iter().chain(crate::logging::DETAILS).collect()
    }

    fn scan_json(json: &str) -> Vec<String> {
        let payload = Payload::from_slice(json.as_bytes(), "test").unwrap();
        scan_with(&payload, &table())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn closeness() {
        for (typed, name) in [
            ("netwrok_bridge", "network_bridge"),
            ("Network-Bridge", "network_bridge"),
            ("token_id", "token"),
            ("verify_tls_cert", "verify_tls_certificate"),
            ("verify-tls-certificate", "verify_tls_certificate"),
            ("nodes", "node"),
            ("uri", "url"),
            ("debgu", "debug"),
            ("flase", "false"),
            ("tempalte", "template"),
        ] {
            assert!(is_close(typed, name), "{typed} ~ {name}");
        }
        for (typed, name) in [
            ("somekey", "node"),
            ("vm", "vm_path"),
            ("iso", "url"),
            ("storage_pool", "state_dir"),
            ("deployvm", "vm_name"),
            ("cpuOvercommitRatio", "network_bridge"),
            ("password", "vm_path"),
        ] {
            assert!(!is_close(typed, name), "{typed} !~ {name}");
        }
        assert_eq!(edit_distance("vhd_path", "vm_path"), 2);
    }

    #[test]
    fn misspelt_misplaced_and_invalid() {
        let found = scan_json(
            r#"{"externaldetails":{
                "host":{"url":"x","netwrok_bridge":"vmbr0","token_id":"cs","log_level":"debgu","verify_tls_certificate":"flase"},
                "extension":{"node":"pve1","verify_tls_cert":"false","somekey":"v"},
                "virtualmachine":{"template_type":"tempalte","cloudstack.vlan":"vlan://10"}},
                "parameters":{"snap_nmae":"x"}}"#,
        );
        assert_eq!(
            found,
            [
                "host detail 'log_level' = 'debgu' is not one of error, warn, info, debug, trace, off: did you mean debug?",
                "host detail 'netwrok_bridge' is not read by this extension, so it is ignored: did you mean network_bridge?",
                "host detail 'token_id' is not read by this extension, so it is ignored: did you mean token?",
                "host detail 'verify_tls_certificate' = 'flase' is not one of true, false: did you mean false?",
                "'node' is set as an extension detail, but it is read only as a host detail, so it is ignored there",
                "extension detail 'verify_tls_cert' is not read by this extension, so it is ignored: did you mean verify_tls_certificate?",
                "template or instance detail 'template_type' = 'tempalte' is not one of template, iso: did you mean template?",
                "action parameter 'snap_nmae' is not read by this extension, so it is ignored: did you mean snap_name?",
            ]
        );
    }

    #[test]
    fn no_alarm_on_cloudstack_keys_or_valid_values() {
        let found = scan_json(
            r#"{"externaldetails":{
                "host":{"url":"x","node":"pve1","verify_tls_certificate":"yes","log_level":"DEBUG"},
                "resourcemap":{"somekey":"somevalue"},"action":{"somedetail":"x"},
                "virtualmachine":{"template_type":"ISO","cloudstack.vlan":"vlan://untagged","note":"x"}},
              "cloudstack.vm.details":{"details":{"deployvm":"true","cpuOvercommitRatio":"2.0",
                "memoryOvercommitRatio":"1.0","Message.ReservedCapacityFreed.Flag":"false","rootdisksize":"8",
                "External:template_type":"iso","External:note":"x","nicAdapter":"e1000","proxmox_vmid":"100"}}}"#,
        );
        assert_eq!(found, Vec::<String>::new());
    }
}
