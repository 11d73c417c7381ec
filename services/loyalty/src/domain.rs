//! Points, tiers, rewards and redemption codes: the rules, with no axum and no SQL.

use platform::FieldError;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A member's tier, by lifetime points (docs/api.md): its multiplier applies to what a booking
/// earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    /// Lowest first, with the lifetime points each starts at.
    pub const LADDER: [(Tier, i64); 4] =
        [(Tier::Bronze, 0), (Tier::Silver, 500), (Tier::Gold, 2000), (Tier::Platinum, 5000)];

    pub fn for_lifetime(points: i64) -> Tier {
        Self::LADDER.iter().rev().find(|(_, from)| points >= *from).map_or(Tier::Bronze, |(t, _)| *t)
    }

    /// The multiplier in hundredths (1.25 is 125), so points stay integers.
    pub fn multiplier_percent(self) -> i64 {
        match self {
            Tier::Bronze => 100,
            Tier::Silver => 125,
            Tier::Gold => 150,
            Tier::Platinum => 200,
        }
    }

    /// The next tier up and the lifetime points it starts at.
    pub fn next(self) -> Option<(Tier, i64)> {
        Self::LADDER.iter().copied().find(|(t, _)| *t > self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::Platinum => "platinum",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Self::LADDER.iter().map(|(t, _)| *t).find(|t| t.as_str() == s)
    }
}

/// What a confirmed booking earns: 1 point per whole currency unit (`total_cents / 100`), times
/// the member's tier multiplier, rounded down.
pub fn points_for(total_cents: i64, tier: Tier) -> i64 {
    (total_cents.max(0) / 100) * tier.multiplier_percent() / 100
}

/// `GET /loyalty/me`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub user_id: Uuid,
    /// What can be spent. Below 0 only when a refund took back points already spent; later
    /// bookings pay that back first.
    pub points: i64,
    /// Earned minus reversed (redemptions do not lower it); the tier comes from it.
    pub lifetime_points: i64,
    pub tier: Tier,
    /// The next tier, null at platinum.
    pub next_tier: Option<Tier>,
    /// Lifetime points still needed for the next tier; 0 at platinum.
    pub points_to_next_tier: i64,
}

impl Account {
    pub fn new(user_id: Uuid, points: i64, lifetime_points: i64) -> Self {
        let tier = Tier::for_lifetime(lifetime_points);
        let next = tier.next();
        Account {
            user_id,
            points,
            lifetime_points,
            tier,
            next_tier: next.map(|(t, _)| t),
            points_to_next_tier: next.map_or(0, |(_, from)| (from - lifetime_points).max(0)),
        }
    }
}

/// One movement of points.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: Uuid,
    /// `earned`, `reversed` or `redeemed`.
    pub kind: String,
    /// Signed: positive when earned, negative when reversed or spent.
    pub points: i64,
    pub balance_after: i64,
    pub booking_id: Option<Uuid>,
    pub redemption_id: Option<Uuid>,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Something points buy.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reward {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub points_cost: i64,
    /// How many are left; null when there is no limit.
    pub stock: Option<i64>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// A reward bought with points, and the code that claims it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Redemption {
    pub id: Uuid,
    pub user_id: Uuid,
    pub reward_id: Uuid,
    /// Shown at the counter; its last character is a check character, so a mistyped code is
    /// told apart from an unknown one.
    pub code: String,
    pub points_spent: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the code was taken at the counter; null while it can still be used.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
}

pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 1000;
pub const MAX_COST: i64 = 10_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;

pub fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.trim().is_empty() || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", format!("must be 1 to {MAX_NAME} characters of text")));
    }
}

pub fn check_description(text: &str, errors: &mut Vec<FieldError>) {
    let bad = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(bad) {
        errors.push(FieldError::new("description", format!("must be at most {MAX_DESCRIPTION} characters")));
    }
}

pub fn check_cost(cost: i64, errors: &mut Vec<FieldError>) {
    if !(1..=MAX_COST).contains(&cost) {
        errors.push(FieldError::new("points_cost", format!("must be from 1 to {MAX_COST}")));
    }
}

pub fn check_stock(stock: Option<i64>, errors: &mut Vec<FieldError>) {
    if stock.is_some_and(|s| !(0..=MAX_STOCK).contains(&s)) {
        errors.push(FieldError::new("stock", format!("must be from 0 to {MAX_STOCK}, or null for no limit")));
    }
}

