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
    /// This refund.
    pub amount_cents: i64,
    /// Everything refunded of the payment so far, this refund included.
    pub refunded_cents: i64,
    /// What the payment captured: `refunded_cents == payment_amount_cents` is a full refund.
    #[serde(default)]
    pub payment_amount_cents: i64,
    pub currency: String,
    /// Why: `requested` (an admin or a service asked), `duplicate-capture` (a second capture for
    /// a reference that was paid already), or the reason a reference was closed
    /// (`booking-cancelled`, `booking-expired`, ...).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The most one payment may capture (1,000,000.00). Prices elsewhere are bounded so that
/// anything that can be held can also be paid (showtimes checks it at compile time).
pub const MAX_CHARGE_CENTS: i64 = 100_000_000;

/// What a booking's payments are filed under: at most one capture is kept per reference.
pub fn booking_reference(booking: Uuid) -> String {
    format!("{BOOKING_PREFIX}{booking}")
}

const BOOKING_PREFIX: &str = "booking:";

/// The booking a reference is for, when it is a booking's.
pub fn booking_of_reference(reference: &str) -> Option<Uuid> {
    reference.strip_prefix(BOOKING_PREFIX)?.parse().ok()
}

/// `POST /payments`: charge a card for a reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub amount_cents: i64,
    pub currency: String,
    pub reference: String,
    pub user_id: Uuid,
    pub payment_method: Card,
}

/// A payment as payments answers it (the fields callers use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentView {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
    pub reference: String,
    /// Set on a capture for a reference that was paid already: this one was refunded at once
    /// and the reference keeps the capture named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Uuid>,
}

/// `POST /payments/references/{reference}/close`: nothing more may be captured for the
/// reference, and everything captured for it is refunded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseReference {
    /// Recorded with the refunds and sent in `payment.refunded` (`booking-cancelled`, ...).
    pub reason: String,
}

/// The answer to closing a reference (also when it was closed already).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceClosed {
    pub reference: String,
    /// Refunded by this call.
    pub refunded_cents: i64,
    /// Every payment of the reference, after the refunds.
    pub payments: Vec<PaymentView>,
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

/// `GET /subscriptions/users/{user_id}/entitlement` (services, admins): what a user's
/// subscription lets them stream now. A 404 means nothing: no subscription, one past due, or
/// one that ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entitlement {
    pub user_id: Uuid,
    pub subscription_id: Uuid,
    pub plan_id: String,
    /// How many playbacks may run at once.
    pub max_streams: i64,
    /// RFC 3339: until when this answer holds without asking again (the period's end, or a
    /// minute from now while a due renewal is being charged).
    pub until: String,
}

/// What a subscription period's payment is filed under: `subscription:<id>:<period start ms>`.
pub fn subscription_of_reference(reference: &str) -> Option<(Uuid, i64)> {
    let rest = reference.strip_prefix("subscription:")?;
    let (id, start) = rest.split_once(':')?;
    Some((id.parse().ok()?, start.parse().ok()?))
}
