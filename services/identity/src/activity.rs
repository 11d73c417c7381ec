//! The activity log: what a user did, as other services announced it.

use contracts::{
    CloudEvent,
    booking::BookingConfirmed,
    event_types::{BOOKING_CONFIRMED, PLAYBACK_STARTED, PLAYBACK_STOPPED, USER_REGISTERED},
    identity::UserRegistered,
    streaming::{PlaybackStarted, PlaybackStopped},
};
use serde_json::json;
use sqlx::AnyConnection;

use crate::store;

/// What identity's queue takes (the registry's entry, so the broker and the code agree).
pub const ACTIVITY_EVENTS: &[&str] = contracts::services::IDENTITY.consumes;

pub struct ActivityLog;

#[async_trait::async_trait]
impl events::EventHandler for ActivityLog {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let (user_id, kind, subject, details) = match event.event_type.as_str() {
            USER_REGISTERED => {
                let e: UserRegistered = event.data_as()?;
                (e.user_id, "registered", e.user_id.to_string(), json!({}))
            }
            BOOKING_CONFIRMED => {
                let e: BookingConfirmed = event.data_as()?;
                let details = json!({
                    "showtime_id": e.showtime_id, "movie_id": e.movie_id, "seats": e.seats,
                    "total_cents": e.total_cents, "currency": e.currency,
                });
                (e.user_id, "booking_confirmed", e.booking_id.to_string(), details)
            }
            PLAYBACK_STARTED => {
                let e: PlaybackStarted = event.data_as()?;
                let details = json!({"session_id": e.session_id, "position_seconds": e.position_seconds});
                (e.user_id, "playback_started", e.movie_id.to_string(), details)
            }
            PLAYBACK_STOPPED => {
                let e: PlaybackStopped = event.data_as()?;
                let details = json!({
                    "session_id": e.session_id, "position_seconds": e.position_seconds,
                    "duration_seconds": e.duration_seconds, "completed": e.completed, "reason": e.reason,
                });
                (e.user_id, "playback_stopped", e.movie_id.to_string(), details)
            }
            other => anyhow::bail!("identity does not handle {other}"),
        };
        store::insert_activity(tx, event.id, user_id, kind, &subject, &details, event.time).await
    }
}
