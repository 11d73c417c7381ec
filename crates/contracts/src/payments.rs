//! Payloads of the payments service's events, and the calls other services make to it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `payment.succeeded` and `payment.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSettled {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub reference: String,
    pub amount_cents: i64,
    pub currency: String,
    pub failure_code: Option<String>,
}

/// `payment.refunded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub refund_id: Uuid,
    pub user_id: Uuid,
    pub reference: String,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
}

/// `subscription.activated` and `subscription.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionChanged {
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub plan_id: String,
    pub max_streams: i64,
    /// RFC 3339: until when it is paid.
    pub current_period_end: String,
}

/// A card as sent in a payment request. Its `Debug` shows the last four digits only, so a
/// card number cannot reach a log by accident.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits: String = self.number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        write!(f, "Card(**** {last4}, {:02}/{})", self.exp_month, self.exp_year)
    }
}
