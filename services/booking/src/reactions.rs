//! `showtime.cancelled`: every live booking of the showtime is cancelled, and paid ones are
//! refunded in full (whatever the hour: the cinema cancelled, not the customer).

use contracts::{CloudEvent, event_types::SHOWTIME_CANCELLED, showtimes::ShowtimeCancelled};
use sqlx::AnyConnection;

use crate::{AppState, routes::end, store};

pub const EVENTS: &[&str] = &[SHOWTIME_CANCELLED];

pub struct ShowtimeCancellations {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::EventHandler for ShowtimeCancellations {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let cancelled: ShowtimeCancelled = event.data_as()?;
        self.state.showtimes.forget(cancelled.showtime_id).await;
        for id in store::live_bookings_of(tx, cancelled.showtime_id).await? {
            let Some((booking, _)) = store::booking_in(tx, id).await? else { continue };
            // Refunds are keyed by payment: if this transaction fails and the event comes
            // again, nothing is refunded twice.
            let mut refunded = 0;
            for payment in
                self.state.payments.captured_for(booking.id).await.map_err(|e| anyhow::anyhow!("{e}"))?
            {
                self.state.payments.refund_all(payment.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                refunded += payment.amount_cents - payment.refunded_cents;
            }
            end(tx, &self.state, &booking, &["held", "confirmed"], "cancelled", refunded).await?;
        }
        Ok(())
    }

    async fn after_commit(&self, _event: &CloudEvent) {
        self.state.outbox.wake();
    }
}
