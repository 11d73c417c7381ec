//! The registry: every service of the platform, in one place. The binary (what it can run,
//! default ports), the gateway (who owns which path), the broker topology (which queue takes
//! which events), the test kit and the checks of the deploy files are all built from this list.

use crate::event_types::*;

/// One service as the rest of the platform knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: &'static str,
    /// `marquee serve`'s default port (docs/architecture.md).
    pub port: u16,
    /// The first path segments under `/api/v1/` it serves (`showtimes/{id}/seats` is booking's,
    /// an exception the gateway knows).
    pub prefixes: &'static [&'static str],
    /// The event types its consumer takes; its broker queue `<ns>.<name>` is bound to these.
    pub consumes: &'static [&'static str],
}

pub const GATEWAY: ServiceSpec = ServiceSpec { name: "gateway", port: 8080, prefixes: &[], consumes: &[] };
pub const IDENTITY: ServiceSpec = ServiceSpec {
    name: "identity",
    port: 8081,
    prefixes: &["auth", "users"],
    consumes: &[USER_REGISTERED, BOOKING_CONFIRMED, PLAYBACK_STARTED, PLAYBACK_STOPPED],
};
pub const CATALOG: ServiceSpec = ServiceSpec {
    name: "catalog",
    port: 8082,
    prefixes: &["movies", "genres"],
    consumes: &[REVIEW_POSTED, REVIEW_UPDATED, REVIEW_DELETED, MEDIA_UPLOADED],
};
pub const SHOWTIMES: ServiceSpec = ServiceSpec {
    name: "showtimes",
    port: 8083,
    prefixes: &["theaters", "rooms", "showtimes"],
    consumes: &[],
};
pub const BOOKING: ServiceSpec = ServiceSpec {
    name: "booking",
    port: 8084,
    prefixes: &["bookings", "tickets"],
    consumes: &[SHOWTIME_CANCELLED, PAYMENT_REFUNDED],
};
pub const PAYMENTS: ServiceSpec = ServiceSpec {
    name: "payments",
    port: 8085,
    prefixes: &["payments", "plans", "subscriptions"],
    consumes: &[],
};
pub const STREAMING: ServiceSpec = ServiceSpec {
    name: "streaming",
    port: 8086,
    prefixes: &["playback", "watchlist", "media", "stream"],
    consumes: &[SUBSCRIPTION_ACTIVATED, SUBSCRIPTION_CANCELLED],
};
pub const REVIEWS: ServiceSpec = ServiceSpec {
    name: "reviews",
    port: 8087,
    prefixes: &["reviews"],
    consumes: &[BOOKING_CONFIRMED, PLAYBACK_STARTED],
};
pub const LOYALTY: ServiceSpec = ServiceSpec {
    name: "loyalty",
    port: 8088,
    prefixes: &["loyalty", "rewards"],
    consumes: &[BOOKING_CONFIRMED, BOOKING_CANCELLED],
};
pub const NOTIFICATIONS: ServiceSpec = ServiceSpec {
    name: "notifications",
    port: 8089,
    prefixes: &["notifications"],
    consumes: &[
        USER_REGISTERED,
        BOOKING_CONFIRMED,
        BOOKING_CANCELLED,
        SUBSCRIPTION_ACTIVATED,
        REWARD_REDEEMED,
        TIER_CHANGED,
    ],
};
pub const ANALYTICS: ServiceSpec = ServiceSpec {
    name: "analytics",
    port: 8090,
    prefixes: &["analytics"],
    consumes: &[
        USER_REGISTERED,
        MOVIE_CREATED,
        MOVIE_UPDATED,
        MOVIE_DELETED,
        SHOWTIME_SCHEDULED,
        SHOWTIME_CANCELLED,
        BOOKING_CONFIRMED,
        BOOKING_CANCELLED,
        BOOKING_EXPIRED,
        PAYMENT_SUCCEEDED,
        PAYMENT_REFUNDED,
        SUBSCRIPTION_ACTIVATED,
        SUBSCRIPTION_CANCELLED,
        PLAYBACK_STARTED,
        PLAYBACK_STOPPED,
    ],
};
pub const RECOMMENDATIONS: ServiceSpec = ServiceSpec {
    name: "recommendations",
    port: 8091,
    prefixes: &["recommendations"],
    consumes: &[
        MOVIE_CREATED,
        MOVIE_UPDATED,
        MOVIE_DELETED,
        SHOWTIME_SCHEDULED,
        SHOWTIME_CANCELLED,
        BOOKING_CONFIRMED,
        PLAYBACK_STARTED,
        PLAYBACK_STOPPED,
        REVIEW_POSTED,
        REVIEW_UPDATED,
        REVIEW_DELETED,
    ],
};
pub const BACKUP: ServiceSpec =
    ServiceSpec { name: "backup", port: 8092, prefixes: &["backups"], consumes: &[] };

/// Every service behind the gateway, in start order (identity first: the others verify tokens
/// against it), whether this build contains it yet or not.
pub const SERVICES: &[ServiceSpec] = &[
    IDENTITY,
    CATALOG,
    SHOWTIMES,
    PAYMENTS,
    BOOKING,
    STREAMING,
    REVIEWS,
    LOYALTY,
    NOTIFICATIONS,
    ANALYTICS,
    RECOMMENDATIONS,
    BACKUP,
];

/// A service (the gateway too) by name.
pub fn spec(name: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().chain(std::iter::once(&GATEWAY)).find(|s| s.name == name)
}

/// The service that serves paths starting with this segment under `/api/v1/`.
pub fn owner_of(first_segment: &str) -> Option<&'static str> {
    SERVICES.iter().find(|s| s.prefixes.contains(&first_segment)).map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_prefixes_are_each_used_once() {
        let mut names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        let mut ports: Vec<u16> = SERVICES.iter().chain([&GATEWAY]).map(|s| s.port).collect();
        let mut prefixes: Vec<&str> = SERVICES.iter().flat_map(|s| s.prefixes.iter().copied()).collect();
        for list in [&mut names, &mut prefixes] {
            let n = list.len();
            list.sort();
            list.dedup();
            assert_eq!(list.len(), n, "{list:?}");
        }
        let n = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), n);
        assert_eq!(owner_of("bookings"), Some("booking"));
        assert_eq!(spec("gateway").map(|s| s.port), Some(8080));
    }
}
