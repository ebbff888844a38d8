//! Sending one HTTP request to the Proxmox API, and nothing more.
//!
//! [`Transport`] is deliberately small (method, path, form body, timeout → status, content
//! type, body) so the typed API in [`crate::api`] can be unit-tested against an in-memory
//! fake, as Proxmox's own `proxmox-client` does with its `HttpApiClient` trait. Interpreting
//! statuses and bodies is [`crate::error`]'s job; this layer only reports what happened on
//! the wire, including the one fact a retry policy needs: whether the request can have reached
//! the server at all.

use std::fmt;
use std::io::{self, Read as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ext_sdk::Secret;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, NextTimeout, TcpConnector};

/// HTTP methods the Proxmox API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request: `path_and_query` is relative to the API root (`/nodes/pve1/qemu?full=1`);
/// `form` is an `application/x-www-form-urlencoded` body for POST and PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path_and_query: String,
    pub form: Option<String>,
}

/// What came back, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Whether a failed request can have reached the server: the basis of a safe retry policy
/// (Proxmox's `Error::Connect` vs `Error::Client` split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It failed before a byte of the request left (DNS, connect, TLS handshake): retrying
    /// cannot run anything twice.
    NotSent,
    /// It may have been received and acted upon (reset, timeout while waiting for the answer).
    MaybeSent,
}

/// What kind of trouble a transport error is, for messages and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Name resolution or TCP connect failed.
    Connect,
    /// The TLS handshake failed (certificate not trusted, wrong name, protocol).
    Tls,
    /// A timeout: connecting, or waiting for the answer.
    Timeout,
    /// The connection broke, or the answer was not valid HTTP.
    Io,
    /// The request could not even be built (bad URL, bad header).
    Setup,
    /// The server answered with a redirect. PVE never redirects, so something else answered:
    /// it is not followed and nothing of the answer is used.
    Redirect,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub delivery: Delivery,
    pub message: String,
    /// The address tried and the detail it came from, e.g. `https://pve1:8006 (host detail
    /// 'url')`; empty when not known (an in-memory transport).
    pub at: String,
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, delivery: Delivery, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            delivery,
            message: message.into(),
            at: String::new(),
        }
    }

    /// The same error, naming the address tried.
    pub fn at(mut self, at: &str) -> Self {
        self.at = at.to_string();
        self
    }

    /// "the Proxmox API at https://pve1:8006 (host detail 'url')".
    fn api(&self) -> String {
        if self.at.is_empty() {
            "the Proxmox API".to_string()
        } else {
            format!("the Proxmox API at {}", self.at)
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let api = self.api();
        match self.kind {
            TransportErrorKind::Connect => {
                write!(f, "cannot connect to {api}: {}", self.message)
            }
            TransportErrorKind::Tls => write!(
                f,
                "TLS handshake with {api} failed: {} (set 'ca_certificate' to the cluster's \
                 /etc/pve/pve-root-ca.pem, or 'tls_fingerprint' to the node certificate's SHA-256 \
                 fingerprint, or verify_tls_certificate=false to skip verification)",
                self.message
            ),
            TransportErrorKind::Timeout => {
                write!(f, "{api} did not answer in time: {}", self.message)
            }
            TransportErrorKind::Io => {
                write!(f, "connection to {api} failed: {}", self.message)
            }
            TransportErrorKind::Setup => write!(f, "cannot build the request: {}", self.message),
            TransportErrorKind::Redirect => write!(
                f,
                "{api} answered with a redirect ({}); Proxmox VE never redirects, so it \
                 was not followed and nothing from that host was used: check that 'url' names \
                 the node's API itself (https://<node>:8006)",
                self.message
            ),
        }
    }
}

impl std::error::Error for TransportError {}

/// Sends requests; implemented by [`UreqTransport`] and by test fakes.
pub trait Transport {
    /// Sends `request` and waits at most `timeout` for the whole exchange.
    fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError> {
        (**self).send(request, timeout)
    }
}

