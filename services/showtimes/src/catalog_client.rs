//! Asking the catalog whether a movie exists and how long it runs: over HTTP, with a timeout
//! and a circuit breaker (platform's ServiceClient), so a catalog that is down costs a fast 503.
//! The answer's type is `contracts::catalog::MovieView`.

use contracts::catalog::MovieView;
use platform::client::{CallError, ServiceClient};
use uuid::Uuid;

pub type MovieInfo = MovieView;

pub struct CatalogClient(ServiceClient);

impl CatalogClient {
    pub fn new(http: platform::transport::Http, urls: Vec<String>) -> Self {
        Self(ServiceClient::new(http, "catalog", urls))
    }

    /// The movie, `None` when the catalog does not have it (or deleted it).
    pub async fn movie(&self, id: Uuid) -> Result<Option<MovieInfo>, CallError> {
        self.0.get(&format!("/api/v1/movies/{id}")).await
    }
}
