//! What streaming asks other services, each a typed call with a timeout and a breaker (the
//! types are `contracts`'): identity whether the account behind a token exists, catalog whether
//! a movie exists and may be streamed, payments what the user's subscription allows now.

use std::{sync::Arc, time::Duration};

use contracts::{catalog::MovieView, identity::UserView, payments::Entitlement};
use platform::{
    Platform,
    cache::{self, Cache},
    client::{ServiceClient, Unavailable},
};
use uuid::Uuid;

pub struct Clients {
    identity: ServiceClient,
    catalog: ServiceClient,
    payments: ServiceClient,
    cache: Arc<dyn Cache>,
}

/// Accounts are never deleted, and a movie's streamable flag changes rarely: a short cache
/// spares a call per playback start. The subscription is never cached: it is the money.
const USER_TTL: Duration = Duration::from_secs(300);
const MOVIE_TTL: Duration = Duration::from_secs(30);

impl Clients {
    pub fn new(platform: &Platform) -> Self {
        let client = |service: &'static str| {
            ServiceClient::new(platform.http.clone(), service, platform.settings.service_urls(service))
                .with_tokens(platform.service_tokens.clone())
        };
        Self {
            identity: client("identity"),
            catalog: client("catalog"),
            payments: client("payments"),
            cache: platform.cache.clone(),
        }
    }

    /// Whether identity has the account.
    pub async fn user_exists(&self, id: Uuid) -> Result<bool, Unavailable> {
        let key = format!("user:{id}");
        if cache::get_json::<bool>(self.cache.as_ref(), &key).await == Some(true) {
            return Ok(true);
        }
        let found = self.identity.get_json::<UserView>(&format!("/api/v1/users/{id}")).await?.is_some();
        if found {
            cache::set_json(self.cache.as_ref(), &key, &true, USER_TTL).await;
        }
        Ok(found)
    }

    /// The movie, if the catalog has it.
    pub async fn movie(&self, id: Uuid) -> Result<Option<MovieView>, Unavailable> {
        let key = format!("movie:{id}");
        if let Some(movie) = cache::get_json::<MovieView>(self.cache.as_ref(), &key).await {
            return Ok(Some(movie));
        }
        let movie = self.catalog.get_json::<MovieView>(&format!("/api/v1/movies/{id}")).await?;
        if let Some(movie) = &movie {
            cache::set_json(self.cache.as_ref(), &key, movie, MOVIE_TTL).await;
        }
        Ok(movie)
    }

    /// Forget a cached movie (its media just arrived: it is streamable now).
    pub async fn forget_movie(&self, id: Uuid) {
        let _ = self.cache.delete(&format!("movie:{id}")).await;
    }

    /// The catalog's featured movies (the demo gives some of them a clip).
    pub async fn featured(&self, limit: usize) -> Result<Vec<MovieView>, Unavailable> {
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<MovieView>,
        }
        let path = format!("/api/v1/movies/featured?per_page={limit}");
        Ok(self.catalog.get_json::<Page>(&path).await?.map(|p| p.items).unwrap_or_default())
    }

    /// What the user's subscription allows now; `None` when it allows nothing.
    pub async fn entitlement(&self, user: Uuid) -> Result<Option<Entitlement>, Unavailable> {
        self.payments.get_json(&format!("/api/v1/subscriptions/users/{user}/entitlement")).await
    }
}
