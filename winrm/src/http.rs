//! The little HTTP/1.1 a WinRM client needs: POST with a length, and a response read by
//! length or in chunks. Written here rather than taken from an HTTP client because NTLM
//! authenticates the TCP connection, not a request: the handshake and every request after it
//! must go over one connection we hold, and the channel binding needs that connection's
//! server certificate. A pooling client (ureq) can do neither.

use std::io::{self, BufRead, Read, Write};

/// Most we read of a response's headers and body. WS-Management replies are bounded by the
/// MaxEnvelopeSize we ask for (150 KiB); anything far larger is not a WinRM service.
const MAX_HEADERS: usize = 64 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;

pub(crate) struct Request<'a> {
    pub path: &'a str,
    pub authority: &'a str,
    /// The whole header value, e.g. `Negotiate TlRMTVNTUAAB...`.
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server will close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    /// The start of the body as text, for error messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]);
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

/// Writes the request in one piece (one TLS record where it fits).
pub(crate) fn write_request(w: &mut impl Write, req: &Request) -> io::Result<()> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cloudstack-ext-winrm/{}\r\n\
         Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\
         Connection: Keep-Alive\r\n",
        req.path,
        req.authority,
        env!("CARGO_PKG_VERSION"),
        req.body.len()
    );
    if let Some(auth) = req.authorization {
        head.push_str("Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(req.body);
    w.write_all(&bytes)?;
    w.flush()
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.take(*budget as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if n > *budget {
        return Err(invalid("response headers too long"));
    }
    *budget -= n;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection mid-line",
        ));
    }
    while line.last().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("response header is not text"))
}

/// Reads one response (skipping `100 Continue`).
pub(crate) fn read_response(r: &mut impl BufRead) -> io::Result<Response> {
    let mut budget = MAX_HEADERS;
    loop {
        let status_line = read_line(r, &mut budget)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!(
                "not an HTTP response: {}",
                status_line.chars().take(80).collect::<String>()
            )));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("no status code"))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(r, &mut budget)?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| invalid("malformed header line"))?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = Response {
            status,
            close: version == "HTTP/1.0",
            headers,
            body: Vec::new(),
        };
        if let Some(c) = response.header("Connection") {
            response.close = c.eq_ignore_ascii_case("close");
        }
        let chunked = response
            .header("Transfer-Encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = read_chunked(r)?;
        } else if let Some(len) = response.header("Content-Length") {
            let len: usize = len.parse().map_err(|_| invalid("bad Content-Length"))?;
            if len > MAX_BODY {
                return Err(invalid(format!(
                    "response body of {len} bytes is too large"
                )));
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body)?;
            response.body = body;
        } else if status != 204 && status != 304 {
            // No length: the body ends when the connection does.
            let mut body = Vec::new();
            r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(invalid("response body too large"));
            }
            response.body = body;
            response.close = true;
        }
        return Ok(response);
    }
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut budget = MAX_HEADERS;
    loop {
        let line = read_line(r, &mut budget)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("response body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line(r, &mut budget)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> io::Result<Response> {
        read_response(&mut io::BufReader::new(raw.as_bytes()))
    }

    #[test]
    fn request_is_one_piece_with_length_and_authorization() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            &Request {
                path: "/wsman",
                authority: "hv1:5986",
                authorization: Some("Negotiate abc"),
                body: b"<x/>",
            },
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /wsman HTTP/1.1\r\nHost: hv1:5986\r\n"));
        assert!(text.contains("Content-Length: 4\r\n"));
        assert!(text.contains("Authorization: Negotiate abc\r\n"));
        assert!(text.ends_with("\r\n\r\n<x/>"));
    }

    #[test]
    fn reads_length_chunked_continue_and_close() {
        let r = parse("HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate\r\nwww-authenticate: Basic realm=\"WSMAN\"\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers_named("WWW-Authenticate").collect::<Vec<_>>(),
            ["Negotiate", "Basic realm=\"WSMAN\""]
        );
        assert!(!r.close);
        let r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (200, &b"abcde"[..], true)
        );
        let r = parse("HTTP/1.0 500 Oops\r\n\r\nuntil the end").unwrap();
        assert_eq!((r.body.as_slice(), r.close), (&b"until the end"[..], true));
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert!(parse("SSH-2.0-OpenSSH_9.2\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(70_000));
        assert!(parse(&huge).is_err());
        assert_eq!(parse("").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
