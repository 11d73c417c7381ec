//! A circuit breaker for calls to another service or an outside provider: after
//! `failure_threshold` failures in a row it opens and refuses calls at once for `open_for`, then
//! lets one probe through (half-open); the probe's outcome closes or re-opens it. A dependency
//! that is down then costs callers nothing instead of a timeout each.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    failure_threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

/// The breaker refused the call; try again after `retry_after`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("circuit open; retry after {retry_after:?}")]
pub struct Open {
    pub retry_after: Duration,
}

impl CircuitBreaker {
    pub fn new(name: &str, failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            name: name.to_owned(),
            failure_threshold: failure_threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go ahead now? In half-open state only one probe at a time may.
    pub fn allow(&self) -> Result<(), Open> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Err(Open { retry_after: until - now })
                } else {
                    *state = State::HalfOpen { probing: true };
                    Ok(())
                }
            }
            State::HalfOpen { probing: true } => Err(Open { retry_after: Duration::from_secs(1) }),
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(())
            }
        }
    }

    pub fn record_success(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed { failures: 0 }) {
            tracing::info!(breaker = %self.name, "circuit closed");
        }
        *state = State::Closed { failures: 0 };
    }

    pub fn record_failure(&self) {
        let mut state = self.lock();
        let open = match *state {
            State::Closed { failures } if failures + 1 < self.failure_threshold => {
                *state = State::Closed { failures: failures + 1 };
                false
            }
            _ => true,
        };
        if open {
            tracing::warn!(breaker = %self.name, open_for = ?self.open_for, "circuit opened");
            metrics::counter!("circuit_opened_total", "breaker" => self.name.clone()).increment(1);
            *state = State::Open { until: Instant::now() + self.open_for };
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
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
}
