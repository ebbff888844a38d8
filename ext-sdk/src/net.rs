//! Addressing shared by every hypervisor: VLANs from CloudStack broadcast URIs, MAC addresses
//! in the forms hypervisors want, `host[:port]` with IPv6 in brackets, and DNS names.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Why a NIC's network settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The broadcast URI names a VLAN outside 1..=4094 or is not a number.
    InvalidVlan(String),
    /// The broadcast URI uses a scheme other than `vlan://` (e.g. `vxlan://`).
    UnsupportedIsolation(String),
    /// The MAC address is malformed, multicast or all zero.
    InvalidMac(String, &'static str),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::InvalidVlan(uri) => write!(
                f,
                "invalid VLAN in broadcast URI '{uri}': expected vlan://<1-4094> or vlan://untagged"
            ),
            NetError::UnsupportedIsolation(uri) => write!(
                f,
                "unsupported network isolation '{uri}': only VLAN (vlan://N, vlan://untagged) networks can be attached"
            ),
            NetError::InvalidMac(mac, why) => write!(f, "invalid MAC address '{mac}': {why}"),
        }
    }
}

impl std::error::Error for NetError {}

/// The VLAN a NIC attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vlan {
    /// No tag: `vlan://untagged` (any case), an empty URI, or no URI at all.
    Untagged,
    /// An 802.1Q tag, always in 1..=4094.
    Tag(u16),
}

impl Vlan {
    /// Reads a CloudStack `broadcastUri` such as `vlan://1577` or `vlan://untagged`.
    ///
    /// A bare number (`"1577"`) is accepted too. Any other scheme is refused rather than
    /// guessed at, so a NIC is never silently put on the wrong network.
    pub fn from_broadcast_uri(uri: Option<&str>) -> Result<Vlan, NetError> {
        let Some(raw) = uri.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Vlan::Untagged);
        };
        let value = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("vlan") => rest,
            Some(_) => return Err(NetError::UnsupportedIsolation(raw.to_owned())),
            None => raw,
        };
        if value.eq_ignore_ascii_case("untagged") {
            return Ok(Vlan::Untagged);
        }
        match value.parse::<u16>() {
            Ok(tag @ 1..=4094) => Ok(Vlan::Tag(tag)),
            _ => Err(NetError::InvalidVlan(raw.to_owned())),
        }
    }

    /// The tag, if any.
    pub fn tag(self) -> Option<u16> {
        match self {
            Vlan::Untagged => None,
            Vlan::Tag(t) => Some(t),
        }
    }
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit (lowest bit of the first octet) is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }

    /// Whether all octets are zero (Hyper-V's "unset").
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Lower-case colon form, `02:01:00:cc:00:01` (Proxmox, CloudStack).
    pub fn to_colon_string(&self) -> String {
        let o = self.0;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }

    /// Twelve upper-case hex digits, `020100CC0001` (Hyper-V).
    pub fn to_bare_upper(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Parses and insists on an address usable for a VM NIC: unicast and not all zero.
    pub fn parse_nic(text: &str) -> Result<MacAddress, NetError> {
        let mac: MacAddress = text.parse()?;
        if mac.is_zero() {
            return Err(NetError::InvalidMac(text.to_owned(), "all-zero address"));
        }
        if !mac.is_unicast() {
            return Err(NetError::InvalidMac(
                text.to_owned(),
                "multicast address (lowest bit of the first octet is set)",
            ));
        }
        Ok(mac)
    }
}

impl FromStr for MacAddress {
    type Err = NetError;

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and `aabbccddeeff`, any case.
    fn from_str(text: &str) -> Result<Self, NetError> {
        let bad = |why| NetError::InvalidMac(text.to_owned(), why);
        let trimmed = text.trim();
        let hex: String = if trimmed.contains([':', '-']) {
            let parts: Vec<&str> = trimmed.split([':', '-']).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return Err(bad("expected six two-digit hex groups"));
            }
            parts.concat()
        } else {
            trimmed.to_owned()
        };
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected 12 hex digits"));
        }
        let mut octets = [0u8; 6];
        for (i, octet) in octets.iter_mut().enumerate() {
            *octet = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("not hex"))?;
        }
        Ok(MacAddress(octets))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_colon_string())
    }
}

/// Whether `label` is one DNS label (RFC 1123): 1 to 63 letters, digits and '-', not starting
/// or ending with '-'.
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Whether `name` is a DNS name: at most 253 characters of dot-separated [DNS
/// labels](is_dns_label).
pub fn is_dns_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A host and an optional port as operators write them: `hv1`, `hv1:2222`, `192.0.2.5:22`,
/// `[2001:db8::1]:8006`, `[2001:db8::1]`. The host is an IP address or a DNS name; an IPv6
/// address stands in brackets, as in URLs (RFC 3986), since its colons would otherwise be
/// taken for a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or address; an IPv6 address without brackets.
    pub host: String,
    /// The port, when one was given (never 0).
    pub port: Option<u16>,
}

