//! The delivery worker: sends what the feed owes by email and SMS, outside any transaction.
//! Due deliveries are claimed with a lease (any replica, one sender each), sent a few at a time
//! so one slow message never holds up the others, and settled: sent, tried again after a
//! growing pause, or failed once every try is spent (admins see it and can send it again).

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{
    AppState,
    channels::SendError,
    compose,
    store::{self, Due, Outcome},
};

/// How long a claim lasts: longer than any send (SMTP's timeout), so only a dead sender's
/// claim runs out.
const LEASE_MS: i64 = 120_000;
/// Deliveries claimed per round, all sent at once: a claim is never left waiting for a slot
/// while its lease runs.
const BATCH: i64 = 8;
const IN_FLIGHT: usize = 8;

/// How often the backlog gauges are refreshed (a count over the log, not to be paid per round).
const GAUGES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut gauged = tokio::time::Instant::now() - GAUGES_EVERY;
    loop {
        if gauged.elapsed() >= GAUGES_EVERY {
            gauged = tokio::time::Instant::now();
            if let Ok((waiting, failed)) = store::backlog(&state.db).await {
                metrics::gauge!("notifications_pending").set(waiting as f64);
                metrics::gauge!("notifications_failed").set(failed as f64);
            }
        }
        let sent = match run_once(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "notification deliveries");
                0
            }
        };
        if sent as i64 == BATCH {
            continue; // more are waiting
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(state.config.poll) => {}
        }
    }
}

/// One round: claim what is due and send it; how many were claimed.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let due = store::claim_due(&state.db, state.clock.now_ms(), LEASE_MS, BATCH).await?;
    let n = due.len();
    futures_util::stream::iter(due).for_each_concurrent(IN_FLIGHT, |d| deliver(state, d)).await;
    Ok(n)
}

async fn send(state: &AppState, due: &Due) -> Result<(String, String), SendError> {
    match due.channel.as_str() {
        "email" => {
            let (address, name, mail) = compose::email(state, due).await?;
            let id = state.mailer.send(&state.config.from, &address, &name, &mail).await?;
            Ok((address, id))
        }
        "sms" => {
            let phone =
                due.recipient.clone().ok_or_else(|| SendError::Permanent("no phone number".into()))?;
            let text = compose::sms(state, due).await?;
            let id = state.sms.send(&phone, &text).await?;
            Ok((phone, id))
        }
        other => Err(SendError::Permanent(format!("no channel {other:?}"))),
    }
}

async fn deliver(state: &AppState, due: Due) {
    let result = send(state, &due).await;
    let now = state.clock.now_ms();
    let channel = due.channel.as_str();
    let outcome = match &result {
        Ok((recipient, provider_id)) => {
            let latency = (now - due.event_at).max(0) as f64 / 1000.0;
            metrics::histogram!("notification_latency_seconds", "channel" => channel.to_owned())
                .record(latency);
            metrics::counter!("notifications_sent_total", "channel" => channel.to_owned()).increment(1);
            Outcome::Sent { recipient, provider_id }
        }
        Err(SendError::Temporary(error)) if due.attempts < state.config.max_attempts => {
            let pause = events::backoff(
                state.config.retry_base,
                (due.attempts - 1).max(0) as u32,
                state.config.retry_cap,
            );
            tracing::info!(delivery = %due.id, attempt = due.attempts, error, "a notification will be tried again");
            Outcome::Retry { error, at: now + pause.as_millis() as i64 }
        }
        Err(SendError::Temporary(error) | SendError::Permanent(error)) => {
            tracing::warn!(delivery = %due.id, attempts = due.attempts, error, "a notification failed for good");
            metrics::counter!("notifications_failed_total", "channel" => channel.to_owned()).increment(1);
            Outcome::Failed { error }
        }
    };
    match store::settle(&state.db, due.id, due.attempts, outcome, now).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(delivery = %due.id, "a delivery's claim was lost before it settled"),
        Err(e) => tracing::warn!(delivery = %due.id, error = format!("{e:#}"), "settling a delivery"),
    }
}
