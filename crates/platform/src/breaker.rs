//! A circuit breaker for calls to another service or an outside provider. It remembers the
//! outcome of the last `window` calls; once at least `min_calls` of them are known and the share
//! of failures reaches `failure_ratio`, it opens and refuses calls at once for `open_for`, then
//! lets one probe through (half-open); the probe's outcome closes or re-opens it. A dependency
//! that is down then costs callers nothing instead of a timeout each.
//!
//! [`CircuitBreaker::new`] is the simple form: open after `n` failures in a row (a window of `n`
//! calls that must all have failed).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// When a breaker opens, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// How many recent calls are remembered (at most 64).
    pub window: u32,
    /// Fewer known calls than this never open the breaker.
    pub min_calls: u32,
    /// The share of failures among the remembered calls that opens it (0 < ratio ≤ 1).
    pub failure_ratio: f64,
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The outcomes of the last calls, one bit each (1 = failure), newest in the lowest bit.
#[derive(Debug, Default)]
struct Window {
    bits: u64,
    len: u32,
}

impl Window {
    fn push(&mut self, failed: bool, capacity: u32) {
        self.bits = (self.bits << 1) | u64::from(failed);
        if capacity < 64 {
            self.bits &= (1u64 << capacity) - 1;
        }
        self.len = (self.len + 1).min(capacity);
    }

    fn failures(&self) -> u32 {
        self.bits.count_ones()
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    window: Window,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// A call the breaker let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The one call let through to test a breaker that was open.
    pub probe: bool,
}

/// The breaker refused the call; try again after `retry_after`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("circuit open; retry after {retry_after:?}")]
pub struct Open {
    pub retry_after: Duration,
}

impl CircuitBreaker {
    /// Opens after `failure_threshold` failures in a row.
    pub fn new(name: &str, failure_threshold: u32, open_for: Duration) -> Self {
        let n = failure_threshold.clamp(1, 64);
        Self::with_config(name, BreakerConfig { window: n, min_calls: n, failure_ratio: 1.0, open_for })
    }

    pub fn with_config(name: &str, config: BreakerConfig) -> Self {
        let window = config.window.clamp(1, 64);
        let config = BreakerConfig {
            window,
            min_calls: config.min_calls.clamp(1, window),
            failure_ratio: if config.failure_ratio > 0.0 { config.failure_ratio.min(1.0) } else { 1.0 },
            open_for: config.open_for,
        };
        Self {
            name: name.to_owned(),
            config,
            inner: Mutex::new(Inner { state: State::Closed, window: Window::default() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go ahead now? In half-open state only one probe at a time may.
    pub fn allow(&self) -> Result<(), Open> {
        self.permit().map(|_| ())
    }

    /// Like [`allow`](Self::allow), and says whether the call is the half-open probe: only the
    /// probe's caller may [`abandon`](Self::abandon) it.
    pub fn permit(&self) -> Result<Permit, Open> {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(Permit { probe: false }),
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Err(Open { retry_after: until - now })
                } else {
                    inner.state = State::HalfOpen { probing: true };
                    Ok(Permit { probe: true })
                }
            }
            State::HalfOpen { probing: true } => Err(Open { retry_after: Duration::from_secs(1) }),
            State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                Ok(Permit { probe: true })
            }
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => inner.window.push(false, self.config.window),
            // A call let through before the breaker opened: one late success says little
            // about a dependency that was failing most of the time.
            State::Open { .. } => {}
            State::HalfOpen { .. } => {
                tracing::info!(breaker = %self.name, "circuit closed");
                inner.state = State::Closed;
                inner.window = Window::default();
            }
        }
    }

    pub fn record_failure(&self) {
        let mut inner = self.lock();
        let open = match inner.state {
            State::Closed => {
                inner.window.push(true, self.config.window);
                let (failures, known) = (inner.window.failures(), inner.window.len);
                known >= self.config.min_calls
                    && f64::from(failures) >= self.config.failure_ratio * f64::from(known) - 1e-9
            }
            State::HalfOpen { .. } => true,
            // Calls that started before it opened; it stays open as it is.
            State::Open { .. } => false,
        };
        if open {
            tracing::warn!(breaker = %self.name, open_for = ?self.config.open_for, "circuit opened");
            metrics::counter!("circuit_opened_total", "breaker" => self.name.clone()).increment(1);
            inner.state = State::Open { until: Instant::now() + self.config.open_for };
            inner.window = Window::default();
        }
    }

