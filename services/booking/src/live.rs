//! The live seat map: every replica hears every `booking.*` event (a per-replica subscription)
//! and passes seat changes to the Server-Sent Events streams its clients hold open, so a hold
//! made on one replica shows up on a stream served by another.

use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded, BookingHeld},
    event_types::{BOOKING_CANCELLED, BOOKING_CONFIRMED, BOOKING_EXPIRED, BOOKING_HELD},
};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

pub const EVENTS: &[&str] = &[BOOKING_HELD, BOOKING_CONFIRMED, BOOKING_CANCELLED, BOOKING_EXPIRED];

/// Some seats of a showtime changed status.
#[derive(Debug, Clone, Serialize)]
pub struct SeatChange {
    pub showtime_id: Uuid,
    pub seats: Vec<String>,
    /// `held`, `booked` or `available`.
    pub status: &'static str,
}

pub struct SeatFeed {
    pub sender: broadcast::Sender<SeatChange>,
}

impl SeatFeed {
    pub fn new() -> Self {
        // A slow stream that falls this far behind skips ahead (and is told so).
        Self { sender: broadcast::channel(1024).0 }
    }
}

impl SeatFeed {
    /// The Server-Sent Events of one showtime: a `seat` event per seat whose status changes,
    /// and a `lagged` event when the client fell behind and should reload the seat map.
    pub fn events_of(
        &self,
        showtime: Uuid,
    ) -> impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>> + use<>
    {
        use axum::response::sse::Event;
        use futures_util::StreamExt;
        use tokio::sync::broadcast::error::RecvError;

        let receiver = self.sender.subscribe();
        futures_util::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(change) if change.showtime_id == showtime => {
                        let events: Vec<Result<Event, std::convert::Infallible>> = change
                            .seats
                            .iter()
                            .map(|seat| {
                                let data =
                                    serde_json::json!({"seat": seat, "status": change.status}).to_string();
                                Ok(Event::default().event("seat").data(data))
                            })
                            .collect();
                        return Some((futures_util::stream::iter(events), receiver));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        let lagged = vec![Ok(Event::default().event("lagged").data("reload the seat map"))];
                        return Some((futures_util::stream::iter(lagged), receiver));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .flatten()
    }
}

impl Default for SeatFeed {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl events::LocalHandler for SeatFeed {
    async fn handle(&self, event: &CloudEvent) -> anyhow::Result<()> {
        let change = match event.event_type.as_str() {
            BOOKING_HELD => {
                let e: BookingHeld = event.data_as()?;
                SeatChange { showtime_id: e.showtime_id, seats: e.seats, status: "held" }
            }
            BOOKING_CONFIRMED => {
                let e: BookingConfirmed = event.data_as()?;
                SeatChange { showtime_id: e.showtime_id, seats: e.seats, status: "booked" }
            }
            BOOKING_CANCELLED | BOOKING_EXPIRED => {
                let e: BookingEnded = event.data_as()?;
                SeatChange { showtime_id: e.showtime_id, seats: e.seats, status: "available" }
            }
            _ => return Ok(()),
        };
        // No listener is fine: nobody is watching that showtime.
        let _ = self.sender.send(change);
        Ok(())
    }

    async fn resync(&self) -> anyhow::Result<()> {
        // Streams cannot be replayed; clients reload the seat map when told they lagged.
        Ok(())
    }
}
