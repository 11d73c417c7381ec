//! Time zones: the IANA database bundled into the binary (jiff's copy of tzdata), so every
//! machine reads local days and times alike. A theater's day (showtimes' `?date=`, analytics'
//! revenue per day) is its own zone's.

use time::OffsetDateTime;

/// The longest time zone name taken; the longest IANA name is about half of it.
const MAX_TIMEZONE_LEN: usize = 64;

/// An IANA time zone by name, from the time-zone database bundled into the binary (jiff's copy
/// of tzdata), so every machine reads local times alike.
pub fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
    if name.is_empty() || name.len() > MAX_TIMEZONE_LEN || name.trim() != name {
        return None;
    }
    jiff::tz::db().get(name).ok()
}

/// The zone's name as the database spells it (`europe/paris` is `Europe/Paris`).
pub fn zone_name(name: &str) -> Option<String> {
    zone(name).map(|tz| tz.iana_name().map_or_else(|| name.to_owned(), str::to_owned))
}

/// A UTC instant as a wall-clock time in a zone: the civil date-time and the offset then.
fn zoned(at: OffsetDateTime, tz: &jiff::tz::TimeZone) -> Option<jiff::ZonedDateTime> {
    let ts = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()?;
    Some(ts.to_zoned_datetime(tz.clone()))
}

/// The day an instant falls on in a zone, `YYYY-MM-DD` (UTC when the zone is unknown).
pub fn local_date(at: OffsetDateTime, timezone: &str) -> String {
    zone(timezone)
        .and_then(|tz| zoned(at, &tz))
        .map_or_else(|| at.date().to_string(), |z| z.date().to_string())
}

/// An instant as RFC 3339 with the zone's offset then: `2026-12-04T19:30:00-08:00`.
pub fn local_time(at: OffsetDateTime, timezone: &str) -> String {
    zone(timezone)
        .and_then(|tz| zoned(at, &tz))
        .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_else(|| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

/// A wall-clock time on a day in a zone as a UTC instant (the earlier one when a clock change
/// makes it ambiguous, the later one when it skips it).
pub fn at_local(date: time::Date, hour: u8, minute: u8, timezone: &str) -> Option<OffsetDateTime> {
    let tz = zone(timezone)?;
    let civil = jiff::civil::date(date.year() as i16, date.month() as i8, date.day() as i8).at(
        hour as i8,
        minute as i8,
        0,
        0,
    );
    let ts = tz.to_ambiguous_timestamp(civil).compatible().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).ok()
}
