//! catalog's use cases: listing and searching movies, reading one through the cache, adding
//! one (by hand, by IMDb import, from the demo catalog), changing and removing movies, genres.
//! The handlers and the demo seeding call these; each takes typed inputs and answers
//! [`CatalogError`].
//!
//! Every write is one unit of work with its `movie.*` event. After it commits, this replica's
//! search index and cache are brought in line at once, so the writer reads its own write; the
//! other replicas follow from the event ([`crate::reactions::IndexUpdater`]).

use std::time::Duration;

use contracts::{
    catalog::{MovieChanged, MovieDeleted},
    event_types::{MOVIE_CREATED, MOVIE_DELETED, MOVIE_UPDATED},
};
use platform::{
    FieldError, cache,
    pagination::{Page, PageRequest},
};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{GENRES, Movie, MovieInput, NewMovie, Sort, parse_imdb_id},
    error::CatalogError,
    reactions::cache_key,
    store::{self, Genre, ListFilter},
};

/// How long a movie stays cached; writes and rating changes invalidate it sooner.
const MOVIE_TTL: Duration = Duration::from_secs(300);

/// The filters of `GET /movies`, as sent.
pub struct ListInput<'a> {
    /// A piece of the title or the director's name.
    pub q: Option<&'a str>,
    pub genre: Option<&'a str>,
    pub year: Option<i64>,
    /// `title` (default, also when empty), `-release_date` or `-rating`.
    pub sort: Option<&'a str>,
}

/// Live movies, filtered and sorted; every invalid filter is named at once.
pub async fn list(
    state: &AppState,
    input: ListInput<'_>,
    page: PageRequest,
) -> Result<Page<Movie>, CatalogError> {
    let mut errors = Vec::new();
    let sort = Sort::parse(input.sort).map_err(|e| errors.push(e)).unwrap_or(Sort::Title);
    // Empty is no filter; anything else is a slug as sent (no trimming: the schema's pattern
    // says so too).
    let genre = input.genre.filter(|g| !g.is_empty());
    if let Some(g) = genre
        && !GENRES.contains(&g)
    {
        errors.push(FieldError::new("genre", format!("unknown genre {g:?}; see GET /genres")));
    }
    if let Some(y) = input.year
        && !(1870..=2100).contains(&y)
    {
        errors.push(FieldError::new("year", "must be between 1870 and 2100"));
    }
    if !errors.is_empty() {
        return Err(CatalogError::Invalid(errors));
    }
    let filter = ListFilter { q: input.q, genre, year: input.year, featured_only: false, sort };
    let (items, total) = store::list(&state.db, &filter, page).await?;
    Ok(Page::new(items, page, total))
}

/// Featured movies, by title.
pub async fn featured(state: &AppState, page: PageRequest) -> Result<Page<Movie>, CatalogError> {
    let filter = ListFilter { q: None, genre: None, year: None, featured_only: true, sort: Sort::Title };
    let (items, total) = store::list(&state.db, &filter, page).await?;
    Ok(Page::new(items, page, total))
}

/// Ranked, typo-tolerant search (see [`crate::search`]); the hits are read back from the
/// database, so a movie deleted since it was indexed is left out.
pub async fn search(state: &AppState, text: &str, page: PageRequest) -> Result<Page<Movie>, CatalogError> {
    if text.trim().is_empty() || text.chars().count() > 200 {
        return Err(CatalogError::Invalid(vec![FieldError::new("q", "must be 1 to 200 characters")]));
    }
    let index = state.index.clone();
    let text = text.to_owned();
    let (limit, offset) = (page.limit() as usize, page.offset() as usize);
    // Searching is CPU work: off the async threads.
    let hits = tokio::task::spawn_blocking(move || index.search(&text, limit, offset))
        .await
        .map_err(anyhow::Error::from)??;
    let ids: Vec<Uuid> = hits.ids.iter().map(|(id, _)| *id).collect();
    let items = store::get_many(&state.db, &ids).await?;
    Ok(Page::new(items, page, hits.total as i64))
}

/// One live movie, from the cache when it has it.
pub async fn movie(state: &AppState, id: Uuid) -> Result<Movie, CatalogError> {
    let key = cache_key(id);
    if let Some(movie) = cache::get_json::<Movie>(state.cache.as_ref(), &key).await {
        return Ok(movie);
    }
    let movie = store::get(&state.db, id).await?.ok_or(CatalogError::MovieNotFound)?;
    cache::set_json(state.cache.as_ref(), &key, &movie, MOVIE_TTL).await;
    Ok(movie)
}

