//! payments through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod charges;
mod idempotency;
mod refunds;
mod subscriptions;

use serde_json::{Value, json};

pub const GOOD: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const NO_FUNDS: &str = "4000000000009995";

pub fn card(number: &str) -> Value {
    json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"})
}

/// A payment request for something of its own (a reference keeps one capture at most).
pub fn payment(user: &str, amount: i64, number: &str) -> Value {
    let reference = format!("order:{}", uuid::Uuid::new_v4());
    json!({"amount_cents": amount, "currency": "USD", "reference": reference, "user_id": user, "payment_method": card(number)})
}
