//! The payload file CloudStack writes for every invocation (argv\[2\]).
//!
//! The model follows what CloudStack 4.21+ serialises (Gson: nulls omitted, HTML-escaped
//! strings, string→string details maps) and is lenient where versions differ: numbers may be
//! numeric strings, booleans may be `"true"`/`"yes"`/`"1"`, absent or null maps are empty and
//! unknown keys are ignored. Reading a payload never panics; a wrong type is reported with the
//! JSON path of the offending field.
//!
//! This module only models the document; reading settings out of it is [`crate::details`]'s
//! job, which depends on this module and not the other way round.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::lenient;
use crate::net::{NetError, Vlan};
use crate::redact::Secret;

/// Payload files larger than this are refused: real ones are a few KiB (details values are
/// limited to 255 characters), so a larger file is a mistake, and reading it would only delay
/// the answer.
pub const MAX_PAYLOAD_BYTES: u64 = 4 * 1024 * 1024;

/// Why a payload could not be read.
#[derive(Debug)]
pub enum PayloadError {
    /// The file could not be opened or read.
    Io {
        /// The payload path.
        path: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The path exists but is not a regular file.
    NotAFile {
        /// The payload path.
        path: String,
    },
    /// The file is empty.
    Empty {
        /// The payload path.
        path: String,
    },
    /// The file is larger than [`MAX_PAYLOAD_BYTES`].
    TooLarge {
        /// The payload path.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The content is not valid JSON.
    Json {
        /// The payload path.
        path: String,
        /// The parser's error, with line and column.
        error: serde_json::Error,
    },
    /// The JSON is valid but not an object at the top level.
    NotAnObject {
        /// The payload path.
        path: String,
        /// What was found instead, e.g. "an array".
        found: &'static str,
    },
    /// A field has a type no CloudStack version sends.
    Field {
        /// The payload path.
        path: String,
        /// The JSON path of the field, e.g. `cloudstack.vm.details.cpus`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Io { path, error } => {
                write!(f, "cannot read payload file '{path}': {error}")
            }
            PayloadError::NotAFile { path } => {
                write!(f, "payload path '{path}' is not a regular file")
            }
            PayloadError::Empty { path } => write!(
                f,
                "payload file '{path}' is empty: CloudStack writes a JSON object there"
            ),
            PayloadError::TooLarge { path, size } => write!(
                f,
                "payload file '{path}' is {size} bytes, more than the {MAX_PAYLOAD_BYTES}-byte limit: it is not a CloudStack payload"
            ),
            PayloadError::Json { path, error } => {
                write!(f, "payload file '{path}' is not valid JSON: {error}")
            }
            PayloadError::NotAnObject { path, found } => write!(
                f,
                "payload file '{path}' must hold a JSON object, found {found}"
            ),
            PayloadError::Field {
                path,
                field,
                message,
            } => write!(f, "payload file '{path}': field '{field}': {message}"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Everything CloudStack passes to one invocation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Payload {
    /// The calling account (4.22+, top level; absent in background contexts).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub caller: Option<Caller>,
    /// Details from the host, cluster mapping, extension, VM and custom action.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub externaldetails: ExternalDetails,
    /// The VM's UUID, for VM-scoped actions.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub virtualmachineid: Option<String>,
    /// The VM's internal name (`i-2-45-VM`), for VM-scoped actions.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub virtualmachinename: Option<String>,
    /// The serialised `VirtualMachineTO` (`cloudstack.vm.details`).
    #[serde(
        rename = "cloudstack.vm.details",
        default,
        deserialize_with = "lenient::or_default"
    )]
    pub vm: Option<VmDetails>,
    /// The custom action's name, for custom actions.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub action: Option<String>,
    /// Typed custom-action parameters (`true`, `42`, `"text"`).
    #[serde(default, deserialize_with = "lenient::value_map")]
    pub parameters: BTreeMap<String, Value>,
}

/// The account on whose behalf CloudStack runs the action.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Caller {
    /// The account UUID.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    /// The account name, e.g. `admin` or `system`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// The account type, e.g. `ADMIN`.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub account_type: Option<String>,
    /// The role UUID.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub roleid: Option<String>,
    /// The role name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub rolename: Option<String>,
    /// The role type, e.g. `Admin`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub roletype: Option<String>,
}

/// The `externaldetails` sub-maps. CloudStack never merges them; [`crate::Detail`] declares
/// which ones a key is read from and in which order.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalDetails {
    /// Host details (`External:` prefix stripped).
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub host: BTreeMap<String, String>,
    /// Cluster↔extension mapping details.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub resourcemap: BTreeMap<String, String>,
    /// Extension details.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub extension: BTreeMap<String, String>,
    /// Template, offering and instance details (`External:` prefix stripped).
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub virtualmachine: BTreeMap<String, String>,
    /// The custom action's own details.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub action: BTreeMap<String, String>,
}

