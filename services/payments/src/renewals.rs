//! Renewals: when a subscription's period ends, charge the next month with the processor's
//! token, or end it when the user cancelled. Several replicas may run this; a lease on each
//! subscription keeps anyone from being charged twice.

use std::time::Duration;

use contracts::{
    CloudEvent,
    event_types::{SUBSCRIPTION_ACTIVATED, SUBSCRIPTION_CANCELLED},
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::{
    AppState, SERVICE,
    processor::{self, Charge},
    routes::{Attempt, add_month, record_payment, subscription_event},
    store,
};

/// Renew every due subscription once; returns how many were handled. Public so tests (and an
/// operator's tooling) can run a pass without waiting.
pub async fn renew_due(state: &AppState) -> anyhow::Result<usize> {
    let due = store::claim_due(&state.db, 50).await?;
    let n = due.len();
    for sub in due {
        let plan =
            store::plan(&state.db, &sub.plan_id).await?.ok_or_else(|| anyhow::anyhow!("unknown plan"))?;
        let mut tx = state.db.pool.begin().await?;
        if sub.cancel_at_period_end {
            store::set_status(&mut tx, sub.id, "cancelled").await?;
            tx.commit().await?;
            tracing::info!(subscription_id = %sub.id, "subscription ended at the end of its period");
            continue;
        }
        let card = processor::from_token(&sub.payment_token)
            .ok_or_else(|| anyhow::anyhow!("unusable payment token"))?;
        let now = OffsetDateTime::now_utc();
        let charge = card.charge(now);
        let reference = format!("subscription:{}", sub.id);
        record_payment(
            &mut tx,
            state,
            Attempt {
                user_id: sub.user_id,
                reference: &reference,
                amount_cents: plan.price_cents,
                currency: &plan.currency,
                card: &card,
                charge: &charge,
            },
        )
        .await?;
        match charge {
            Charge::Succeeded => {
                let start = sub.current_period_end;
                let mut renewed = sub.clone();
                renewed.current_period_start = start;
                renewed.current_period_end = add_month(start);
                store::set_period(&mut tx, sub.id, start, renewed.current_period_end).await?;
                let event = CloudEvent::new(
                    SERVICE,
                    SUBSCRIPTION_ACTIVATED,
                    sub.id.to_string(),
                    &subscription_event(&renewed, &plan),
                )?;
                state.outbox.add(&mut tx, event).await?;
            }
            Charge::Declined(code) => {
                // Past due: no more streaming until the user subscribes again with a good card.
                store::set_status(&mut tx, sub.id, "past_due").await?;
                let event = CloudEvent::new(
                    SERVICE,
                    SUBSCRIPTION_CANCELLED,
                    sub.id.to_string(),
                    &subscription_event(&sub, &plan),
                )?;
                state.outbox.add(&mut tx, event).await?;
                tracing::warn!(subscription_id = %sub.id, code, "renewal declined; subscription past due");
            }
        }
        tx.commit().await?;
    }
    if n > 0 {
        state.outbox.wake();
    }
    Ok(n)
}

/// Run renewal passes until shutdown.
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    platform::periodic::every("renew subscriptions", every, shutdown, || renew_due(&state)).await;
}
