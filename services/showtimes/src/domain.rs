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

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TheaterInput {
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
}

fn required(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        errors.push(FieldError::new(field, format!("must be 1 to {max} characters")));
    }
    v.to_owned()
}

/// An IANA zone name by its shape (`UTC`, `Europe/Paris`, `America/Argentina/Buenos_Aires`):
/// the zone database itself is not shipped, so a plausible name is the check.
fn timezone_like(tz: &str) -> bool {
    tz == "UTC"
        || (tz.contains('/')
            && tz.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
            }))
}

impl TheaterInput {
    pub fn parse(self) -> Result<TheaterInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = TheaterInput {
            name: required("name", &self.name, 200, &mut errors),
            city: required("city", &self.city, 100, &mut errors),
            address: required("address", &self.address, 300, &mut errors),
            timezone: self.timezone.trim().to_owned(),
        };
        if !timezone_like(&parsed.timezone) {
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

/// The body of `POST /theaters/{id}/rooms`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomInput {
    pub name: String,
    pub rows: Vec<String>,
    pub seats_per_row: i64,
    #[serde(default)]
    pub premium_rows: Vec<String>,
    #[serde(default)]
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
        let rows: Vec<String> = self.rows.iter().map(|r| r.trim().to_ascii_uppercase()).collect();
        let label_ok = |r: &String| (1..=2).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_uppercase());
        let mut unique = rows.clone();
        unique.sort();
        unique.dedup();
        if rows.is_empty() || rows.len() > 40 || !rows.iter().all(label_ok) || unique.len() != rows.len() {
            errors.push(FieldError::new(
                "rows",
                "must be 1 to 40 distinct row letters such as \"A\" or \"AB\"",
            ));
        }
        if !(1..=60).contains(&self.seats_per_row) {
            errors.push(FieldError::new("seats_per_row", "must be between 1 and 60"));
        }
        let premium_rows: Vec<String> =
            self.premium_rows.iter().map(|r| r.trim().to_ascii_uppercase()).collect();
        if let Some(bad) = premium_rows.iter().find(|r| !rows.contains(r)) {
            errors.push(FieldError::new("premium_rows", format!("{bad:?} is not one of the rows")));
        }
        let accessible_seats: Vec<String> =
            self.accessible_seats.iter().map(|s| s.trim().to_ascii_uppercase()).collect();
        let plan = RoomPlan { name, rows, seats_per_row: self.seats_per_row, premium_rows, accessible_seats };
        if let Some(bad) = plan.accessible_seats.iter().find(|s| !plan.has_seat(s)) {
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
}

/// The body of `POST /showtimes`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowtimeInput {
    pub movie_id: Uuid,
    pub room_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    pub price_cents: i64,
    #[serde(default = "default_currency")]
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
    pub fn check(mut self, now: OffsetDateTime) -> Result<ShowtimeInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.currency = self.currency.trim().to_ascii_uppercase();
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(FieldError::new("currency", "must be an ISO 4217 code such as USD"));
        }
        if !(MIN_PRICE_CENTS..=MAX_PRICE_CENTS).contains(&self.price_cents) {
            errors.push(FieldError::new(
                "price_cents",
                format!("must be between {MIN_PRICE_CENTS} and {MAX_PRICE_CENTS}"),
            ));
        }
        if self.starts_at <= now {
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
        let plan = room(&["A", "B", "e"], 4, &["E"], &["a1"]).parse().expect("valid");
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
    fn time_zones_are_checked_by_shape() {
        assert!(
            timezone_like("Europe/Paris")
                && timezone_like("UTC")
                && timezone_like("America/Argentina/Buenos_Aires")
        );
        assert!(!timezone_like("Paris") && !timezone_like("Europe/") && !timezone_like("Europe/Par is"));
    }
}