/// The serialised `VirtualMachineTO`. Only the fields an extension may rely on are modelled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmDetails {
    /// The database id.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub id: Option<i64>,
    /// The internal name, e.g. `i-2-45-VM`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// The VM UUID (same as `virtualmachineid`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub uuid: Option<String>,
    /// CloudStack's state, e.g. `Starting`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub state: Option<String>,
    /// The VM type, e.g. `User`.
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub vm_type: Option<String>,
    /// Number of vCPUs.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub cpus: Option<u32>,
    /// Minimum CPU speed in MHz.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub min_speed: Option<u32>,
    /// Maximum CPU speed in MHz.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub max_speed: Option<u32>,
    /// Bytes.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub min_ram: Option<u64>,
    /// Bytes.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub max_ram: Option<u64>,
    /// CPU architecture, e.g. `x86_64`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub arch: Option<String>,
    /// Boot type, e.g. `UEFI`, when set.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub boot_type: Option<String>,
    /// Boot mode, e.g. `SECURE`, when set.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub boot_mode: Option<String>,
    /// Whether CloudStack HA is enabled.
    #[serde(rename = "enableHA", default, deserialize_with = "lenient::opt_bool")]
    pub enable_ha: Option<bool>,
    /// The VNC password (a secret).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub vnc_password: Option<Secret>,
    /// All VM details (offering, template, instance, and keys written back by `prepare`).
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub details: BTreeMap<String, String>,
    /// The NICs, in device order.
    #[serde(default, deserialize_with = "lenient::list")]
    pub nics: Vec<Nic>,
}

impl VmDetails {
    /// The VM's memory in whole MiB, from `minRam` (bytes), as the upstream samples use it.
    pub fn memory_mib(&self) -> Option<u64> {
        self.min_ram.map(|bytes| bytes / (1024 * 1024))
    }
}

