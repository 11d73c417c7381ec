//! The services behind the gateway: each one's replicas, taken in turn while they pass their
//! health checks, with a circuit breaker, a timeout and a retry budget per service.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use platform::{
    Settings,
    breaker::{BreakerConfig, CircuitBreaker},
};
use tokio_util::sync::CancellationToken;

use crate::retry::RetryBudget;

/// What the last health check (or a failed connection) said of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    Ready = 0,
    /// It answers but says it is not ready (its database is down, it is starting or stopping).
    Unready = 1,
    /// Nothing answers there: the connection was refused or timed out.
    Unreachable = 2,
}

impl Verdict {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Ready,
            1 => Self::Unready,
            _ => Self::Unreachable,
        }
    }
}

/// One base URL of a service, and what its last health check said.
pub struct Replica {
    pub url: String,
    verdict: AtomicU8,
    /// When the verdict was last given; `None` before the first check.
    checked_at: Mutex<Option<Instant>>,
}

impl Replica {
    fn new(url: String) -> Self {
        Self { url, verdict: AtomicU8::new(Verdict::Ready as u8), checked_at: Mutex::new(None) }
    }

    pub fn verdict(&self) -> Verdict {
        Verdict::from_u8(self.verdict.load(Ordering::Relaxed))
    }

    /// The verdict, if one was given within `max_age`.
    pub fn recent_verdict(&self, max_age: Duration) -> Option<Verdict> {
        let checked_at = *self.checked_at.lock().unwrap_or_else(|p| p.into_inner());
        checked_at.filter(|at| at.elapsed() <= max_age).map(|_| self.verdict())
    }

    /// Record a health check's (or a failed connection's) verdict.
    pub fn set_verdict(&self, verdict: Verdict, service: &str) {
        *self.checked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let was = Verdict::from_u8(self.verdict.swap(verdict as u8, Ordering::Relaxed));
        if (was == Verdict::Ready) != (verdict == Verdict::Ready) {
            if verdict == Verdict::Ready {
                tracing::info!(service, url = %self.url, "replica back in rotation");
            } else {
                tracing::warn!(service, url = %self.url, ?verdict, "replica taken out of rotation");
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
        let replicas = settings.service_urls(service).into_iter().map(Replica::new).collect();
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

    /// The next replica in turn that is ready and not `avoid` (the one that just failed). When
    /// none is ready the checks may be wrong (or a dependency they all share is down), so the
    /// ones that at least answer come next, and only then the ones nothing answered at.
    pub fn pick(&self, avoid: Option<&str>) -> Option<&Replica> {
        let n = self.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let in_turn = (0..n).map(|i| &self.replicas[(start + i) % n]);
        let usable = |r: &&Replica| avoid != Some(r.url.as_str());
        [Verdict::Ready, Verdict::Unready, Verdict::Unreachable]
            .into_iter()
            .find_map(|wanted| in_turn.clone().filter(usable).find(|r| r.verdict() == wanted))
            .or_else(|| in_turn.clone().next())
    }
}

/// Ask every replica's `/health/ready` every `interval` and take failing ones out of rotation
/// until they pass again. Runs until `shutdown`.
pub async fn check_health(
    upstreams: std::sync::Arc<Vec<Upstream>>,
    http: platform::transport::Http,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let checks = upstreams.iter().flat_map(|u| u.replicas.iter().map(move |r| (u.service, r)));
        futures_util::future::join_all(checks.map(|(service, replica)| {
            let http = &http;
            async move {
                replica.set_verdict(probe(http, &replica.url).await, service);
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
pub async fn probe(http: &platform::transport::Http, url: &str) -> Verdict {
    match http.send(http.get(format!("{url}/health/ready")).timeout(Duration::from_secs(2))).await {
        Ok(answer) if answer.status().is_success() => Verdict::Ready,
        Ok(_) => Verdict::Unready,
        Err(_) => Verdict::Unreachable,
    }
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
        u.replicas[1].set_verdict(Verdict::Unready, "catalog");
        let picked: Vec<_> = (0..6).filter_map(|_| u.pick(None)).map(|r| r.url.as_str()).collect();
        assert!(!picked.contains(&"http://b"), "{picked:?}");
        assert!(picked.contains(&"http://a") && picked.contains(&"http://c"), "{picked:?}");
        for r in &u.replicas {
            r.set_verdict(Verdict::Unreachable, "catalog");
        }
        assert!(u.pick(None).is_some(), "all failing: try them anyway");
    }

    /// Issue 10, item 9: with the broker down no replica passed its checks, and the fallback
    /// took the dead replica in turn with the live ones.
    #[test]
    fn when_none_is_ready_the_ones_that_answer_come_before_the_dead() {
        let u = upstream("http://dead,http://unready");
        u.replicas[0].set_verdict(Verdict::Unreachable, "catalog");
        u.replicas[1].set_verdict(Verdict::Unready, "catalog");
        for _ in 0..4 {
            assert_eq!(u.pick(None).map(|r| r.url.as_str()), Some("http://unready"));
        }
        assert_eq!(u.pick(Some("http://unready")).map(|r| r.url.as_str()), Some("http://dead"));
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
