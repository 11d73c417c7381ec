//! Outgoing HTTP between services: one pooled client, with the trace context passed on, and a
//! typed client per called service with timeouts, replica fallback and a circuit breaker.
//!
//! A call answers `Result<Resp, CallError>`: the decoded answer, a [`CallError::Refused`] when
//! the other service answered with a 4xx problem (its decision, to be reported), or a
//! [`CallError::Unavailable`] when no decision could be had (down, timing out, breaker open,
//! 5xx, an answer that does not decode). Request and response types live in `contracts`.

use std::{sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};

use crate::{auth::ServiceTokens, breaker::ProbeGuard};

/// The shared client. Per-call timeouts are set by callers; this one bounds connecting.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("marquee/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Add `traceparent` (a child of the current context) to an outgoing request.
pub fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match crate::telemetry::current_traceparent() {
        Some(tp) => request.header("traceparent", tp),
        None => request,
    }
}

/// Calls to one other Marquee service: every call has a timeout, reads try each replica once,
/// and a circuit breaker turns a service that is down into a fast error.
pub struct ServiceClient {
    http: crate::transport::Http,
    service: &'static str,
    urls: Vec<String>,
    breaker: crate::breaker::CircuitBreaker,
    timeout: Duration,
    tokens: Option<Arc<ServiceTokens>>,
}

/// The other service could not answer (down, timing out, breaker open).
#[derive(Debug, thiserror::Error)]
#[error("{service} is unavailable: {reason}")]
pub struct Unavailable {
    pub service: &'static str,
    pub reason: String,
}

/// Why a call gave no answer of the expected type.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No decision could be had; the effect may or may not have happened (a timeout).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The service decided against the request: a 4xx with its problem document.
    #[error("{service} refused the request: {status} {problem}")]
    Refused { service: &'static str, status: u16, problem: serde_json::Value },
}

impl CallError {
    /// The problem's stable code (`seat-taken` of `urn:marquee:problem:seat-taken`), if refused.
    pub fn problem_code(&self) -> Option<&str> {
        match self {
            Self::Refused { problem, .. } => {
                problem["type"].as_str().map(|t| t.rsplit(':').next().unwrap_or(t))
            }
            Self::Unavailable(_) => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Unavailable(_) => None,
        }
    }
}

impl ServiceClient {
    pub fn new(http: crate::transport::Http, service: &'static str, urls: Vec<String>) -> Self {
        let breaker = crate::breaker::CircuitBreaker::new(service, 5, Duration::from_secs(10));
        Self { http, service, urls, breaker, timeout: Duration::from_secs(3), tokens: None }
    }

