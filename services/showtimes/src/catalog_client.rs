//! Asking the catalog whether a movie exists and how long it runs: over HTTP, with a timeout
//! and a circuit breaker (platform's ServiceClient), so a catalog that is down costs a fast 503.

use platform::client::{ServiceClient, Unavailable};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct MovieInfo {
    pub title: String,
    pub runtime_minutes: i64,
}

pub struct CatalogClient(ServiceClient);

impl CatalogClient {
    pub fn new(http: reqwest::Client, urls: Vec<String>) -> Self {
        Self(ServiceClient::new(http, "catalog", urls))
    }

    /// The movie, `None` when the catalog does not have it (or deleted it).
    pub async fn movie(&self, id: Uuid) -> Result<Option<MovieInfo>, Unavailable> {
        self.0.get_json(&format!("/api/v1/movies/{id}")).await
    }
}
