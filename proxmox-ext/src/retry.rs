//! When a failed request may be sent again.
//!
//! A retry must never run a change twice. Reads (`GET`) are retried on anything that looks
//! transient: no answer, or an HTTP-level 5xx (pveproxy's 595/596 pseudo-statuses, a proxy's
//! 502/503/504). Handler errors inside the extjs envelope are PVE's definitive answer and are
//! not retried. Writes are retried only when the request provably never reached PVE (connect
//! or TLS failure before sending, 595 = pveproxy could not open the connection to the
//! daemon), or when PVE itself says it started nothing (`got no worker upid`).

use std::time::Duration;

use crate::error::{Error, Origin};
use crate::transport::Delivery;

/// Whether repeating a request is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reading: repeat on any transient failure.
    Read,
    /// Changing something: repeat only when nothing can have happened.
    Write,
    /// Changing something to a given state (tags set to a value, a task stopped): doing it
    /// twice is doing it once, so repeat on any transient failure, as a read.
    Repeatable,
}

/// How often and how fast to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Pause before the first retry; doubled each time up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `n` (1-based: attempt 2 is the first retry).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        (self.first_delay * 2u32.pow(doublings)).min(self.max_delay)
    }

    /// Whether `error` after attempt number `attempt` (1-based) deserves another attempt.
    pub fn should_retry(&self, error: &Error, idempotency: Idempotency, attempt: u32) -> bool {
        attempt < self.attempts && is_retryable(error, idempotency)
    }
}

/// The classification itself, independent of attempt counting.
pub fn is_retryable(error: &Error, idempotency: Idempotency) -> bool {
    if error.is_no_worker() {
        return true; // PVE started nothing: safe for reads and writes alike
    }
    match (error, idempotency) {
        (Error::Transport(e), Idempotency::Read | Idempotency::Repeatable) => !matches!(
            e.kind,
            crate::transport::TransportErrorKind::Tls
                | crate::transport::TransportErrorKind::Setup
                | crate::transport::TransportErrorKind::Redirect
        ),
        (Error::Transport(e), Idempotency::Write) => {
            e.delivery == Delivery::NotSent
                && e.kind == crate::transport::TransportErrorKind::Connect
        }
        (Error::Api(a), Idempotency::Read | Idempotency::Repeatable) => {
            a.origin == Origin::Http && a.status >= 500
        }
        (Error::Api(a), Idempotency::Write) => a.origin == Origin::Http && a.status == 595,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::error::ApiFailure;
    use crate::transport::{TransportError, TransportErrorKind};

    fn api(status: u16, origin: Origin, message: &str) -> Error {
        Error::Api(ApiFailure {
            status,
            origin,
            message: message.to_string(),
            errors: BTreeMap::new(),
            html: false,
        })
    }

    fn transport(kind: TransportErrorKind, delivery: Delivery) -> Error {
        Error::Transport(TransportError::new(kind, delivery, "x"))
    }

    #[test]
    fn reads_retry_on_transient_failures() {
        use Idempotency::Read;
        assert!(is_retryable(&api(595, Origin::Http, ""), Read));
        assert!(is_retryable(&api(596, Origin::Http, ""), Read));
        assert!(is_retryable(&api(502, Origin::Http, "Bad Gateway"), Read));
        assert!(is_retryable(
            &transport(TransportErrorKind::Io, Delivery::MaybeSent),
            Read
        ));
        assert!(!is_retryable(
            &transport(TransportErrorKind::Tls, Delivery::NotSent),
            Read
        ));
        // Asking again gets the same redirect; it is not PVE answering.
        assert!(!is_retryable(
            &transport(TransportErrorKind::Redirect, Delivery::MaybeSent),
            Read
        ));
        // PVE's own answer, e.g. the VM does not exist: asking again changes nothing.
        assert!(!is_retryable(
            &api(500, Origin::Envelope, "Configuration file does not exist"),
            Read
        ));
        assert!(!is_retryable(&api(400, Origin::Http, ""), Read));
    }

    #[test]
    fn writes_retry_only_when_nothing_happened() {
        use Idempotency::Write;
        assert!(is_retryable(
            &transport(TransportErrorKind::Connect, Delivery::NotSent),
            Write
        ));
        assert!(!is_retryable(
            &transport(TransportErrorKind::Io, Delivery::MaybeSent),
            Write
        ));
        assert!(!is_retryable(
            &transport(TransportErrorKind::Timeout, Delivery::MaybeSent),
            Write
        ));
        assert!(is_retryable(
            &api(595, Origin::Http, "Connection refused"),
            Write
        ));
        assert!(!is_retryable(&api(596, Origin::Http, ""), Write));
        assert!(!is_retryable(&api(502, Origin::Http, ""), Write));
        assert!(is_retryable(
            &api(
                500,
                Origin::Envelope,
                "got no worker upid - start worker failed"
            ),
            Write
        ));
        assert!(!is_retryable(
            &api(500, Origin::Envelope, "VM is locked (clone)"),
            Write
        ));
    }

    #[test]
    fn repeatable_writes_retry_like_reads() {
        use Idempotency::Repeatable;
        assert!(is_retryable(
            &transport(TransportErrorKind::Io, Delivery::MaybeSent),
            Repeatable
        ));
        assert!(is_retryable(&api(596, Origin::Http, ""), Repeatable));
        assert!(!is_retryable(
            &api(500, Origin::Envelope, "VM is locked (clone)"),
            Repeatable
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_before(2), Duration::from_millis(250));
        assert_eq!(p.delay_before(3), Duration::from_millis(500));
        assert_eq!(p.delay_before(4), Duration::from_secs(1));
        assert_eq!(p.delay_before(9), Duration::from_secs(2));
        let err = api(595, Origin::Http, "");
        assert!(p.should_retry(&err, Idempotency::Read, 3));
        assert!(!p.should_retry(&err, Idempotency::Read, 4));
    }
}
