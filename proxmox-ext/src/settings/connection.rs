//! Where the Proxmox API is and how to authenticate: what every action reads.

use std::fmt;

use ext_sdk::net::is_dns_label;
use ext_sdk::{DetailReader, HostPort, Secret};

use super::{
    CA_CERTIFICATE, DEFAULT_API_PORT, DEFAULT_VERIFY_TLS, NODE, SECRET, TLS_FINGERPRINT, TOKEN,
    URL, USER, VERIFY_TLS,
};

/// The Proxmox API's address: `https://host:port`, always with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl ApiUrl {
    pub const DEFAULT_PORT: u16 = DEFAULT_API_PORT;

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
        let address = HostPort::parse(rest)?;
        Ok(ApiUrl {
            host: address.host,
            port: address.port.unwrap_or(Self::DEFAULT_PORT),
        })
    }

    /// The base every request path is appended to.
    pub fn api_base(&self) -> String {
        format!("{self}/api2/extjs")
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = HostPort {
            host: self.host.clone(),
            port: Some(self.port),
        };
        write!(f, "https://{address}")
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
    /// How the node's certificate is checked.
    pub tls: ext_tls::Trust,
    /// Where `url` was set, e.g. "host detail 'url'".
    pub url_origin: String,
}

/// PVE node names: one DNS label (letters, digits and '-', not starting or ending with '-').
fn parse_node(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
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

/// The token's secret alone. The whole `user@realm!tokenid=secret` (what `pveum user token
/// add` and the GUI show together, and curl examples use) is recognised and explained without
/// printing the secret.
fn parse_secret(text: &str) -> Result<Secret, String> {
    if let Some((id, value)) = text.rsplit_once('=')
        && let Some((user, token)) = id.split_once('!')
        && parse_user(user).is_ok()
        && parse_token(token).is_ok()
    {
        ext_sdk::redact::register(value);
        return Err(format!(
            "it holds a whole API token, {id}=<secret>: set 'secret' to the part after '=' only (the UUID), 'user' to {user} and 'token' to {token}"
        ));
    }
    Ok(Secret::new(text))
}

/// A path that must name a file, or the PEM text itself (read now, so a bad one is reported
/// with the other settings).
fn parse_ca(text: &str) -> Result<ext_tls::CaCertificate, String> {
    let ca = ext_tls::CaCertificate::from_setting(text);
    match &ca {
        ext_tls::CaCertificate::File(path) => match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(ca),
            Ok(_) => Err("not a file".into()),
            Err(e) => Err(format!("cannot read it: {e}")),
        },
        ext_tls::CaCertificate::Pem(_) => match ca.certificates() {
            Ok(_) => Ok(ca),
            Err(e) => Err(e.message_for("it")),
        },
    }
}

impl Connection {
    /// The API's address and the detail it came from, for messages:
    /// `https://pve1:8006 (host detail 'url')`.
    pub fn address(&self) -> String {
        format!("{} ({})", self.url, self.url_origin)
    }

    /// Reads the connection details; problems are recorded in `d`.
    pub fn read(d: &mut DetailReader<'_>) -> Connection {
        let url_origin = d.payload().lookup(&URL).map_or_else(
            || "detail 'url'".to_string(),
            |f| format!("{} '{}'", f.level.describe(), f.key),
        );
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
        let secret: Secret = d.required_with(&SECRET, parse_secret);
        let node: String = d.required_with(&NODE, parse_node);
        let verify: Option<bool> = d.optional(&VERIFY_TLS);
        let ca = d.optional_with(&CA_CERTIFICATE, parse_ca);
        let pinned: Option<ext_tls::Fingerprint> =
            d.optional_with(&TLS_FINGERPRINT, |s| s.parse().map_err(|e| format!("{e}")));
        // A pinned certificate is the whole check: it wins over the other two.
        let tls = ext_tls::Trust::from_settings(pinned, verify.unwrap_or(DEFAULT_VERIFY_TLS), ca);
        Connection {
            url,
            token_id,
            secret,
            node,
            tls,
            url_origin,
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
    fn a_whole_token_in_secret_is_explained_without_the_secret() {
        let err =
            parse_secret("cloudstack@pve!cs=0f5c2a8e-7d5b-4f1e-9a3c-2b1d4e6f8a90").unwrap_err();
        assert_eq!(
            err,
            "it holds a whole API token, cloudstack@pve!cs=<secret>: set 'secret' to the part after '=' only (the UUID), 'user' to cloudstack@pve and 'token' to cs"
        );
        assert_eq!(
            ext_sdk::redact::redact("x 0f5c2a8e-7d5b-4f1e-9a3c-2b1d4e6f8a90"),
            "x ***"
        );
        assert!(parse_secret("0f5c2a8e-7d5b-4f1e-9a3c-2b1d4e6f8a90").is_ok());
        assert!(parse_secret("a=b").is_ok(), "not a token id before '='");
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
