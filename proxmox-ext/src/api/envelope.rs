//! Reading an answer's `data` as the type the call expects, straight from the body.
//!
//! A successful extjs answer is `{"data": ..., "success": 1}` (the task log adds `total`).
//! [`read`] decodes that in one pass into `T`, skipping every other attribute and never
//! building a JSON tree: a node listing of thousands of VMs costs its `NodeVm`s and nothing
//! more. Anything else takes the generic path, [`read_answer`] and then `T` from its tree:
//! an error answer in any of its shapes, a body that is not an object, `success` false or
//! unusual, a repeated attribute, a `data` that is absent or not a `T`. That path is what
//! every answer took before, so each error keeps its message and each success its value.

use std::fmt;
use std::marker::PhantomData;

use ext_sdk::text::truncate;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, read_answer};
use crate::transport::Response;

/// A successful answer.
#[derive(Debug)]
pub struct Answer<T> {
    pub data: T,
    /// The envelope's `total` (the task log's line count), when it holds one.
    pub total: Option<u64>,
}

/// Reads `response` as an answer whose `data` is a `T`, or the error it reports. `what`
/// names the request in messages; `token_id` is named in authentication errors.
pub fn read<T: DeserializeOwned>(
    response: &Response,
    what: &str,
    token_id: &str,
) -> Result<Answer<T>, Error> {
    // One UTF-8 check of the whole body is cheaper than one per string.
    if (200..300).contains(&response.status)
        && let Ok(body) = std::str::from_utf8(&response.body)
        && let Ok(Envelope {
            data: Some(data),
            success: None | Some(true),
            total,
        }) = serde_json::from_str::<Envelope<T>>(body)
    {
        return Ok(Answer { data, total });
    }
    read_generic(response, what, token_id)
}

/// The generic path: the answer as a JSON tree ([`read_answer`]), then `T` from it.
fn read_generic<T: DeserializeOwned>(
    response: &Response,
    what: &str,
    token_id: &str,
) -> Result<Answer<T>, Error> {
    let data = read_answer(response, what, token_id)?;
    let decoded = T::deserialize(&data).map_err(|e| Error::BadResponse {
        what: what.to_string(),
        detail: format!("{e} in {}", truncate(&data.to_string(), 200)),
    })?;
    let total = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| {
            body.get("total")
                .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
        });
    Ok(Answer {
        data: decoded,
        total,
    })
}

/// The attributes of a successful answer; any surprise fails it (and so takes the generic
/// path), whatever [`read_answer`] would make of it.
struct Envelope<T> {
    data: Option<T>,
    /// Whether `success` is true as PVE writes it (`1`); absent is `None`.
    success: Option<bool>,
    total: Option<u64>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A map only: serde's derive would also take an array for a struct.
        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

struct EnvelopeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<T> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Proxmox API answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            data: None,
            success: None,
            total: None,
        };
        let mut seen_total = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Data if envelope.data.is_none() => envelope.data = Some(map.next_value()?),
                Key::Success if envelope.success.is_none() => {
                    envelope.success = Some(map.next_value::<Success>()?.0);
                }
                Key::Total if !seen_total => {
                    seen_total = true;
                    envelope.total = map.next_value::<Total>()?.0;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                // A tree keeps the last of repeated attributes; leave that to it.
                Key::Data | Key::Success | Key::Total => {
                    return Err(de::Error::custom("repeated attribute"));
                }
            }
        }
        Ok(envelope)
    }
}

