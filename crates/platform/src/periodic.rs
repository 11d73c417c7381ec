//! Background work done in passes: run a pass, wait, run again, until shutdown. A failed pass
//! is logged and the next one tries again.

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

pub async fn every<F, Fut>(what: &'static str, interval: Duration, shutdown: CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    loop {
        if let Err(e) = pass().await {
            tracing::warn!(task = what, error = format!("{e:#}"), "background pass failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {},
        }
    }
}
