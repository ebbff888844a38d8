//! One HTTPS connection to the WinRM service, authenticated once: the TLS handshake (and its
//! certificate check) completes before any byte of HTTP is written, then NTLM authenticates
//! the connection with its first request (or Basic goes with every request), and every round
//! trip is bounded by its own limit and the deadline.

use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ext_sdk::Deadline;
use ext_sdk::tcp::ConnectError;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::error::{Error, ErrorKind, Stage, TlsFailure};
use crate::http::{self, Request, Response};
use crate::ntlm::NtlmClient;
use crate::{Auth, Config, soap};

/// The TLS stream with every read and write bounded by `end`.
struct Timed {
    tls: StreamOwned<ClientConnection, TcpStream>,
    end: Instant,
}

impl Timed {
    fn arm(&self) -> io::Result<()> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "time is up"));
        }
        let left = left.max(Duration::from_millis(1));
        self.tls.sock.set_read_timeout(Some(left))?;
        self.tls.sock.set_write_timeout(Some(left))
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.tls.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.tls.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.arm()?;
        self.tls.flush()
    }
}

struct Connection {
    stream: BufReader<Timed>,
    channel_binding: Vec<u8>,
    authenticated: bool,
}

/// The connection (opened on first use, again only after the server closed it or it broke)
/// and what it cost.
pub(crate) struct Transport<'c> {
    config: &'c Config,
    conn: Option<Connection>,
    pub round_trips: u32,
    pub connections: u32,
}

fn rustls_error(e: &io::Error) -> Option<rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}

