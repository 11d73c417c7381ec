//! Theaters, rooms and showtimes as the API sees them, and parsing requests at the edge.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Cleaning time between two showtimes in a room (docs/api.md: ends_at = start + runtime + 15 min).
pub const CLEANING_MINUTES: i64 = 15;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Theater {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
}

// The name patterns say in JSON Schema (ECMA-262 and Python `re` alike) what `required` checks:
// no control characters (U+0000-U+001F, U+007F-U+009F), and at least one character that is not
// whitespace either (what `str::trim` removes: U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), so it is not empty once trimmed.
// `maxLength` counts characters as sent, before trimming, and so does `required`.

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TheaterInput {
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub city: String,
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub address: String,
    /// An IANA time zone name such as `Europe/Paris`, or `UTC`. Its shape is checked, not that
    /// the zone exists.
    #[schema(max_length = 64, pattern = r"^(UTC|[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)+)$")]
    pub timezone: String,
}

/// 1 to `max` characters as sent, none of them a control character, not all whitespace; kept
/// trimmed.
fn required(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, format!("must be 1 to {max} characters")));
    }
    v.to_owned()
}

pub use platform::zones::{at_local, local_date, local_time, zone, zone_name};

impl TheaterInput {
    pub fn parse(self) -> Result<TheaterInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = TheaterInput {
            name: required("name", &self.name, 200, &mut errors),
            city: required("city", &self.city, 100, &mut errors),
            address: required("address", &self.address, 300, &mut errors),
            timezone: zone_name(&self.timezone).unwrap_or(self.timezone),
        };
        if zone(&parsed.timezone).is_none() {
            errors.push(FieldError::new("timezone", "must be an IANA time zone such as Europe/Paris"));
        }
        if errors.is_empty() { Ok(parsed) } else { Err(errors) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatKind {
    Standard,
    Premium,
    Accessible,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayoutSeat {
    pub seat: String,
    pub kind: SeatKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayoutRow {
    pub row: String,
    pub seats: Vec<LayoutSeat>,
}

/// A room's seats, front row first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Layout {
    pub rows: Vec<LayoutRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Room {
    pub id: Uuid,
    pub theater_id: Uuid,
    pub name: String,
    pub capacity: i64,
    pub layout: Layout,
}

/// At most as many premium rows and accessible seats as a room can have.
pub const MAX_ROWS: usize = 40;
pub const MAX_SEATS_PER_ROW: i64 = 60;
const MAX_SEATS: usize = MAX_ROWS * MAX_SEATS_PER_ROW as usize;

/// The body of `POST /theaters/{id}/rooms`. Labels are taken as sent: row labels are one or two
/// capital letters, seats a row label and a number from 1 (`E5`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomInput {
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// The row labels, front row first, each once.
    #[schema(value_type = BTreeSet<String>, min_items = 1, max_items = 40, pattern = "^[A-Z]{1,2}$")]
    pub rows: Vec<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub seats_per_row: i64,
    /// Rows of `rows` whose seats are premium.
    #[serde(default)]
    #[schema(max_items = 40, pattern = "^[A-Z]{1,2}$")]
    pub premium_rows: Vec<String>,
    /// Seats of this room (a row of `rows`, a number up to `seats_per_row`) kept for
    /// wheelchairs.
    #[serde(default)]
    #[schema(max_items = 2400, pattern = "^[A-Z]{1,2}([1-9]|[1-5][0-9]|60)$")]
    pub accessible_seats: Vec<String>,
}

/// A room as stored: its parts; the layout is computed from them.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomPlan {
    pub name: String,
    pub rows: Vec<String>,
    pub seats_per_row: i64,
    pub premium_rows: Vec<String>,
    pub accessible_seats: Vec<String>,
}

impl RoomInput {
    pub fn parse(self) -> Result<RoomPlan, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = required("name", &self.name, 100, &mut errors);
        let rows = self.rows;
        let label_ok = |r: &String| (1..=2).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_uppercase());
        let mut unique = rows.clone();
        unique.sort();
        unique.dedup();
        if rows.is_empty()
            || rows.len() > MAX_ROWS
            || !rows.iter().all(label_ok)
            || unique.len() != rows.len()
        {
            errors.push(FieldError::new(
                "rows",
                "must be 1 to 40 distinct row letters such as \"A\" or \"AB\"",
            ));
        }
        if !(1..=MAX_SEATS_PER_ROW).contains(&self.seats_per_row) {
            errors.push(FieldError::new("seats_per_row", "must be between 1 and 60"));
        }
        let premium_rows = self.premium_rows;
        if premium_rows.len() > MAX_ROWS {
            errors.push(FieldError::new("premium_rows", "at most 40 rows"));
        } else if let Some(bad) = premium_rows.iter().find(|r| !rows.contains(r)) {
            errors.push(FieldError::new("premium_rows", format!("{bad:?} is not one of the rows")));
        }
        let accessible_seats = self.accessible_seats;
        let too_many_seats = accessible_seats.len() > MAX_SEATS;
        let plan = RoomPlan { name, rows, seats_per_row: self.seats_per_row, premium_rows, accessible_seats };
        if too_many_seats {
            errors.push(FieldError::new("accessible_seats", "at most 2400 seats"));
        } else if let Some(bad) = plan.accessible_seats.iter().find(|s| !plan.has_seat(s)) {
            errors.push(FieldError::new("accessible_seats", format!("{bad:?} is not a seat of this room")));
        }
        if errors.is_empty() { Ok(plan) } else { Err(errors) }
    }
}

