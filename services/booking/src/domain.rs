//! Bookings as the API sees them, and parsing seat lists at the edge.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many seats in one booking (API.md).
pub const MAX_SEATS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: Uuid,
    pub seat: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub seats: Vec<String>,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<Ticket>,
}

/// Seat labels, upper-cased, each once, 1 to 10 of them.
pub fn parse_seats(raw: &[String]) -> Result<Vec<String>, FieldError> {
    let mut seats: Vec<String> = raw.iter().map(|s| s.trim().to_ascii_uppercase()).collect();
    if seats.is_empty() {
        return Err(FieldError::new("seats", "choose at least one seat"));
    }
    let before = seats.len();
    seats.sort();
    seats.dedup();
    if seats.len() != before {
        return Err(FieldError::new("seats", "a seat is listed twice"));
    }
    if seats.len() > MAX_SEATS {
        return Err(FieldError::new("seats", format!("at most {MAX_SEATS} seats per booking")));
    }
    Ok(seats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_normalised_and_bounded() {
        let seats = parse_seats(&["e6".into(), " E5 ".into()]).expect("valid");
        assert_eq!(seats, vec!["E5", "E6"]);
        assert!(parse_seats(&[]).is_err());
        assert!(parse_seats(&["A1".into(), "a1".into()]).is_err());
        let eleven: Vec<String> = (1..=11).map(|n| format!("A{n}")).collect();
        assert!(parse_seats(&eleven).is_err());
    }
}