/// Crockford's base 32: no I, L, O or U, so codes read out over a counter are not misheard.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Crockford's check symbols: the alphabet and five more, for a value mod 37.
const CHECK: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// A new redemption code: 80 random bits as 16 symbols in four groups, then a check symbol,
/// e.g. `RW-7F3K-Q9XM-2D8V-T4NB-N`. Unique by the database's index, unguessable by chance.
pub fn new_code() -> String {
    let random = Uuid::new_v4();
    let bytes = random.as_bytes();
    let mut value: u128 = 0;
    for b in &bytes[..10] {
        value = (value << 8) | u128::from(*b);
    }
    let symbols: Vec<u8> = (0..16).rev().map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize]).collect();
    let check = CHECK[(value % 37) as usize] as char;
    let groups: Vec<&str> = symbols.chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("RW-{}-{check}", groups.join("-"))
}

/// A code as typed, in its canonical form (upper case, Crockford's look-alikes mapped), or None
/// when it is malformed or its check symbol is wrong.
pub fn canonical_code(typed: &str) -> Option<String> {
    let upper = typed.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix("RW-")?;
    let (body, check) = rest.rsplit_once('-')?;
    let symbols: String = body
        .chars()
        .filter(|c| *c != '-')
        .map(|c| match c {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if symbols.len() != 16 || check.len() != 1 {
        return None;
    }
    let mut value: u128 = 0;
    for c in symbols.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == c)?;
        value = (value << 5) | digit as u128;
    }
    if CHECK[(value % 37) as usize] != check.as_bytes()[0] {
        return None;
    }
    let groups: Vec<&str> = (0..4).map(|i| &symbols[i * 4..i * 4 + 4]).collect();
    Some(format!("RW-{}-{check}", groups.join("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_start_at_their_thresholds() {
        assert_eq!(Tier::for_lifetime(0), Tier::Bronze);
        assert_eq!(Tier::for_lifetime(499), Tier::Bronze);
        assert_eq!(Tier::for_lifetime(500), Tier::Silver);
        assert_eq!(Tier::for_lifetime(1999), Tier::Silver);
        assert_eq!(Tier::for_lifetime(2000), Tier::Gold);
        assert_eq!(Tier::for_lifetime(5000), Tier::Platinum);
        assert_eq!(Tier::for_lifetime(-10), Tier::Bronze);
        assert_eq!(Tier::Gold.next(), Some((Tier::Platinum, 5000)));
        assert_eq!(Tier::Platinum.next(), None);
    }

    #[test]
    fn points_are_whole_units_times_the_multiplier_rounded_down() {
        assert_eq!(points_for(2399, Tier::Bronze), 23);
        assert_eq!(points_for(2399, Tier::Silver), 28); // 23 × 1.25 = 28.75
        assert_eq!(points_for(2399, Tier::Gold), 34); // 34.5
        assert_eq!(points_for(2399, Tier::Platinum), 46);
        assert_eq!(points_for(99, Tier::Platinum), 0);
        assert_eq!(points_for(-500, Tier::Bronze), 0);
    }

    #[test]
    fn the_account_says_how_far_the_next_tier_is() {
        let a = Account::new(Uuid::nil(), 120, 480);
        assert_eq!((a.tier, a.next_tier, a.points_to_next_tier), (Tier::Bronze, Some(Tier::Silver), 20));
        let top = Account::new(Uuid::nil(), 9000, 9000);
        assert_eq!((top.tier, top.next_tier, top.points_to_next_tier), (Tier::Platinum, None, 0));
    }

    #[test]
    fn codes_check_themselves() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let code = new_code();
            assert_eq!(code.len(), "RW-XXXX-XXXX-XXXX-XXXX-C".len(), "{code}");
            assert_eq!(canonical_code(&code).as_deref(), Some(code.as_str()));
            assert_eq!(canonical_code(&code.to_ascii_lowercase()).as_deref(), Some(code.as_str()));
            assert!(seen.insert(code));
        }
        let code = new_code();
        // Every single-symbol change of the body is caught by the check symbol.
        let bytes = code.as_bytes();
        for (i, b) in bytes.iter().enumerate().take(22).skip(3) {
            if *b == b'-' {
                continue;
            }
            for a in ALPHABET {
                if a == b {
                    continue;
                }
                let mut typo = bytes.to_vec();
                typo[i] = *a;
                let typo = String::from_utf8(typo).expect("ascii");
                assert_eq!(canonical_code(&typo), None, "{code} → {typo}");
            }
        }
        for bad in
            ["", "RW-", "RW-1234-5678-9ABC-DEFG", "XX-0000-0000-0000-0000-0", "RW-0000-0000-0000-000U-0"]
        {
            assert_eq!(canonical_code(bad), None, "{bad}");
        }
    }
}
