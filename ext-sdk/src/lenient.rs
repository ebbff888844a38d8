//! Lenient value parsing.
//!
//! CloudStack versions disagree on JSON types (a number here, a numeric string there, details
//! maps that are always strings, booleans spelled `"true"` or `true`). Every conversion in the
//! payload model goes through these helpers so one rule applies everywhere: accept what any
//! CloudStack version sends, reject anything else with a message naming the expected type.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::Value;

/// Parses a boolean the way operators and CloudStack write them.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Parses an unsigned integer from decimal text; `"512.0"` style integral floats are accepted.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the float is checked to be whole and in range first"
)]
pub fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f = text.parse::<f64>().ok()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64).then_some(f as u64)
}

/// Parses a signed integer from decimal text; integral floats are accepted.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the float is checked to be whole and in range first"
)]
pub fn parse_i64(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let f = text.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64)
        .then_some(f as i64)
}

/// Short description of a JSON value's type, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Renders a scalar as the string CloudStack would have stored; `None` for null and containers.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truncated(value: &Value) -> String {
    crate::text::truncate(&value.to_string(), 40).into_owned()
}

/// An optional string; numbers and booleans are rendered as text.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(None),
        // Moved, not copied: a node listing holds thousands of these.
        Value::String(s) => Ok(Some(s)),
        ref v => scalar_text(v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a string, found {}", kind(v)))),
    }
}

/// An optional scalar: null or a blank string is `None`; anything else must be what `read`
/// accepts, else the error names `expected` and quotes the value.
fn optional_scalar<'de, D: Deserializer<'de>, T>(
    d: D,
    expected: &str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(d)?;
    match &value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        v => read(v).map(Some).ok_or_else(|| {
            D::Error::custom(format!("expected {expected}, found {}", truncated(&value)))
        }),
    }
}

/// An optional unsigned integer given as a number or a numeric string.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    optional_scalar(
        d,
        "a non-negative whole number or numeric string",
        |value| match value {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().and_then(|f| parse_u64(&f.to_string()))),
            Value::String(s) => parse_u64(s),
            _ => None,
        },
    )
}

/// An optional `u32` given as a number or a numeric string.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match opt_u64(d)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("number {n} is out of range"))),
    }
}

/// An optional signed integer given as a number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    optional_scalar(d, "a whole number or numeric string", |value| match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(|f| parse_i64(&f.to_string()))),
        Value::String(s) => parse_i64(s),
        _ => None,
    })
}

/// An optional boolean: `true`, `"true"`, `"yes"`, `"1"`, `1`, and their negatives.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    optional_scalar(
        d,
        "true/false (or \"yes\"/\"no\", 1/0)",
        |value| match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) => parse_bool(s),
            _ => None,
        },
    )
}

/// A string→string details map. Absent or null is empty; scalar values become text; nested
/// containers are kept as their JSON text and nulls are dropped.
pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => Ok(map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let text = scalar_text(&v).unwrap_or_else(|| v.to_string());
                (k, text)
            })
            .collect()),
        ref v => Err(D::Error::custom(format!(
            "expected an object of details, found {}",
            kind(v)
        ))),
    }
}

/// A name→value map kept as JSON values (custom-action parameters keep their types).
pub fn value_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        ref v => Err(D::Error::custom(format!(
            "expected an object, found {}",
            kind(v)
        ))),
    }
}

/// A struct that may be absent or null, defaulting to empty.
pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list that may be absent or null, defaulting to empty.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["true", "TRUE", " yes ", "1", "on"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "No", "0", "off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn integers_from_text_and_integral_floats() {
        assert_eq!(parse_u64("536870912"), Some(536_870_912));
        assert_eq!(parse_u64("512.0"), Some(512));
        assert_eq!(parse_u64("512.5"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1e400"), None);
        assert_eq!(parse_i64("-7"), Some(-7));
    }
}
