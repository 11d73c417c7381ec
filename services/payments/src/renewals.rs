//! Renewals: when a subscription's period ends, charge the next month with the processor's
//! token, or end it when the user cancelled. Several replicas may run this; a lease on each
//! subscription shares the work, and each period's charge is filed under a reference of its own
//! (`ops::period_reference`), so a period is never kept charged twice.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{AppState, ops, store};

/// Renew every due subscription once; returns how many were handled. Public so tests (and an
/// operator's tooling) can run a pass without waiting.
pub async fn renew_due(state: &AppState) -> anyhow::Result<usize> {
    let due = store::claim_due(&state.db, state.clock.now_ms(), 50).await?;
    let n = due.len();
    for (sub, lease) in due {
        if let Err(e) = ops::renew(state, &sub, lease).await {
            tracing::warn!(subscription_id = %sub.id, error = format!("{e:#}"), "renewal failed; the next pass tries again");
        }
    }
    Ok(n)
}

/// Run renewal passes until shutdown.
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    platform::periodic::every("renew subscriptions", every, shutdown, || renew_due(&state)).await;
}
