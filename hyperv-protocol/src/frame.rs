//! The framed result line: scripts print `HVX1:<invocation id>:{json}`; the LAST line framed
//! with this invocation's id wins. Login messages (MOTD) and anything else may reach stdout
//! before it, and only our script knows the id (it came in its data blob).

use serde_json::{Map, Value};

const FRAME: &str = "HVX1:";

/// A successful script's result object (its `ok` field was `true`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply(pub Map<String, Value>);

impl Reply {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.0.get(key).and_then(Value::as_bool)
    }

    /// An array field; also unwraps Windows PowerShell 5.1's `{"value":[..],"Count":n}`.
    pub fn array(&self, key: &str) -> Option<&Vec<Value>> {
        match self.0.get(key)? {
            Value::Array(items) => Some(items),
            Value::Object(o) => o.get("value").and_then(Value::as_array),
            Value::Null => None,
            _ => None,
        }
    }

    pub fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.0.get(key).and_then(Value::as_object)
    }
}

/// A script that ran and reported a failure (`ok` false), with its stable code.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: String,
    pub detail: Option<String>,
    pub fields: Map<String, Value>,
}

impl Failure {
    pub fn count(&self) -> Option<u64> {
        self.fields.get("detail").and_then(Value::as_u64)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {}", self.code, detail),
            None => f.write_str(&self.code),
        }
    }
}

/// stdout did not carry a usable result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// No line framed with our id (PowerShell did not start, was killed, printed garbage).
    Missing,
    /// The last framed line is not a JSON object with a boolean `ok`.
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

/// Finds the last line framed with `id` in `stdout` and splits it into success or failure.
pub fn parse_reply(stdout: &[u8], id: &str) -> Result<Result<Reply, Failure>, ReplyError> {
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
    match fields.remove("ok") {
        Some(Value::Bool(true)) => Ok(Ok(Reply(fields))),
        Some(Value::Bool(false)) => {
            let code = match fields.get("code") {
                Some(Value::String(c)) if !c.is_empty() => c.clone(),
                _ => return Err(ReplyError::Malformed("failure without a code".into())),
            };
            let detail = match fields.get("detail") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            Ok(Err(Failure {
                code,
                detail,
                fields,
            }))
        }
        _ => Err(ReplyError::Malformed("no boolean 'ok'".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_framed_with_our_id_wins_over_motd_and_decoys() {
        let out =
            b"Welcome\r\nHVX1:{\"ok\":false}\r\nHVX1:ab12:{\"ok\":false,\"code\":\"OLD\"}\r\n\
            noise\r\nHVX1:ab12:{\"ok\":true,\"state\":\"Running\"}\r\n\
            HVX1:ff00:{\"ok\":false,\"code\":\"DECOY\"}\r\n";
        let reply = parse_reply(out, "ab12").unwrap().unwrap();
        assert_eq!(reply.str("state"), Some("Running"));
    }

    #[test]
    fn failure_carries_code_and_detail() {
        let out =
            b"\xef\xbb\xbfHVX1:i:{\"ok\":false,\"code\":\"PS_ERROR\",\"detail\":\"caf\\u00e9\"}\n";
        let failure = parse_reply(out, "i").unwrap().unwrap_err();
        assert_eq!(failure.code, "PS_ERROR");
        assert_eq!(failure.detail.as_deref(), Some("caf\u{e9}"));
        let counted = parse_reply(
            b"HVX1:i:{\"ok\":false,\"code\":\"VM_AMBIGUOUS\",\"detail\":2}",
            "i",
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(counted.count(), Some(2));
    }

    #[test]
    fn missing_or_malformed_frames_are_errors() {
        let missing = |out: &[u8]| parse_reply(out, "i").unwrap_err() == ReplyError::Missing;
        let malformed = |out: &[u8]| matches!(parse_reply(out, "i"), Err(ReplyError::Malformed(_)));
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
    }

    #[test]
    fn arrays_survive_the_5_1_value_count_wrapper() {
        let out = b"HVX1:i:{\"ok\":true,\"a\":{\"value\":[1],\"Count\":1},\"b\":[2]}";
        let reply = parse_reply(out, "i").unwrap().unwrap();
        assert_eq!(reply.array("a").unwrap().len(), 1);
        assert_eq!(reply.array("b").unwrap().len(), 1);
        assert!(reply.array("c").is_none());
    }
}
