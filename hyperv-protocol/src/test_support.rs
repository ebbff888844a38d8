//! For the test host only (feature `test-support`): reading what a client sent back into a
//! script and its data, and which scripts may be run by hand. The product never needs this.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Script;
use crate::script::DATA_PLACEHOLDER;

impl Script {
    /// The script named `name` (as [`Script::name`] gives it).
    pub fn from_name(name: &str) -> Option<Script> {
        Script::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the script only reads (safe to run by hand on a production host). The test
    /// host proves it for every run of these: the state and the files stay as they were.
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Script::Status | Script::Statuses | Script::ListSnapshots | Script::Check
        )
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

/// The script text inside an `-EncodedCommand` argument: base64 of UTF-16LE, the inverse of
/// [`crate::encode_command`].
pub fn decode_command(encoded: &str) -> Result<String, String> {
    if encoded.is_empty()
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err("the -EncodedCommand argument is not one base64 word".into());
    }
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| format!("bad base64: {e}"))?;
    if bytes.len() % 2 != 0 {
        return Err("odd number of bytes: not UTF-16LE".into());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| "not valid UTF-16LE".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_command;
    use serde_json::json;

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

    #[test]
    fn decode_command_inverts_encode_command() {
        let text = "Get-VM \u{e9}\u{1F600}";
        assert_eq!(decode_command(&encode_command(text)).unwrap(), text);
        assert!(decode_command("").is_err());
        assert!(decode_command("QQ== & calc").is_err());
        assert!(decode_command("QUJD").is_err(), "3 bytes are not UTF-16LE");
    }
}
