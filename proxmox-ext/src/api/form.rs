//! Request parameters on the wire: typed parameter structs ([`super::params`]) become an
//! `application/x-www-form-urlencoded` body or query string here, and nowhere else.

use serde::Serialize;
use serde_json::Value;

use crate::transport::{Delivery, TransportError, TransportErrorKind};

/// Percent-encodes one path segment or form value (RFC 3986 unreserved characters stay).
pub(super) fn encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// An `application/x-www-form-urlencoded` body (also used as a query string), in the order of
/// the parameter struct's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// The parameters of `params`, a struct of scalars: `None` is left out, booleans become
    /// PVE's `1`/`0`, numbers and strings their text.
    pub(super) fn of(params: &impl Serialize) -> Result<Form, TransportError> {
        let unusable = |detail: String| {
            TransportError::new(
                TransportErrorKind::Setup,
                Delivery::NotSent,
                format!("request parameters {detail}"),
            )
        };
        let object = match serde_json::to_value(params) {
            Ok(Value::Object(object)) => object,
            Ok(other) => return Err(unusable(format!("are not a struct: {other}"))),
            Err(e) => return Err(unusable(e.to_string())),
        };
        let mut pairs = Vec::with_capacity(object.len());
        for (key, value) in object {
            let text = match value {
                Value::Null => continue,
                Value::Bool(flag) => if flag { "1" } else { "0" }.to_owned(),
                Value::Number(n) => n.to_string(),
                Value::String(s) => s,
                other => return Err(unusable(format!("hold a nested value at '{key}': {other}"))),
            };
            pairs.push((key, text));
        }
        Ok(Form { pairs })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub(super) fn encode(&self) -> String {
        self.pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Params<'a> {
        net0: &'a str,
        full: bool,
        storage: Option<&'a str>,
        #[serde(rename = "forceStop")]
        force_stop: bool,
        timeout: u64,
        description: &'a str,
    }

    #[test]
    fn encodes_path_segments_and_forms() {
        assert_eq!(
            encode("UPID:pve1:000003E9:00001B5F:6B0128C0:qmclone:9000:root@pam!cs:"),
            "UPID%3Apve1%3A000003E9%3A00001B5F%3A6B0128C0%3Aqmclone%3A9000%3Aroot%40pam%21cs%3A"
        );
        assert_eq!(encode("pve-node_1.x~"), "pve-node_1.x~");
        let form = Form::of(&Params {
            net0: "virtio=02:01:00:CC:00:01,bridge=vmbr1,tag=1577",
            full: false,
            storage: None,
            force_stop: true,
            timeout: 60,
            description: "a b&c=d",
        })
        .unwrap();
        assert_eq!(
            form.encode(),
            "net0=virtio%3D02%3A01%3A00%3ACC%3A00%3A01%2Cbridge%3Dvmbr1%2Ctag%3D1577&full=0&forceStop=1&timeout=60&description=a%20b%26c%3Dd"
        );
    }

    #[test]
    fn nested_values_are_refused_before_sending() {
        #[derive(Serialize)]
        struct Nested {
            list: Vec<u8>,
        }
        let err = Form::of(&Nested { list: vec![1] }).unwrap_err();
        assert_eq!(
            (err.kind, err.delivery),
            (TransportErrorKind::Setup, Delivery::NotSent)
        );
    }
}
