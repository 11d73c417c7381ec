//! What streaming does when a subscription changes (`subscription.activated`, `.cancelled`):
//! the user's running sessions ask payments again at their next heartbeat. The event itself is
//! not trusted for the answer (events can come late or out of order); payments is.

use contracts::{CloudEvent, payments::SubscriptionChanged};
use sqlx::AnyConnection;

use crate::store;

/// What streaming's queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::STREAMING.consumes;

pub struct Reactions;

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let change: SubscriptionChanged = event.data_as()?;
        let sessions = store::recheck_user(tx, change.user_id).await?;
        tracing::debug!(user_id = %change.user_id, sessions, "sessions will recheck the subscription");
        Ok(())
    }
}
