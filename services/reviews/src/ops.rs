//! reviews' use cases: posting, changing and deleting a review (each one unit of work with its
//! event, which carries the review's version so a late event never undoes a newer one), lists
//! and stats, and what the events of other services tell it (who saw which movie).

use contracts::{
    event_types::{REVIEW_DELETED, REVIEW_POSTED, REVIEW_UPDATED},
    reviews::{ReviewDeleted, ReviewRated},
};
use platform::{
    auth::AuthUser,
    pagination::{Page, PageRequest},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Review, check_body, check_rating, check_title, histogram},
    error::ReviewsError,
    store,
};

/// What a new review says.
pub struct NewReview<'a> {
    pub movie_id: Uuid,
    pub rating: i64,
    pub title: &'a str,
    pub body: &'a str,
}

fn rated(r: &Review) -> ReviewRated {
    ReviewRated {
        review_id: r.id,
        movie_id: r.movie_id,
        user_id: r.user_id,
        rating: r.rating,
        version: r.version,
    }
}

/// Post a review of a movie the catalog has: one per user and movie (409 on a second).
pub async fn post(state: &AppState, user: Uuid, new: NewReview<'_>) -> Result<Review, ReviewsError> {
    let mut errors = Vec::new();
    check_rating(new.rating, &mut errors);
    check_title(new.title, &mut errors);
    check_body(new.body, &mut errors);
    if !errors.is_empty() {
        return Err(ReviewsError::Invalid(errors));
    }
    if state
        .catalog
        .get_json::<contracts::catalog::MovieView>(&format!("/api/v1/movies/{}", new.movie_id))
        .await?
        .is_none()
    {
        return Err(ReviewsError::NotFound("movie"));
    }
    let now = state.clock.now();
    let mut review = Review {
        id: Uuid::now_v7(),
        movie_id: new.movie_id,
        user_id: user,
        rating: new.rating,
        title: new.title.to_owned(),
        body: new.body.to_owned(),
        verified: false,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut work = state.effects.begin(&state.db).await?;
    review.verified = store::has_watched(work.conn(), user, new.movie_id).await?;
    if !store::insert(work.conn(), &review).await? {
        work.rollback().await?;
        return Err(ReviewsError::AlreadyReviewed(store::of_user(&state.db, user, new.movie_id).await?));
    }
    work.emit(REVIEW_POSTED, review.id.to_string(), &rated(&review)).await?;
    work.commit().await?;
    Ok(review)
}

/// A review; another user's is as visible as your own (reviews are public).
pub async fn get(state: &AppState, id: Uuid) -> Result<Review, ReviewsError> {
    let mut conn = state.db.pool.acquire().await?;
    store::get(&mut conn, id).await?.ok_or(ReviewsError::NotFound("review"))
}

/// What a change says; absent fields stay.
#[derive(Default)]
pub struct Change<'a> {
    pub rating: Option<i64>,
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// Change a review (its author or an admin; anyone else gets a 404). Concurrent changes each
/// apply to the latest version.
pub async fn update(
    state: &AppState,
    who: &AuthUser,
    id: Uuid,
    change: Change<'_>,
) -> Result<Review, ReviewsError> {
    let mut errors = Vec::new();
    if let Some(rating) = change.rating {
        check_rating(rating, &mut errors);
    }
    if let Some(title) = change.title {
        check_title(title, &mut errors);
    }
    if let Some(body) = change.body {
        check_body(body, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ReviewsError::Invalid(errors));
    }
    for _ in 0..5 {
        let current = get(state, id).await?;
        if !who.can_access(current.user_id) {
            return Err(ReviewsError::NotFound("review"));
        }
        if change.rating.is_none() && change.title.is_none() && change.body.is_none() {
            return Ok(current);
        }
        let next = Review {
            rating: change.rating.unwrap_or(current.rating),
            title: change.title.map_or(current.title.clone(), str::to_owned),
            body: change.body.map_or(current.body.clone(), str::to_owned),
            version: current.version + 1,
            updated_at: state.clock.now(),
            ..current
        };
        let mut work = state.effects.begin(&state.db).await?;
        if store::update(work.conn(), &next).await? {
            work.emit(REVIEW_UPDATED, next.id.to_string(), &rated(&next)).await?;
            work.commit().await?;
            return Ok(next);
        }
        work.rollback().await?;
    }
    Err(ReviewsError::Internal(anyhow::anyhow!("review {id} kept changing under the update")))
}

/// Delete a review (its author or an admin).
pub async fn delete(state: &AppState, who: &AuthUser, id: Uuid) -> Result<(), ReviewsError> {
    for _ in 0..5 {
        let current = get(state, id).await?;
        if !who.can_access(current.user_id) {
            return Err(ReviewsError::NotFound("review"));
        }
        let mut work = state.effects.begin(&state.db).await?;
        if store::delete(work.conn(), id, current.version, state.clock.now_ms()).await? {
            let event = ReviewDeleted {
                review_id: id,
                movie_id: current.movie_id,
                user_id: current.user_id,
                version: current.version + 1,
            };
            work.emit(REVIEW_DELETED, id.to_string(), &event).await?;
            work.commit().await?;
            return Ok(());
        }
        work.rollback().await?;
    }
    Err(ReviewsError::Internal(anyhow::anyhow!("review {id} kept changing under the delete")))
}

pub async fn list(
    state: &AppState,
    movie: Option<Uuid>,
    user: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Review>, ReviewsError> {
    let (items, total) = store::list(&state.db, movie, user, page).await?;
    Ok(Page::new(items, page, total))
}

/// A movie's ratings: how many, their average, and how many of each.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub movie_id: Uuid,
    pub count: i64,
    /// Null when there are none.
    pub average: Option<f64>,
    /// `"1"` to `"10"`: how many reviews gave that rating.
    pub histogram: std::collections::BTreeMap<String, i64>,
}

pub async fn stats(state: &AppState, movie: Uuid) -> Result<Stats, ReviewsError> {
    let counts = store::rating_counts(&state.db, movie).await?;
    let count: i64 = counts.iter().map(|(_, n)| n).sum();
    let sum: i64 = counts.iter().map(|(r, n)| r * n).sum();
    let average = (count > 0).then(|| ((sum as f64 / count as f64) * 100.0).round() / 100.0);
    Ok(Stats { movie_id: movie, count, average, histogram: histogram(&counts) })
}
