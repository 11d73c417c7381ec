//! Payloads of the loyalty service's events (notifications writes to the member about them).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `points.awarded` (a confirmed booking earned points) and `points.reversed` (that booking was
/// cancelled or refunded: exactly what it earned goes back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointsMoved {
    pub user_id: Uuid,
    pub booking_id: Uuid,
    /// Always positive: how many points were awarded, or reversed.
    pub points: i64,
    /// The balance and lifetime points after the move.
    pub balance: i64,
    pub lifetime_points: i64,
    pub tier: String,
}

/// `reward.redeemed`: points were spent on a reward; the code is what the member shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardRedeemed {
    pub redemption_id: Uuid,
    pub user_id: Uuid,
    pub reward_id: Uuid,
    pub reward_name: String,
    pub code: String,
    pub points_spent: i64,
    pub balance: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub redeemed_at: OffsetDateTime,
}

/// `tier.changed`: lifetime points crossed a tier's threshold, up (points earned) or down (points
/// reversed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierChanged {
    pub user_id: Uuid,
    pub from: String,
    pub to: String,
    pub lifetime_points: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}