/// The largest answer read; a node listing with thousands of VMs stays far below it.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// ureq's buffers per connection, in each of its TCP and TLS layers. Its default, 128 KiB
/// each, is allocated and zeroed for every connection: about 0.4 ms of a `status`. Two TLS
/// records in and a request's headers and form out fit these.
const INPUT_BUFFER_BYTES: usize = 32 * 1024;
const OUTPUT_BUFFER_BYTES: usize = 16 * 1024;
/// Connecting takes at most this long, whatever the request's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest redirect target quoted in an error (it comes from an untrusted server).
const MAX_LOCATION_CHARS: usize = 200;

/// The real transport: one ureq agent (and so one connection pool) per invocation.
pub struct UreqTransport {
    agent: ureq::Agent,
    /// What the TLS handshakes saw: the presented certificate, and why it was refused.
    tls: ext_tls::ClientTls,
    /// `https://host:port/api2/extjs`
    base: String,
    authorization: Secret,
    /// The address and the detail it came from: `https://pve1:8006 (host detail 'url')`.
    at: String,
}

/// ureq's resolver, except that an address written as an IP is used as it is: with a timeout
/// set, ureq resolves every name on a thread of its own, an IP too (a thread per connection;
/// PVE nodes are mostly configured by address).
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(address) = literal_address(uri) {
            let mut resolved = self.empty();
            resolved.push(address);
            return Ok(resolved);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URL whose host is an IP address and whose port is explicit.
fn literal_address(uri: &Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, authority.port_u16()?))
}

impl UreqTransport {
    /// A transport for the API at `base` (`https://host:port/api2/extjs`), authenticating with
    /// an API token (`user@realm!tokenid` and its secret).
    /// `at` names the address and the detail it came from, for error messages.
    pub fn new(
        at: &str,
        base: &str,
        token_id: &str,
        secret: &Secret,
        trust: &ext_tls::Trust,
    ) -> Result<Self, TransportError> {
        if *trust == ext_tls::Trust::Insecure {
            log::warn!(
                "verify_tls_certificate=false: the Proxmox API's certificate is not checked, so \
                 anyone on the network path can pose as the node and read the API token; set \
                 'tls_fingerprint' (or 'ca_certificate') instead"
            );
        }
        let tls = ext_tls::ClientTls::new(trust).map_err(ca_file_error)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!(
                "cloudstack-proxmox-ext/",
                env!("CARGO_PKG_VERSION")
            ))
            // Proxmox answers ≥400 by closing the connection; keep the pool small and fresh.
            .max_idle_connections_per_host(2)
            // PVE never redirects: a 3xx comes back as it is and becomes an error (see `send`).
            .max_redirects(0)
            .input_buffer_size(INPUT_BUFFER_BYTES)
            .output_buffer_size(OUTPUT_BUFFER_BYTES)
            .build();
        // ureq's own chain, with ext-tls in place of ureq's rustls connector.
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(tls.ureq_connector());
        let agent = ureq::Agent::with_parts(config, connector, LiteralFirst::default());
        // PVE splits the header value on its last '=' (user@realm!tokenid=secret).
        let authorization = Secret::new(format!("PVEAPIToken={token_id}={}", secret.expose()));
        Ok(UreqTransport {
            agent,
            tls,
            base: base.trim_end_matches('/').to_string(),
            authorization,
            at: at.to_string(),
        })
    }
}

/// A `ca_certificate` that cannot be used, in the words the detail's operator knows.
fn ca_file_error(error: ext_tls::SetupError) -> TransportError {
    let what = match error.path() {
        Some(path) => format!("ca_certificate '{}'", path.display()),
        None => "ca_certificate (the PEM)".to_owned(),
    };
    TransportError::new(
        TransportErrorKind::Setup,
        Delivery::NotSent,
        error.message_for(&what),
    )
}

impl UreqTransport {
    /// What the node presented in the last handshake (its certificate's fingerprint, and why
    /// it was refused if it was).
    pub fn peer(&self) -> Option<ext_tls::PeerCertificate> {
        self.tls.peer()
    }