    /// Calls carry a service token from identity (for endpoints that want a service caller).
    pub fn with_tokens(mut self, tokens: Arc<ServiceTokens>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    pub fn with_breaker(mut self, breaker: crate::breaker::CircuitBreaker) -> Self {
        self.breaker = breaker;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn breaker(&self) -> &crate::breaker::CircuitBreaker {
        &self.breaker
    }

    fn unavailable(&self, reason: impl Into<String>) -> Unavailable {
        Unavailable { service: self.service, reason: reason.into() }
    }

    async fn token(&self) -> Result<Option<String>, Unavailable> {
        match &self.tokens {
            Some(tokens) => tokens
                .token()
                .await
                .map(Some)
                .map_err(|e| self.unavailable(format!("no service token: {e:#}"))),
            None => Ok(None),
        }
    }

    /// `GET path` as JSON; `None` on a 404.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Unavailable> {
        match self.get(path).await {
            Ok(value) => Ok(value),
            Err(CallError::Unavailable(e)) => Err(e),
            Err(e) => Err(self.unavailable(e.to_string())),
        }
    }

    /// `GET path` (with the service token, if the client has tokens) as `Resp`; `None` on a
    /// 404. Each replica is tried once.
    pub async fn get<Resp: DeserializeOwned>(&self, path: &str) -> Result<Option<Resp>, CallError> {
        let permit = self.breaker.permit().map_err(|e| self.unavailable(e.to_string()))?;
        // Dropped mid-call (a timeout above us, a client gone): the probe slot is given back.
        let _probe = permit.probe.then_some(ProbeGuard(&self.breaker));
        let token = self.token().await?;
        let mut last_error = "no URL configured".to_owned();
        for base in &self.urls {
            let mut request = self.http.get(format!("{base}{path}")).timeout(self.timeout);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            match self.http.send(traced(request)).await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    self.breaker.record_success();
                    return Ok(None);
                }
                Ok(r) if r.status().is_success() => match r.json::<Resp>().await {
                    Ok(value) => {
                        self.breaker.record_success();
                        return Ok(Some(value));
                    }
                    Err(e) => last_error = e.to_string(),
                },
                Ok(r) if r.status().is_client_error() => {
                    self.breaker.record_success();
                    let status = r.status().as_u16();
                    let problem = r.json().await.unwrap_or(serde_json::Value::Null);
                    return Err(CallError::Refused { service: self.service, status, problem });
                }
                Ok(r) => last_error = format!("status {}", r.status()),
                Err(e) => last_error = e.to_string(),
            }
        }
        self.breaker.record_failure();
        Err(self.unavailable(last_error).into())
    }

    /// `POST path` with a JSON body (and the service token, if the client has tokens) and
    /// extra headers, decoding a 2xx answer as `Resp`. Not retried here: a POST may not be
    /// idempotent (callers send an Idempotency-Key and retry themselves when it is).
    pub async fn post<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        headers: &[(&str, &str)],
    ) -> Result<Resp, CallError> {
        let permit = self.breaker.permit().map_err(|e| self.unavailable(e.to_string()))?;
        let _probe = permit.probe.then_some(ProbeGuard(&self.breaker));
        let token = self.token().await?;
        let base = self.urls.first().ok_or_else(|| self.unavailable("no URL configured"))?;
        let mut request = self.http.post(format!("{base}{path}")).timeout(self.timeout).json(body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let answer = match self.http.send(traced(request)).await {
            Ok(r) if !r.status().is_server_error() => r,
            Ok(r) => {
                self.breaker.record_failure();
                return Err(self.unavailable(format!("status {}", r.status())).into());
            }
            Err(e) => {
                self.breaker.record_failure();
                return Err(self.unavailable(e.to_string()).into());
            }
        };
        let status = answer.status();
        let bytes = match answer.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                // The answer was cut off: the effect may have happened, but we cannot know.
                self.breaker.record_failure();
                return Err(self.unavailable(format!("reading the answer: {e}")).into());
            }
        };
        self.breaker.record_success();
        if status.is_client_error() {
            let problem = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            return Err(CallError::Refused { service: self.service, status: status.as_u16(), problem });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.unavailable(format!("an answer that does not decode ({status}): {e}")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9, finding 9: a half-open probe whose call was dropped (a timeout above it) was
    /// never given back, so the breaker refused every call until the process restarted.
    #[tokio::test]
    async fn a_dropped_probe_does_not_keep_the_breaker_open() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let breaker = crate::breaker::CircuitBreaker::new("silent", 1, Duration::from_millis(50));
        let client = ServiceClient::new(crate::transport::Http::new(http_client()), "silent", vec![url])
            .with_timeout(Duration::from_millis(200))
            .with_breaker(breaker);
        let first = client.get::<serde_json::Value>("/x").await;
        assert!(matches!(first, Err(CallError::Unavailable(_))), "it times out");
        assert!(client.breaker().is_open(), "one failure opens it");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let probe =
            tokio::time::timeout(Duration::from_millis(20), client.get::<serde_json::Value>("/x")).await;
        assert!(probe.is_err(), "the probe was dropped mid-call");
        let next = client.get::<serde_json::Value>("/x").await;
        match next {
            Err(CallError::Unavailable(e)) => {
                assert!(!e.reason.contains("circuit open"), "the next call was let through as a probe: {e}")
            }
            other => panic!("expected the call to reach the silent server: {other:?}"),
        }
    }
}
