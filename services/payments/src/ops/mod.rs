//! payments' use cases: charging a card for a reference, refunds, closing a reference, and
//! subscriptions. Handlers, the renewal worker and tests call these; each state change is one
//! unit of work with its events.
//!
//! Per reference (what a payment is for) at most one capture is kept: a charge locks the
//! reference's row first; a capture for a reference that still holds an earlier one is refunded
//! at once (`duplicate-capture`); a closed reference takes no charge at all. That is what lets
//! booking end a booking at any moment and know its money follows (docs/money.md).
//!
//! - [`charges`]: charging a card, refunds on request, closing a reference.
//! - [`subscriptions`]: subscribing, cancelling, renewing.
//!
//! Here: what both share: checks, recording a payment, keeping one capture, refunding inside a
//! unit of work.

mod charges;
mod subscriptions;

pub use charges::{ChargeInput, charge, close_reference, payments, refund};
pub use subscriptions::{
    RENEWAL_RETRY_MS, RENEWAL_TRIES, add_month, cancel_subscription, entitlement, period_reference, renew,
    subscribe, subscription_event,
};

use contracts::{
    event_types::{PAYMENT_FAILED, PAYMENT_REFUNDED, PAYMENT_SUCCEEDED},
    payments::{Card, PaymentRefunded, PaymentSettled},
};
use events::UnitOfWork;
use platform::FieldError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::PaymentsError,
    processor::{self, Charge, CheckedCard},
    store::{self, Payment, Refund},
};

pub use contracts::payments::MAX_CHARGE_CENTS as MAX_AMOUNT_CENTS;

/// Refunded because its reference already kept another capture.
pub const DUPLICATE_CAPTURE: &str = "duplicate-capture";
/// Refunded because someone asked (an admin, a service).
pub const REQUESTED: &str = "requested";

pub(super) fn check_money(amount_cents: i64, currency: &str, errors: &mut Vec<FieldError>) -> String {
    if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
        errors.push(FieldError::new("amount_cents", format!("must be between 1 and {MAX_AMOUNT_CENTS}")));
    }
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new("currency", "must be an ISO 4217 code such as USD"));
    }
    currency
}

pub(super) fn card_checked(card: &Card, errors: &mut Vec<FieldError>) -> Option<CheckedCard> {
    processor::check(card).map_err(|e| errors.extend(e)).ok()
}

/// One charge of a card, as it is recorded.
pub struct Attempt<'a> {
    pub user_id: Uuid,
    pub reference: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub card: &'a CheckedCard,
    pub charge: &'a Charge,
}

/// Write a settled payment and its event in the unit of work.
pub(super) async fn record_payment(
    work: &mut UnitOfWork,
    a: Attempt<'_>,
    now: OffsetDateTime,
) -> anyhow::Result<Payment> {
    let Attempt { user_id, reference, amount_cents, currency, card, charge } = a;
    let (status, failure_code) = match charge {
        Charge::Succeeded => ("succeeded", None),
        Charge::Declined(code) => ("failed", Some((*code).to_owned())),
    };
    let payment = Payment {
        id: Uuid::now_v7(),
        user_id,
        status: status.to_owned(),
        failure_code: failure_code.clone(),
        amount_cents,
        refunded_cents: 0,
        currency: currency.to_owned(),
        reference: reference.to_owned(),
        card_brand: card.brand.to_owned(),
        card_last4: card.last4.clone(),
        created_at: now,
        duplicate_of: None,
    };
    store::insert_payment(work.conn(), &payment).await?;
    let settled = PaymentSettled {
        payment_id: payment.id,
        user_id,
        reference: reference.to_owned(),
        amount_cents,
        currency: currency.to_owned(),
        failure_code,
    };
    let kind = if matches!(charge, Charge::Succeeded) { PAYMENT_SUCCEEDED } else { PAYMENT_FAILED };
    work.emit(kind, payment.id.to_string(), &settled).await?;
    tracing::info!(payment_id = %payment.id, status, card_last4 = %payment.card_last4, "payment settled");
    Ok(payment)
}

/// Charge the card and record the outcome for a reference whose row `work` has locked. A
/// capture while the reference keeps another one is refunded at once and names the kept one.
pub(super) async fn capture(
    work: &mut UnitOfWork,
    attempt: Attempt<'_>,
    kept: Option<Uuid>,
    now: OffsetDateTime,
) -> anyhow::Result<Payment> {
    let reference = attempt.reference.to_owned();
    let mut payment = record_payment(work, attempt, now).await?;
    if payment.status != "succeeded" {
        return Ok(payment);
    }
    let kept = match kept {
        Some(id) => store::payment_in(work.conn(), id).await?.filter(|p| p.held_cents() > 0),
        None => None,
    };
    match kept {
        Some(kept) => {
            tracing::warn!(payment_id = %payment.id, kept = %kept.id, reference, "a second capture for a paid reference; refunding it");
            let amount = payment.amount_cents;
            payment = refund_in(work, &payment, amount, DUPLICATE_CAPTURE, now).await?.1;
            payment.duplicate_of = Some(kept.id);
        }
        None => store::keep_payment(work.conn(), &reference, payment.id).await?,
    }
    Ok(payment)
}

/// Take `amount` off `payment` inside the unit of work, with its refund row and event; the
/// refund and the payment after it. The UPDATE checks what is left, so concurrent refunds never
/// add up to more than was captured.
pub(super) async fn refund_in(
    work: &mut UnitOfWork,
    payment: &Payment,
    amount: i64,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(Refund, Payment), PaymentsError> {
    let Some(updated) = store::take_refund(work.conn(), payment.id, amount).await? else {
        return Err(PaymentsError::RefundExceeds { left: payment.held_cents() });
    };
    let refund = Refund {
        id: Uuid::now_v7(),
        payment_id: payment.id,
        amount_cents: amount,
        reason: reason.to_owned(),
        created_at: now,
    };
    store::insert_refund(work.conn(), &refund).await?;
    let event = PaymentRefunded {
        payment_id: payment.id,
        refund_id: refund.id,
        user_id: updated.user_id,
        reference: updated.reference.clone(),
        amount_cents: amount,
        refunded_cents: updated.refunded_cents,
        payment_amount_cents: updated.amount_cents,
        currency: updated.currency.clone(),
        reason: Some(reason.to_owned()),
    };
    work.emit(PAYMENT_REFUNDED, payment.id.to_string(), &event).await?;
    Ok((refund, updated))
}

/// Run a whole unit of work again when the database refused it as a transient conflict (a
/// deadlock or serialization failure on PostgreSQL, a lock timeout on SQLite).
pub(super) async fn retrying<T, F, Fut>(work: F) -> Result<T, PaymentsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PaymentsError>>,
{
    platform::db::retry_transient(
        work,
        |e| matches!(e, PaymentsError::Internal(e) if platform::db::is_transient(e)),
    )
    .await
}
