//! What notifications does with other services' events, inside the consumer's inbox
//! transaction (a redelivered event writes nothing twice) and without calling anyone: a feed
//! entry, and the email and SMS to send, which the delivery worker sends afterwards.

use contracts::{
    CloudEvent,
    booking::BookingEnded,
    event_types::{
        BOOKING_CANCELLED, BOOKING_CONFIRMED, REWARD_REDEEMED, SUBSCRIPTION_ACTIVATED, TIER_CHANGED,
        USER_REGISTERED,
    },
    identity::UserRegistered,
    loyalty::TierChanged,
};
use serde_json::Value;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{AppState, domain::Kind, ops, store};

/// What notifications' queue takes (the registry's entry, so the broker and the code agree).
pub const EVENTS: &[&str] = contracts::services::NOTIFICATIONS.consumes;

pub struct Reactions {
    pub state: AppState,
}

const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

/// The kind of message an event is, and for whom; None when it is nobody's news (a customer
/// cancelling a hold they never paid).
fn kind_of(event: &CloudEvent) -> anyhow::Result<Option<(Kind, Uuid)>> {
    let user = |data: &Value| -> anyhow::Result<Uuid> {
        data["user_id"].as_str().and_then(|u| u.parse().ok()).ok_or_else(|| anyhow::anyhow!("no user_id"))
    };
    let data = &event.data;
    Ok(match event.event_type.as_str() {
        USER_REGISTERED => Some((Kind::Welcome, user(data)?)),
        BOOKING_CONFIRMED => Some((Kind::BookingConfirmed, user(data)?)),
        BOOKING_CANCELLED => {
            let e: BookingEnded = event.data_as()?;
            let news = e.refunded_cents > 0 || e.reason.as_deref() == Some("showtime-cancelled");
            news.then_some((Kind::BookingCancelled, e.user_id))
        }
        SUBSCRIPTION_ACTIVATED => Some((Kind::SubscriptionActivated, user(data)?)),
        REWARD_REDEEMED => Some((Kind::RewardRedeemed, user(data)?)),
        TIER_CHANGED => {
            let e: TierChanged = event.data_as()?;
            let rank = |t: &str| TIERS.iter().position(|x| *x == t);
            let up = rank(&e.to) > rank(&e.from);
            Some((if up { Kind::TierReached } else { Kind::TierLowered }, e.user_id))
        }
        other => anyhow::bail!("notifications does not handle {other}"),
    })
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        let now = self.state.clock.now_ms();
        if event.event_type == USER_REGISTERED {
            let e: UserRegistered = event.data_as()?;
            store::upsert_recipient(tx, e.user_id, &e.email, &e.name, now).await?;
        }
        let Some((kind, user)) = kind_of(event)? else { return Ok(()) };
        let at = platform::time::to_ms(event.time);
        ops::record(tx, kind, user, &event.data, at, now).await
    }

    async fn after_commit(&self, _event: &CloudEvent) {
        self.state.wake.notify_one();
    }
}
