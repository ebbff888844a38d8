//! The per-operation script constants and the one way data gets into them.
//!
//! A script's text is fixed per operation: fragments from `scripts/` composed at first use.
//! The only variable part is a single-quoted base64 literal of the operation's UTF-8 JSON data
//! (base64's alphabet holds no quote, `$`, backtick or `;`, so no value can become code).

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::ps_quote;

/// Marks where the data literal goes; appears exactly once, in `tail.ps1`.
const DATA_PLACEHOLDER: &str = "__HVX_DATA__";

const HEAD: &str = include_str!("../../scripts/head.ps1");
const RIGHTS: &str = include_str!("../../scripts/rights.ps1");
const FIND: &str = include_str!("../../scripts/find.ps1");
const STOP_VM: &str = include_str!("../../scripts/stop-vm.ps1");
const SNAPSHOT: &str = include_str!("../../scripts/snapshot.ps1");
const TAIL: &str = include_str!("../../scripts/tail.ps1");

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
}

impl Script {
    pub const ALL: [Script; 14] = [
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
        }
    }

    pub fn from_name(name: &str) -> Option<Script> {
        Script::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the script only reads (safe to run by hand on a production host).
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Script::Status | Script::Statuses | Script::ListSnapshots
        )
    }

    fn parts(self) -> &'static [&'static str] {
        match self {
            Script::Create => &[HEAD, RIGHTS, include_str!("../../scripts/create.ps1"), TAIL],
            Script::CleanupCreate => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/cleanup-create.ps1"),
                TAIL,
            ],
            Script::Start => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/start.ps1"),
                TAIL,
            ],
            Script::Stop => &[
                HEAD,
                RIGHTS,
                FIND,
                STOP_VM,
                include_str!("../../scripts/stop.ps1"),
                TAIL,
            ],
            Script::Reboot => &[
                HEAD,
                RIGHTS,
                FIND,
                STOP_VM,
                include_str!("../../scripts/reboot.ps1"),
                TAIL,
            ],
            Script::Delete => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/delete.ps1"),
                TAIL,
            ],
            Script::Status => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/status.ps1"),
                TAIL,
            ],
            Script::Statuses => &[
                HEAD,
                RIGHTS,
                include_str!("../../scripts/statuses.ps1"),
                TAIL,
            ],
            Script::Suspend => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/suspend.ps1"),
                TAIL,
            ],
            Script::Resume => &[
                HEAD,
                RIGHTS,
                FIND,
                include_str!("../../scripts/resume.ps1"),
                TAIL,
            ],
            Script::ListSnapshots => &[
                HEAD,
                RIGHTS,
                FIND,
                SNAPSHOT,
                include_str!("../../scripts/list-snapshots.ps1"),
                TAIL,
            ],
            Script::CreateSnapshot => &[
                HEAD,
                RIGHTS,
                FIND,
                SNAPSHOT,
                include_str!("../../scripts/create-snapshot.ps1"),
                TAIL,
            ],
            Script::RestoreSnapshot => &[
                HEAD,
                RIGHTS,
                FIND,
                SNAPSHOT,
                include_str!("../../scripts/restore-snapshot.ps1"),
                TAIL,
            ],
            Script::DeleteSnapshot => &[
                HEAD,
                RIGHTS,
                FIND,
                SNAPSHOT,
                include_str!("../../scripts/delete-snapshot.ps1"),
                TAIL,
            ],
        }
    }

    /// The composed script text with the data placeholder still in it.
    pub fn template(self) -> &'static str {
        static TEMPLATES: LazyLock<Vec<String>> =
            LazyLock::new(|| Script::ALL.iter().map(|s| compose(s.parts())).collect());
        let index = Script::ALL
            .iter()
            .position(|s| *s == self)
            .expect("listed in ALL");
        &TEMPLATES[index]
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

    fn render_json_bytes(self, json: &[u8]) -> String {
        let literal = ps_quote(&STANDARD.encode(json));
        self.template().replacen(DATA_PLACEHOLDER, &literal, 1)
    }

    /// The inverse of [`Script::render`]: which script `text` is, and its JSON data. `None`
    /// unless `text` is exactly one of our templates with a well-formed base64 literal.
    pub fn identify(text: &str) -> Option<(Script, Vec<u8>)> {
        Script::ALL.into_iter().find_map(|script| {
            let (before, after) = script.template().split_once(DATA_PLACEHOLDER)?;
            let literal = text.strip_prefix(before)?.strip_suffix(after)?;
            let b64 = literal.strip_prefix('\'')?.strip_suffix('\'')?;
            if !b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                return None;
            }
            let json = STANDARD.decode(b64).ok()?;
            (script.render_json_bytes(&json) == text).then_some((script, json))
        })
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
    fn names_round_trip_and_are_unique() {
        for script in Script::ALL {
            assert_eq!(Script::from_name(script.name()), Some(script));
        }
    }

    #[test]
    fn render_then_identify_gives_back_script_and_data() {
        let data = json!({"name": "i-2-45-VM", "snapshot": "a'b$(x)`;\u{2019}\n\u{e9}"});
        for script in Script::ALL {
            let text = script.render(&data, "0a1b2c3d").unwrap();
            let (found, json) = Script::identify(&text).expect("identifies its own text");
            assert_eq!(found, script);
            let mut expected = data.clone();
            expected["id"] = json!("0a1b2c3d");
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
                expected
            );
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

    #[test]
    fn identify_rejects_foreign_or_altered_text() {
        let good = Script::Status.render(&json!({"name": "vm"}), "id").unwrap();
        assert!(Script::identify("Get-VM | Remove-VM -Force").is_none());
        assert!(Script::identify(&format!("{good}\nRemove-VM -Name * -Force")).is_none());
        assert!(Script::identify(&good.replace("Need-Rights;", "")).is_none());
        // A literal with code in it instead of base64.
        let (before, after) = Script::Status
            .template()
            .split_once(DATA_PLACEHOLDER)
            .unwrap();
        assert!(Script::identify(&format!("{before}'abc'+$(Stop-Computer)+'x'{after}")).is_none());
        assert!(Script::identify(&format!("{before}'%%%%'{after}")).is_none());
    }
}
