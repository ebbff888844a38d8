//! The time an invocation has, derived from argv\[3\].
//!
//! CloudStack SIGKILLs the process when argv\[3\] seconds have passed and runs no cleanup after
//! that. A [`Deadline`] therefore splits the time into three parts:
//!
//! ```text
//! start ─────────── work ─────────────┬── cleanup ──┬─ answer ─┤ CloudStack kills
//!                                  work_end      hard_end   start + timeout
//! ```
//!
//! Normal work (network waits, task polling) is bounded by `work_end`. What is left until
//! `hard_end` is reserved for rolling back after a failure ([`Deadline::cleanup`]). At
//! `hard_end` the runner's watchdog answers with an error and exits, whatever the extension is
//! doing, so CloudStack always gets a JSON answer instead of `Timeout`.

use std::fmt;
use std::time::{Duration, Instant};

/// CloudStack's timeout when argv\[3\] is absent (upstream samples use the same default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A point in time work must finish by, plus the reserve behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    start: Instant,
    timeout: Duration,
    work_end: Instant,
    hard_end: Instant,
}

/// Work stopped because the deadline passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineExceeded {
    /// What was being waited for.
    pub what: String,
    /// CloudStack's timeout for this invocation.
    pub timeout: Duration,
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deadline reached while {} (the action's timeout is {} s; raise CloudStack's 'wait' setting or the custom action's timeout if the hypervisor needs longer)",
            self.what,
            self.timeout.as_secs_f64().round()
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

impl Deadline {
    /// The deadline for an invocation started at `start` that CloudStack kills after
    /// `timeout`.
    ///
    /// The reserve is a tenth of the timeout, at least 1 s and at most 30 s, but never more
    /// than half of it; the watchdog fires a quarter of the reserve (at most 2 s) before
    /// CloudStack would kill the process.
    pub fn for_timeout(start: Instant, timeout: Duration) -> Deadline {
        let margin = (timeout / 10)
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
            .min(timeout / 2);
        let answer_margin = (margin / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let at = |d: Duration| {
            start
                .checked_add(d)
                .unwrap_or(start + Duration::from_secs(86_400 * 365))
        };
        Deadline {
            start,
            timeout,
            work_end: at(timeout.saturating_sub(margin)),
            hard_end: at(timeout.saturating_sub(answer_margin.min(margin))),
        }
    }

    /// A deadline `d` from now with no reserve: for tests and for bounding a sub-step.
    pub fn after(d: Duration) -> Deadline {
        let now = Instant::now();
        let end = now
            .checked_add(d)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        Deadline {
            start: now,
            timeout: d,
            work_end: end,
            hard_end: end,
        }
    }

    /// The earlier of this deadline and `d` from now (same reserve end).
    pub fn within(&self, d: Duration) -> Deadline {
        let now = Instant::now();
        let end = now
            .checked_add(d)
            .map_or(self.work_end, |e| e.min(self.work_end));
        Deadline {
            work_end: end,
            ..*self
        }
    }

    /// Time left for normal work.
    pub fn remaining(&self) -> Duration {
        self.work_end.saturating_duration_since(Instant::now())
    }

    /// Whether normal work must stop.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.work_end
    }

    /// `Err` when the deadline has passed; `what` says what was being done.
    pub fn check(&self, what: &str) -> Result<(), DeadlineExceeded> {
        if self.expired() {
            Err(self.exceeded(what))
        } else {
            Ok(())
        }
    }

    /// The error for having run out of time while doing `what`.
    pub fn exceeded(&self, what: &str) -> DeadlineExceeded {
        DeadlineExceeded {
            what: what.to_owned(),
            timeout: self.timeout,
        }
    }

    /// `d`, shortened to the time left (at least 1 ms, so it can be used as a socket timeout).
    pub fn bound(&self, d: Duration) -> Duration {
        d.min(self.remaining()).max(Duration::from_millis(1))
    }

    /// Sleeps `d` or until the deadline, whichever is first; `Err` if the deadline passed.
    pub fn sleep(&self, d: Duration) -> Result<(), DeadlineExceeded> {
        let remaining = self.remaining();
        std::thread::sleep(d.min(remaining));
        if d >= remaining {
            Err(self.exceeded("waiting"))
        } else {
            Ok(())
        }
    }

    /// This deadline with at least `reserve` kept for the cleanup: normal work ends earlier
    /// when the default reserve is shorter. For an action whose rollback is known to need
    /// longer (stopping a task, destroying what it made). Work keeps at least half of the
    /// timeout whatever `reserve` asks for.
    pub fn reserving(&self, reserve: Duration) -> Deadline {
        let reserve = reserve.min(self.timeout / 2);
        let end = self
            .hard_end
            .checked_sub(reserve)
            .map_or(self.work_end, |end| end.min(self.work_end));
        Deadline {
            work_end: end,
            ..*self
        }
    }

    /// The reserve: a deadline for rolling back after normal work failed or ran out of time.
    pub fn cleanup(&self) -> Deadline {
        Deadline {
            work_end: self
                .hard_end
                .checked_sub(Duration::from_millis(50))
                .unwrap_or(self.hard_end),
            ..*self
        }
    }

    /// When the watchdog answers for the process.
    pub fn hard_end(&self) -> Instant {
        self.hard_end
    }

    /// CloudStack's timeout for this invocation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Time since the invocation started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(secs: u64) -> (f64, f64) {
        let start = Instant::now();
        let d = Deadline::for_timeout(start, Duration::from_secs(secs));
        (
            (d.work_end - start).as_secs_f64(),
            (d.hard_end - start).as_secs_f64(),
        )
    }

    #[test]
    fn reserve_scales_with_the_timeout() {
        assert_eq!(split(1800), (1770.0, 1798.0));
        assert_eq!(split(600), (570.0, 598.0));
        assert_eq!(split(60), (54.0, 58.5));
        assert_eq!(split(3), (2.0, 2.75));
        assert_eq!(split(1), (0.5, 0.875));
    }

    #[test]
    fn bound_and_cleanup() {
        let d = Deadline::after(Duration::from_millis(200));
        assert!(d.bound(Duration::from_secs(30)) <= Duration::from_millis(200));
        assert!(d.check("x").is_ok());
        assert!(d.sleep(Duration::from_secs(5)).is_err());
        assert!(d.expired());
        let err = d.check("polling task").unwrap_err().to_string();
        assert!(err.contains("polling task"), "{err}");
        let c = Deadline::for_timeout(Instant::now(), Duration::from_secs(60)).cleanup();
        assert!(c.remaining() > Duration::from_secs(58));
    }

    #[test]
    fn a_larger_reserve_ends_work_earlier_but_never_before_half_time() {
        let start = Instant::now();
        let work = |d: Deadline| (d.work_end - start).as_secs_f64();
        let d = Deadline::for_timeout(start, Duration::from_secs(60));
        // 60 s: the default reserve is 6 s; asking 15 s ends work at 58.5 - 15.
        assert_eq!(work(d.reserving(Duration::from_secs(15))), 43.5);
        // Asking less than the default changes nothing.
        assert_eq!(work(d.reserving(Duration::from_secs(2))), 54.0);
        // 8 s: at most half of it is reserved.
        let short = Deadline::for_timeout(start, Duration::from_secs(8));
        assert_eq!(work(short.reserving(Duration::from_secs(15))), 3.75);
        assert_eq!(
            short.reserving(Duration::from_secs(15)).hard_end(),
            short.hard_end()
        );
    }
}
