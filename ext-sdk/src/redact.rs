//! Keeping secrets out of logs and error messages.
//!
//! Two complementary mechanisms:
//! - by **value**: every secret that enters the process (secret details, `vncPassword`, console
//!   tickets registered by an extension) is remembered, and [`redact`] replaces any occurrence
//!   of it in a text. This catches secrets wherever they end up, e.g. inside an HTTP error or a
//!   library's debug line, without knowing where they came from.
//! - by **key**: [`redact_json`] blanks the values of secret-looking keys in a JSON document
//!   before it is logged, so secrets too short to be matched by value stay hidden too.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use serde_json::Value;

/// What a redacted secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not matched by value: replacing every "ab" in a log would
/// destroy it. Key-based redaction still hides them in logged JSON.
pub const MIN_SECRET_LEN: usize = 4;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers a secret so that [`redact`] hides it from now on.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// What of `secret` to search for: the value itself and, for a multi-line value (a private
/// key, also one pasted with literal `\n`), each of its lines apart from `-----BEGIN`/`-----END`
/// ones, every piece at least [`MIN_SECRET_LEN`] characters long.
pub fn secret_pieces(secret: &str) -> Vec<&str> {
    let whole = secret.trim();
    let mut pieces = vec![whole];
    if whole.contains(['\n', '\r']) || whole.contains("\\n") {
        pieces.extend(
            whole
                .split(['\n', '\r'])
                .flat_map(|line| line.split("\\n"))
                .map(str::trim)
                .filter(|line| !line.starts_with("-----")),
        );
    }
    pieces.retain(|p| p.chars().count() >= MIN_SECRET_LEN);
    pieces
}

/// Registers `secret` and, for a multi-line one, each of its lines (see [`secret_pieces`]), so
/// that a library quoting one line of a key is masked too.
pub fn register_all(secret: &str) {
    for piece in secret_pieces(secret) {
        register(piece);
    }
}

/// Returns `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = text.to_owned();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// Whether a JSON key names a secret (`password`, `secret`, `vncPassword`, `ticket`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "ticket",
        "private_key",
        "passphrase",
        "privatekey",
    ]
    .iter()
    .any(|needle| key.contains(needle))
}

/// A copy of `value` with secret-keyed values masked and registered secrets redacted.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() {
                        Value::String(MASK.to_owned())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(s) => Value::String(redact(s)),
        other => other.clone(),
    }
}

/// A secret string: registered for redaction when created, and never printed by `Debug` or
/// `Display`. Use [`Secret::expose`] where the real value is needed (an auth header, a console
/// answer).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps and registers a secret.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The secret's real value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret::new(
            crate::lenient::opt_string(d)?.unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registered_values_are_masked_longest_first() {
        register("token-secret-value");
        register("secret");
        assert_eq!(
            redact("auth PVEAPIToken=u!t=token-secret-value failed"),
            "auth PVEAPIToken=u!t=*** failed"
        );
    }

    #[test]
    fn short_values_are_not_matched_by_value_but_hidden_by_key() {
        register("ab");
        assert_eq!(redact("abc"), "abc");
        let v = redact_json(&json!({"password": "ab", "nested": [{"vncPassword": "x"}], "n": 1}));
        assert_eq!(
            v,
            json!({"password": MASK, "nested": [{"vncPassword": MASK}], "n": 1})
        );
    }

    #[test]
    fn multi_line_secrets_are_registered_line_by_line() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nQyNTUxOQAAACBx\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(
            secret_pieces(key),
            [key.trim(), "b3BlbnNzaC1rZXktdjEAAAA", "QyNTUxOQAAACBx"]
        );
        assert_eq!(secret_pieces(&key.replace('\n', "\\n")).len(), 3);
        assert_eq!(secret_pieces("abc"), Vec::<&str>::new());
        register_all(key);
        assert_eq!(redact("bad line QyNTUxOQAAACBx here"), "bad line *** here");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-long");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2-long");
    }
}
