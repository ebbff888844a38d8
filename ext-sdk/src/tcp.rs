//! A TCP connection to a hypervisor, bounded by the action's [`Deadline`]: name resolution
//! (which has no timeout of its own) and each address's connect.

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Deadline, DeadlineExceeded};

/// Why no connection was made.
#[derive(Debug)]
pub enum ConnectError {
    /// The name did not resolve (or to no address).
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        error: String,
    },
    /// Every address refused or timed out; the last address's error.
    Connect {
        /// The name connected to.
        host: String,
        /// The port.
        port: u16,
        /// The last address's error.
        error: std::io::Error,
    },
    /// The deadline passed first.
    Deadline(DeadlineExceeded),
    /// The resolver thread could not be started.
    Io(std::io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve { host, error } => write!(f, "cannot resolve {host}: {error}"),
            ConnectError::Connect { host, port, error } => {
                write!(f, "cannot connect to {host}:{port}: {error}")
            }
            ConnectError::Deadline(e) => e.fmt(f),
            ConnectError::Io(e) => write!(f, "cannot start the resolver: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Resolves `host` and connects to its addresses in turn, each within `per_address` (and the
/// deadline); `TCP_NODELAY` is set (request/response protocols wait on small writes).
pub fn connect(
    host: &str,
    port: u16,
    per_address: Duration,
    deadline: &Deadline,
) -> Result<TcpStream, ConnectError> {
    let addrs = resolve(host, port, deadline)?;
    let mut last = None;
    for addr in &addrs {
        if deadline.expired() {
            break;
        }
        match TcpStream::connect_timeout(addr, deadline.bound(per_address)) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(error) if !deadline.expired() => Err(ConnectError::Connect {
            host: host.into(),
            port,
            error,
        }),
        _ => Err(ConnectError::Deadline(
            deadline.exceeded(&format!("connecting to {host}:{port}")),
        )),
    }
}

/// getaddrinfo on a thread, waited for until the deadline; an IP address needs neither.
fn resolve(host: &str, port: u16, deadline: &Deadline) -> Result<Vec<SocketAddr>, ConnectError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = (host.to_owned(), port);
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(ConnectError::Io)?;
    match rx.recv_timeout(deadline.remaining()) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(ConnectError::Resolve {
            host: host.into(),
            error: "no addresses".into(),
        }),
        Ok(Err(e)) => Err(ConnectError::Resolve {
            host: host.into(),
            error: e.to_string(),
        }),
        Err(_) => Err(ConnectError::Deadline(
            deadline.exceeded(&format!("resolving {host}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_to_a_listener_and_reports_a_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let deadline = Deadline::after(Duration::from_secs(10));
        let tcp = connect("127.0.0.1", port, Duration::from_secs(5), &deadline).unwrap();
        assert!(tcp.nodelay().unwrap());
        drop(listener);
        match connect("127.0.0.1", port, Duration::from_secs(5), &deadline) {
            Err(ConnectError::Connect { port: p, .. }) => assert_eq!(p, port),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_ip_address_is_used_as_it_is() {
        let deadline = Deadline::after(Duration::from_secs(10));
        let at = |host| resolve(host, 22, &deadline).unwrap();
        assert_eq!(at("192.0.2.7"), ["192.0.2.7:22".parse().unwrap()]);
        assert_eq!(at("[2001:db8::7]"), ["[2001:db8::7]:22".parse().unwrap()]);
        assert_eq!(at("2001:db8::7"), ["[2001:db8::7]:22".parse().unwrap()]);
        assert!(at("localhost").iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn an_expired_deadline_is_the_deadline() {
        let deadline = Deadline::after(Duration::ZERO);
        assert!(matches!(
            connect("127.0.0.1", 9, Duration::from_secs(5), &deadline),
            Err(ConnectError::Deadline(_))
        ));
    }
}