    /// A failed handshake, told with what the server presented: why its certificate was
    /// refused, and its fingerprint (what `tls_fingerprint` pins).
    fn tls_failure(&self, mut error: TransportError) -> TransportError {
        if error.kind != TransportErrorKind::Tls {
            return error;
        }
        if let Some(peer) = self.tls.peer() {
            error.message = match peer.refusal {
                Some(ext_tls::Refusal::NotPinned { pinned }) => format!(
                    "the node presented a certificate with SHA-256 fingerprint {}, not the pinned \
                     'tls_fingerprint' {pinned}; nothing was sent. If the node's certificate was \
                     renewed, check the new fingerprint on the node (pvenode cert info) and update \
                     'tls_fingerprint'",
                    peer.fingerprint
                ),
                Some(refusal) => format!(
                    "the node's certificate was refused: {refusal}; nothing was sent. It presented \
                     SHA-256 fingerprint {} (to pin it, check it on the node with pvenode cert info \
                     and set 'tls_fingerprint')",
                    peer.fingerprint
                ),
                None => format!(
                    "{} (the node presented SHA-256 fingerprint {})",
                    error.message, peer.fingerprint
                ),
            };
        }
        error
    }
}

impl Transport for UreqTransport {
    fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.base, request.path_and_query);
        let auth = self.authorization.expose();
        let connect = timeout.min(CONNECT_TIMEOUT);
        let form_type = "application/x-www-form-urlencoded";
        let result = match request.method {
            Method::Get | Method::Delete => {
                let builder = if request.method == Method::Get {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                builder
                    .header("Authorization", auth)
                    .config()
                    .timeout_global(Some(timeout))
                    .timeout_connect(Some(connect))
                    .build()
                    .call()
            }
            Method::Post | Method::Put => {
                let builder = if request.method == Method::Post {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                builder
                    .header("Authorization", auth)
                    .content_type(form_type)
                    .config()
                    .timeout_global(Some(timeout))
                    .timeout_connect(Some(connect))
                    .build()
                    .send(request.form.as_deref().unwrap_or("").as_bytes())
            }
        };
        let mut response = result.map_err(|e| self.tls_failure(classify(e)).at(&self.at))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            return Err(redirect_error(status, response.headers().get("location")).at(&self.at));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Sized from Content-Length up front: a listing of thousands of VMs is read without
        // growing (and copying) the buffer as it comes.
        let expected = response
            .body()
            .content_length()
            .unwrap_or(0)
            .min(MAX_BODY_BYTES);
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .reader()
            .read_to_end(&mut body)
            .map_err(|e| {
                let mut error = classify(ureq::Error::from(e)).at(&self.at);
                // The request was answered; only the body broke.
                error.delivery = Delivery::MaybeSent;
                error
            })?;
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}

/// A redirect answer as an error naming its target; the server that sent it got the request.
fn redirect_error(status: u16, location: Option<&ureq::http::HeaderValue>) -> TransportError {
    let target = match location {
        None => "without a Location".to_owned(),
        Some(value) => {
            let text = String::from_utf8_lossy(value.as_bytes());
            let mut shown: String = text.chars().take(MAX_LOCATION_CHARS).collect();
            if text.chars().count() > MAX_LOCATION_CHARS {
                shown.push_str("...");
            }
            format!("to {shown}")
        }
    };
    TransportError::new(
        TransportErrorKind::Redirect,
        Delivery::MaybeSent,
        format!("HTTP {status} {target}"),
    )
}

/// Sorts a ureq error by whether the request can have left this process.
fn classify(error: ureq::Error) -> TransportError {
    use TransportErrorKind as K;
    let message = error.to_string();
    let (kind, delivery) = match &error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            (K::Connect, Delivery::NotSent)
        }
        ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
            (K::Connect, Delivery::NotSent)
        }
        ureq::Error::Timeout(_) => (K::Timeout, Delivery::MaybeSent),
        // rustls reports a failed handshake (untrusted certificate, wrong name) as an I/O error.
        ureq::Error::Io(e)
            if e.kind() == io::ErrorKind::InvalidData && is_tls_failure(&message) =>
        {
            (K::Tls, Delivery::NotSent)
        }
        // A failed name lookup reaches ureq as an I/O error of the resolver.
        ureq::Error::Io(_) if is_dns_failure(&message) => (K::Connect, Delivery::NotSent),
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable => (K::Connect, Delivery::NotSent),
            io::ErrorKind::TimedOut => (K::Timeout, Delivery::MaybeSent),
            _ => (K::Io, Delivery::MaybeSent),
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            (K::Tls, Delivery::NotSent)
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            (K::Setup, Delivery::NotSent)
        }
        _ => (K::Io, Delivery::MaybeSent),
    };
    TransportError::new(kind, delivery, explain(&error, message))
}