/// An attribute name, read without allocating.
enum Key {
    Data,
    Success,
    Total,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "data" => Key::Data,
                    "success" => Key::Success,
                    "total" => Key::Total,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// `success`, true the way [`read_answer`] reads it; a null, array or object fails.
struct Success(bool);

impl<'de> Deserialize<'de> for Success {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SuccessVisitor;
        impl Visitor<'_> for SuccessVisitor {
            type Value = Success;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a success flag")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Success, E> {
                Ok(Success(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Success, E> {
                Ok(Success(v != 0))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Success, E> {
                Ok(Success(v != 0))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Success, E> {
                Ok(Success(v != 0.0))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Success, E> {
                Ok(Success(!matches!(v.trim(), "" | "0" | "false")))
            }
        }
        deserializer.deserialize_any(SuccessVisitor)
    }
}

/// `total`, read as [`read_generic`] reads it: an unsigned number or a string of one; any
/// other number or string is no total, anything else fails.
struct Total(Option<u64>);

impl<'de> Deserialize<'de> for Total {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TotalVisitor;
        impl Visitor<'_> for TotalVisitor {
            type Value = Total;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a line count")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Total, E> {
                Ok(Total(Some(v)))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Total, E> {
                Ok(Total(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Total, E> {
                Ok(Total(None))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Total, E> {
                Ok(Total(v.parse().ok()))
            }
        }
        deserializer.deserialize_any(TotalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeVm;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
        }
    }

    fn typed<T: DeserializeOwned>(status: u16, body: &str) -> Result<Answer<T>, Error> {
        read(
            &response(status, body),
            "GET /nodes/pve1/qemu",
            "root@pam!cs",
        )
    }

    fn generic<T: DeserializeOwned>(status: u16, body: &str) -> Result<Answer<T>, Error> {
        read_generic(
            &response(status, body),
            "GET /nodes/pve1/qemu",
            "root@pam!cs",
        )
    }

    /// Both paths agree: the same data (compared by its debug form) and total, or the same
    /// error message.
    fn same<T: DeserializeOwned + fmt::Debug>(status: u16, body: &str) {
        match (typed::<T>(status, body), generic::<T>(status, body)) {
            (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body}"),
            (a, b) => panic!("{body}: the paths disagree: {a:?} vs {b:?}"),
        }
    }

    #[test]
    fn the_usual_success_is_decoded_in_one_pass() {
        let body = r#"{"data":[{"vmid":101,"name":"i-2-45-VM","status":"running","cpu":0.02,"disks":{"a":[1,{}]},"tags":"cloudstack"},
                        {"vmid":"102","template":1}],"success":1}"#;
        let envelope: Envelope<Vec<NodeVm>> = serde_json::from_str(body).unwrap();
        assert!(envelope.data.is_some() && envelope.success == Some(true));
        let answer: Answer<Vec<NodeVm>> = typed(200, body).unwrap();
        assert_eq!(answer.data.len(), 2);
        assert_eq!(answer.data[0].name.as_deref(), Some("i-2-45-VM"));
        assert_eq!(answer.data[1].vmid, Some(102));
        assert_eq!(answer.data[1].template, Some(true));
        assert_eq!(answer.total, None);
    }

    #[test]
    fn both_paths_agree_on_every_shape() {
        for body in [
            r#"{"data":[],"success":1}"#,
            r#"{"data":[]}"#,
            r#"{"success":1,"data":[{"vmid":7}]}"#,
            r#"{"data":[{"vmid":101}],"success":true}"#,
            r#"{"data":[{"vmid":101}],"success":"1"}"#,
            r#"{"data":[{"vmid":101}],"success":0.5}"#,
            r#"{"data":[{"vmid":101}],"success":0}"#,
            r#"{"data":[{"vmid":101}],"success":"false"}"#,
            r#"{"data":[{"vmid":101}],"success":null}"#,
            r#"{"data":[{"vmid":101}],"success":[1]}"#,
            r#"{"data":null,"success":0,"status":500,"message":"VM 100 not running\n"}"#,
            r#"{"data":null,"success":0,"status":401,"message":"auth"}"#,
            r#"{"data":null,"success":1}"#,
            r#"{"success":1}"#,
            r#"{"data":{"vmid":1},"success":1}"#,
            r#"{"data":[{"vmid":"abc"}],"success":1}"#,
            r#"{"data":[{"vmid":1}],"data":[{"vmid":2}],"success":1}"#,
            r#"{"data":[{"vmid":1,"vmid":2}],"success":1}"#,
            r#"[{"data":[]},1]"#,
            r#"{"data":[],"success":1} trailing"#,
            "not json",
            "<html><title>502 Bad Gateway</title></html>",
            "",
        ] {
            same::<Vec<NodeVm>>(200, body);
            same::<Vec<NodeVm>>(500, body);
            same::<Value>(200, body);
        }
        same::<Vec<NodeVm>>(401, "");
        same::<Vec<NodeVm>>(200, "{\"data\":[{\"name\":\"caf\u{e9}\"}],\"success\":1}");
        let invalid_utf8 = Response {
            status: 200,
            content_type: None,
            body: b"{\"data\":[{\"name\":\"\xff\"}],\"success\":1}".to_vec(),
        };
        let answer: Answer<Vec<NodeVm>> = read(&invalid_utf8, "GET x", "t").unwrap();
        assert_eq!(answer.data[0].name.as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn totals_read_alike() {
        for total in [
            "12", "\"12\"", "\"x\"", "-1", "1.5", "null", "true", "[1]", "{}",
        ] {
            let body = format!(r#"{{"data":[{{"n":1,"t":"x"}}],"success":1,"total":{total}}}"#);
            same::<Vec<crate::model::LogLine>>(200, &body);
        }
        let answer: Answer<Value> = typed(200, r#"{"data":[],"total":"40","success":1}"#).unwrap();
        assert_eq!(answer.total, Some(40));
    }

    #[test]
    fn a_data_of_another_type_names_the_request_and_quotes_it() {
        let err = typed::<Vec<NodeVm>>(200, r#"{"data":{"vmid":1},"success":1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected answer from the Proxmox API for GET /nodes/pve1/qemu: invalid type: map, expected a sequence in {\"vmid\":1}"
        );
    }
}
