//! What notifications says to whom: the kinds of message, the user's preferences, the feed and
//! the delivery log as the API shows them. No axum, no SQL.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A kind of message; the names are the preference keys and the template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Welcome,
    BookingConfirmed,
    /// Cancelled by the customer or with its showtime, or refunded by an admin.
    BookingCancelled,
    SubscriptionActivated,
    RewardRedeemed,
    /// A higher tier reached (a lower one is in the feed only).
    TierReached,
    /// A lower tier after a refund: in the feed, never emailed.
    TierLowered,
}

impl Kind {
    /// The kinds a user may receive by email, each on unless turned off.
    pub const EMAILED: [Kind; 6] = [
        Kind::Welcome,
        Kind::BookingConfirmed,
        Kind::BookingCancelled,
        Kind::SubscriptionActivated,
        Kind::RewardRedeemed,
        Kind::TierReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::BookingConfirmed => "booking_confirmed",
            Kind::BookingCancelled => "booking_cancelled",
            Kind::SubscriptionActivated => "subscription_activated",
            Kind::RewardRedeemed => "reward_redeemed",
            Kind::TierReached => "tier_reached",
            Kind::TierLowered => "tier_lowered",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Self::EMAILED.into_iter().chain([Kind::TierLowered]).find(|k| k.as_str() == s)
    }

    pub fn is_emailed(self) -> bool {
        Self::EMAILED.contains(&self)
    }
}

/// A user's choices. Every email kind is on until turned off; SMS is off until a phone is given
/// and booking confirmations are turned on.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Preferences {
    /// Each email kind and whether the user receives it.
    #[schema(value_type = EmailKinds)]
    pub email: std::collections::BTreeMap<String, bool>,
    pub sms: SmsPreferences,
}

/// The email kinds and whether each is on (what the OpenAPI document says `email` holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailKinds {
    pub welcome: Option<bool>,
    pub booking_confirmed: Option<bool>,
    pub booking_cancelled: Option<bool>,
    pub subscription_activated: Option<bool>,
    pub reward_redeemed: Option<bool>,
    pub tier_reached: Option<bool>,
}

impl EmailKinds {
    /// The kinds it names, by preference key.
    pub fn named(&self) -> std::collections::BTreeMap<String, bool> {
        [
            (Kind::Welcome, self.welcome),
            (Kind::BookingConfirmed, self.booking_confirmed),
            (Kind::BookingCancelled, self.booking_cancelled),
            (Kind::SubscriptionActivated, self.subscription_activated),
            (Kind::RewardRedeemed, self.reward_redeemed),
            (Kind::TierReached, self.tier_reached),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.map(|on| (k.as_str().to_owned(), on)))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SmsPreferences {
    /// E.164 (`+15551234567`); null: no SMS.
    pub phone: Option<String>,
    /// Booking confirmations by SMS as well (with the ticket codes).
    pub booking_confirmed: bool,
}

impl Preferences {
    pub fn new(email_off: &[Kind], sms: SmsPreferences) -> Self {
        let email = Kind::EMAILED.iter().map(|k| (k.as_str().to_owned(), !email_off.contains(k))).collect();
        Preferences { email, sms }
    }

    pub fn emails(&self, kind: Kind) -> bool {
        kind.is_emailed() && self.email.get(kind.as_str()).copied().unwrap_or(true)
    }
}

/// An E.164 number: `+`, a country code not starting with 0, 8 to 15 digits in all.
pub fn check_phone(phone: &str, errors: &mut Vec<FieldError>) {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !ok {
        errors.push(FieldError::new("sms.phone", "must be an E.164 number such as +15551234567"));
    }
}

/// One entry of the in-app feed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    /// What the event said (ids for links: `booking_id`, `reward_id`, ...).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub read: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<OffsetDateTime>,
}

/// The feed: a page of notifications, newest first, and how many are unread in all.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Feed {
    pub items: Vec<Notification>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub unread: i64,
}

/// One message in the delivery log (admins).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub user_id: Uuid,
    /// `email` or `sms`.
    pub channel: String,
    pub kind: Kind,
    /// `pending` (waiting for its next try), `sending`, `sent` or `failed` (every try spent).
    pub status: String,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: OffsetDateTime,
    pub recipient: Option<String>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<OffsetDateTime>,
}

/// `3500, "USD"` → `35.00 USD` (two minor digits; the currencies Marquee takes have two).
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02} {currency}", cents.abs() / 100, cents.abs() % 100)
}

/// An instant as a person in `timezone` reads it: `Friday 4 December 2026, 19:30 PST`. UTC when
/// the zone is unknown.
pub fn local_time(at: OffsetDateTime, timezone: &str) -> String {
    let tz = jiff::tz::db().get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()) {
        Ok(ts) => ts.to_zoned_datetime(tz).strftime("%A %-d %B %Y, %H:%M %Z").to_string(),
        Err(_) => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_on_the_theater_clock() {
        let at = time::macros::datetime!(2026-12-05 03:30 UTC);
        assert_eq!(local_time(at, "America/Los_Angeles"), "Friday 4 December 2026, 19:30 PST");
        assert_eq!(local_time(at, "Europe/Paris"), "Saturday 5 December 2026, 04:30 CET");
        assert_eq!(local_time(at, "Nowhere/Else"), "Saturday 5 December 2026, 03:30 UTC");
    }

    #[test]
    fn money_has_two_minor_digits() {
        assert_eq!(money(3500, "USD"), "35.00 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-1250, "USD"), "-12.50 USD");
    }

    #[test]
    fn preferences_default_to_every_email() {
        let p =
            Preferences::new(&[Kind::TierReached], SmsPreferences { phone: None, booking_confirmed: false });
        assert!(p.emails(Kind::Welcome) && p.emails(Kind::BookingConfirmed));
        assert!(!p.emails(Kind::TierReached));
        assert!(!p.emails(Kind::TierLowered), "never emailed");
        let mut errors = Vec::new();
        for good in ["+15551234567", "+447911123456"] {
            check_phone(good, &mut errors);
        }
        assert!(errors.is_empty(), "{errors:?}");
        for bad in ["5551234567", "+0123456789", "+1555", "+1555123456789012", "+1 555 123 4567"] {
            let mut errors = Vec::new();
            check_phone(bad, &mut errors);
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }
}