/// One serialised `NicTO`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nic {
    /// 0 for the first NIC.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub device_id: Option<u32>,
    /// The NIC's own UUID (what `prepare` answers are matched by).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub nic_uuid: Option<String>,
    /// The *network's* UUID (`NetworkTO.uuid`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub uuid: Option<String>,
    /// The MAC address CloudStack assigned, e.g. `02:01:00:cc:00:01`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mac: Option<String>,
    /// IPv4 address.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ip: Option<String>,
    /// IPv4 netmask.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub netmask: Option<String>,
    /// IPv4 gateway.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub gateway: Option<String>,
    /// IPv6 address, if any. CloudStack's `NetworkTO` spells the key `ip6address` (its Java
    /// field name, all lower case); read it through [`Nic::ipv6_address`], which also accepts
    /// `ip6Address`.
    #[serde(
        rename = "ip6address",
        default,
        deserialize_with = "lenient::opt_string"
    )]
    pub ip6_address: Option<String>,
    /// `ip6Address`: the spelling this SDK once read and wrote by mistake, still accepted on
    /// input (hand-written payloads, tests); `ip6address` wins when both are present.
    #[serde(
        rename = "ip6Address",
        default,
        deserialize_with = "lenient::opt_string"
    )]
    pub ip6_address_camel_case: Option<String>,
    /// IPv6 gateway (`ip6gateway`).
    #[serde(
        rename = "ip6gateway",
        default,
        deserialize_with = "lenient::opt_string"
    )]
    pub ip6_gateway: Option<String>,
    /// IPv6 prefix, e.g. `fd00::/64` (`ip6cidr`).
    #[serde(rename = "ip6cidr", default, deserialize_with = "lenient::opt_string")]
    pub ip6_cidr: Option<String>,
    /// First IPv6 DNS server (`ip6Dns1`: camel case, unlike the address).
    #[serde(rename = "ip6Dns1", default, deserialize_with = "lenient::opt_string")]
    pub ip6_dns1: Option<String>,
    /// Second IPv6 DNS server (`ip6Dns2`).
    #[serde(rename = "ip6Dns2", default, deserialize_with = "lenient::opt_string")]
    pub ip6_dns2: Option<String>,
    /// e.g. `vlan://1577`, `vlan://untagged`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub broadcast_uri: Option<String>,
    /// e.g. `vlan://1577`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub isolation_uri: Option<String>,
    /// e.g. `Vlan`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub broadcast_type: Option<String>,
    /// The traffic label, e.g. `cloudbr1`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// Whether this is the default NIC.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub default_nic: Option<bool>,
    /// MTU in bytes.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub mtu: Option<u32>,
    /// NIC details (`PromiscuousMode`, `MacAddressChanges`, ...).
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub details: BTreeMap<String, String>,
}

impl Nic {
    /// The VLAN this NIC attaches to, from its broadcast URI.
    pub fn vlan(&self) -> Result<Vlan, NetError> {
        Vlan::from_broadcast_uri(self.broadcast_uri.as_deref())
    }

