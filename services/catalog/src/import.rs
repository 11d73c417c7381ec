//! Movie metadata from outside: an IMDb API on RapidAPI when `MARQUEE_IMDB_API_KEY` is set,
//! behind a timeout and a circuit breaker, and the offline catalog shipped in this repository
//! (`data/offline_catalog.json`) when no key is set or the provider fails. The offline catalog is
//! also the demo data `marquee up` loads on first start.

use std::{sync::OnceLock, time::Duration};

use anyhow::Context;
use platform::breaker::CircuitBreaker;
use serde::Deserialize;

use crate::domain::{GENRES, MovieInput, NewMovie, poster_url_ok};

/// One film of the offline catalog, as the data file holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct OfflineMovie {
    pub imdb_id: String,
    pub title: String,
    pub release_date: String,
    pub runtime_minutes: i64,
    pub genres: Vec<String>,
    pub director: String,
    pub cast: Vec<String>,
    pub synopsis: String,
    pub streamable: bool,
    pub featured: bool,
}

impl OfflineMovie {
    pub fn to_new_movie(&self) -> Result<NewMovie, Vec<platform::FieldError>> {
        MovieInput {
            title: Some(self.title.clone()),
            synopsis: Some(self.synopsis.clone()),
            genres: Some(self.genres.clone()),
            runtime_minutes: Some(self.runtime_minutes),
            release_date: Some(self.release_date.clone()),
            director: Some(self.director.clone()),
            cast: Some(self.cast.clone()),
            featured: Some(self.featured),
            // Streamable once streaming has its media (`media.uploaded`); the demo gives a few
            // featured films a clip at first start. The file's flag says which films the
            // provider offers for streaming, which is not the same as playable here.
            streamable: Some(false),
            imdb_id: Some(self.imdb_id.clone()),
            poster_url: None,
        }
        .apply(NewMovie::empty())
    }
}

/// The offline catalog, parsed once.
pub fn offline_catalog() -> &'static [OfflineMovie] {
    static CATALOG: OnceLock<Vec<OfflineMovie>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        serde_json::from_str(include_str!("../data/offline_catalog.json")).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the offline catalog does not parse");
            Vec::new()
        })
    })
}

fn offline(imdb_id: &str) -> Option<NewMovie> {
    offline_catalog().iter().find(|m| m.imdb_id == imdb_id).and_then(|m| m.to_new_movie().ok())
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// 404: neither the provider nor the offline catalog knows the id.
    #[error("no movie has IMDb id {0}")]
    Unknown(String),
    /// 503: the provider failed and the offline catalog does not have it either.
    #[error("the metadata provider is unavailable")]
    ProviderDown,
}

/// The RapidAPI IMDb provider: `GET {base}/api/imdb/{id}` with the RapidAPI headers.
pub struct RapidApi {
    http: reqwest::Client,
    base: String,
    host: String,
    key: String,
    breaker: CircuitBreaker,
}

/// The provider's answer, as much of it as we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderMovie {
    primary_title: String,
    description: Option<String>,
    primary_image: Option<String>,
    release_date: Option<String>,
    runtime_minutes: Option<i64>,
    #[serde(default)]
    genres: Vec<String>,
    #[serde(default)]
    directors: Vec<Person>,
    #[serde(default)]
    cast: Vec<Person>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Person {
    full_name: String,
}

/// The provider's genre names onto our fixed list; the rest are dropped.
fn genre_slug(name: &str) -> Option<&'static str> {
    let slug = match name.to_ascii_lowercase().as_str() {
        "sci-fi" | "science fiction" | "science-fiction" => "science-fiction",
        "biography" => "history",
        "musical" => "music",
        other => return GENRES.iter().find(|g| **g == other).copied(),
    };
    Some(slug)
}