impl HostPort {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("unclosed '[' in an IPv6 address")?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(format!(
                    "'[{}]' is not an IPv6 address",
                    host.escape_debug()
                ));
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("expected ':port' after ']'")?,
                    ),
                ),
            }
        } else {
            match text.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(
                        "write an IPv6 address in brackets, e.g. [2001:db8::1] or [2001:db8::1]:22"
                            .to_owned(),
                    );
                }
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err("no host name".to_owned());
        }
        if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
            return Err(format!(
                "'{}' is not a host name or IP address",
                host.escape_debug()
            ));
        }
        let port =
            match port {
                None => None,
                Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                    format!("'{}' is not a port number (1-65535)", p.escape_debug())
                })?),
            };
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// The host as it stands before a port: an IPv6 address in brackets.
    pub fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for HostPort {
    /// `host`, `host:port`, `[v6]:port`: what [`HostPort::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bracketed_host())?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_and_labels() {
        for good in ["pve1", "pve-1", "i-2-45-VM", "9lives", "web01.example.net"] {
            assert!(is_dns_name(good), "{good}");
        }
        assert!(is_dns_label(&"x".repeat(63)));
        for bad in [
            "",
            "-pve",
            "pve-",
            "pve_1",
            "a b",
            "a..b",
            "a.",
            "\u{e9}",
            &"x".repeat(64),
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(!is_dns_name(&["abc"; 64].join(".")), "over 253 characters");
        assert!(!is_dns_label("a.b"));
    }

    #[test]
    fn host_and_port_forms() {
        let hp = |host: &str, port: Option<u16>| HostPort {
            host: host.to_owned(),
            port,
        };
        for (text, want) in [
            ("hv1", hp("hv1", None)),
            (" hv1.example.net:2222 ", hp("hv1.example.net", Some(2222))),
            ("192.0.2.5:22", hp("192.0.2.5", Some(22))),
            ("[2001:db8::1]:8006", hp("2001:db8::1", Some(8006))),
            ("[fd00::5]", hp("fd00::5", None)),
        ] {
            let parsed = HostPort::parse(text).unwrap();
            assert_eq!(parsed, want, "{text}");
            assert_eq!(
                HostPort::parse(&parsed.to_string()),
                Ok(want),
                "{text} round trip"
            );
        }
        assert_eq!(hp("2001:db8::1", Some(22)).to_string(), "[2001:db8::1]:22");
        assert_eq!(hp("2001:db8::1", None).bracketed_host(), "[2001:db8::1]");
        for (bad, why) in [
            ("", "no host name"),
            (":22", "no host name"),
            ("hv1:0", "not a port number"),
            ("hv1:99999", "not a port number"),
            ("hv1:abc", "not a port number"),
            ("2001:db8::1", "in brackets"),
            ("[::1", "unclosed"),
            ("[hv1]:22", "not an IPv6 address"),
            ("[::1]22", "expected ':port'"),
            ("hv 1", "not a host name"),
            ("hv1;rm", "not a host name"),
            ("-x", "not a host name"),
        ] {
            let err = HostPort::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn vlan_forms() {
        assert_eq!(
            Vlan::from_broadcast_uri(Some("vlan://1577")),
            Ok(Vlan::Tag(1577))
        );
        assert_eq!(
            Vlan::from_broadcast_uri(Some("VLAN://12")),
            Ok(Vlan::Tag(12))
        );
        assert_eq!(
            Vlan::from_broadcast_uri(Some("vlan://uNtAGGED")),
            Ok(Vlan::Untagged)
        );
        assert_eq!(Vlan::from_broadcast_uri(Some("")), Ok(Vlan::Untagged));
        assert_eq!(Vlan::from_broadcast_uri(None), Ok(Vlan::Untagged));
        assert_eq!(Vlan::from_broadcast_uri(Some("42")), Ok(Vlan::Tag(42)));
        for bad in [
            "vlan://0",
            "vlan://4095",
            "vlan://abc",
            "vlan://-1",
            "vlan://",
        ] {
            assert!(
                matches!(
                    Vlan::from_broadcast_uri(Some(bad)),
                    Err(NetError::InvalidVlan(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Vlan::from_broadcast_uri(Some("vxlan://5000")),
            Err(NetError::UnsupportedIsolation(_))
        ));
    }

    #[test]
    fn mac_forms() {
        let mac: MacAddress = "02:01:00:CC:00:01".parse().unwrap();
        assert_eq!(mac.to_colon_string(), "02:01:00:cc:00:01");
        assert_eq!(mac.to_bare_upper(), "020100CC0001");
        assert_eq!("02-01-00-cc-00-01".parse::<MacAddress>().unwrap(), mac);
        assert_eq!("020100cc0001".parse::<MacAddress>().unwrap(), mac);
        assert!("02:01:00:cc:00".parse::<MacAddress>().is_err());
        assert!("0201:00:cc:00:01:02".parse::<MacAddress>().is_err());
        assert!("zz:01:00:cc:00:01".parse::<MacAddress>().is_err());
        assert!(MacAddress::parse_nic("25:b6:84:17:8c:63").is_err());
        assert!(MacAddress::parse_nic("00:00:00:00:00:00").is_err());
        assert!(MacAddress::parse_nic("52:54:00:ab:cd:ef").is_ok());
    }
}
