//! Times are stored as epoch milliseconds (portable across SQLite and PostgreSQL through the Any
//! driver, see STACK.md) and travel as RFC 3339 in UTC.

use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A stored time back to a date; out-of-range values (never written by us) clamp to the epoch.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_round_trip() {
        let t = super::from_ms(1_764_620_000_123);
        assert_eq!(super::to_ms(t), 1_764_620_000_123);
    }
}