    /// The call let through ended without saying anything about the dependency (the caller
    /// gave up, the request was refused before it was sent): free the half-open probe slot.
    pub fn abandon(&self) {
        let mut inner = self.lock();
        if inner.state == (State::HalfOpen { probing: true }) {
            inner.state = State::HalfOpen { probing: false };
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.lock().state, State::Open { until } if Instant::now() < until)
    }
}

/// Frees the breaker's half-open probe slot when dropped: a probe call that is abandoned (its
/// future dropped by a timeout above it, or a client that went away) must not leave the breaker
/// waiting for a verdict for ever. Harmless after the probe's outcome was recorded.
pub struct ProbeGuard<'a>(pub &'a CircuitBreaker);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_after_the_threshold_and_a_good_probe_closes_it() {
        let b = CircuitBreaker::new("t", 3, Duration::from_millis(40));
        for _ in 0..2 {
            assert!(b.allow().is_ok());
            b.record_failure();
        }
        assert!(b.allow().is_ok(), "two failures: still closed");
        b.record_failure();
        let open = b.allow().expect_err("open after three");
        assert!(open.retry_after <= Duration::from_millis(40));
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.allow().is_ok(), "half-open: one probe");
        assert!(b.allow().is_err(), "only one probe at a time");
        b.record_success();
        assert!(b.allow().is_ok() && !b.is_open());
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_a_success_resets_the_count() {
        let b = CircuitBreaker::new("t", 2, Duration::from_millis(20));
        b.record_failure();
        b.record_success();
        b.record_failure();
        assert!(b.allow().is_ok(), "the count restarted after the success");
        b.record_failure();
        assert!(b.is_open());
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.allow().is_ok());
        b.record_failure();
        assert!(b.is_open(), "a failed probe re-opens");
    }

    #[test]
    fn a_ratio_breaker_opens_on_the_share_of_failures_not_on_a_run() {
        let b = CircuitBreaker::with_config(
            "t",
            BreakerConfig {
                window: 10,
                min_calls: 6,
                failure_ratio: 0.5,
                open_for: Duration::from_millis(20),
            },
        );
        // Alternating outcomes: never two failures in a row, yet half the calls fail.
        for i in 0..5 {
            assert!(b.allow().is_ok(), "call {i}: too few calls to judge");
            if i % 2 == 0 { b.record_failure() } else { b.record_success() }
        }
        assert!(!b.is_open(), "3 failures out of 5 known calls: below min_calls");
        b.record_success();
        assert!(!b.is_open(), "only a failure can open it");
        b.record_failure();
        assert!(b.is_open(), "4 failures in 7 calls, never two in a row");
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_one_through() {
        let b = CircuitBreaker::new("t", 1, Duration::from_millis(10));
        b.record_failure();
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.allow().is_ok(), "the probe");
        assert!(b.allow().is_err());
        b.abandon();
        assert!(b.allow().is_ok(), "another probe");
    }

    #[test]
    fn a_late_success_does_not_close_an_open_breaker() {
        let b = CircuitBreaker::new("t", 2, Duration::from_secs(60));
        assert_eq!(b.permit().map(|p| p.probe).ok(), Some(false));
        b.record_failure();
        b.record_failure();
        b.record_success(); // a call that started before it opened
        assert!(b.is_open());
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let b = CircuitBreaker::with_config(
            "t",
            BreakerConfig {
                window: 4,
                min_calls: 4,
                failure_ratio: 0.75,
                open_for: Duration::from_millis(20),
            },
        );
        for _ in 0..2 {
            b.record_failure();
        }
        for _ in 0..4 {
            b.record_success();
        }
        b.record_failure();
        b.record_failure();
        assert!(!b.is_open(), "the first two failures fell out of the window: 2 of 4");
        b.record_failure();
        assert!(b.is_open(), "3 of the last 4");
    }
}
