//! Retries of idempotent requests: a few, with jittered exponential backoff, and only while the
//! retry budget allows, so that retries cannot multiply the load on a service that is failing.

use std::{sync::Mutex, time::Duration};

use axum::http::Method;
use platform::Settings;

/// GET, HEAD and OPTIONS without a body may be sent twice without changing anything. POST,
/// PATCH, PUT and DELETE are never retried by the gateway: the client decides (with an
/// `Idempotency-Key` where the API offers one).
pub fn is_retryable(method: &Method, has_body: bool) -> bool {
    !has_body && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A token bucket of retries: every request adds `ratio` of a token (up to `burst`), every retry
/// takes one. With the default ratio of 0.2, retries add at most 20 % to an upstream's load.
pub struct RetryBudget {
    pub max_retries: u32,
    pub base: Duration,
    ratio: f64,
    burst: f64,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let burst: f64 = settings.parse_or("MARQUEE_GATEWAY_RETRY_BURST", 10.0)?;
        Ok(Self {
            max_retries: settings.parse_or("MARQUEE_GATEWAY_RETRIES", 2)?,
            base: Duration::from_millis(settings.parse_or("MARQUEE_GATEWAY_RETRY_BASE_MS", 20)?),
            ratio: settings.parse_or("MARQUEE_GATEWAY_RETRY_RATIO", 0.2)?,
            burst,
            tokens: Mutex::new(burst),
        })
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, f64> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request came in.
    pub fn deposit(&self) {
        let mut tokens = self.tokens();
        *tokens = (*tokens + self.ratio).min(self.burst);
    }

    /// May one more retry be made? Takes a token if so.
    pub fn withdraw(&self) -> bool {
        let mut tokens = self.tokens();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The wait before retry number `attempt` (1, 2, ...): "full jitter", a random share of
    /// base x 2^(attempt-1), so that clients that failed together do not come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_safe_methods_are_retried() {
        assert!(is_retryable(&Method::GET, false));
        assert!(!is_retryable(&Method::GET, true));
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(!is_retryable(&m, false), "{m}");
        }
    }

    #[test]
    fn the_budget_allows_a_share_of_the_traffic() {
        let settings = Settings::default()
            .with("MARQUEE_GATEWAY_RETRY_BURST", "2")
            .with("MARQUEE_GATEWAY_RETRY_RATIO", "0.25");
        let budget = RetryBudget::from_settings(&settings).expect("budget");
        assert!(budget.withdraw() && budget.withdraw(), "the burst");
        assert!(!budget.withdraw(), "spent");
        for _ in 0..3 {
            budget.deposit();
        }
        assert!(!budget.withdraw(), "3 requests x 0.25 < 1 retry");
        budget.deposit();
        assert!(budget.withdraw(), "4 requests earn one retry");
    }

    #[test]
    fn backoff_grows_and_is_jittered() {
        let budget = RetryBudget::from_settings(&Settings::default()).expect("budget");
        let waits: Vec<_> = (0..50).map(|_| budget.backoff(3)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(80)));
        assert!(waits.windows(2).any(|w| w[0] != w[1]), "not all the same");
    }
}
