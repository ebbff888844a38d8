//! NIC addressing shared by every hypervisor: VLANs from CloudStack broadcast URIs and MAC
//! addresses in the forms hypervisors want.

use std::fmt;
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

#[cfg(test)]
mod tests {
    use super::*;

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
