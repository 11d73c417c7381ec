//! payments' use cases: charging a card for a reference, refunds, closing a reference, and
//! subscriptions. Handlers, the renewal worker and tests call these; each state change is one
//! unit of work with its events.
//!
//! Per reference (what a payment is for) at most one capture is kept: a charge locks the
//! reference's row first; a capture for a reference that still holds an earlier one is refunded
//! at once (`duplicate-capture`); a closed reference takes no charge at all. That is what lets
//! booking end a booking at any moment and know its money follows (ARCHITECTURE.md).

use contracts::{
    event_types::{
        PAYMENT_FAILED, PAYMENT_REFUNDED, PAYMENT_SUCCEEDED, SUBSCRIPTION_ACTIVATED, SUBSCRIPTION_CANCELLED,
    },
    payments::{Card, PaymentRefunded, PaymentSettled, ReferenceClosed, SubscriptionChanged},
};
use events::UnitOfWork;
use platform::{FieldError, time::to_ms};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    AppState,
    error::PaymentsError,
    processor::{self, Charge, CheckedCard},
    store::{self, Payment, Plan, Refund, Subscription},
};

pub use contracts::payments::MAX_CHARGE_CENTS as MAX_AMOUNT_CENTS;

/// Refunded because its reference already kept another capture.
pub const DUPLICATE_CAPTURE: &str = "duplicate-capture";
/// Refunded because someone asked (an admin, a service).
pub const REQUESTED: &str = "requested";

fn check_money(amount_cents: i64, currency: &str, errors: &mut Vec<FieldError>) -> String {
    if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
        errors.push(FieldError::new("amount_cents", format!("must be between 1 and {MAX_AMOUNT_CENTS}")));
    }
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new("currency", "must be an ISO 4217 code such as USD"));
    }
    currency
}

