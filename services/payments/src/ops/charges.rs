//! Charging a card for a reference, refunds on request, and closing a reference.

use contracts::payments::{Card, ReferenceClosed};
use platform::{FieldError, time::to_ms};
use uuid::Uuid;

use super::{Attempt, REQUESTED, capture, card_checked, check_money, refund_in, retrying};
use crate::{
    AppState,
    error::PaymentsError,
    store::{self, Payment, Refund},
};

/// What `POST /payments` asks.
pub struct ChargeInput<'a> {
    pub amount_cents: i64,
    pub currency: &'a str,
    pub reference: &'a str,
    pub user_id: Uuid,
    pub card: &'a Card,
}

/// Charge a card for a reference. A declined card is still a payment (`failed`); a closed
/// reference is refused before the card is charged.
pub async fn charge(state: &AppState, input: ChargeInput<'_>) -> Result<Payment, PaymentsError> {
    let mut errors = Vec::new();
    let currency = check_money(input.amount_cents, input.currency, &mut errors);
    let reference = input.reference.trim();
    if reference.is_empty() || reference.chars().count() > 200 {
        errors.push(FieldError::new("reference", "must be 1 to 200 characters"));
    }
    let card = card_checked(input.card, &mut errors);
    let Some(card) = card.filter(|_| errors.is_empty()) else {
        return Err(PaymentsError::Invalid(errors));
    };
    let now = state.clock.now();
    retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        let row = store::lock_reference(work.conn(), reference, to_ms(now)).await?;
        if row.closed {
            return Err(PaymentsError::ReferenceClosed);
        }
        // The simulated processor answers at once, in-process: its charge and our record share
        // the transaction that holds the reference's lock (and nothing happened if it rolls back).
        let charge = card.charge(now);
        let attempt = Attempt {
            user_id: input.user_id,
            reference,
            amount_cents: input.amount_cents,
            currency: &currency,
            card: &card,
            charge: &charge,
        };
        let payment = capture(&mut work, attempt, row.kept_payment_id, now).await?;
        work.commit().await?;
        Ok(payment)
    })
    .await
}

/// Payments, newest first: one user's or everyone's, optionally for one reference.
pub async fn payments(
    state: &AppState,
    whose: Option<Uuid>,
    reference: Option<&str>,
    page: platform::pagination::PageRequest,
) -> Result<platform::pagination::Page<Payment>, PaymentsError> {
    let (items, total) = store::payments(&state.db, whose, reference, page).await?;
    Ok(platform::pagination::Page::new(items, page, total))
}

/// Refund all (`None`) or part of a payment on request. A booking's payment is refunded whole or
/// not at all: a confirmed booking holds exactly its total (docs/api.md); cancel the booking instead.
pub async fn refund(
    state: &AppState,
    id: Uuid,
    amount: Option<i64>,
) -> Result<(Refund, Payment), PaymentsError> {
    let payment = store::payment(&state.db, id).await?.ok_or(PaymentsError::NotFound("payment"))?;
    if payment.status != "succeeded" {
        return Err(PaymentsError::NotRefundable);
    }
    if amount.is_some_and(|a| a <= 0) {
        return Err(PaymentsError::Invalid(vec![FieldError::new("amount_cents", "must be positive")]));
    }
    let left = payment.held_cents();
    let amount = amount.unwrap_or(left);
    if amount <= 0 {
        return Err(PaymentsError::RefundExceeds { left });
    }
    if contracts::payments::booking_of_reference(&payment.reference).is_some() && amount != left {
        return Err(PaymentsError::PartialBookingRefund { left });
    }
    let mut work = state.effects.begin(&state.db).await?;
    let answer = refund_in(&mut work, &payment, amount, REQUESTED, state.clock.now()).await;
    match answer {
        Ok(answer) => {
            if answer.1.held_cents() == 0 {
                super::subscriptions::end_refunded_period(&mut work, &answer.1, state.clock.now()).await?;
            }
            work.commit().await?;
            Ok(answer)
        }
        Err(PaymentsError::RefundExceeds { .. }) => {
            // Give the connection back before reading again (SQLite has only one).
            work.rollback().await?;
            let now_left = store::payment(&state.db, id).await?.map_or(0, |p| p.held_cents());
            Err(PaymentsError::RefundExceeds { left: now_left })
        }
        Err(e) => Err(e),
    }
}

/// Close a reference: refund everything captured for it and refuse any later charge. Closing
/// again refunds nothing more and answers the same way, so callers may retry freely.
pub async fn close_reference(
    state: &AppState,
    reference: &str,
    reason: &str,
) -> Result<ReferenceClosed, PaymentsError> {
    let (raw_reference_chars, raw_reason_chars) = (reference.chars().count(), reason.chars().count());
    let reference = reference.trim();
    let reason = reason.trim();
    let mut errors = Vec::new();
    if reference.is_empty() || raw_reference_chars > 200 {
        errors.push(FieldError::new("reference", "must be 1 to 200 characters"));
    }
    if reason.is_empty() || raw_reason_chars > 100 {
        errors.push(FieldError::new("reason", "must be 1 to 100 characters"));
    }
    if !errors.is_empty() {
        return Err(PaymentsError::Invalid(errors));
    }
    let now = state.clock.now();
    let (refunded, payments) = retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        store::lock_reference(work.conn(), reference, to_ms(now)).await?;
        store::close_reference(work.conn(), reference, reason, to_ms(now)).await?;
        let mut refunded = 0;
        let mut payments = Vec::new();
        for payment in store::payments_of(work.conn(), reference).await? {
            let left = payment.held_cents();
            if left > 0 {
                let after = refund_in(&mut work, &payment, left, reason, now).await?.1;
                super::subscriptions::end_refunded_period(&mut work, &after, now).await?;
                payments.push(after);
                refunded += left;
            } else {
                payments.push(payment);
            }
        }
        work.commit().await?;
        Ok((refunded, payments))
    })
    .await?;
    if refunded > 0 {
        tracing::info!(reference, reason, refunded, "reference closed and refunded");
    }
    Ok(ReferenceClosed {
        reference: reference.to_owned(),
        refunded_cents: refunded,
        payments: payments.iter().map(Payment::view).collect(),
    })
}
