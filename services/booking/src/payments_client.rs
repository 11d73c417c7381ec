//! What booking asks of payments: charge, find what a booking was charged, refund. Every call
//! is keyed, so a retry after a crash or a timeout never charges or refunds twice.

use platform::{auth::ServiceTokens, client::ServiceClient};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::BookingError;

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentAnswer {
    pub id: Uuid,
    pub status: String,
    pub failure_code: Option<String>,
    pub amount_cents: i64,
    pub refunded_cents: i64,
}

#[derive(Debug, Deserialize)]
struct PaymentPage {
    items: Vec<PaymentAnswer>,
}

pub struct PaymentsClient {
    pub client: ServiceClient,
    pub tokens: std::sync::Arc<ServiceTokens>,
}

pub fn reference(booking: Uuid) -> String {
    format!("booking:{booking}")
}

impl PaymentsClient {
    pub async fn token(&self) -> Result<String, BookingError> {
        self.tokens.token().await.map_err(|e| BookingError::Unavailable(format!("no service token: {e:#}")))
    }

    /// Succeeded payments for a booking that still have something left to refund.
    pub async fn captured_for(&self, booking: Uuid) -> Result<Vec<PaymentAnswer>, BookingError> {
        let token = self.token().await?;
        let path = format!("/api/v1/payments?reference={}&per_page=100", reference(booking));
        let page: Option<PaymentPage> = self.client.get_json_as(&path, Some(&token)).await?;
        Ok(page
            .map(|p| p.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.status == "succeeded" && p.refunded_cents < p.amount_cents)
            .collect())
    }

    /// Refund what is left of a payment; keyed by payment, so a retry refunds nothing more.
    pub async fn refund_all(&self, payment: Uuid) -> Result<(), BookingError> {
        let token = self.token().await?;
        let key = format!("refund-{payment}");
        let (status, answer) = self
            .client
            .post_json(
                &format!("/api/v1/payments/{payment}/refund"),
                &token,
                &serde_json::json!({}),
                &[("idempotency-key", key.as_str())],
            )
            .await?;
        // 409: nothing left to refund, i.e. it was refunded already.
        if status.is_success() || status == reqwest::StatusCode::CONFLICT {
            Ok(())
        } else {
            Err(BookingError::Unavailable(format!("refunding failed: {status} {answer}")))
        }
    }
}
