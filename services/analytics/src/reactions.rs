//! What analytics does with every event it takes: keep it in the archive and apply it to the
//! read models, in the consumer's inbox transaction (a redelivered event has no second effect).

use contracts::CloudEvent;
use sqlx::AnyConnection;

use crate::{
    AppState, projection,
    store::{self, ArchiveLock},
};

/// What analytics' queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::ANALYTICS.consumes;

pub struct Reactions {
    pub state: AppState,
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        store::lock_archive(&self.state.db, tx, ArchiveLock::Apply).await?;
        // The archive's key is the event's id too: an event it holds was applied already (the
        // inbox is per consumer, the archive is what a rebuild replays).
        if store::archive(tx, event, self.state.clock.now_ms()).await? {
            projection::apply(tx, event).await?;
        }
        Ok(())
    }
}
