//! Result documents, shaped exactly as CloudStack parses them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::payload::Nic;
use crate::redact;

/// A VM power state in CloudStack's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Running (or paused with memory resident).
    On,
    /// Not running.
    Off,
    /// Cannot tell; CloudStack leaves the VM's state alone.
    Unknown,
}

impl PowerState {
    /// `poweron`, `poweroff` or `unknown`: what CloudStack's parser compares against.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "poweron",
            PowerState::Off => "poweroff",
            PowerState::Unknown => "unknown",
        }
    }
}

/// What `prepare` gives back: a JSON merge patch onto the VM transfer object. CloudStack applies
/// only `details`, `vncPassword` and each NIC's `mac`/`ip`/`ip6address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparePatch {
    /// VM details to set (stored verbatim; an unprefixed key later appears only in
    /// `cloudstack.vm.details.details`).
    pub details: BTreeMap<String, String>,
    /// NIC changes.
    pub nics: Vec<NicPatch>,
    /// A new VNC password.
    pub vnc_password: Option<String>,
}

/// A change to one NIC. Both `uuid` (network UUID, used by the array merge) and `nicUuid` (used
/// to match NIC rows) are echoed so every CloudStack version finds the NIC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicPatch {
    /// The network UUID, echoed from the NIC.
    pub uuid: Option<String>,
    /// The NIC UUID, echoed from the NIC.
    pub nic_uuid: Option<String>,
    /// A new MAC address.
    pub mac: Option<String>,
    /// A new IPv4 address.
    pub ip: Option<String>,
    /// A new IPv6 address, written as `ip6address`: the key CloudStack's `NetworkTO` has (a
    /// patch spelling it `ip6Address` would be merged in and then ignored).
    pub ip6_address: Option<String>,
}

impl NicPatch {
    /// A patch addressing `nic`, changing nothing yet.
    pub fn for_nic(nic: &Nic) -> NicPatch {
        NicPatch {
            uuid: nic.uuid.clone(),
            nic_uuid: nic.nic_uuid.clone(),
            ..NicPatch::default()
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        let fields = [
            ("uuid", &self.uuid),
            ("nicUuid", &self.nic_uuid),
            ("mac", &self.mac),
            ("ip", &self.ip),
            ("ip6address", &self.ip6_address),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                m.insert(key.to_owned(), Value::String(v.clone()));
            }
        }
        Value::Object(m)
    }
}

/// How to reach a VM's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// A VNC endpoint the console proxy connects to.
    Vnc {
        /// Address the console proxy connects to.
        host: String,
        /// VNC port.
        port: u16,
        /// VNC password or ticket.
        password: String,
        /// The password is a one-time ticket.
        one_time: bool,
    },
    /// A URL shown to the user; `protocol` is `direct`, `link` or `url`.
    Url {
        /// The URL.
        url: String,
        /// `direct`, `link` or `url`.
        protocol: String,
    },
}

/// A successful result document.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    body: Map<String, Value>,
}

