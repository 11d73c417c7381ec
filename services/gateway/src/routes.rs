//! Which service owns which path (ARCHITECTURE.md, "Services and ownership").

/// Every service behind the gateway.
pub const SERVICES: &[&str] = &[
    "identity",
    "catalog",
    "showtimes",
    "booking",
    "payments",
    "streaming",
    "reviews",
    "loyalty",
    "notifications",
    "analytics",
    "recommendations",
    "backup",
];

/// The owner of a path under `/api/v1/`, or `None` for a prefix nobody serves.
pub fn owner(path_under_v1: &str) -> Option<&'static str> {
    let mut segments = path_under_v1.trim_start_matches('/').split('/');
    let first = segments.next()?;
    Some(match first {
        "auth" | "users" => "identity",
        "movies" | "genres" => "catalog",
        // `showtimes/{id}/seats...` is booking's (seat maps come from seat claims).
        "showtimes" => {
            let _id = segments.next();
            if segments.next() == Some("seats") { "booking" } else { "showtimes" }
        }
        "theaters" | "rooms" => "showtimes",
        "bookings" | "tickets" => "booking",
        "payments" | "plans" | "subscriptions" => "payments",
        "playback" | "watchlist" | "media" | "stream" => "streaming",
        "reviews" => "reviews",
        "loyalty" | "rewards" => "loyalty",
        "notifications" => "notifications",
        "analytics" => "analytics",
        "recommendations" => "recommendations",
        "backups" => "backup",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::owner;

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
