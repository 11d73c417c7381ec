//! Ends holds that ran out, freeing their seats and telling others (`booking.expired`). Buyers
//! never wait for it: a hold that ran out no longer blocks its seats anyway.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{AppState, routes::end, store};

/// One pass; public so tests can run it. A hold whose pay request may have charged the card
/// (and died before confirming) is refunded first, so no booking ends charged and unconfirmed.
pub async fn expire_holds(state: &AppState) -> anyhow::Result<usize> {
    let mut n = 0;
    for id in store::expired_holds(&state.db, 100).await? {
        let Some((booking, _)) = store::booking(&state.db, id).await? else { continue };
        let mut refunded = 0;
        if store::was_charging(&state.db, id).await? {
            let captured = match state.payments.captured_for(id).await {
                Ok(c) => c,
                Err(e) => {
                    // Payments is down: leave this hold for a later pass rather than guess.
                    tracing::warn!(booking_id = %id, error = %e, "cannot check a charging hold yet");
                    continue;
                }
            };
            for payment in captured {
                if let Err(e) = state.payments.refund_all(payment.id).await {
                    tracing::warn!(booking_id = %id, error = %e, "refunding a stale charge failed; will retry");
                    continue;
                }
                refunded += payment.amount_cents - payment.refunded_cents;
            }
        }
        let mut tx = state.db.begin_write().await?;
        if end(&mut tx, state, &booking, &["held"], "expired", refunded).await? {
            n += 1;
        }
        tx.commit().await?;
    }
    if n > 0 {
        state.outbox.wake();
    }
    Ok(n)
}

pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    platform::periodic::every("expire holds", every, shutdown, || expire_holds(&state)).await;
}
