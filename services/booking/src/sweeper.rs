//! Ends holds that ran out and charges whose pay request died, freeing their seats and telling
//! others (`booking.expired`); a booking that may hold money owes its refund as it ends. Buyers
//! never wait for it: a hold that ran out no longer blocks its seats anyway.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{AppState, ops};

/// One pass; public so tests can run it.
pub async fn expire_holds(state: &AppState) -> anyhow::Result<usize> {
    ops::end::expire_due(state).await
}

pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    platform::periodic::every("expire holds", every, shutdown, || expire_holds(&state)).await;
}