    /// The NIC's IPv6 address: `ip6address` (CloudStack's spelling), else `ip6Address`.
    pub fn ipv6_address(&self) -> Option<&str> {
        non_empty(&self.ip6_address).or_else(|| non_empty(&self.ip6_address_camel_case))
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The value untouched, unless it is blank.
fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

impl Payload {
    /// Reads and parses a payload file, with the size and shape checks an untrusted file
    /// deserves.
    pub fn from_file(path: &Path) -> Result<Payload, PayloadError> {
        let shown = path.display().to_string();
        let io = |error| PayloadError::Io {
            path: shown.clone(),
            error,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(PayloadError::NotAFile { path: shown });
        }
        if meta.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge {
                path: shown,
                size: meta.len(),
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_PAYLOAD_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge {
                path: shown,
                size: bytes.len() as u64,
            });
        }
        Payload::from_slice(&bytes, &shown)
    }

    /// Parses payload bytes; `origin` names the source in error messages.
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<Payload, PayloadError> {
        // A UTF-8 byte-order mark is tolerated; CloudStack does not write one but editors do.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(PayloadError::Empty {
                path: origin.to_owned(),
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|error| PayloadError::Json {
            path: origin.to_owned(),
            error,
        })?;
        if !value.is_object() {
            return Err(PayloadError::NotAnObject {
                path: origin.to_owned(),
                found: lenient::kind(&value),
            });
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let message = e.inner().to_string();
            PayloadError::Field {
                path: origin.to_owned(),
                field,
                message,
            }
        })
    }

    /// The VM's CloudStack instance name (`virtualmachinename`, else the TO's `name`), exactly
    /// as given: a name that addresses a VM is never trimmed (an extension refuses one with
    /// spaces or matches it byte for byte).
    pub fn vm_name(&self) -> Option<&str> {
        non_blank(&self.virtualmachinename)
            .or_else(|| self.vm.as_ref().and_then(|vm| non_blank(&vm.name)))
    }

    /// The VM's CloudStack UUID (`virtualmachineid`, else the TO's `uuid`), exactly as given.
    pub fn vm_uuid(&self) -> Option<&str> {
        non_blank(&self.virtualmachineid)
            .or_else(|| self.vm.as_ref().and_then(|vm| non_blank(&vm.uuid)))
    }

    /// The NICs of the VM, empty when the payload has none.
    pub fn nics(&self) -> &[Nic] {
        self.vm.as_ref().map(|vm| vm.nics.as_slice()).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_types_and_html_escapes() {
        let p = Payload::from_slice(
            br#"{"externaldetails":{"host":{"secret":"a\u003db","port":22,"on":true,"gone":null}},
                 "cloudstack.vm.details":{"cpus":"2","minRam":"536870912","enableHA":"yes",
                   "nics":[{"deviceId":"0","defaultNic":"true","mac":"02:00:00:00:00:01"}]},
                 "unknown":{"deep":[1,2,3]}}"#,
            "test",
        )
        .unwrap();
        assert_eq!(p.externaldetails.host["secret"], "a=b");
        assert_eq!(p.externaldetails.host["port"], "22");
        assert_eq!(p.externaldetails.host["on"], "true");
        assert!(!p.externaldetails.host.contains_key("gone"));
        let vm = p.vm.as_ref().unwrap();
        assert_eq!(
            (vm.cpus, vm.memory_mib(), vm.enable_ha),
            (Some(2), Some(512), Some(true))
        );
        assert_eq!(vm.nics[0].device_id, Some(0));
        assert_eq!(vm.nics[0].default_nic, Some(true));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = Payload::from_slice(br#"{"cloudstack.vm.details":{"cpus":"many"}}"#, "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloudstack.vm.details.cpus"), "{err}");
        assert!(err.contains("\"many\""), "{err}");
        let err = Payload::from_slice(br#"{"externaldetails":{"host":[1]}}"#, "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("externaldetails.host"), "{err}");
    }

    #[test]
    fn shape_errors() {
        assert!(matches!(
            Payload::from_slice(b"  \n", "p"),
            Err(PayloadError::Empty { .. })
        ));
        assert!(matches!(
            Payload::from_slice(b"[1]", "p"),
            Err(PayloadError::NotAnObject { .. })
        ));
        assert!(matches!(
            Payload::from_slice(b"{", "p"),
            Err(PayloadError::Json { .. })
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            Payload::from_slice(deep.as_bytes(), "p"),
            Err(PayloadError::Json { .. })
        ));
    }

    #[test]
    fn ipv6_keys_in_cloudstacks_spelling_and_the_old_one() {
        let p = Payload::from_slice(
            br#"{"cloudstack.vm.details":{"nics":[
                {"deviceId":0,"ip6address":"fd00::5","ip6gateway":"fd00::1","ip6cidr":"fd00::/64",
                 "ip6Dns1":"fd00::53","ip6Dns2":"fd00::54"},
                {"deviceId":1,"ip6Address":"fd00::6"},
                {"deviceId":2,"ip6address":"fd00::7","ip6Address":"fd00::8"},
                {"deviceId":3,"ip6address":" "}]}}"#,
            "p",
        )
        .unwrap();
        let nics = p.nics();
        assert_eq!(nics[0].ipv6_address(), Some("fd00::5"));
        assert_eq!(
            (
                nics[0].ip6_gateway.as_deref(),
                nics[0].ip6_cidr.as_deref(),
                nics[0].ip6_dns1.as_deref(),
                nics[0].ip6_dns2.as_deref()
            ),
            (
                Some("fd00::1"),
                Some("fd00::/64"),
                Some("fd00::53"),
                Some("fd00::54")
            )
        );
        assert_eq!(nics[1].ipv6_address(), Some("fd00::6"));
        assert_eq!(
            nics[2].ipv6_address(),
            Some("fd00::7"),
            "CloudStack's spelling wins"
        );
        assert_eq!(nics[3].ipv6_address(), None);
    }

    #[test]
    fn vm_identity_falls_back_to_the_transfer_object() {
        let p = Payload::from_slice(
            br#"{"virtualmachinename":" ","cloudstack.vm.details":{"name":"i-2-45-VM","uuid":"u-1"}}"#,
            "p",
        )
        .unwrap();
        assert_eq!(p.vm_name(), Some("i-2-45-VM"));
        assert_eq!(p.vm_uuid(), Some("u-1"));
    }
}
