//! Settings, read from CloudStack details with the same keys as upstream's `proxmox.py`, so
//! existing CloudStack setups keep working.
//!
//! Connection details (`url`, `user`, `token`, `secret`, `verify_tls_certificate`,
//! `ca_certificate`, `tls_fingerprint`) come from the host, else the extension; `node` and `network_bridge` from
//! the host only; template and instance details (`template_type`, `template_id`, `iso_path`,
//! `iso_os_type`, `disk_size_gb`, `storage`, `is_full_clone`, `vm_name`) from
//! `externaldetails.virtualmachine`; `vmid_range` and `state_dir` (what `prepare` uses to hand
//! out VMIDs) from the host, the cluster mapping or the extension. Each action reads what it needs through one
//! [`DetailReader`], so a misconfigured setup gets one error naming every problem.

use std::fmt;
use std::path::PathBuf;

use ext_sdk::{Detail, DetailReader, Level, Secret};

use crate::transport::TlsMode;

const HOST_OR_EXTENSION: &[Level] = &[Level::Host, Level::Extension];
const VM: &[Level] = &[Level::VirtualMachine];

pub const URL: Detail = Detail::new("url", HOST_OR_EXTENSION)
    .hint("Proxmox API address, e.g. https://pve1:8006 or pve1 (port 8006 by default)");
pub const USER: Detail =
    Detail::new("user", HOST_OR_EXTENSION).hint("owner of the API token, e.g. root@pam");
pub const TOKEN: Detail = Detail::new("token", HOST_OR_EXTENSION)
    .hint("API token id, the part after '!' in user@realm!tokenid");
pub const SECRET: Detail = Detail::new("secret", HOST_OR_EXTENSION)
    .secret()
    .hint("the API token's secret (a UUID)");
pub const NODE: Detail = Detail::new("node", &[Level::Host]).hint("Proxmox node name, e.g. pve1");
pub const NETWORK_BRIDGE: Detail =
    Detail::new("network_bridge", &[Level::Host]).hint("bridge the VM NICs attach to, e.g. vmbr0");
pub const VERIFY_TLS: Detail = Detail::new("verify_tls_certificate", HOST_OR_EXTENSION);
pub const CA_CERTIFICATE: Detail = Detail::new("ca_certificate", HOST_OR_EXTENSION)
    .hint("path to a PEM file to trust, e.g. a copy of the cluster's /etc/pve/pve-root-ca.pem");
pub const TLS_FINGERPRINT: Detail = Detail::new("tls_fingerprint", HOST_OR_EXTENSION).hint(
    "SHA-256 fingerprint of the node's certificate as the Proxmox VE GUI shows it (Node > System > Certificates) or pvenode cert info prints it, e.g. AB:CD:...:EF",
);

/// Where a management server or zone gets its ids from (host, cluster mapping, extension).
const SERVER_OR_ZONE: &[Level] = &[Level::Host, Level::ResourceMap, Level::Extension];
pub const VMID_RANGE: Detail = Detail::new("vmid_range", SERVER_OR_ZONE)
    .hint("the VMIDs prepare may hand out, e.g. 20000-29999: give each management server or zone deploying into one Proxmox cluster its own range");
pub const STATE_DIR: Detail = Detail::new("state_dir", SERVER_OR_ZONE)
    .hint("directory for the VMID ledger (default /var/lib/cloudstack/management/proxmox-ext)");

pub const TEMPLATE_TYPE: Detail = Detail::new("template_type", VM).hint("template or iso");
pub const TEMPLATE_ID: Detail =
    Detail::new("template_id", VM).hint("VMID of the Proxmox template to clone");
pub const ISO_PATH: Detail =
    Detail::new("iso_path", VM).hint("ISO volume, e.g. local:iso/debian-12.iso");
pub const ISO_OS_TYPE: Detail =
    Detail::new("iso_os_type", VM).hint("Proxmox ostype, e.g. l26 or win11");
pub const DISK_SIZE_GB: Detail =
    Detail::new("disk_size_gb", VM).hint("size of the new disk in GiB");
