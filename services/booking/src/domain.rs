//! Bookings as the API sees them, their life as a state machine, and parsing seat lists at the
//! edge.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many seats in one booking (docs/api.md).
pub const MAX_SEATS: usize = contracts::booking::MAX_SEATS as usize;

/// Where a booking is in its life. Every change is one of [`Status::can_become`]'s transitions,
/// made by a conditional UPDATE on the status it expects, so the loser of a race sees what
/// happened instead of overriding it.
///
/// ```text
/// held ──pay──▶ charging ──charged──▶ confirmed ──cancel──▶ cancelled
///  │  ◀─declined─┘  │                     └──refunded by payments──▶ refunded
///  ├──▶ expired ◀───┤ (the hold ran out; the pay request died)
///  └──▶ cancelled ◀─┘ (the customer, or the showtime was cancelled)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Seats held until `expires_at`, not paid.
    Held,
    /// A pay request is charging the card; the seats stay held until it knows the outcome.
    Charging,
    /// Paid: the seats are sold and the tickets valid.
    Confirmed,
    /// Ended by the customer or the cinema; any money is refunded.
    Cancelled,
    /// The hold ran out unpaid; any stray charge is refunded.
    Expired,
    /// Its payment was refunded by someone else (an admin): tickets void, seats free.
    Refunded,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Self::Held, Self::Charging, Self::Confirmed, Self::Cancelled, Self::Expired, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Charging => "charging",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// The transitions of the state machine above.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Held, Charging | Cancelled | Expired)
                | (Charging, Held | Confirmed | Cancelled | Expired)
                | (Confirmed, Cancelled | Refunded)
        )
    }

    /// A booking that ended: nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired | Self::Refunded)
    }

    /// Its seats are claimed (held or sold).
    pub fn claims_seats(self) -> bool {
        matches!(self, Self::Held | Self::Charging | Self::Confirmed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub status: Status,
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
    fn only_the_drawn_transitions_are_allowed() {
        use Status::*;
        for from in Status::ALL {
            assert!(!from.can_become(from), "{from} to itself");
            if from.is_final() {
                assert!(Status::ALL.iter().all(|to| !from.can_become(*to)), "{from} is final");
            }
            assert_eq!(Status::parse(from.as_str()), Some(from));
        }
        assert!(Held.can_become(Charging) && Charging.can_become(Confirmed));
        assert!(!Held.can_become(Confirmed), "a booking is confirmed only by a charge");
        assert!(!Confirmed.can_become(Expired), "a paid booking never expires");
        assert!(!Charging.can_become(Refunded));
    }

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
