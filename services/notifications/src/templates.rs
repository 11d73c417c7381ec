//! The messages, as minijinja templates (templates/, built into the binary): a subject, a plain
//! text and an HTML part per email kind, HTML escaped automatically, and the short title and
//! line of each feed entry. Rendering never reads the network: whatever a message needs is in
//! its context (see [`crate::compose`]).

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::Kind;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const FILES: &[(&str, &str)] = templates!(
    "base.html",
    "welcome.subject",
    "welcome.txt",
    "welcome.html",
    "booking_confirmed.subject",
    "booking_confirmed.txt",
    "booking_confirmed.html",
    "booking_cancelled.subject",
    "booking_cancelled.txt",
    "booking_cancelled.html",
    "subscription_activated.subject",
    "subscription_activated.txt",
    "subscription_activated.html",
    "reward_redeemed.subject",
    "reward_redeemed.txt",
    "reward_redeemed.html",
    "tier_reached.subject",
    "tier_reached.txt",
    "tier_reached.html",
);

/// The feed's title and line per kind, from the event alone (the feed entry is written in the
/// event's transaction, where nothing is asked of other services).
const FEED: &[(Kind, &str, &str)] = &[
    (Kind::Welcome, "Welcome to Marquee", "Your account is ready. Book a seat or start watching."),
    (
        Kind::BookingConfirmed,
        "Booking confirmed",
        "{{ seats | length }} ticket{% if seats | length != 1 %}s{% endif %}: seat{% if seats | length != 1 %}s{% endif %} {{ seats | join(\", \") }}. Your codes are in your booking and your email.",
    ),
    (
        Kind::BookingCancelled,
        "{% if refunded_cents > 0 %}Booking refunded{% else %}Booking cancelled{% endif %}",
        "Seats {{ seats | join(\", \") }}{% if refunded_cents > 0 %}: {{ refunded }} refunded to your card{% endif %}.",
    ),
    (
        Kind::SubscriptionActivated,
        "{{ plan_id | capitalize }} plan active",
        "Watch on up to {{ max_streams }} screens at once.",
    ),
    (
        Kind::RewardRedeemed,
        "Reward: {{ reward_name }}",
        "Your code is {{ code }}. {{ balance }} points left.",
    ),
    (
        Kind::TierReached,
        "You are {{ to }} now",
        "{{ lifetime_points }} lifetime points. Bookings earn more from now on.",
    ),
    (
        Kind::TierLowered,
        "Your tier is {{ to }}",
        "A refund took back points: {{ lifetime_points }} lifetime points.",
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A missing value is a bug in the context, not an empty string in someone's email.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // `.subject` and `.txt` are not escaped; `.html` is (minijinja's default by extension).
    for (name, source) in FILES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a notification template does not compile");
        }
    }
    // The feed's texts, compiled once too (they are rendered for every event).
    for (kind, title, body) in FEED {
        for (part, source) in [("title", title), ("body", body)] {
            let name = format!("feed/{}.{part}", kind.as_str());
            if let Err(e) = env.add_template_owned(name.clone(), source.to_string()) {
                tracing::error!(template = name, error = %e, "a feed template does not compile");
            }
        }
    }
    env
});

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn email<C: Serialize>(kind: Kind, context: &C) -> anyhow::Result<Email> {
    let context = minijinja::Value::from(minijinja::value::Serde(context));
    let render = |part: &str| -> anyhow::Result<String> {
        let name = format!("{}.{part}", kind.as_str());
        Ok(ENV.get_template(&name)?.render(context.clone())?)
    };
    Ok(Email {
        subject: render("subject")?.trim().replace(['\r', '\n'], " "),
        text: render("txt")?,
        html: render("html")?,
    })
}

/// The feed's title and line for an event's payload.
pub fn feed<C: Serialize>(kind: Kind, context: &C) -> anyhow::Result<(String, String)> {
    let (_, title, body) = FEED
        .iter()
        .find(|(k, _, _)| *k == kind)
        .ok_or_else(|| anyhow::anyhow!("no feed text for {kind:?}"))?;
    let context = minijinja::Value::from(minijinja::value::Serde(context));
    Ok((ENV.render_str(title, context.clone())?, ENV.render_str(body, context)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in FILES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn the_booking_email_has_the_codes_in_both_parts_and_escapes_html() {
        let context = json!({
            "name": "Ada <script>", "app_url": "http://127.0.0.1:8080", "movie_title": "Heat & Dust",
            "local_time": "Friday 4 December 2026, 19:30 PST", "theater_name": "Marquee Riverside",
            "theater_address": "1 Main St", "total": "35.00 USD", "booking_id": "b1",
            "tickets": [{"seat": "A1", "code": "AAAA-1111"}, {"seat": "E1", "code": "BBBB-2222"}],
        });
        let mail = email(Kind::BookingConfirmed, &context).expect("renders");
        assert_eq!(mail.subject, "Your tickets: Heat & Dust, Friday 4 December 2026, 19:30 PST");
        for code in ["AAAA-1111", "BBBB-2222"] {
            assert!(mail.text.contains(code) && mail.html.contains(code), "{code}");
        }
        assert!(mail.text.contains("Seat A1: AAAA-1111"), "{}", mail.text);
        assert!(mail.html.contains("Heat &amp; Dust") && mail.html.contains("Ada &lt;script&gt;"));
        assert!(mail.text.contains("Hello Ada <script>"), "plain text is not escaped");
        let missing = json!({"name": "Ada"});
        assert!(email(Kind::BookingConfirmed, &missing).is_err(), "a missing field is an error, not a blank");
    }

    #[test]
    fn every_kind_has_feed_text() {
        let context = json!({
            "seats": ["A1", "A2"], "refunded_cents": 2000, "refunded": "20.00 USD", "plan_id": "premium",
            "max_streams": 4, "reward_name": "Popcorn", "code": "RW-X", "balance": 10, "to": "gold",
            "lifetime_points": 2100,
        });
        for kind in Kind::EMAILED.into_iter().chain([Kind::TierLowered]) {
            let (title, body) = feed(kind, &context).expect("feed text");
            assert!(!title.is_empty() && !body.is_empty(), "{kind:?}");
        }
        let (title, body) = feed(Kind::BookingConfirmed, &context).expect("feed");
        assert_eq!(
            (title.as_str(), body.as_str()),
            ("Booking confirmed", "2 tickets: seats A1, A2. Your codes are in your booking and your email.")
        );
    }
}