pub const STORAGE: Detail =
    Detail::new("storage", VM).hint("Proxmox storage for new disks, e.g. local-lvm");
pub const IS_FULL_CLONE: Detail = Detail::new("is_full_clone", VM);
pub const VM_NAME: Detail =
    Detail::new("vm_name", VM).hint("Proxmox VM name (letters, digits, '-', '.')");
pub const PROXMOX_VMID: Detail = Detail::new("proxmox_vmid", &[Level::VmDetail])
    .hint("set by the prepare action; the VM's Proxmox id");

pub const SNAP_NAME: Detail = Detail::new("snap_name", &[Level::Parameter])
    .hint("letter first, then letters, digits, '-' or '_'");
pub const SNAP_DESCRIPTION: Detail = Detail::new("snap_description", &[Level::Parameter]);
pub const SNAP_SAVE_MEMORY: Detail = Detail::new("snap_save_memory", &[Level::Parameter]);

/// The Proxmox API's address: `https://host:port`, always with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl ApiUrl {
    pub const DEFAULT_PORT: u16 = 8006;

    /// Accepts what operators type: `pve1`, `pve1:8006`, `https://pve1`, `https://pve1:8006/`,
    /// any of them with `/api2/json` (or `/api2/extjs`), and `[v6::addr]:port`.
    pub fn parse(text: &str) -> Result<ApiUrl, String> {
        let text = text.trim();
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "'{scheme}://' is not supported: the Proxmox API is served over HTTPS (e.g. https://pve1:8006)"
                ));
            }
            None => text,
        };
        let mut rest = rest.trim_end_matches('/');
        for suffix in ["/api2/json", "/api2/extjs"] {
            if rest.len() > suffix.len()
                && rest[rest.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            {
                rest = rest[..rest.len() - suffix.len()].trim_end_matches('/');
            }
        }
        if rest.contains('/') || rest.contains('@') || rest.contains('?') || rest.contains('#') {
            return Err("expected https://host[:port] (optionally ending in /api2/json)".into());
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or("unclosed '[' in an IPv6 address")?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or("expected ':port' after ']'")?),
                ),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                Some(_) => {
                    return Err(
                        "write an IPv6 address in brackets, e.g. https://[2001:db8::1]:8006".into(),
                    );
                }
                None => (rest, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("no host name".into());
        }
        let port = match port {
            None => Self::DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("'{p}' is not a port number"))?,
        };
        Ok(ApiUrl {
            host: host.to_string(),
            port,
        })
    }

    /// The base every request path is appended to.
    pub fn api_base(&self) -> String {
        format!("{self}/api2/extjs")
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "https://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "https://{}:{}", self.host, self.port)
        }
    }
}

/// What every action needs to reach the node.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: ApiUrl,
    /// `user@realm!tokenid`.
    pub token_id: String,
    pub secret: Secret,
    pub node: String,
    pub tls: TlsMode,
}

/// PVE node names: letters, digits and '-', not starting or ending with '-'.
pub fn parse_node(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_string())
    } else {
        Err("a node name has letters, digits and '-' only, e.g. pve1".into())
    }
}

fn parse_user(text: &str) -> Result<String, String> {
    let user = text.split('!').next().unwrap_or(text);
    let valid = user
        .split_once('@')
        .is_some_and(|(name, realm)| !name.is_empty() && !realm.is_empty() && !realm.contains('@'));
    if valid && !text.chars().any(char::is_whitespace) {
        Ok(text.to_string())
    } else {
        Err("expected user@realm, e.g. root@pam".into())
    }
}

fn parse_token(text: &str) -> Result<String, String> {
    if text.contains(['!', '=', '@']) || text.chars().any(char::is_whitespace) {
        Err("expected only the token id (the part after '!'), e.g. cloudstack".into())
    } else {
        Ok(text.to_string())
    }
}

fn parse_ca_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err("not a file".into()),
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}