impl RoomPlan {
    pub fn capacity(&self) -> i64 {
        self.rows.len() as i64 * self.seats_per_row
    }

    /// `E5`: row `E`, seat number 5.
    pub fn has_seat(&self, label: &str) -> bool {
        let split = label.find(|c: char| c.is_ascii_digit()).unwrap_or(label.len());
        let (row, number) = label.split_at(split);
        let n: i64 = number.parse().unwrap_or(0);
        self.rows.iter().any(|r| r == row)
            && (1..=self.seats_per_row).contains(&n)
            && !number.starts_with('0')
    }

    pub fn layout(&self) -> Layout {
        let rows = self
            .rows
            .iter()
            .map(|row| LayoutRow {
                row: row.clone(),
                seats: (1..=self.seats_per_row)
                    .map(|n| {
                        let seat = format!("{row}{n}");
                        let kind = if self.accessible_seats.contains(&seat) {
                            SeatKind::Accessible
                        } else if self.premium_rows.contains(row) {
                            SeatKind::Premium
                        } else {
                            SeatKind::Standard
                        };
                        LayoutSeat { seat, kind }
                    })
                    .collect(),
            })
            .collect();
        Layout { rows }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Scheduled,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Showtime {
    pub id: Uuid,
    pub movie_id: Uuid,
    pub movie_title: String,
    pub room_id: Uuid,
    pub theater_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: OffsetDateTime,
    pub price_cents: i64,
    pub currency: String,
    pub status: Status,
    /// The theater's IANA time zone.
    pub timezone: String,
    /// `starts_at` on the theater's clock, with its offset then: `2026-12-04T19:30:00-08:00`.
    #[schema(format = DateTime)]
    pub local_starts_at: String,
}

/// The years a showtime or a search may name: far enough for any schedule, near enough that date
/// arithmetic never overflows (a day after 9999-12-31 does not exist).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// An RFC 3339 time as the OpenAPI document describes it (`format: date-time` and the pattern
/// in [`ShowtimeInput`]): `T` and `Z` in capitals, no leap second. `time`'s parser alone is more lenient (any
/// separator, `z`, `23:59:60`).
pub fn parse_rfc3339(raw: &str) -> Option<OffsetDateTime> {
    let b = raw.as_bytes();
    let digits =
        |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_and_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && b.get(17).is_some_and(|d| (b'0'..=b'5').contains(d))
        && digits(18..19);
    if !date_and_time {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &fraction[n..];
    }
    let offset_ok = rest == b"Z"
        || (rest.len() == 6
            && matches!(rest[0], b'+' | b'-')
            && rest[1..3].iter().all(u8::is_ascii_digit)
            && rest[3] == b':'
            && rest[4..6].iter().all(u8::is_ascii_digit));
    offset_ok
        .then(|| OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok())
        .flatten()
}

/// `YYYY-MM-DD` exactly (`format: date`; the parser alone would take a sign before the year).
pub fn parse_date(raw: &str) -> Option<time::Date> {
    let shaped = raw.len() == 10
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shaped
        .then(|| time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).ok())
        .flatten()
}

fn starts_at<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    let raw = String::deserialize(deserializer)?;
    parse_rfc3339(&raw)
        .ok_or_else(|| serde::de::Error::custom("must be an RFC 3339 time such as 2026-12-01T19:30:00Z"))
}

