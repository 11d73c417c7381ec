//! Event types: `<aggregate>.<past-tense verb>`, stable strings and never Rust type names, since
//! they are routing keys on the broker and rows in other services' inboxes.

pub const USER_REGISTERED: &str = "user.registered";
pub const MOVIE_CREATED: &str = "movie.created";
pub const MOVIE_UPDATED: &str = "movie.updated";
pub const MOVIE_DELETED: &str = "movie.deleted";
pub const SHOWTIME_SCHEDULED: &str = "showtime.scheduled";
pub const SHOWTIME_CANCELLED: &str = "showtime.cancelled";
pub const BOOKING_HELD: &str = "booking.held";
pub const BOOKING_CONFIRMED: &str = "booking.confirmed";
pub const BOOKING_CANCELLED: &str = "booking.cancelled";
pub const BOOKING_EXPIRED: &str = "booking.expired";
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";
pub const SUBSCRIPTION_ACTIVATED: &str = "subscription.activated";
pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";
pub const PLAYBACK_STARTED: &str = "playback.started";
pub const PLAYBACK_STOPPED: &str = "playback.stopped";
pub const MEDIA_UPLOADED: &str = "media.uploaded";
pub const REVIEW_POSTED: &str = "review.posted";
pub const REVIEW_UPDATED: &str = "review.updated";
pub const REVIEW_DELETED: &str = "review.deleted";
pub const POINTS_AWARDED: &str = "points.awarded";
pub const POINTS_REVERSED: &str = "points.reversed";
pub const REWARD_REDEEMED: &str = "reward.redeemed";
pub const TIER_CHANGED: &str = "tier.changed";

/// Every event type, in the order of the catalogue (docs/events.md).
pub const ALL: &[&str] = &[
    USER_REGISTERED,
    MOVIE_CREATED,
    MOVIE_UPDATED,
    MOVIE_DELETED,
    SHOWTIME_SCHEDULED,
    SHOWTIME_CANCELLED,
    BOOKING_HELD,
    BOOKING_CONFIRMED,
    BOOKING_CANCELLED,
    BOOKING_EXPIRED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    SUBSCRIPTION_ACTIVATED,
    SUBSCRIPTION_CANCELLED,
    PLAYBACK_STARTED,
    PLAYBACK_STOPPED,
    MEDIA_UPLOADED,
    REVIEW_POSTED,
    REVIEW_UPDATED,
    REVIEW_DELETED,
    POINTS_AWARDED,
    POINTS_REVERSED,
    REWARD_REDEEMED,
    TIER_CHANGED,
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use crate::services::{GATEWAY, SERVICES};

    /// docs/events.md is the catalogue people read: it must list every type, with exactly the
    /// consumers the registry subscribes and an emitter that is a service.
    #[test]
    fn the_events_catalogue_matches_the_contracts() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
        let doc = std::fs::read_to_string(path).expect("docs/events.md");
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .filter(|cells: &Vec<&str>| cells.first().is_some_and(|c| ALL.contains(&c.trim_matches('`'))))
            .collect();
        let listed: Vec<&str> = rows.iter().map(|r| r[0].trim_matches('`')).collect();
        assert_eq!(listed, ALL, "every event type, once, in order");
        let names: Vec<&str> = SERVICES.iter().chain([&GATEWAY]).map(|s| s.name).collect();
        for row in &rows {
            let event = row[0].trim_matches('`');
            let emitter = row[1].split_whitespace().next().unwrap_or_default();
            assert!(names.contains(&emitter), "{event}: emitted by {emitter:?}, not a service");
            let mut documented: Vec<&str> =
                row[2].split(',').map(|c| c.split_whitespace().next().unwrap_or_default()).collect();
            documented.retain(|c| *c != "—");
            documented.sort_unstable();
            let mut registered: Vec<&str> =
                SERVICES.iter().filter(|s| s.consumes.contains(&event)).map(|s| s.name).collect();
            registered.sort_unstable();
            assert_eq!(
                documented, registered,
                "{event}: consumers in docs/events.md and contracts::services"
            );
        }
    }
}
