//! The per-operation script constants and the one way data gets into them.
//!
//! A script's text is fixed per operation: fragments from `scripts/` composed at first use.
//! The only variable part is a single-quoted base64 literal of the operation's UTF-8 JSON data
//! (base64's alphabet holds no quote, `$`, backtick or `;`, so no value can become code).

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::command::ps_quote;

/// Marks where the data literal goes; appears exactly once, in `tail.ps1`.
pub(crate) const DATA_PLACEHOLDER: &str = "__HVX_DATA__";

const HEAD: &str = include_str!("../scripts/head.ps1");
const RIGHTS: &str = include_str!("../scripts/rights.ps1");
const OURS: &str = include_str!("../scripts/ours.ps1");
const FIND: &str = include_str!("../scripts/find.ps1");
const STOP_VM: &str = include_str!("../scripts/stop-vm.ps1");
const SNAPSHOT: &str = include_str!("../scripts/snapshot.ps1");
const TAIL: &str = include_str!("../scripts/tail.ps1");

/// One remote operation; each action runs exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    Create,
    CleanupCreate,
    Start,
    Stop,
    Reboot,
    Delete,
    Status,
    Statuses,
    Suspend,
    Resume,
    ListSnapshots,
    CreateSnapshot,
    RestoreSnapshot,
    DeleteSnapshot,
    /// The read-only preflight of `check`: every fact about the host in one answer.
    Check,
}

impl Script {
    pub const ALL: [Script; 15] = [
        Script::Create,
        Script::CleanupCreate,
        Script::Start,
        Script::Stop,
        Script::Reboot,
        Script::Delete,
        Script::Status,
        Script::Statuses,
        Script::Suspend,
        Script::Resume,
        Script::ListSnapshots,
        Script::CreateSnapshot,
        Script::RestoreSnapshot,
        Script::DeleteSnapshot,
        Script::Check,
    ];

    /// Stable name (the `.ps1` file name without extension).
    pub fn name(self) -> &'static str {
        match self {
            Script::Create => "create",
            Script::CleanupCreate => "cleanup-create",
            Script::Start => "start",
            Script::Stop => "stop",
            Script::Reboot => "reboot",
            Script::Delete => "delete",
            Script::Status => "status",
            Script::Statuses => "statuses",
            Script::Suspend => "suspend",
            Script::Resume => "resume",
            Script::ListSnapshots => "list-snapshots",
            Script::CreateSnapshot => "create-snapshot",
            Script::RestoreSnapshot => "restore-snapshot",
            Script::DeleteSnapshot => "delete-snapshot",
            Script::Check => "check",
        }
    }

    /// The shared fragments the script's own part uses, in order (after `head`).
    fn helpers(self) -> &'static [&'static str] {
        match self {
            Script::Check => &[],
            Script::Create | Script::Statuses => &[RIGHTS],
            Script::CleanupCreate => &[RIGHTS, OURS],
            Script::Start | Script::Delete | Script::Status | Script::Suspend | Script::Resume => {
                &[RIGHTS, OURS, FIND]
            }
            Script::Stop | Script::Reboot => &[RIGHTS, OURS, FIND, STOP_VM],
            Script::ListSnapshots
            | Script::CreateSnapshot
            | Script::RestoreSnapshot
            | Script::DeleteSnapshot => &[RIGHTS, OURS, FIND, SNAPSHOT],
        }
    }

    /// The script's own part: its `Main`.
    fn main(self) -> &'static str {
        match self {
            Script::Create => include_str!("../scripts/create.ps1"),
            Script::CleanupCreate => include_str!("../scripts/cleanup-create.ps1"),
            Script::Start => include_str!("../scripts/start.ps1"),
            Script::Stop => include_str!("../scripts/stop.ps1"),
            Script::Reboot => include_str!("../scripts/reboot.ps1"),
            Script::Delete => include_str!("../scripts/delete.ps1"),
            Script::Status => include_str!("../scripts/status.ps1"),
            Script::Statuses => include_str!("../scripts/statuses.ps1"),
            Script::Suspend => include_str!("../scripts/suspend.ps1"),
            Script::Resume => include_str!("../scripts/resume.ps1"),
            Script::ListSnapshots => include_str!("../scripts/list-snapshots.ps1"),
            Script::CreateSnapshot => include_str!("../scripts/create-snapshot.ps1"),
            Script::RestoreSnapshot => include_str!("../scripts/restore-snapshot.ps1"),
            Script::DeleteSnapshot => include_str!("../scripts/delete-snapshot.ps1"),
            Script::Check => include_str!("../scripts/check.ps1"),
        }
    }

    /// Every fragment of the script, in order.
    fn parts(self) -> Vec<&'static str> {
        // `check` reports missing rights as one fact among others, so it has no Need-Rights.
        let mut parts = vec![HEAD];
        parts.extend_from_slice(self.helpers());
        parts.extend([self.main(), TAIL]);
        parts
    }

    /// The composed script text with the data placeholder still in it.
    pub fn template(self) -> &'static str {
        static TEMPLATES: LazyLock<[String; Script::ALL.len()]> =
            LazyLock::new(|| Script::ALL.map(|s| compose(&s.parts())));
        // `ALL` lists the variants in declaration order (a test checks it).
        &TEMPLATES[self as usize]
    }

    /// The script text for `data` (a JSON object) plus `id`, the invocation id the script
    /// echoes in its result line: the template with the base64 JSON literal filled in.
    pub fn render<T: Serialize>(self, data: &T, id: &str) -> Result<String, serde_json::Error> {
        let mut value = serde_json::to_value(data)?;
        match value.as_object_mut() {
            Some(fields) => {
                fields.insert("id".into(), id.into());
            }
            None => {
                return Err(serde::ser::Error::custom(
                    "script data must be a JSON object",
                ));
            }
        }
        let json = serde_json::to_vec(&value)?;
        Ok(self.render_json_bytes(&json))
    }

    pub(crate) fn render_json_bytes(self, json: &[u8]) -> String {
        let literal = ps_quote(&STANDARD.encode(json));
        self.template().replacen(DATA_PLACEHOLDER, &literal, 1)
    }
}

/// Joins fragments, dropping what PowerShell does not need: comment lines, blank lines and
/// indentation (the scripts use neither here-strings nor multi-line strings).
fn compose(parts: &[&str]) -> String {
    let mut out = String::new();
    for line in parts.iter().flat_map(|p| p.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_has_exactly_one_placeholder_and_no_comments() {
        for script in Script::ALL {
            let t = script.template();
            assert_eq!(t.matches(DATA_PLACEHOLDER).count(), 1, "{}", script.name());
            assert!(t.lines().all(|l| !l.starts_with('#') && !l.is_empty()));
            assert!(t.is_ascii(), "{} must be ASCII", script.name());
            assert!(t.contains("function Main"), "{}", script.name());
        }
    }

    #[test]
    fn all_lists_every_script_in_declaration_order() {
        for (i, script) in Script::ALL.into_iter().enumerate() {
            assert_eq!(script as usize, i, "{}", script.name());
        }
    }

    #[test]
    fn data_must_be_an_object() {
        assert!(Script::Status.render(&json!([1]), "id").is_err());
    }

    #[test]
    fn user_values_never_appear_in_the_script_text() {
        let marker = "INJECTED-VALUE-$(Stop-Computer)";
        let text = Script::CreateSnapshot
            .render(&json!({"snapshot": marker}), "0a1b2c3d")
            .unwrap();
        assert!(!text.contains(marker));
        assert!(!text.contains("Stop-Computer"));
    }
}
