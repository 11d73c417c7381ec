//! What loyalty does with other services' events, inside the consumer's inbox transaction (a
//! redelivered event has no second effect) and without calling anyone: points for a confirmed
//! booking, and exactly those points back when it is cancelled or refunded, in either order.

use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded},
    event_types::{BOOKING_CANCELLED, BOOKING_CONFIRMED},
};
use sqlx::AnyConnection;

use crate::{AppState, ops};

/// What loyalty's queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::LOYALTY.consumes;

pub struct Reactions {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let (db, effects, now) = (&self.state.db, &self.state.effects, self.state.clock.now_ms());
        match event.event_type.as_str() {
            BOOKING_CONFIRMED => {
                ops::award(db, effects, tx, &event.data_as::<BookingConfirmed>()?, now).await
            }
            BOOKING_CANCELLED => ops::reverse(db, effects, tx, &event.data_as::<BookingEnded>()?, now).await,
            other => anyhow::bail!("loyalty does not handle {other}"),
        }
    }

    async fn after_commit(&self, _event: &CloudEvent) {
        self.state.effects.wake();
    }
}
