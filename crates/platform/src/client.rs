//! Outgoing HTTP between services: one pooled client, with the trace context passed on, and a
//! client per called service with timeouts, replica fallback and a circuit breaker.

use std::time::Duration;

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
    http: reqwest::Client,
    service: &'static str,
    urls: Vec<String>,
    breaker: crate::breaker::CircuitBreaker,
    timeout: Duration,
}

/// The other service could not answer (down, timing out, breaker open).
#[derive(Debug, thiserror::Error)]
#[error("{service} is unavailable: {reason}")]
pub struct Unavailable {
    pub service: &'static str,
    pub reason: String,
}

impl ServiceClient {
    pub fn new(http: reqwest::Client, service: &'static str, urls: Vec<String>) -> Self {
        let breaker = crate::breaker::CircuitBreaker::new(service, 5, Duration::from_secs(10));
        Self { http, service, urls, breaker, timeout: Duration::from_secs(3) }
    }

    fn unavailable(&self, reason: impl Into<String>) -> Unavailable {
        Unavailable { service: self.service, reason: reason.into() }
    }

    /// `GET path` as JSON; `None` on a 404.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, Unavailable> {
        self.get_json_as(path, None).await
    }

    /// `GET path` as JSON with a bearer token (a service token); `None` on a 404.
    pub async fn get_json_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<Option<T>, Unavailable> {
        self.breaker.allow().map_err(|e| self.unavailable(e.to_string()))?;
        let mut last_error = "no URL configured".to_owned();
        for base in &self.urls {
            let mut request = self.http.get(format!("{base}{path}")).timeout(self.timeout);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            match traced(request).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    self.breaker.record_success();
                    return Ok(None);
                }
                Ok(r) if r.status().is_success() => match r.json::<T>().await {
                    Ok(value) => {
                        self.breaker.record_success();
                        return Ok(Some(value));
                    }
                    Err(e) => last_error = e.to_string(),
                },
                Ok(r) => last_error = format!("status {}", r.status()),
                Err(e) => last_error = e.to_string(),
            }
        }
        self.breaker.record_failure();
        Err(self.unavailable(last_error))
    }

    /// `POST path` with a JSON body, a bearer token and optional extra headers; the status and
    /// JSON body of whatever the service answered. Not retried: a POST may not be idempotent
    /// (callers pass an Idempotency-Key and retry themselves when it is).
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &impl serde::Serialize,
        headers: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, serde_json::Value), Unavailable> {
        self.breaker.allow().map_err(|e| self.unavailable(e.to_string()))?;
        let base = self.urls.first().ok_or_else(|| self.unavailable("no URL configured"))?;
        let mut request =
            self.http.post(format!("{base}{path}")).timeout(self.timeout).bearer_auth(token).json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        match traced(request).send().await {
            Ok(r) if !r.status().is_server_error() => {
                self.breaker.record_success();
                let status = r.status();
                let body = r.json().await.unwrap_or(serde_json::Value::Null);
                Ok((status, body))
            }
            Ok(r) => {
                self.breaker.record_failure();
                Err(self.unavailable(format!("status {}", r.status())))
            }
            Err(e) => {
                self.breaker.record_failure();
                Err(self.unavailable(e.to_string()))
            }
        }
    }
}
