//! Asking the catalog whether a movie exists and how long it runs: over HTTP, with a timeout
//! and a circuit breaker, so a catalog that is down costs a fast 503 rather than a hang.

use std::time::Duration;

use platform::breaker::CircuitBreaker;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct MovieInfo {
    pub title: String,
    pub runtime_minutes: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("the catalog is unavailable: {0}")]
pub struct Unavailable(pub String);

pub struct CatalogClient {
    http: reqwest::Client,
    urls: Vec<String>,
    breaker: CircuitBreaker,
}

impl CatalogClient {
    pub fn new(http: reqwest::Client, urls: Vec<String>) -> Self {
        Self { http, urls, breaker: CircuitBreaker::new("catalog", 5, Duration::from_secs(10)) }
    }

    /// The movie, `None` when the catalog does not have it (or deleted it).
    pub async fn movie(&self, id: Uuid) -> Result<Option<MovieInfo>, Unavailable> {
        self.breaker.allow().map_err(|e| Unavailable(e.to_string()))?;
        let mut last_error = "no catalog URL configured".to_owned();
        // A read is idempotent: try each replica once.
        for base in &self.urls {
            let request = self.http.get(format!("{base}/api/v1/movies/{id}")).timeout(Duration::from_secs(3));
            match platform::client::traced(request).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    self.breaker.record_success();
                    return Ok(None);
                }
                Ok(r) if r.status().is_success() => match r.json::<MovieInfo>().await {
                    Ok(movie) => {
                        self.breaker.record_success();
                        return Ok(Some(movie));
                    }
                    Err(e) => last_error = e.to_string(),
                },
                Ok(r) => last_error = format!("status {}", r.status()),
                Err(e) => last_error = e.to_string(),
            }
        }
        self.breaker.record_failure();
        Err(Unavailable(last_error))
    }
}
