//! What booking does when other services' events arrive, inside the consumer's inbox
//! transaction (so a redelivered event has no second effect) and without calling anyone:
//! - `showtime.cancelled`: every live booking of the showtime is cancelled and owes its refund;
//! - `payment.refunded`: a paid booking whose payment someone else refunded in full becomes
//!   `refunded`, its tickets void.

use contracts::{
    CloudEvent,
    event_types::{PAYMENT_REFUNDED, SHOWTIME_CANCELLED},
    payments::PaymentRefunded,
    showtimes::ShowtimeCancelled,
};
use sqlx::AnyConnection;

use crate::{AppState, ops};

/// What booking's queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::BOOKING.consumes;

pub struct Reactions {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let now = self.state.clock.now_ms();
        match event.event_type.as_str() {
            SHOWTIME_CANCELLED => {
                let cancelled: ShowtimeCancelled = event.data_as()?;
                ops::end::showtime_cancelled(tx, &self.state.effects, cancelled.showtime_id, now).await?;
            }
            PAYMENT_REFUNDED => {
                let refund: PaymentRefunded = event.data_as()?;
                ops::end::payment_refunded(tx, &self.state.effects, &refund, now).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn after_commit(&self, event: &CloudEvent) {
        if event.event_type == SHOWTIME_CANCELLED
            && let Ok(cancelled) = event.data_as::<ShowtimeCancelled>()
        {
            self.state.showtimes.forget(cancelled.showtime_id).await;
        }
        self.state.effects.wake();
    }
}
