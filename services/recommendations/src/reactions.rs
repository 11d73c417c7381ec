//! What recommendations does with events: each one becomes a [`Change`], merged into the
//! database by the consumer (once, in its inbox transaction) and into every replica's live
//! state by a local subscription (each replica hears every event), so a user's next answer
//! reflects what they just did on whichever replica serves it.

use std::sync::Arc;

use contracts::{
    CloudEvent,
    booking::BookingConfirmed,
    catalog::{MovieChanged, MovieDeleted},
    event_types::*,
    reviews::{ReviewDeleted, ReviewRated},
    showtimes::{ShowtimeCancelled, ShowtimeScheduled},
    streaming::{PlaybackStarted, PlaybackStopped},
};
use platform::time::to_ms;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{
    AppState,
    engine::{Engine, Live, MovieFacts, Show},
    model::{Movie, Signal},
    store,
};

/// What recommendations' queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::RECOMMENDATIONS.consumes;

/// One event's effect on the signals.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Movie(MovieFacts),
    MovieDeleted(Uuid),
    Show(Uuid, Show),
    ShowCancelled(Uuid),
    Booked {
        booking: Uuid,
        user: Uuid,
        movie: Uuid,
        showtime: Uuid,
        at: i64,
    },
    Signal {
        user: Uuid,
        movie: Uuid,
        signal: Signal,
    },
    /// A booking's user and showtime, as loaded from the database (its signal is loaded apart).
    BookedAt {
        user: Uuid,
        showtime: Uuid,
    },
}

pub fn change_of(event: &CloudEvent) -> anyhow::Result<Change> {
    let at = to_ms(event.time);
    Ok(match event.event_type.as_str() {
        MOVIE_CREATED | MOVIE_UPDATED => {
            let e: MovieChanged = event.data_as()?;
            let movie = Movie {
                id: e.movie_id,
                title: e.title,
                genres: e.genres,
                director: e.director,
                cast: e.cast,
                deleted: false,
            };
            Change::Movie(MovieFacts { movie, changed_at: at })
        }
        MOVIE_DELETED => Change::MovieDeleted(event.data_as::<MovieDeleted>()?.movie_id),
        SHOWTIME_SCHEDULED => {
            let e: ShowtimeScheduled = event.data_as()?;
            let show = Show {
                movie: e.movie_id,
                theater: e.theater_id,
                starts_at: to_ms(e.starts_at),
                cancelled: false,
            };
            Change::Show(e.showtime_id, show)
        }
        SHOWTIME_CANCELLED => Change::ShowCancelled(event.data_as::<ShowtimeCancelled>()?.showtime_id),
        BOOKING_CONFIRMED => {
            let e: BookingConfirmed = event.data_as()?;
            Change::Booked {
                booking: e.booking_id,
                user: e.user_id,
                movie: e.movie_id,
                showtime: e.showtime_id,
                at: to_ms(e.confirmed_at),
            }
        }
        PLAYBACK_STARTED => {
            let e: PlaybackStarted = event.data_as()?;
            let signal = Signal { watched: Some(0.0), last_at: to_ms(e.started_at), ..Signal::default() };
            Change::Signal { user: e.user_id, movie: e.movie_id, signal }
        }
        PLAYBACK_STOPPED => {
            let e: PlaybackStopped = event.data_as()?;
            let watched = if e.completed {
                1.0
            } else if e.duration_seconds > 0 {
                (e.position_seconds as f32 / e.duration_seconds as f32).clamp(0.0, 1.0)
            } else {
                0.0
            };
            // Kept to a thousandth, as the database keeps it: a replica that loads it and one
            // that heard it weigh it alike.
            let watched = (watched * 1000.0).round() / 1000.0;
            let signal = Signal { watched: Some(watched), last_at: to_ms(e.stopped_at), ..Signal::default() };
            Change::Signal { user: e.user_id, movie: e.movie_id, signal }
        }
        REVIEW_POSTED | REVIEW_UPDATED => {
            let e: ReviewRated = event.data_as()?;
            let signal = Signal {
                rating: Some(e.rating.clamp(1, 10)),
                rating_review: e.review_id,
                rating_version: e.version.max(1),
                last_at: at,
                ..Signal::default()
            };
            Change::Signal { user: e.user_id, movie: e.movie_id, signal }
        }
        REVIEW_DELETED => {
            let e: ReviewDeleted = event.data_as()?;
            let signal = Signal {
                rating: None,
                rating_review: e.review_id,
                rating_version: e.version.max(1),
                last_at: at,
                ..Signal::default()
            };
            Change::Signal { user: e.user_id, movie: e.movie_id, signal }
        }
        other => anyhow::bail!("recommendations does not handle {other}"),
    })
}

/// Apply a change to a replica's live state.
pub fn apply_live(live: &mut Live, change: Change) {
    match change {
        Change::Movie(facts) => live.movie_changed(facts),
        Change::MovieDeleted(id) => live.movie_deleted(id),
        Change::Show(id, show) => live.show(id, show),
        Change::ShowCancelled(id) => live.show_cancelled(id),
        Change::Booked { user, movie, showtime, at, .. } => {
            live.signal(user, movie, &Signal { booked: true, last_at: at, ..Signal::default() });
            live.booked_at(user, showtime);
        }
        Change::Signal { user, movie, signal } => live.signal(user, movie, &signal),
        Change::BookedAt { user, showtime } => live.booked_at(user, showtime),
    }
}

/// The durable half: the consumer, once per event for the whole service.
pub struct Reactions {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        store::apply(tx, &change_of(event)?).await
    }

    /// This replica's memory too: the local subscription may have missed the event (it was
    /// published while this replica was down, or redriven from the dead letters). Merges are
    /// idempotent, so hearing it twice changes nothing.
    async fn after_commit(&self, event: &CloudEvent) {
        if let Ok(change) = change_of(event) {
            self.state.engine.update(|live| apply_live(live, change));
        }
    }
}

/// The in-memory half: every replica, for every event.
pub struct LiveUpdates {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::LocalHandler for LiveUpdates {
    async fn handle(&self, event: &CloudEvent) -> anyhow::Result<()> {
        let change = change_of(event)?;
        self.state.engine.update(|live| apply_live(live, change));
        Ok(())
    }

    /// Events may have been missed: merge in everything the database holds.
    async fn resync(&self) -> anyhow::Result<()> {
        load(&self.state.db, &self.state.engine).await
    }
}

/// Merge the database's signals into the live state.
/// Forget the live signals and read them again (after a restore replaced the tables).
pub async fn reload(db: &platform::db::Db, engine: &Arc<Engine>) -> anyhow::Result<()> {
    let changes = store::load(db).await?;
    engine.update(|live| {
        *live = Default::default();
        for change in changes {
            apply_live(live, change);
        }
    });
    Ok(())
}

pub async fn load(db: &platform::db::Db, engine: &Arc<Engine>) -> anyhow::Result<()> {
    let changes = store::load(db).await?;
    engine.update(|live| {
        for change in changes {
            apply_live(live, change);
        }
    });
    Ok(())
}