impl ProviderMovie {
    fn into_new_movie(self, imdb_id: &str) -> anyhow::Result<NewMovie> {
        let mut genres: Vec<String> =
            self.genres.iter().filter_map(|g| genre_slug(g)).map(str::to_owned).collect();
        if genres.is_empty() {
            genres.push("drama".to_owned());
        }
        MovieInput {
            title: Some(self.primary_title),
            synopsis: self.description,
            genres: Some(genres),
            runtime_minutes: Some(self.runtime_minutes.context("the provider gave no runtime")?),
            release_date: self.release_date.map(|d| d.chars().take(10).collect()),
            director: self.directors.into_iter().next().map(|p| p.full_name),
            cast: Some(self.cast.into_iter().take(8).map(|p| p.full_name).collect()),
            // A poster we would refuse is left out rather than failing the import.
            poster_url: self.primary_image.filter(|u| poster_url_ok(u)),
            featured: None,
            streamable: None,
            imdb_id: Some(imdb_id.to_owned()),
        }
        .apply(NewMovie::empty())
        .map_err(|errors| anyhow::anyhow!("the provider's movie is not valid: {errors:?}"))
    }
}

impl RapidApi {
    /// From `MARQUEE_IMDB_API_KEY`, `MARQUEE_IMDB_API_HOST` and optionally `MARQUEE_IMDB_API_URL`
    /// (default `https://<host>`); `None` without a key.
    pub fn from_settings(settings: &platform::Settings, http: reqwest::Client) -> Option<Self> {
        let key = settings.get("MARQUEE_IMDB_API_KEY")?.to_owned();
        let host = settings.get("MARQUEE_IMDB_API_HOST").unwrap_or("imdb236.p.rapidapi.com").to_owned();
        let base =
            settings.get("MARQUEE_IMDB_API_URL").map_or_else(|| format!("https://{host}"), str::to_owned);
        // Five failures in a row and the provider is left alone for half a minute.
        let breaker = CircuitBreaker::new("imdb-provider", 5, Duration::from_secs(30));
        Some(Self { http, base: base.trim_end_matches('/').to_owned(), host, key, breaker })
    }

    /// `Ok(None)`: the provider does not know the id. `Err`: it could not be asked.
    async fn lookup(&self, imdb_id: &str) -> anyhow::Result<Option<NewMovie>> {
        self.breaker.allow().map_err(anyhow::Error::from)?;
        let outcome = async {
            let response = self
                .http
                .get(format!("{}/api/imdb/{imdb_id}", self.base))
                .header("x-rapidapi-key", &self.key)
                .header("x-rapidapi-host", &self.host)
                .timeout(Duration::from_secs(5))
                .send()
                .await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let movie: ProviderMovie = response.error_for_status()?.json().await?;
            movie.into_new_movie(imdb_id).map(Some)
        }
        .await;
        match &outcome {
            Ok(_) => self.breaker.record_success(),
            Err(_) => self.breaker.record_failure(),
        }
        outcome
    }
}

pub struct Importer {
    pub provider: Option<RapidApi>,
}

impl Importer {
    pub async fn lookup(&self, imdb_id: &str) -> Result<NewMovie, ImportError> {
        let Some(provider) = &self.provider else {
            return offline(imdb_id).ok_or_else(|| ImportError::Unknown(imdb_id.to_owned()));
        };
        match provider.lookup(imdb_id).await {
            Ok(Some(movie)) => Ok(movie),
            Ok(None) => offline(imdb_id).ok_or_else(|| ImportError::Unknown(imdb_id.to_owned())),
            Err(e) => {
                tracing::warn!(
                    imdb_id,
                    error = format!("{e:#}"),
                    "the IMDb provider failed; using the offline catalog"
                );
                offline(imdb_id).ok_or(ImportError::ProviderDown)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_catalog_is_large_valid_and_has_the_demo_classics() {
        let all = offline_catalog();
        assert!(all.len() >= 150, "{} films", all.len());
        for m in all {
            m.to_new_movie().unwrap_or_else(|e| panic!("{}: {e:?}", m.imdb_id));
        }
        let mut ids: Vec<&str> = all.iter().map(|m| m.imdb_id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "IMDb ids are unique");
        assert!(offline("tt0068646").is_some_and(|m| m.title == "The Godfather"));
        assert!(offline("tt0211915").is_some_and(|m| m.title.starts_with("Amélie")));
    }

    #[test]
    fn provider_genres_map_onto_the_fixed_list() {
        assert_eq!(genre_slug("Sci-Fi"), Some("science-fiction"));
        assert_eq!(genre_slug("Crime"), Some("crime"));
        assert_eq!(genre_slug("Film-Noir"), None);
    }
}