impl Connection {
    /// Reads the connection details; problems are recorded in `d`.
    pub fn read(d: &mut DetailReader<'_>) -> Connection {
        let url = d
            .required_with(&URL, |s| ApiUrl::parse(s).map(Some))
            .unwrap_or(ApiUrl {
                host: String::new(),
                port: ApiUrl::DEFAULT_PORT,
            });
        let user: String = d.required_with(&USER, parse_user);
        // Accept "root@pam!cloudstack" in `user` too, as long as `token` does not disagree.
        let token: Option<String> = d.optional_with(&TOKEN, parse_token);
        let token_id = match (user.split_once('!'), token) {
            (Some((_, in_user)), Some(token)) if in_user != token => {
                d.reject(&TOKEN, format!("'user' already names token '{in_user}'"));
                user.clone()
            }
            (Some(_), _) => user.clone(),
            (None, Some(token)) => format!("{user}!{token}"),
            (None, None) => {
                d.require_if(true, &TOKEN);
                user.clone()
            }
        };
        let secret: Secret = d.required(&SECRET);
        let node: String = d.required_with(&NODE, parse_node);
        let verify: Option<bool> = d.optional(&VERIFY_TLS);
        let ca: Option<PathBuf> = d.optional_with(&CA_CERTIFICATE, parse_ca_file);
        let pinned: Option<ext_tls::Fingerprint> =
            d.optional_with(&TLS_FINGERPRINT, |s| s.parse().map_err(|e| format!("{e}")));
        // A pinned certificate is the whole check: it wins over the other two.
        let tls = match (pinned, verify.unwrap_or(true), ca) {
            (Some(fingerprint), _, _) => TlsMode::Pinned(fingerprint),
            (None, false, _) => TlsMode::Insecure,
            (None, true, Some(path)) => TlsMode::CaFile(path),
            (None, true, None) => TlsMode::System,
        };
        Connection {
            url,
            token_id,
            secret,
            node,
            tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_operators_type() {
        let expect = |host: &str, port: u16| ApiUrl {
            host: host.into(),
            port,
        };
        for (text, want) in [
            ("pve1", expect("pve1", 8006)),
            ("pve1:8006", expect("pve1", 8006)),
            ("https://pve1", expect("pve1", 8006)),
            ("https://pve1:8006/", expect("pve1", 8006)),
            ("HTTPS://pve1:8443", expect("pve1", 8443)),
            ("https://pve1:8006/api2/json", expect("pve1", 8006)),
            ("https://pve1/api2/json/", expect("pve1", 8006)),
            (
                "pve1.example.net/api2/extjs",
                expect("pve1.example.net", 8006),
            ),
            (" 192.0.2.11 ", expect("192.0.2.11", 8006)),
            ("https://[2001:db8::1]:8006/", expect("2001:db8::1", 8006)),
            ("[2001:db8::1]", expect("2001:db8::1", 8006)),
        ] {
            assert_eq!(ApiUrl::parse(text).as_ref(), Ok(&want), "{text}");
        }
        assert_eq!(
            ApiUrl::parse("pve1").unwrap().api_base(),
            "https://pve1:8006/api2/extjs"
        );
        assert_eq!(
            ApiUrl::parse("[::1]:1").unwrap().to_string(),
            "https://[::1]:1"
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for bad in [
            "http://pve1",
            "ftp://pve1",
            "https://",
            "pve1:0",
            "pve1:abc",
            "pve1:70000",
            "https://pve1/other/path",
            "https://user@pve1",
            "2001:db8::1",
            "https://[::1",
        ] {
            assert!(ApiUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(ApiUrl::parse("http://pve1").unwrap_err().contains("HTTPS"));
    }

    #[test]
    fn users_tokens_and_nodes() {
        assert!(parse_user("root@pam").is_ok());
        assert!(parse_user("cloudstack@pve!ext").is_ok());
        assert!(parse_user("root").is_err());
        assert!(parse_user("@pam").is_err());
        assert!(parse_token("cloudstack").is_ok());
        assert!(parse_token("root@pam!cloudstack").is_err());
        assert!(parse_node("pve-1").is_ok());
        assert!(parse_node("pve_1").is_err());
        assert!(parse_node("-pve").is_err());
    }
}