/// The body of `POST /showtimes`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowtimeInput {
    pub movie_id: Uuid,
    pub room_id: Uuid,
    /// RFC 3339, in the future and in the years 2000 to 2100. (The pattern spells out the
    /// calendar, days of each month and leap years, so that what it admits is a date-time too.)
    #[serde(deserialize_with = "starts_at")]
    #[schema(value_type = String, format = DateTime, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub starts_at: OffsetDateTime,
    /// 1 (0.01) to 1,000,000 (10,000.00).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub price_cents: i64,
    /// An ISO 4217 code in capitals; USD when left out.
    #[serde(default = "default_currency")]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

/// A seat costs 0.01 to 10,000.00. Free seats are not sold here (a charge of 0 is no charge),
/// and the dearest booking (every seat premium, at 1.5×) must stay within what one payment may
/// capture, or it could be held and never paid.
pub const MIN_PRICE_CENTS: i64 = 1;
pub const MAX_PRICE_CENTS: i64 = 1_000_000;
const _: () =
    assert!(MAX_PRICE_CENTS * 3 / 2 * contracts::booking::MAX_SEATS <= contracts::payments::MAX_CHARGE_CENTS);

impl ShowtimeInput {
    /// Checks that need no other service: price, currency, a start in the future.
    pub fn check(self, now: OffsetDateTime) -> Result<ShowtimeInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(FieldError::new("currency", "must be an ISO 4217 code such as USD"));
        }
        if !(MIN_PRICE_CENTS..=MAX_PRICE_CENTS).contains(&self.price_cents) {
            errors.push(FieldError::new(
                "price_cents",
                format!("must be between {MIN_PRICE_CENTS} and {MAX_PRICE_CENTS}"),
            ));
        }
        if !YEARS.contains(&self.starts_at.year()) {
            errors.push(FieldError::new("starts_at", "must be a time between the years 2000 and 2100"));
        } else if self.starts_at <= now {
            errors.push(FieldError::new("starts_at", "must be in the future"));
        }
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(rows: &[&str], seats: i64, premium: &[&str], accessible: &[&str]) -> RoomInput {
        RoomInput {
            name: "Room 1".into(),
            rows: rows.iter().map(|s| (*s).to_owned()).collect(),
            seats_per_row: seats,
            premium_rows: premium.iter().map(|s| (*s).to_owned()).collect(),
            accessible_seats: accessible.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_layout_marks_premium_rows_and_accessible_seats() {
        let plan = room(&["A", "B", "E"], 4, &["E"], &["A1"]).parse().expect("valid");
        assert_eq!(plan.capacity(), 12);
        let layout = plan.layout();
        assert_eq!(layout.rows[0].seats[0], LayoutSeat { seat: "A1".into(), kind: SeatKind::Accessible });
        assert_eq!(layout.rows[0].seats[1].kind, SeatKind::Standard);
        assert_eq!(layout.rows[2].seats[3], LayoutSeat { seat: "E4".into(), kind: SeatKind::Premium });
        assert!(plan.has_seat("B4") && !plan.has_seat("B5") && !plan.has_seat("C1") && !plan.has_seat("B04"));
    }

    #[test]
    fn bad_rooms_name_their_fields() {
        let errors = room(&["A", "A"], 0, &["Z"], &["A9"]).parse().expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rows", "seats_per_row", "premium_rows", "accessible_seats"]);
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        for name in ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires", "Asia/Kolkata"] {
            assert!(zone(name).is_some(), "{name}");
        }
        for bad in ["Paris", "Europe/", "Europe/Par is", " UTC", "Mars/Olympus_Mons", "", "../../etc/passwd"]
        {
            assert!(zone(bad).is_none(), "{bad:?}");
        }
        assert_eq!(zone_name("europe/paris").as_deref(), Some("Europe/Paris"));
    }

    #[test]
    fn local_days_and_times_follow_the_zone_and_its_clock_changes() {
        use time::macros::datetime;
        // 03:30 UTC on 5 December is the evening before in Los Angeles (UTC-8 in winter).
        let late = datetime!(2026-12-05 03:30 UTC);
        assert_eq!(local_date(late, "America/Los_Angeles"), "2026-12-04");
        assert_eq!(local_date(late, "Europe/Paris"), "2026-12-05");
        assert_eq!(local_time(late, "America/Los_Angeles"), "2026-12-04T19:30:00-08:00");
        // Summer time: UTC-7.
        assert_eq!(
            local_time(datetime!(2026-07-01 02:30 UTC), "America/Los_Angeles"),
            "2026-06-30T19:30:00-07:00"
        );
        assert_eq!(local_time(late, "Asia/Kolkata"), "2026-12-05T09:00:00+05:30");
        let evening = at_local(time::macros::date!(2026 - 12 - 04), 19, 30, "America/Los_Angeles");
        assert_eq!(evening, Some(late));
        // 02:30 on 29 March 2026 does not exist in Paris (clocks go 02:00 → 03:00): the later one.
        let skipped = at_local(time::macros::date!(2026 - 03 - 29), 2, 30, "Europe/Paris");
        assert_eq!(skipped, Some(datetime!(2026-03-29 01:30 UTC)));
    }

    /// What the OpenAPI patterns say, the checks do: labels as sent, lengths before trimming.
    #[test]
    fn labels_and_names_are_taken_as_sent() {
        assert!(room(&["a"], 4, &[], &[]).parse().is_err(), "row labels are capitals");
        assert!(room(&[" A"], 4, &[], &[]).parse().is_err(), "and not trimmed");
        assert!(
            room(&["A"], 4, &["a"], &[]).parse().is_err() && room(&["A"], 4, &[], &["a1"]).parse().is_err()
        );
        assert!(room(&["A"], 4, &["A"; 41], &[]).parse().is_err(), "at most 40 premium rows");
        assert!(room(&["A"], 4, &["A"; 40], &["A1"; 2400]).parse().is_ok(), "repeats count once");
        assert!(room(&["A"], 4, &[], &["A1"; 2401]).parse().is_err(), "at most 2400 accessible seats");
        let theater = |name: &str| TheaterInput {
            name: name.into(),
            city: "Lyon".into(),
            address: "1 Rue".into(),
            timezone: "Europe/Paris".into(),
        };
        assert_eq!(theater("  Le Grand Rex  ").parse().expect("valid").name, "Le Grand Rex");
        assert!(theater("\u{a0}\u{3000}").parse().is_err(), "blank");
        assert!(theater("Rex\n").parse().is_err(), "a control character, even one trimming would remove");
        assert!(theater(&format!("{}Rex", " ".repeat(198))).parse().is_err(), "201 characters as sent");
        assert!(theater(&"é".repeat(200)).parse().is_ok(), "characters, not bytes");
    }

    #[test]
    fn times_and_dates_are_the_documented_shapes() {
        for good in
            ["2026-12-01T19:30:00Z", "2026-12-01T19:30:00.123456789123+01:00", "2026-12-01T19:30:59-00:00"]
        {
            assert!(parse_rfc3339(good).is_some(), "{good:?}");
        }
        for bad in [
            "2026-12-01t19:30:00Z",
            "2026-12-01T19:30:00z",
            "2026-12-01 19:30:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-01T19:30:00.Z",
            "2026-12-01T19:30:00",
            "2026-12-01T19:30:00+0100",
            "2026-12-01T24:00:00Z",
            "2026-02-30T19:30:00Z",
            "2026-12-01T19:30:00+24:00",
            " 2026-12-01T19:30:00Z",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad:?}");
        }
        assert!(parse_date("2024-02-29").is_some());
        for bad in ["2026-02-29", "+2026-01-01", "2026-1-01", "2026-01-01 ", ""] {
            assert!(parse_date(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_showtime_is_in_the_years_served_and_its_currency_in_capitals() {
        let now = OffsetDateTime::now_utc();
        let input = |starts_at: &str, currency: &str| ShowtimeInput {
            movie_id: Uuid::nil(),
            room_id: Uuid::nil(),
            starts_at: parse_rfc3339(starts_at).expect("a time"),
            price_cents: 100,
            currency: currency.into(),
        };
        assert!(input("2099-01-01T00:00:00Z", "EUR").check(now).is_ok());
        let field = |e: Vec<FieldError>| e[0].field.clone();
        assert_eq!(
            input("2101-01-01T00:00:00Z", "EUR").check(now).map_err(field).err().as_deref(),
            Some("starts_at")
        );
        assert_eq!(
            input("9999-12-31T23:00:00Z", "EUR").check(now).map_err(field).err().as_deref(),
            Some("starts_at")
        );
        for bad in ["eur", " EUR", "EURO", "E1R"] {
            assert_eq!(
                input("2099-01-01T00:00:00Z", bad).check(now).map_err(field).err().as_deref(),
                Some("currency")
            );
        }
    }
}
