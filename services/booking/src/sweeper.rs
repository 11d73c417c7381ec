//! Ends holds that ran out, freeing their seats and telling others (`booking.expired`). Buyers
//! never wait for it: a hold that ran out no longer blocks its seats anyway.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{AppState, routes::end, store};

/// One pass; public so tests can run it.
pub async fn expire_holds(state: &AppState) -> anyhow::Result<usize> {
    let mut n = 0;
    for id in store::expired_holds(&state.db, 100).await? {
        let Some((booking, _)) = store::booking(&state.db, id).await? else { continue };
        let mut tx = state.db.begin_write().await?;
        if end(&mut tx, state, &booking, &["held"], "expired", 0).await? {
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
    loop {
        if let Err(e) = expire_holds(&state).await {
            tracing::warn!(error = format!("{e:#}"), "expiring holds failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {},
        }
    }
}
