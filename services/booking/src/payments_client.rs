//! What booking asks of payments, typed (contracts::payments): charge a booking, find what was
//! captured for it, and close it (refund everything, refuse later charges). Every call is keyed
//! or idempotent by nature, so a retry after a crash or a timeout never charges or refunds twice.

use contracts::payments::{ChargeRequest, CloseReference, PaymentView, ReferenceClosed, booking_reference};
use platform::client::{CallError, ServiceClient};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Deserialize)]
struct PaymentPage {
    items: Vec<PaymentView>,
}

pub struct PaymentsClient {
    pub client: ServiceClient,
}

impl PaymentsClient {
    /// Charge a card for a booking with `key` as the Idempotency-Key.
    pub async fn charge(&self, request: &ChargeRequest, key: &str) -> Result<PaymentView, CallError> {
        self.client.post("/api/v1/payments", request, &[("idempotency-key", key)]).await
    }

    /// Succeeded payments for a booking that still hold money.
    pub async fn captured_for(&self, booking: Uuid) -> Result<Vec<PaymentView>, CallError> {
        let path = format!("/api/v1/payments?reference={}&per_page=100", booking_reference(booking));
        let page: Option<PaymentPage> = self.client.get(&path).await?;
        Ok(page
            .map(|p| p.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.status == "succeeded" && p.refunded_cents < p.amount_cents)
            .collect())
    }

    /// Close the booking's reference: everything captured for it is refunded, and no later
    /// charge for it is accepted. Safe to repeat.
    pub async fn close(&self, booking: Uuid, reason: &str) -> Result<ReferenceClosed, CallError> {
        let path = format!("/api/v1/payments/references/{}/close", booking_reference(booking));
        self.client.post(&path, &CloseReference { reason: reason.to_owned() }, &[]).await
    }
}
