//! The framed result line: scripts print `HVX1:<invocation id>:{json}`; the LAST line framed
//! with this invocation's id wins. Login messages (MOTD) and anything else may reach stdout
//! before it, and only our script knows the id (it came in its data blob). The JSON object
//! has `"ok": true` and the script's answer, or `"ok": false` and a [`Failure`].

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::failure::Failure;

const FRAME: &str = "HVX1:";

/// stdout did not carry a usable result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// No line framed with our id (PowerShell did not start, was killed, printed garbage).
    Missing,
    /// The last framed line is not a JSON object with a boolean `ok` and the fields its
    /// script always sends.
    Malformed(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Missing => f.write_str("the remote PowerShell printed no result line"),
            ReplyError::Malformed(why) => write!(f, "the remote result line is malformed: {why}"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Finds the last line framed with `id` in `stdout` and reads it as a success `R` or a
/// failure.
pub fn parse<R: DeserializeOwned>(
    stdout: &[u8],
    id: &str,
) -> Result<Result<R, Failure>, ReplyError> {
    let text = String::from_utf8_lossy(stdout);
    let prefix = format!("{FRAME}{id}:");
    let framed = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .rev()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .ok_or(ReplyError::Missing)?;
    let value: Value =
        serde_json::from_str(framed).map_err(|e| ReplyError::Malformed(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(ReplyError::Malformed("not a JSON object".into()));
    };
    let ok = fields.remove("ok");
    let malformed = |e: serde_json::Error| ReplyError::Malformed(e.to_string());
    match ok {
        Some(Value::Bool(true)) => serde_json::from_value(Value::Object(fields))
            .map(Ok)
            .map_err(malformed),
        Some(Value::Bool(false)) => serde_json::from_value(Value::Object(fields))
            .map(Err)
            .map_err(|e| ReplyError::Malformed(format!("failure: {e}"))),
        _ => Err(ReplyError::Malformed("no boolean 'ok'".into())),
    }
}

/// How a VM found without its ownership line was adopted, when the script adopted one: the
/// success line's `adopted` field (`Ok` when the line was written, else the error).
pub fn adopted(stdout: &[u8], id: &str) -> Option<Result<(), String>> {
    let text = String::from_utf8_lossy(stdout);
    let prefix = format!("{FRAME}{id}:");
    let framed = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .rev()
        .find_map(|l| l.strip_prefix(prefix.as_str()))?;
    let value: Value = serde_json::from_str(framed).ok()?;
    if value.get("ok") != Some(&Value::Bool(true)) {
        return None;
    }
    match value.get("adopted")? {
        Value::String(s) if s == "ok" => Some(Ok(())),
        Value::String(s) => Some(Err(s.clone())),
        other => Some(Err(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::VmState;

    type Read = Result<Result<VmState, Failure>, ReplyError>;

    fn read(out: &[u8], id: &str) -> Read {
        parse(out, id)
    }

    #[test]
    fn last_line_framed_with_our_id_wins_over_motd_and_decoys() {
        let out =
            b"Welcome\r\nHVX1:{\"ok\":false}\r\nHVX1:ab12:{\"ok\":false,\"code\":\"OLD\"}\r\n\
            noise\r\nHVX1:ab12:{\"ok\":true,\"state\":\"Running\"}\r\n\
            HVX1:ff00:{\"ok\":false,\"code\":\"DECOY\"}\r\n";
        let reply = read(out, "ab12").unwrap().unwrap();
        assert_eq!(reply.state, "Running");
    }

    #[test]
    fn failure_carries_its_code_and_detail() {
        let out = b"\xef\xbb\xbfHVX1:i:{\"ok\":false,\"code\":\"PS_ERROR\",\"detail\":\"caf\\u00e9\",\"fqid\":\"X\"}\n";
        assert_eq!(
            read(out, "i").unwrap().unwrap_err(),
            Failure::PsError {
                message: "caf\u{e9}".into(),
                fqid: "X".into()
            }
        );
        let counted = read(
            b"HVX1:i:{\"ok\":false,\"code\":\"VM_AMBIGUOUS\",\"detail\":2}",
            "i",
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(counted, Failure::VmAmbiguous { count: 2 });
    }

    #[test]
    fn missing_or_malformed_frames_are_errors() {
        let missing = |out: &[u8]| read(out, "i").unwrap_err() == ReplyError::Missing;
        let malformed = |out: &[u8]| matches!(read(out, "i"), Err(ReplyError::Malformed(_)));
        assert!(missing(b""));
        assert!(missing(b"garbage\n{\"ok\":true}"));
        // A frame without our id (a MOTD, another run) is not ours.
        assert!(missing(
            b"HVX1:{\"ok\":true}\nHVX1::{\"ok\":true}\nHVX1:j:{\"ok\":true}"
        ));
        assert!(malformed(b"HVX1:i:{\"ok\":tr"));
        assert!(malformed(b"HVX1:i:[1]"));
        assert!(malformed(b"HVX1:i:{\"ok\":1}"));
        assert!(malformed(b"HVX1:i:{\"ok\":false}"));
        assert!(malformed(b"HVX1:i:{\"ok\":false,\"code\":\"NEW_CODE\"}"));
    }

    #[test]
    fn adoption_is_read_from_a_success_only() {
        assert_eq!(
            adopted(
                b"HVX1:i:{\"ok\":true,\"state\":\"Off\",\"adopted\":\"ok\"}",
                "i"
            ),
            Some(Ok(()))
        );
        assert_eq!(
            adopted(b"HVX1:i:{\"ok\":true,\"adopted\":\"denied\"}", "i"),
            Some(Err("denied".into()))
        );
        assert_eq!(adopted(b"HVX1:i:{\"ok\":true}", "i"), None);
        assert_eq!(
            adopted(b"HVX1:i:{\"ok\":false,\"adopted\":\"ok\"}", "i"),
            None
        );
        assert_eq!(
            adopted(b"HVX1:j:{\"ok\":true,\"adopted\":\"ok\"}", "i"),
            None
        );
    }

    #[test]
    fn a_success_missing_a_field_is_malformed_not_defaulted() {
        let Err(ReplyError::Malformed(why)) = read(b"HVX1:i:{\"ok\":true}", "i") else {
            panic!("accepted a status answer without its state");
        };
        assert!(why.contains("missing field `state`"), "{why}");
    }
}