impl<'c> Transport<'c> {
    pub fn new(config: &'c Config) -> Transport<'c> {
        Transport {
            config,
            conn: None,
            round_trips: 0,
            connections: 0,
        }
    }

    fn deadline_error(&self, stage: Stage, deadline: &Deadline) -> Error {
        Error::new(
            stage,
            ErrorKind::Deadline(deadline.exceeded(&format!(
                "{stage} on {} (WinRM)",
                self.config.endpoint.authority()
            ))),
        )
    }

    fn open(&mut self, deadline: &Deadline) -> Result<Connection, Error> {
        let ep = &self.config.endpoint;
        let tcp = ext_sdk::tcp::connect(&ep.host, ep.port, self.config.connect_timeout, deadline)
            .map_err(|e| match e {
            ConnectError::Deadline(d) => Error::new(Stage::Connect, ErrorKind::Deadline(d)),
            e => Error::new(Stage::Connect, ErrorKind::Connect(e)),
        })?;
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| {
            Error::new(
                Stage::Connect,
                ErrorKind::Config(format!("'{}' is not a TLS server name: {e}", ep.host)),
            )
        })?;
        let tls_error = |error| {
            Error::new(
                Stage::Tls,
                ErrorKind::Tls(Box::new(TlsFailure {
                    server: ep.authority(),
                    error,
                    peer: self.config.tls.peer(),
                })),
            )
        };
        let tls = ClientConnection::new(self.config.tls.config(), name).map_err(tls_error)?;
        let mut timed = Timed {
            tls: StreamOwned::new(tls, tcp),
            end: Instant::now() + deadline.bound(self.config.request_timeout),
        };
        // The whole handshake, certificate verification included, before any HTTP: a
        // credential (even NTLM's negotiate message) only ever goes to a verified server.
        while timed.tls.conn.is_handshaking() {
            let step = timed.arm().and_then(|()| {
                let Timed { tls, .. } = &mut timed;
                tls.conn.complete_io(&mut tls.sock).map(|_| ())
            });
            if let Err(e) = step {
                return Err(if let Some(error) = rustls_error(&e) {
                    tls_error(error)
                } else if Instant::now() >= timed.end {
                    self.deadline_error(Stage::Tls, deadline)
                } else {
                    Error::new(Stage::Tls, ErrorKind::Io(e))
                });
            }
        }
        let certificate = timed
            .tls
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                Error::new(
                    Stage::Tls,
                    ErrorKind::Protocol("the server presented no certificate".into()),
                )
            })?;
        let channel_binding = ext_tls::tls_server_end_point(certificate.as_ref());
        self.connections += 1;
        log::debug!(
            "winrm: TLS to {} established ({:?})",
            ep.authority(),
            timed.tls.conn.protocol_version()
        );
        Ok(Connection {
            stream: BufReader::new(timed),
            channel_binding,
            authenticated: false,
        })
    }

    /// One request and its response on the open connection, within `limit`.
    fn round_trip(
        &mut self,
        stage: Stage,
        authorization: Option<&str>,
        body: &[u8],
        limit: Duration,
        deadline: &Deadline,
    ) -> Result<Response, Error> {
        if deadline.expired() {
            return Err(self.deadline_error(stage, deadline));
        }
        let bound = deadline.bound(limit);
        let by_limit = limit < deadline.remaining();
        let conn = self.conn.as_mut().expect("a connection is open");
        let start = Instant::now();
        conn.stream.get_mut().end = start + bound;
        let authority = self.config.endpoint.authority();
        let request = Request {
            path: &self.config.endpoint.path,
            authority: &authority,
            authorization,
            body,
        };
        self.round_trips += 1;
        let result = http::write_request(conn.stream.get_mut(), &request)
            .and_then(|()| http::read_response(&mut conn.stream));
        match result {
            Ok(response) => {
                log::debug!(
                    "winrm: {stage}: HTTP {} ({} bytes) in {} ms",
                    response.status,
                    response.body.len(),
                    start.elapsed().as_millis()
                );
                if response.close {
                    self.conn = None;
                }
                Ok(response)
            }
            Err(e) => {
                self.conn = None;
                let timed_out = Instant::now() >= start + bound
                    || matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    );
                Err(if timed_out && !by_limit {
                    self.deadline_error(stage, deadline)
                } else if timed_out {
                    Error::new(
                        stage,
                        ErrorKind::Io(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer within {} s", limit.as_secs_f64().round()),
                        )),
                    )
                } else {
                    Error::new(stage, ErrorKind::Io(e))
                })
            }
        }
    }

    /// The NTLM handshake on the open connection, carrying `body` in its last leg; the reply
    /// to `body`.
    fn ntlm(
        &mut self,
        stage: Stage,
        body: &[u8],
        limit: Duration,
        deadline: &Deadline,
    ) -> Result<Response, Error> {
        let auth_error = |kind| Error::new(Stage::Authenticate, kind);
        let conn = self.conn.as_ref().expect("a connection is open");
        let mut ntlm = NtlmClient::new(
            &self.config.username,
            self.config.password.expose(),
            &self.config.endpoint.host,
            &conn.channel_binding,
        )
        .map_err(|e| auth_error(ErrorKind::Ntlm(e)))?;
        let negotiate = ntlm
            .negotiate()
            .map_err(|e| auth_error(ErrorKind::Ntlm(e)))?;
        let header = format!("Negotiate {}", STANDARD.encode(negotiate));
        let response = self.round_trip(
            Stage::Authenticate,
            Some(&header),
            b"",
            self.config.request_timeout,
            deadline,
        )?;
        let offered: Vec<&str> = response.headers_named("WWW-Authenticate").collect();
        let challenge = offered.iter().find_map(|v| {
            let (scheme, token) = v.split_once(' ')?;
            (scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM"))
                .then(|| STANDARD.decode(token.trim()).ok())
                .flatten()
                .map(|token| (scheme.to_owned(), token))
        });
        let Some((scheme, challenge)) = challenge else {
            let speaks_ntlm = offered.iter().any(|v| {
                let scheme = v.split(' ').next().unwrap_or_default();
                scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM")
            });
            return Err(if response.status == 401 && !speaks_ntlm {
                auth_error(ErrorKind::AuthNotOffered {
                    method: "NTLM",
                    offered: offered.join(", "),
                })
            } else {
                self.unexpected(Stage::Authenticate, &response)
            });
        };
        let authenticate = ntlm
            .authenticate(&challenge)
            .map_err(|e| auth_error(ErrorKind::Ntlm(e)))?;
        let header = format!("{scheme} {}", STANDARD.encode(authenticate));
        if self.conn.is_none() {
            return Err(auth_error(ErrorKind::Protocol(
                "the service closed the connection in the middle of the NTLM handshake".into(),
            )));
        }
        let response = self.round_trip(stage, Some(&header), body, limit, deadline)?;
        if response.status == 401 {
            return Err(auth_error(ErrorKind::AuthRejected { method: "NTLM" }));
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.authenticated = true;
        }
        Ok(response)
    }

    /// The error for a response that is not the 200 an operation wants.
    fn unexpected(&self, stage: Stage, response: &Response) -> Error {
        match soap::fault(&response.body) {
            Some(fault) => Error::new(stage, ErrorKind::Fault(fault)),
            None => Error::new(
                stage,
                ErrorKind::Http {
                    status: response.status,
                    excerpt: response.excerpt(),
                },
            ),
        }
    }

    /// Sends one WS-Management message and returns the body of its HTTP 200 reply; a fault
    /// is [`ErrorKind::Fault`] (with `stage`). Opens and authenticates the connection first
    /// when there is none (at the start, or after the service closed it or it broke).
    pub fn call(
        &mut self,
        stage: Stage,
        body: &str,
        limit: Duration,
        deadline: &Deadline,
    ) -> Result<Vec<u8>, Error> {
        if self.conn.is_none() {
            let conn = self.open(deadline)?;
            self.conn = Some(conn);
        }
        let authenticated = self.conn.as_ref().is_some_and(|c| c.authenticated);
        let response = match self.config.auth {
            Auth::Ntlm if !authenticated => self.ntlm(stage, body.as_bytes(), limit, deadline)?,
            Auth::Ntlm => self.round_trip(stage, None, body.as_bytes(), limit, deadline)?,
            Auth::Basic => {
                let header = format!(
                    "Basic {}",
                    STANDARD.encode(format!(
                        "{}:{}",
                        self.config.username,
                        self.config.password.expose()
                    ))
                );
                self.round_trip(stage, Some(&header), body.as_bytes(), limit, deadline)?
            }
        };
        match response.status {
            200 => Ok(response.body),
            401 => {
                let offered: Vec<&str> = response.headers_named("WWW-Authenticate").collect();
                let method = match self.config.auth {
                    Auth::Ntlm => "NTLM",
                    Auth::Basic => "Basic",
                };
                let basic_offered = offered.iter().any(|v| {
                    v.split(' ')
                        .next()
                        .is_some_and(|s| s.eq_ignore_ascii_case("Basic"))
                });
                Err(Error::new(
                    Stage::Authenticate,
                    if self.config.auth == Auth::Basic && !basic_offered {
                        ErrorKind::AuthNotOffered {
                            method,
                            offered: offered.join(", "),
                        }
                    } else {
                        ErrorKind::AuthRejected { method }
                    },
                ))
            }
            _ => Err(self.unexpected(stage, &response)),
        }
    }
}