/// Whether an I/O error's text is the resolver's (glibc's getaddrinfo messages).
fn is_dns_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "lookup address",
        "name or service not known",
        "name resolution",
        "nodename nor servname",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// What a connect-level failure means for the operator, in a few more words than the OS says.
fn explain(error: &ureq::Error, message: String) -> String {
    match error {
        ureq::Error::HostNotFound => {
            "the host name does not resolve (DNS found no address for it)".to_string()
        }
        ureq::Error::Timeout(ureq::Timeout::Resolve) => "the DNS lookup timed out".to_string(),
        ureq::Error::Timeout(ureq::Timeout::Connect) => format!(
            "{message}: nothing answered the TCP connection (a firewall dropping packets, or a wrong address)"
        ),
        ureq::Error::Io(_) if is_dns_failure(&message) => {
            format!("the host name does not resolve (DNS): {message}")
        }
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => format!(
            "{message}: nothing listens on that port (check the port in 'url', 8006 by default, and that pveproxy runs on the node)"
        ),
        _ => message,
    }
}

fn is_tls_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["certificate", "handshake", "tls", "alert"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_with_a_port_needs_no_lookup() {
        let at = |url: &str| literal_address(&url.parse::<Uri>().unwrap());
        assert_eq!(
            at("https://192.0.2.7:8006/api2/extjs"),
            Some("192.0.2.7:8006".parse().unwrap())
        );
        assert_eq!(
            at("https://[2001:db8::7]:8006/api2/extjs"),
            Some("[2001:db8::7]:8006".parse().unwrap())
        );
        // Names, and addresses without a port, go to ureq's resolver.
        assert_eq!(at("https://pve1.example:8006/"), None);
        assert_eq!(at("https://192.0.2.7/"), None);
    }

    #[test]
    fn connect_errors_are_never_sent() {
        let refused = classify(ureq::Error::Io(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(
            (refused.kind, refused.delivery),
            (TransportErrorKind::Connect, Delivery::NotSent)
        );
        let reset = classify(ureq::Error::Io(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(reset.delivery, Delivery::MaybeSent);
        let slow = classify(ureq::Error::Timeout(ureq::Timeout::RecvResponse));
        assert_eq!(
            (slow.kind, slow.delivery),
            (TransportErrorKind::Timeout, Delivery::MaybeSent)
        );
        let tls = classify(ureq::Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        )));
        assert_eq!(
            (tls.kind, tls.delivery),
            (TransportErrorKind::Tls, Delivery::NotSent)
        );
        let connect = classify(ureq::Error::Timeout(ureq::Timeout::Connect));
        assert_eq!(connect.delivery, Delivery::NotSent);
        let dns = classify(ureq::Error::Io(io::Error::other(
            "failed to lookup address information: Name or service not known",
        )));
        assert_eq!(
            (dns.kind, dns.delivery),
            (TransportErrorKind::Connect, Delivery::NotSent)
        );
        assert!(
            dns.message
                .starts_with("the host name does not resolve (DNS): "),
            "{}",
            dns.message
        );
    }

    #[test]
    fn redirects_name_their_target() {
        let to = ureq::http::HeaderValue::from_static("https://elsewhere.example:8006/x");
        let e = redirect_error(302, Some(&to));
        assert_eq!(
            (e.kind, e.delivery),
            (TransportErrorKind::Redirect, Delivery::MaybeSent)
        );
        let text = e.to_string();
        assert!(
            text.contains("redirect (HTTP 302 to https://elsewhere.example:8006/x)")
                && text.contains("never redirects"),
            "{text}"
        );
        let long = ureq::http::HeaderValue::from_str(&"a".repeat(500)).unwrap();
        assert!(redirect_error(301, Some(&long)).message.ends_with("a..."));
        assert_eq!(
            redirect_error(307, None).message,
            "HTTP 307 without a Location"
        );
    }
}
