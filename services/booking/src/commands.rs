//! The commands booking owes payments, carried out by the platform's command relay (retried
//! with backoff until payments acknowledges; `commands_pending` in `/metrics`).
//!
//! There is one: close a booking's payment reference (`payments.close-reference`), owed in the
//! same transaction that ends a booking which may hold money. Closing refunds whatever was
//! captured for the booking and fences the reference, so even a charge still in flight when the
//! booking ended cannot stay captured.

use std::sync::Arc;

use events::Command;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::payments_client::PaymentsClient;

pub const CLOSE_REFERENCE: &str = "payments.close-reference";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseBooking {
    pub booking_id: Uuid,
    /// `booking-cancelled`, `booking-expired`, `showtime-cancelled`, `booking-refunded`.
    pub reason: String,
}

/// The command that refunds everything captured for `booking` and takes no more charges. One
/// per booking: a booking ends once.
pub fn close_booking(booking: Uuid, reason: &str) -> anyhow::Result<Command> {
    Command::new(
        CLOSE_REFERENCE,
        format!("close:booking:{booking}"),
        &CloseBooking { booking_id: booking, reason: reason.to_owned() },
    )
}

pub struct BookingCommands {
    pub payments: Arc<PaymentsClient>,
}

#[async_trait::async_trait]
impl events::CommandHandler for BookingCommands {
    async fn execute(&self, kind: &str, _key: &str, payload: &serde_json::Value) -> anyhow::Result<()> {
        match kind {
            CLOSE_REFERENCE => {
                let close: CloseBooking = serde_json::from_value(payload.clone())?;
                let closed = self.payments.close(close.booking_id, &close.reason).await?;
                if closed.refunded_cents > 0 {
                    tracing::info!(booking_id = %close.booking_id, refunded_cents = closed.refunded_cents, reason = %close.reason, "booking refunded");
                }
                Ok(())
            }
            other => anyhow::bail!("booking has no command {other:?}"),
        }
    }
}
