//! Subscriptions: subscribing (the first month charged at once), cancelling at the period's
//! end, and renewing, each period under a reference of its own.

use contracts::{
    event_types::{SUBSCRIPTION_ACTIVATED, SUBSCRIPTION_CANCELLED},
    payments::{Card, SubscriptionChanged},
};
use platform::{FieldError, time::to_ms};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Attempt, capture, card_checked};
use crate::{
    AppState,
    error::PaymentsError,
    processor::{self, Charge},
    store::{self, Plan, Subscription},
};

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

/// Record a period's charge under its reference (locked first, so a period keeps one capture).
async fn charge_period(
    work: &mut events::UnitOfWork,
    user_id: Uuid,
    reference: &str,
    plan: &Plan,
    card: &processor::CheckedCard,
    charge: &Charge,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let row = store::lock_reference(work.conn(), reference, to_ms(now)).await?;
    let attempt = Attempt {
        user_id,
        reference,
        amount_cents: plan.price_cents,
        currency: &plan.currency,
        card,
        charge,
    };
    capture(work, attempt, row.kept_payment_id, now).await?;
    Ok(())
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
    charge_period(&mut work, user, &reference, &plan, &card, &charge, now).await?;
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

/// A subscription whose current period's payment was refunded in full ends now: nothing paid
/// for the time that is left. `subscription.cancelled` says so with the period ending now, and
/// streaming ends the user's sessions at their next heartbeat. The payment is the current
/// period's when it is filed under that period's start, or was made during it (a renewal that
/// was past due starts its period when it is paid, under the reference of the period it
/// missed). The subscription ends only if that period is still the current one as it is
/// updated, so a renewal committing meanwhile is never cut short.
pub(crate) async fn end_refunded_period(
    work: &mut events::UnitOfWork,
    refunded: &crate::store::Payment,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let Some((id, filed_under)) = contracts::payments::subscription_of_reference(&refunded.reference) else {
        return Ok(());
    };
    let Some(sub) = store::subscription_in(work.conn(), id).await? else {
        return Ok(());
    };
    let start = to_ms(sub.current_period_start);
    let current = filed_under == start || refunded.created_at >= sub.current_period_start;
    if !current || sub.status != "active" {
        return Ok(()); // an earlier period, or one already over
    }
    if !store::end_subscription_period(work.conn(), sub.id, start, to_ms(now)).await? {
        return Ok(());
    }
    let plan =
        store::plan_in(work.conn(), &sub.plan_id).await?.ok_or_else(|| anyhow::anyhow!("unknown plan"))?;
    let ended = Subscription { current_period_end: now, status: "cancelled".into(), ..sub };
    work.emit(SUBSCRIPTION_CANCELLED, ended.id.to_string(), &subscription_event(&ended, &plan)).await?;
    tracing::info!(subscription_id = %ended.id, "subscription ended: its period's payment was refunded");
    Ok(())
}

/// What the user's subscription lets them stream now, if anything: an active one (also when it
/// was cancelled and its period has not ended). One whose period ended and whose renewal is due
/// still counts for a minute at a time, so a renewal worker's lag never cuts anyone off.
pub async fn entitlement(
    state: &AppState,
    user: Uuid,
) -> Result<contracts::payments::Entitlement, PaymentsError> {
    let none = PaymentsError::NotFound("entitlement");
    let sub = store::live_subscription(&state.db, user).await?.ok_or(none)?;
    let now = state.clock.now();
    if sub.status != "active" || (sub.cancel_at_period_end && now >= sub.current_period_end) {
        return Err(PaymentsError::NotFound("entitlement"));
    }
    let plan = store::plan(&state.db, &sub.plan_id).await?.ok_or(PaymentsError::NotFound("plan"))?;
    let until = if sub.cancel_at_period_end {
        sub.current_period_end
    } else {
        sub.current_period_end.max(now + time::Duration::minutes(1))
    };
    Ok(contracts::payments::Entitlement {
        user_id: user,
        subscription_id: sub.id,
        plan_id: sub.plan_id,
        max_streams: plan.max_streams,
        until: until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    })
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
    charge_period(&mut work, sub.user_id, &reference, &plan, &card, &charge, now).await?;
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