fn card_checked(card: &Card, errors: &mut Vec<FieldError>) -> Option<CheckedCard> {
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
async fn record_payment(
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
async fn capture(
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
async fn refund_in(
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
    if reference.is_empty() || reference.len() > 200 {
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

/// Run a whole unit of work again when the database refused it as a transient conflict (a
/// deadlock or serialization failure on PostgreSQL, a lock timeout on SQLite).
async fn retrying<T, F, Fut>(work: F) -> Result<T, PaymentsError>
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

/// Refund all (`None`) or part of a payment on request. A booking's payment is refunded whole or
/// not at all: a confirmed booking holds exactly its total (API.md); cancel the booking instead.
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
    if payment.reference.starts_with("booking:") && amount != left {
        return Err(PaymentsError::PartialBookingRefund { left });
    }
    let mut work = state.effects.begin(&state.db).await?;
    let answer = refund_in(&mut work, &payment, amount, REQUESTED, state.clock.now()).await;
    match answer {
        Ok(answer) => {
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
    let reference = reference.trim();
    let reason = reason.trim();
    let mut errors = Vec::new();
    if reference.is_empty() || reference.len() > 200 {
        errors.push(FieldError::new("reference", "must be 1 to 200 characters"));
    }
    if reason.is_empty() || reason.len() > 100 {
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
                payments.push(refund_in(&mut work, &payment, left, reason, now).await?.1);
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

/// One calendar month later, on the same day where the month has it (Jan 31 → Feb 28).
pub fn add_month(t: OffsetDateTime) -> OffsetDateTime {
    let (year, month) = if t.month() == time::Month::December {
        (t.year() + 1, time::Month::January)
    } else {
        (t.year(), t.month().next())
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map_or(t + time::Duration::days(30), |d| t.replace_date(d))
}

pub fn subscription_event(s: &Subscription, plan: &Plan) -> SubscriptionChanged {
    SubscriptionChanged {
        subscription_id: s.id,
        user_id: s.user_id,
        plan_id: s.plan_id.clone(),
        max_streams: plan.max_streams,
        current_period_end: s
            .current_period_end
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

/// What a subscription period's charge is filed under: one kept capture per period.
pub fn period_reference(subscription: Uuid, period_start: OffsetDateTime) -> String {
    format!("subscription:{subscription}:{}", to_ms(period_start))
}

/// Subscribe to a plan: the first month is charged now (402 when declined, and nothing is
/// created); renewals are charged when each period ends. 409 when one is already active.
pub async fn subscribe(
    state: &AppState,
    user: Uuid,
    plan_id: &str,
    card: &Card,
) -> Result<Subscription, PaymentsError> {
    let mut errors = Vec::new();
    let plan = store::plan(&state.db, plan_id.trim()).await?;
    if plan.is_none() {
        errors.push(FieldError::new("plan_id", "must be basic, standard or premium"));
    }
    let card = card_checked(card, &mut errors);
    let (Some(plan), Some(card), true) = (plan, card, errors.is_empty()) else {
        return Err(PaymentsError::Invalid(errors));
    };
    let live = store::live_subscription(&state.db, user).await?;
    if live.as_ref().is_some_and(|s| s.status == "active") {
        return Err(PaymentsError::AlreadySubscribed);
    }
    let now = state.clock.now();
    let subscription = Subscription {
        id: Uuid::now_v7(),
        user_id: user,
        plan_id: plan.id.clone(),
        status: "active".into(),
        current_period_start: now,
        current_period_end: add_month(now),
        cancel_at_period_end: false,
        card_last4: card.last4.clone(),
        payment_token: card.token.clone(),
    };
    let charge = card.charge(now);
    let reference = period_reference(subscription.id, now);
    let mut work = state.effects.begin(&state.db).await?;
    // The processor is simulated in-process, so the charge and the subscription can share one
    // transaction; the unique index refuses a second live subscription even now. A declined
    // charge is still kept (it is a payment attempt), without a subscription.
    let declined = match charge {
        Charge::Declined(code) => Some(code),
        Charge::Succeeded => None,
    };
    if declined.is_none() {
        // A past-due subscription (its renewal was declined) gives way to the new one.
        if let Some(past_due) = &live {
            store::end_subscription(work.conn(), past_due.id, "past_due", to_ms(now)).await?;
        }
        if !store::insert_subscription(work.conn(), &subscription).await? {
            return Err(PaymentsError::AlreadySubscribed);
        }
    }
    let row = store::lock_reference(work.conn(), &reference, to_ms(now)).await?;
    let attempt = Attempt {
        user_id: user,
        reference: &reference,
        amount_cents: plan.price_cents,
        currency: &plan.currency,
        card: &card,
        charge: &charge,
    };
    capture(&mut work, attempt, row.kept_payment_id, now).await?;
    if let Some(code) = declined {
        work.commit().await?;
        return Err(PaymentsError::Declined(code.to_owned()));
    }
    work.emit(SUBSCRIPTION_ACTIVATED, subscription.id.to_string(), &subscription_event(&subscription, &plan))
        .await?;
    work.commit().await?;
    Ok(subscription)
}

/// Cancel at the end of the paid period: it stays active until then and is not renewed. A
/// past-due subscription (nothing paid to use up) ends at once.
pub async fn cancel_subscription(state: &AppState, user: Uuid) -> Result<Subscription, PaymentsError> {
    let current =
        store::live_subscription(&state.db, user).await?.ok_or(PaymentsError::NotFound("subscription"))?;
    let plan = store::plan(&state.db, &current.plan_id).await?.ok_or(PaymentsError::NotFound("plan"))?;
    let mut work = state.effects.begin(&state.db).await?;
    if current.status == "past_due" {
        store::end_subscription(work.conn(), current.id, "past_due", state.clock.now_ms()).await?;
        work.commit().await?;
        return Ok(Subscription { status: "cancelled".into(), ..current });
    }
    if store::cancel_at_period_end(work.conn(), current.id).await? {
        work.emit(SUBSCRIPTION_CANCELLED, current.id.to_string(), &subscription_event(&current, &plan))
            .await?;
        work.commit().await?;
    } else {
        work.rollback().await?;
    }
    store::live_subscription(&state.db, user).await?.ok_or(PaymentsError::NotFound("subscription"))
}

/// How often a declined renewal is tried in all before the subscription ends, and how far apart.
pub const RENEWAL_TRIES: i64 = 3;
pub const RENEWAL_RETRY_MS: i64 = 24 * 3600 * 1000;

/// Renew one subscription claimed with `lease`: end it if it was cancelled, else charge the
/// period that is due. Everything happens in one transaction that first checks the lease is
/// still ours and re-reads the subscription (a cancel that came after the claim is seen), and
/// the charge is filed under the period's own reference, so a period is kept charged once.
pub async fn renew(state: &AppState, claimed: &Subscription, lease: i64) -> anyhow::Result<()> {
    let plan =
        store::plan(&state.db, &claimed.plan_id).await?.ok_or_else(|| anyhow::anyhow!("unknown plan"))?;
    let now = state.clock.now();
    let mut work = state.effects.begin(&state.db).await?;
    let Some((sub, failed_before)) = store::fence(work.conn(), claimed.id, lease, to_ms(now)).await? else {
        tracing::info!(subscription_id = %claimed.id, "renewal taken over by another worker; leaving it");
        return Ok(());
    };
    if sub.cancel_at_period_end {
        store::end_subscription(work.conn(), sub.id, &sub.status, to_ms(now)).await?;
        work.commit().await?;
        tracing::info!(subscription_id = %sub.id, "subscription ended at the end of its period");
        return Ok(());
    }
    let card =
        processor::from_token(&sub.payment_token).ok_or_else(|| anyhow::anyhow!("unusable payment token"))?;
    let charge = card.charge(now);
    // The period that follows the one that ended: the same reference on every try.
    let reference = period_reference(sub.id, sub.current_period_end);
    let row = store::lock_reference(work.conn(), &reference, to_ms(now)).await?;
    let attempt = Attempt {
        user_id: sub.user_id,
        reference: &reference,
        amount_cents: plan.price_cents,
        currency: &plan.currency,
        card: &card,
        charge: &charge,
    };
    capture(&mut work, attempt, row.kept_payment_id, now).await?;
    match charge {
        Charge::Succeeded => {
            // A past-due subscription starts its new month now: it gave no service meanwhile.
            let start = if sub.status == "past_due" { now } else { sub.current_period_end };
            let mut renewed = sub.clone();
            renewed.current_period_start = start;
            renewed.current_period_end = add_month(start);
            store::renewed(work.conn(), sub.id, start, renewed.current_period_end, to_ms(now)).await?;
            work.emit(SUBSCRIPTION_ACTIVATED, sub.id.to_string(), &subscription_event(&renewed, &plan))
                .await?;
        }
        Charge::Declined(code) => {
            let failed = failed_before + 1;
            if failed >= RENEWAL_TRIES {
                store::end_subscription(work.conn(), sub.id, &sub.status, to_ms(now)).await?;
                tracing::warn!(subscription_id = %sub.id, code, "renewal declined again; subscription ended");
            } else {
                store::renewal_declined(
                    work.conn(),
                    sub.id,
                    failed,
                    to_ms(now) + RENEWAL_RETRY_MS,
                    to_ms(now),
                )
                .await?;
                tracing::warn!(subscription_id = %sub.id, code, failed, "renewal declined; subscription past due");
            }
            if sub.status == "active" {
                // No more streaming until it is paid again.
                work.emit(SUBSCRIPTION_CANCELLED, sub.id.to_string(), &subscription_event(&sub, &plan))
                    .await?;
            }
        }
    }
    work.commit().await?;
    Ok(())
}