/// The `movie.created` / `movie.updated` payload of a movie.
pub fn changed(movie: &Movie) -> MovieChanged {
    MovieChanged {
        movie_id: movie.id,
        title: movie.title.clone(),
        runtime_minutes: movie.runtime_minutes,
        genres: movie.genres.clone(),
        streamable: movie.streamable,
        director: movie.director.clone(),
        cast: movie.cast.clone(),
    }
}

/// Add a movie from an admin's fields.
pub async fn create(state: &AppState, input: MovieInput) -> Result<Movie, CatalogError> {
    let new = input.apply(NewMovie::empty()).map_err(CatalogError::Invalid)?;
    add(state, &new).await
}

/// Add a movie by IMDb id, with metadata from the provider or the offline catalog. An id
/// already in the catalog (deleted movies count) is a 409 before the provider is asked.
pub async fn import(state: &AppState, imdb_id: &str) -> Result<Movie, CatalogError> {
    let imdb_id = parse_imdb_id(imdb_id)
        .ok_or_else(|| CatalogError::Invalid(vec![FieldError::new("imdb_id", "must look like tt0068646")]))?;
    if store::exists_with_imdb_id(&state.db, &imdb_id).await? {
        return Err(CatalogError::ImdbIdTaken);
    }
    let new = state.importer.lookup(&imdb_id).await?;
    add(state, &new).await
}

/// Write a new movie with its `movie.created` event, then index it here.
pub async fn add(state: &AppState, new: &NewMovie) -> Result<Movie, CatalogError> {
    let movie = add_without_indexing(state, new).await?;
    state.indexer.refresh(movie.id).await?;
    Ok(movie)
}

/// Write a new movie with its `movie.created` event, leaving this replica's index alone: for
/// loading many at once and rebuilding the index after. A taken IMDb id is
/// [`CatalogError::ImdbIdTaken`].
pub async fn add_without_indexing(state: &AppState, new: &NewMovie) -> Result<Movie, CatalogError> {
    let mut work = state.effects.begin(&state.db).await?;
    let movie = store::insert(work.conn(), new).await?;
    work.emit(MOVIE_CREATED, movie.id.to_string(), &changed(&movie)).await?;
    work.commit().await?;
    Ok(movie)
}

/// A stored movie as the base an update applies its fields to.
fn as_new(m: &Movie) -> NewMovie {
    NewMovie {
        title: m.title.clone(),
        synopsis: m.synopsis.clone(),
        genres: m.genres.clone(),
        runtime_minutes: m.runtime_minutes,
        release_date: m.release_date.as_deref().and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
        }),
        director: m.director.clone(),
        cast: m.cast.clone(),
        poster_url: m.poster_url.clone(),
        featured: m.featured,
        streamable: m.streamable,
        imdb_id: m.imdb_id.clone(),
    }
}

/// Change a movie: only the fields given change, and the result is checked as a whole.
pub async fn update(state: &AppState, id: Uuid, input: MovieInput) -> Result<Movie, CatalogError> {
    let current = store::get(&state.db, id).await?.ok_or(CatalogError::MovieNotFound)?;
    let new = input.apply(as_new(&current)).map_err(CatalogError::Invalid)?;
    let mut work = state.effects.begin(&state.db).await?;
    // Deleted since it was read: the UPDATE finds no live row.
    let movie = store::update(work.conn(), id, &new).await?.ok_or(CatalogError::MovieNotFound)?;
    work.emit(MOVIE_UPDATED, id.to_string(), &changed(&movie)).await?;
    work.commit().await?;
    state.indexer.refresh(id).await?;
    Ok(movie)
}

/// Remove a movie: it is not found anywhere after, but stays in the database for history (and
/// keeps its IMDb id taken).
pub async fn delete(state: &AppState, id: Uuid) -> Result<(), CatalogError> {
    let mut work = state.effects.begin(&state.db).await?;
    if !store::soft_delete(work.conn(), id).await? {
        return Err(CatalogError::MovieNotFound);
    }
    work.emit(MOVIE_DELETED, id.to_string(), &MovieDeleted { movie_id: id }).await?;
    work.commit().await?;
    state.indexer.refresh(id).await?;
    Ok(())
}

/// The genres, with how many live movies each has.
pub async fn genres(state: &AppState) -> Result<Vec<Genre>, CatalogError> {
    Ok(store::genres(&state.db).await?)
}
