//! The card processor, simulated with the rules of a processor's test mode (docs/api.md):
//! `4242424242424242` succeeds, `4000000000000002` is declined (`card_declined`),
//! `4000000000009995` is declined (`insufficient_funds`), a past expiry is `expired_card`, a
//! number failing the Luhn check is refused before any charge (422 at our edge). Any other
//! Luhn-valid number succeeds, as in a real test mode. It also tokenizes cards, so renewals can
//! charge without our ever keeping a card number.

use contracts::payments::Card;
use platform::FieldError;
use time::OffsetDateTime;

/// A card that passed our checks: what may be kept of it, and its reusable token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCard {
    pub brand: &'static str,
    pub last4: String,
    /// The processor's token for later charges (renewals): opaque to us.
    pub token: String,
    exp_month: i64,
    exp_year: i64,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Approve,
    Decline(&'static str),
}

/// The processor's answer to a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Succeeded,
    Declined(&'static str),
}

pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn brand(digits: &str) -> &'static str {
    match digits.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') => "mastercard",
        Some(b'3') => "amex",
        _ => "card",
    }
}

/// Check a card's form (422 on a bad one) and tokenize it.
pub fn check(card: &Card) -> Result<CheckedCard, Vec<FieldError>> {
    let mut errors = Vec::new();
    if card.kind != "card" {
        errors.push(FieldError::new("payment_method.type", "only \"card\" is accepted"));
    }
    let digits: String = card.number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !(12..=19).contains(&digits.len())
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !luhn_valid(&digits)
    {
        errors.push(FieldError::new("payment_method.number", "is not a valid card number"));
    }
    if !(1..=12).contains(&card.exp_month) {
        errors.push(FieldError::new("payment_method.exp_month", "must be 1 to 12"));
    }
    if !(2000..=2100).contains(&card.exp_year) {
        errors.push(FieldError::new("payment_method.exp_year", "must be a four-digit year"));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.chars().all(|c| c.is_ascii_digit()) {
        errors.push(FieldError::new("payment_method.cvc", "must be 3 or 4 digits"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let outcome = match digits.as_str() {
        "4000000000000002" => Outcome::Decline("card_declined"),
        "4000000000009995" => Outcome::Decline("insufficient_funds"),
        _ => Outcome::Approve,
    };
    let last4 = digits[digits.len() - 4..].to_owned();
    // The simulated processor keeps the card's behaviour in its token; a real one keeps the card.
    let behaviour = match outcome {
        Outcome::Approve => "ok",
        Outcome::Decline(code) => code,
    };
    let token = format!("pm_sim_{behaviour}_{}_{}_{last4}", card.exp_month, card.exp_year);
    Ok(CheckedCard {
        brand: brand(&digits),
        last4,
        token,
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        outcome,
    })
}

/// A card from its token (a renewal).
pub fn from_token(token: &str) -> Option<CheckedCard> {
    let rest = token.strip_prefix("pm_sim_")?;
    let mut parts = rest.rsplitn(4, '_');
    let last4 = parts.next()?.to_owned();
    let exp_year = parts.next()?.parse().ok()?;
    let exp_month = parts.next()?.parse().ok()?;
    let outcome = match parts.next()? {
        "ok" => Outcome::Approve,
        "card_declined" => Outcome::Decline("card_declined"),
        "insufficient_funds" => Outcome::Decline("insufficient_funds"),
        _ => return None,
    };
    Some(CheckedCard { brand: "card", last4, token: token.to_owned(), exp_month, exp_year, outcome })
}

impl CheckedCard {
    /// Charge the card now.
    pub fn charge(&self, now: OffsetDateTime) -> Charge {
        // A card is good through the last day of its expiry month.
        let expired =
            (self.exp_year, self.exp_month) < (i64::from(now.year()), i64::from(u8::from(now.month())));
        if expired {
            return Charge::Declined("expired_card");
        }
        match self.outcome {
            Outcome::Approve => Charge::Succeeded,
            Outcome::Decline(code) => Charge::Declined(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, month: i64, year: i64) -> Card {
        Card {
            kind: "card".into(),
            number: number.into(),
            exp_month: month,
            exp_year: year,
            cvc: "123".into(),
        }
    }

    #[test]
    fn the_test_cards_behave_as_documented() {
        let now = time::macros::datetime!(2026-11-23 12:00 UTC);
        assert_eq!(
            check(&card("4242 4242 4242 4242", 12, 2030)).expect("valid").charge(now),
            Charge::Succeeded
        );
        assert_eq!(
            check(&card("4000000000000002", 12, 2030)).expect("valid").charge(now),
            Charge::Declined("card_declined")
        );
        assert_eq!(
            check(&card("4000000000009995", 12, 2030)).expect("valid").charge(now),
            Charge::Declined("insufficient_funds")
        );
        assert_eq!(
            check(&card("4242424242424242", 10, 2026)).expect("valid").charge(now),
            Charge::Declined("expired_card")
        );
        assert_eq!(
            check(&card("4242424242424242", 11, 2026)).expect("valid").charge(now),
            Charge::Succeeded,
            "good through its month"
        );
        let errors = check(&card("4242424242424241", 13, 26)).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["payment_method.number", "payment_method.exp_month", "payment_method.exp_year"]);
    }

    #[test]
    fn tokens_keep_the_behaviour_not_the_number() {
        let checked = check(&card("4000000000009995", 1, 2031)).expect("valid");
        assert!(!checked.token.contains("4000000000009995"));
        let back = from_token(&checked.token).expect("a token");
        assert_eq!(back.last4, "9995");
        assert_eq!(
            back.charge(time::macros::datetime!(2026-11-23 12:00 UTC)),
            Charge::Declined("insufficient_funds")
        );
        assert!(from_token("pm_other").is_none());
    }

    #[test]
    fn debug_output_never_shows_the_number() {
        let c = card("4242424242424242", 12, 2030);
        assert_eq!(format!("{c:?}"), "Card(**** 4242, 12/2030)");
    }
}
