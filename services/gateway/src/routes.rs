//! Which service owns which path (docs/architecture.md, "Services and ownership").

/// Every service behind the gateway (the registry's).
pub fn services() -> impl Iterator<Item = &'static str> {
    contracts::services::SERVICES.iter().map(|s| s.name)
}

/// The owner of a path under `/api/v1/`, or `None` for a prefix nobody serves.
pub fn owner(path_under_v1: &str) -> Option<&'static str> {
    let mut segments = path_under_v1.trim_start_matches('/').split('/');
    let first = segments.next()?;
    // `showtimes/{id}/seats...` is booking's (seat maps come from seat claims).
    if first == "showtimes" {
        let _id = segments.next();
        if segments.next() == Some("seats") {
            return Some(contracts::services::BOOKING.name);
        }
    }
    contracts::services::owner_of(first)
}

/// The fixed words of the API's paths (docs/api.md); any other segment is an id.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "activity", "analytics", "auth", "backups", "behavior", "bookings", "cancel", "dashboard", "entitlement", "featured",
    "genres", "heartbeat", "history", "import", "login", "logout", "loyalty", "me", "media", "movies",
    "notifications", "occupancy", "pay", "payments", "plans", "playback", "popular-movies", "read",
    "recommendations", "redeem", "refresh", "refund", "register", "restore", "revenue", "reviews", "rewards",
    "rooms", "search", "seats", "showtimes", "similar", "start", "stats", "stop", "stream", "subscriptions",
    "theaters", "tickets", "transactions", "users", "watchlist",
];

/// A path for metrics labels: segments that are not words of the API become `{id}` and long
/// paths are cut, so every movie counts as one route and no client can grow the label set.
pub fn label(path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/").unwrap_or(path);
    let segments: Vec<&str> =
        rest.split('/').take(5).map(|s| if WORDS.contains(&s) { s } else { "{id}" }).collect();
    format!("/api/v1/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{label, owner};

    #[test]
    fn ids_in_paths_are_one_label() {
        assert_eq!(label("/api/v1/movies/42"), "/api/v1/movies/{id}");
        assert_eq!(
            label("/api/v1/showtimes/0190c7a2-5b1e-7c3d-9e4f-a1b2c3d4e5f6/seats"),
            "/api/v1/showtimes/{id}/seats"
        );
        assert_eq!(label("/api/v1/tickets/MQ7X2K9PA3"), "/api/v1/tickets/{id}");
        assert_eq!(label("/api/v1/movies/search"), "/api/v1/movies/search");
        assert_eq!(label("/api/v1/movies/abcdefgh"), "/api/v1/movies/{id}", "letters are ids too");
        assert_eq!(label("/api/v1/movies/a/b/c/d/e/f/g"), "/api/v1/movies/{id}/{id}/{id}/{id}");
    }

    #[test]
    fn paths_go_to_their_owners() {
        assert_eq!(owner("auth/login"), Some("identity"));
        assert_eq!(owner("users/me/activity"), Some("identity"));
        assert_eq!(owner("movies/search"), Some("catalog"));
        assert_eq!(owner("showtimes"), Some("showtimes"));
        assert_eq!(owner("showtimes/abc"), Some("showtimes"));
        assert_eq!(owner("showtimes/abc/seats"), Some("booking"));
        assert_eq!(owner("showtimes/abc/seats/stream"), Some("booking"));
        assert_eq!(owner("backups/1/restore"), Some("backup"));
        assert_eq!(owner("nothing-here"), None);
        assert_eq!(owner(""), None);
    }
}
