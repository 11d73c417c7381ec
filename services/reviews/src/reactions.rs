//! What reviews learns from other services' events: who booked or played which movie, which is
//! what makes a review "verified" (from events, never a call at posting time). The inbox makes a
//! redelivered event harmless; the effect is a set, so order does not matter either.

use contracts::{
    CloudEvent,
    booking::BookingConfirmed,
    event_types::{BOOKING_CONFIRMED, PLAYBACK_STARTED},
    streaming::PlaybackStarted,
};
use sqlx::AnyConnection;

use crate::store;

/// What reviews' queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::REVIEWS.consumes;

pub struct Reactions;

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let at = platform::time::to_ms(event.time);
        match event.event_type.as_str() {
            BOOKING_CONFIRMED => {
                let e: BookingConfirmed = event.data_as()?;
                store::watched(tx, e.user_id, e.movie_id, "booking", at).await
            }
            PLAYBACK_STARTED => {
                let e: PlaybackStarted = event.data_as()?;
                store::watched(tx, e.user_id, e.movie_id, "playback", at).await
            }
            other => anyhow::bail!("reviews does not handle {other}"),
        }
    }
}