impl Response {
    fn success_body() -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("status".into(), "success".into());
        body
    }

    /// `{"status":"success","message":...}`.
    pub fn success(message: impl Into<String>) -> Response {
        let mut body = Response::success_body();
        body.insert("message".into(), Value::String(message.into()));
        Response { body }
    }

    /// `{"status":"success","power_state":"poweron"}` for `status`.
    pub fn power(state: PowerState) -> Response {
        let mut body = Response::success_body();
        body.insert("power_state".into(), state.as_str().into());
        Response { body }
    }

    /// `{"status":"success","power_state":{"i-2-45-VM":"poweron",...}}` for `statuses`. Keys
    /// must be CloudStack instance names.
    pub fn statuses(states: impl IntoIterator<Item = (String, PowerState)>) -> Response {
        let map: Map<String, Value> = states
            .into_iter()
            .map(|(name, state)| (name, Value::from(state.as_str())))
            .collect();
        let mut body = Response::success_body();
        body.insert("power_state".into(), Value::Object(map));
        Response { body }
    }

    /// The merge patch answered to `prepare`, and nothing else (any other key would be merged
    /// into the VM transfer object too).
    pub fn prepare(patch: PreparePatch) -> Response {
        let mut body = Map::new();
        if !patch.details.is_empty() {
            body.insert("details".into(), json!(patch.details));
        }
        if !patch.nics.is_empty() {
            let nics = patch.nics.iter().map(NicPatch::to_json).collect();
            body.insert("nics".into(), Value::Array(nics));
        }
        if let Some(pw) = patch.vnc_password {
            body.insert("vncPassword".into(), Value::String(pw));
        }
        Response { body }
    }

    /// `{"status":"success","console":{...}}` for `getconsole`.
    pub fn console(console: Console) -> Response {
        let console = match console {
            Console::Vnc {
                host,
                port,
                password,
                one_time,
            } => {
                redact::register(&password);
                json!({"host": host, "port": port, "password": password,
                       "passwordonetimeuseonly": one_time, "protocol": "vnc"})
            }
            Console::Url { url, protocol } => json!({"url": url, "protocol": protocol}),
        };
        let mut body = Response::success_body();
        body.insert("console".into(), console);
        Response { body }
    }

    /// A table the CloudStack UI renders: `"printmessage":"true"` and a `message` array of
    /// objects (one per row; the first row's keys are the header).
    pub fn table(rows: Vec<Value>) -> Response {
        let mut body = Response::success_body();
        body.insert("printmessage".into(), "true".into());
        body.insert("message".into(), Value::Array(rows));
        Response { body }
    }

    /// Adds or replaces a top-level field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Response {
        self.body.insert(key.to_owned(), value.into());
        self
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Value {
        Value::Object(self.body.clone())
    }

    /// The document as the runner prints it: compact, ASCII-only JSON text (what
    /// [`crate::output::to_ascii_json`] makes of [`Response::to_json`], without the copy).
    pub fn to_ascii_json(&self) -> String {
        crate::output::map_to_ascii_json(&self.body)
    }

    /// A field of the document.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }
}

/// The failure document: `{"status":"error","error":...}`.
pub fn error_document(message: &str) -> Value {
    json!({"status": "error", "error": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_as_its_json() {
        let response = Response::statuses([
            ("i-2-45-VM".to_string(), PowerState::On),
            ("i-2-46-VM".to_string(), PowerState::Off),
        ])
        .with("message", "caf\u{e9} \u{1f600}");
        assert_eq!(
            response.to_ascii_json(),
            crate::output::to_ascii_json(&response.to_json())
        );
        assert!(response.to_ascii_json().is_ascii());
    }

    #[test]
    fn shapes() {
        assert_eq!(
            Response::statuses([("i-2-45-VM".to_string(), PowerState::On)]).to_json(),
            json!({"status":"success","power_state":{"i-2-45-VM":"poweron"}})
        );
        let nic = Nic {
            uuid: Some("net".into()),
            nic_uuid: Some("nic".into()),
            ..Nic::default()
        };
        let patch = PreparePatch {
            details: [("proxmox_vmid".to_string(), "103".to_string())].into(),
            nics: vec![NicPatch {
                mac: Some("52:54:00:ab:cd:ef".into()),
                ..NicPatch::for_nic(&nic)
            }],
            vnc_password: None,
        };
        assert_eq!(
            Response::prepare(patch).to_json(),
            json!({"details":{"proxmox_vmid":"103"},
                   "nics":[{"uuid":"net","nicUuid":"nic","mac":"52:54:00:ab:cd:ef"}]})
        );
        let ipv6 = PreparePatch {
            nics: vec![NicPatch {
                ip6_address: Some("fd00::5".into()),
                ..NicPatch::for_nic(&nic)
            }],
            ..PreparePatch::default()
        };
        assert_eq!(
            Response::prepare(ipv6).to_json(),
            json!({"nics":[{"uuid":"net","nicUuid":"nic","ip6address":"fd00::5"}]}),
            "CloudStack's spelling of the key"
        );
        assert_eq!(
            Response::prepare(PreparePatch::default()).to_json(),
            json!({})
        );
        assert_eq!(
            Response::console(Console::Vnc {
                host: "192.0.2.11".into(),
                port: 5901,
                password: "PVEVNC:ticket".into(),
                one_time: true
            })
            .to_json(),
            json!({"status":"success","console":{"host":"192.0.2.11","port":5901,
                   "password":"PVEVNC:ticket","passwordonetimeuseonly":true,"protocol":"vnc"}})
        );
        assert_eq!(
            Response::table(vec![json!({"name":"a"})])
                .with("count", 1)
                .to_json(),
            json!({"status":"success","printmessage":"true","message":[{"name":"a"}],"count":1})
        );
    }
}
