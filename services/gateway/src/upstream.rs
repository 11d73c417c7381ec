//! The services behind the gateway: each one's replicas, taken in turn while they pass their
//! health checks, with a circuit breaker, a timeout and a retry budget per service.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use platform::{
    Settings,
    breaker::{BreakerConfig, CircuitBreaker},
};
use tokio_util::sync::CancellationToken;

use crate::retry::RetryBudget;

/// One base URL of a service, and whether it passed its last health check.
pub struct Replica {
    pub url: String,
    healthy: AtomicBool,
    /// When the verdict was last given; `None` before the first check.
    checked_at: Mutex<Option<Instant>>,
}

impl Replica {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The verdict, if one was given within `max_age`.
    pub fn recent_verdict(&self, max_age: Duration) -> Option<bool> {
        let checked_at = *self.checked_at.lock().unwrap_or_else(|p| p.into_inner());
        checked_at.filter(|at| at.elapsed() <= max_age).map(|_| self.is_healthy())
    }

    /// Record a health check's (or a failed connection's) verdict.
    pub fn set_healthy(&self, healthy: bool, service: &str) {
        *self.checked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            if healthy {
                tracing::info!(service, url = %self.url, "replica back in rotation");
            } else {
                tracing::warn!(service, url = %self.url, "replica taken out of rotation");
            }
        }
    }
}

pub struct Upstream {
    pub service: &'static str,
    pub replicas: Vec<Replica>,
    next: AtomicUsize,
    /// Opens on a high share of failures, so a service that is down costs callers nothing.
    pub breaker: CircuitBreaker,
    /// How long to wait for the head of the answer (bodies stream for as long as they last).
    pub timeout: Duration,
    pub budget: RetryBudget,
}

impl Upstream {
    pub fn from_settings(service: &'static str, settings: &Settings) -> anyhow::Result<Self> {
        let breaker = BreakerConfig {
            window: settings.parse_or("MARQUEE_GATEWAY_BREAKER_WINDOW", 20)?,
            min_calls: settings.parse_or("MARQUEE_GATEWAY_BREAKER_MIN_CALLS", 5)?,
            failure_ratio: settings.parse_or("MARQUEE_GATEWAY_BREAKER_RATIO", 0.5)?,
            open_for: Duration::from_millis(settings.parse_or("MARQUEE_GATEWAY_BREAKER_OPEN_MS", 10_000)?),
        };
        let default_timeout = settings.parse_or("MARQUEE_GATEWAY_TIMEOUT_MS", 10_000)?;
        let timeout_key = format!("MARQUEE_GATEWAY_{}_TIMEOUT_MS", service.to_uppercase());
        let timeout = Duration::from_millis(settings.parse_or(&timeout_key, default_timeout)?);
        let replicas = settings
            .service_urls(service)
            .into_iter()
            .map(|url| Replica { url, healthy: AtomicBool::new(true), checked_at: Mutex::new(None) })
            .collect();
        Ok(Self {
            service,
            replicas,
            next: AtomicUsize::new(0),
            breaker: CircuitBreaker::with_config(service, breaker),
            timeout,
            budget: RetryBudget::from_settings(settings)?,
        })
    }

    pub fn is_deployed(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// The next replica in turn that is healthy and not `avoid` (the one that just failed). When
    /// none is healthy the checks may be wrong, so every replica is tried in turn instead.
    pub fn pick(&self, avoid: Option<&str>) -> Option<&Replica> {
        let n = self.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let in_turn = (0..n).map(|i| &self.replicas[(start + i) % n]);
        let usable = |r: &&Replica| avoid != Some(r.url.as_str());
        in_turn
            .clone()
            .filter(usable)
            .find(|r| r.is_healthy())
            .or_else(|| in_turn.clone().find(usable))
            .or_else(|| in_turn.clone().next())
    }
}

/// Ask every replica's `/health/ready` every `interval` and take failing ones out of rotation
/// until they pass again. Runs until `shutdown`.
pub async fn check_health(
    upstreams: std::sync::Arc<Vec<Upstream>>,
    http: reqwest::Client,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let checks = upstreams.iter().flat_map(|u| u.replicas.iter().map(move |r| (u.service, r)));
        futures_util::future::join_all(checks.map(|(service, replica)| {
            let http = &http;
            async move {
                let healthy = probe(http, &replica.url).await;
                replica.set_healthy(healthy, service);
            }
        }))
        .await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Is the replica at `url` ready to serve?
pub async fn probe(http: &reqwest::Client, url: &str) -> bool {
    http.get(format!("{url}/health/ready"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(urls: &str) -> Upstream {
        Upstream::from_settings("catalog", &Settings::default().with("MARQUEE_CATALOG_URL", urls))
            .expect("upstream")
    }

    #[test]
    fn replicas_that_fail_their_checks_are_skipped_unless_none_pass() {
        let u = upstream("http://a,http://b,http://c");
        u.replicas[1].set_healthy(false, "catalog");
        let picked: Vec<_> = (0..6).filter_map(|_| u.pick(None)).map(|r| r.url.as_str()).collect();
        assert!(!picked.contains(&"http://b"), "{picked:?}");
        assert!(picked.contains(&"http://a") && picked.contains(&"http://c"), "{picked:?}");
        for r in &u.replicas {
            r.set_healthy(false, "catalog");
        }
        assert!(u.pick(None).is_some(), "all failing: try them anyway");
    }

    #[test]
    fn a_retry_goes_to_another_replica() {
        let u = upstream("http://a,http://b");
        for _ in 0..4 {
            assert_eq!(u.pick(Some("http://a")).map(|r| r.url.as_str()), Some("http://b"));
        }
        let single = upstream("http://a");
        assert_eq!(single.pick(Some("http://a")).map(|r| r.url.as_str()), Some("http://a"));
    }
}
