//! Where the WinRM service listens, from the forms operators write.

use std::fmt;
use std::net::Ipv6Addr;

/// `https` (WinRM's 5986) or `http` (5985, refused by [`crate::run_command`]: this client
/// does not implement NTLM message sealing, so a password-derived exchange and every command
/// would travel in clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 5986,
            Scheme::Http => 5985,
        }
    }
}

/// A WinRM endpoint: scheme, host (without brackets), port and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError(pub String);

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port`, a bare IPv6 address, or a URL
    /// `https://host[:port][/path]` (or `http://`). Without a scheme it is HTTPS; without a
    /// port the scheme's (5986); without a path `/wsman`. A bare host name is what upstream's
    /// `hyperv.py` takes as `url` (it connects to `https://<url>:5986/wsman`).
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let text = text.trim();
        let bad = |why: &str| EndpointError(format!("invalid WinRM address '{text}': {why}"));
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((s, _)) => return Err(bad(&format!("scheme '{s}' is not https or http"))),
            None => (Scheme::Https, text),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("credentials do not belong in the address"));
        }
        if path.contains(['?', '#', ' ']) {
            return Err(bad("the path may not have a query, fragment or spaces"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            host.parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address inside [...]"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else if authority.parse::<Ipv6Addr>().is_ok() {
            (authority, None)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(bad("the host has characters no host name or address has"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        let path = match path {
            "" | "/" => "/wsman".to_owned(),
            p => p.to_owned(),
        };
        Ok(Endpoint {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `host:port`, with brackets around an IPv6 address (HTTP's Host header).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(text: &str) -> Endpoint {
        Endpoint::parse(text).unwrap()
    }

    #[test]
    fn upstream_url_detail_is_a_host_name() {
        assert_eq!(
            ep("hv1.example.org").url(),
            "https://hv1.example.org:5986/wsman"
        );
        assert_eq!(ep("10.0.0.5").url(), "https://10.0.0.5:5986/wsman");
    }

    #[test]
    fn ports_paths_schemes_and_v6() {
        assert_eq!(ep("hv1:15986").port, 15986);
        assert_eq!(ep("https://hv1/custom").url(), "https://hv1:5986/custom");
        assert_eq!(ep("HTTP://hv1").scheme, Scheme::Http);
        assert_eq!(ep("http://hv1").port, 5985);
        assert_eq!(ep("[fe80::1]:5999").authority(), "[fe80::1]:5999");
        assert_eq!(ep("fe80::1").url(), "https://[fe80::1]:5986/wsman");
        assert_eq!(ep("https://[::1]/wsman").host, "::1");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "ftp://hv1",
            "hv1:0",
            "hv1:99999",
            "hv1:x",
            "user:pw@hv1",
            "https://hv1/wsman?x=1",
            "[fe80::1",
            "[nothost]:1",
            "hv 1",
            "hv1;calc",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
