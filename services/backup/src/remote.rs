//! Calls to the other services' `/internal` snapshot endpoints (platform::snapshot::routes),
//! with this service's token. A snapshot and a restore each move a whole service in one
//! streamed request, so they are bounded by a long timeout, not the usual few seconds.

use std::{sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use platform::{
    auth::ServiceTokens,
    snapshot::export::{Freeze, Snapshot},
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, BufReader};

/// A service this backup covers, and where it answers.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: &'static str,
    pub url: Option<String>,
}

/// Why a service gave no answer we can use.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// It decided against the request: its problem document.
    #[error("{service} refused: {detail}")]
    Refused { service: String, status: u16, code: String, detail: String },
    #[error("{service} is unavailable: {reason}")]
    Unavailable { service: String, reason: String },
}

pub type Stream = BufReader<Box<dyn AsyncRead + Send + Unpin>>;

pub struct Remote {
    http: platform::transport::Http,
    tokens: Arc<ServiceTokens>,
    /// How long one snapshot or restore of one service may take.
    long: Duration,
}

impl Remote {
    pub fn new(http: platform::transport::Http, tokens: Arc<ServiceTokens>) -> Self {
        Self { http, tokens, long: Duration::from_secs(6 * 3600) }
    }

    fn unavailable(service: &Service, reason: impl std::fmt::Display) -> RemoteError {
        RemoteError::Unavailable { service: service.name.to_owned(), reason: reason.to_string() }
    }

    async fn send(
        &self,
        service: &Service,
        path: &str,
        timeout: Duration,
        body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RemoteError> {
        let url = service.url.as_deref().ok_or_else(|| {
            Self::unavailable(
                service,
                format!("no address is configured (MARQUEE_{}_URL)", service.name.to_uppercase()),
            )
        })?;
        let token = self
            .tokens
            .token()
            .await
            .map_err(|e| Self::unavailable(service, format!("no service token: {e:#}")))?;
        let request = body(self.http.post(format!("{url}{path}")).timeout(timeout).bearer_auth(token));
        let response = self
            .http
            .send(platform::client::traced(request))
            .await
            .map_err(|e| Self::unavailable(service, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        let detail =
            problem["detail"].as_str().or(problem["title"].as_str()).unwrap_or("no detail").to_owned();
        if status.is_client_error() {
            let code = problem["type"].as_str().and_then(|t| t.rsplit(':').next()).unwrap_or("").to_owned();
            return Err(RemoteError::Refused {
                service: service.name.to_owned(),
                status: status.as_u16(),
                code,
                detail,
            });
        }
        Err(Self::unavailable(service, format!("status {status}: {detail}")))
    }

    /// Ask for a snapshot cut at `freeze`: its description, and the stream of its files that
    /// follows it.
    pub async fn snapshot(
        &self,
        service: &Service,
        freeze: Freeze,
    ) -> Result<(Snapshot, Stream), RemoteError> {
        let response = self
            .send(service, platform::snapshot::routes::PREFIX, self.long, |r| {
                r.json(&json!({"freeze": freeze}))
            })
            .await?;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(tokio_util::io::StreamReader::new(stream));
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let snapshot = platform::snapshot::routes::read_header(&mut reader).await.map_err(|p| {
            Self::unavailable(service, format!("a snapshot without its header: {}", p.code()))
        })?;
        Ok((snapshot, reader))
    }

    /// Would a restore at this schema version be taken?
    pub async fn check(&self, service: &Service, schema_version: i64) -> Result<(), RemoteError> {
        let path = format!("{}/check", platform::snapshot::routes::RESTORES);
        self.send(service, &path, Duration::from_secs(30), |r| {
            r.json(&json!({"schema_version": schema_version}))
        })
        .await
        .map(|_| ())
    }

    /// Restore one service from a framed body. Returns the rows restored.
    pub async fn restore(&self, service: &Service, body: reqwest::Body) -> Result<u64, RemoteError> {
        let response = self
            .send(service, platform::snapshot::routes::RESTORES, self.long, |r| {
                r.header("content-type", platform::snapshot::routes::MEDIA_TYPE).body(body)
            })
            .await?;
        let answer: Value = response.json().await.map_err(|e| Self::unavailable(service, e))?;
        Ok(answer["rows"].as_u64().unwrap_or(0))
    }

    /// Publish again the events a service sent since `since` (epoch ms). Returns how many.
    pub async fn resend(&self, service: &Service, since: i64) -> Result<u64, RemoteError> {
        let response = self
            .send(service, "/internal/outbox/resend", Duration::from_secs(60), |r| {
                r.json(&json!({"since": since}))
            })
            .await?;
        let answer: Value = response.json().await.map_err(|e| Self::unavailable(service, e))?;
        Ok(answer["events"].as_u64().unwrap_or(0))
    }
}
