//! loyalty's use cases: points from bookings (in the consumer's inbox transaction, so a
//! redelivered event earns nothing twice), the member's account and ledger, the rewards
//! catalogue, redemptions that cannot overspend, and checking a code at the counter.

use contracts::{
    booking::{BookingConfirmed, BookingEnded},
    event_types::{POINTS_AWARDED, POINTS_REVERSED, REWARD_REDEEMED, TIER_CHANGED},
    loyalty::{PointsMoved, RewardRedeemed, TierChanged},
};
use events::Effects;
use platform::{
    auth::AuthUser,
    db::Db,
    pagination::{Page, PageRequest},
    time::from_ms,
};
use serde::Serialize;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{self, Account, LedgerEntry, Redemption, Reward, Tier, points_for},
    error::LoyaltyError,
    store::{self, Balance, Movement, NewBookingPoints},
};

/// Events that say what a movement did: the points, and the tier when it changed.
async fn announce(
    effects: &Effects,
    tx: &mut AnyConnection,
    event_type: &str,
    m: &Movement<'_>,
    before: Balance,
    after: Balance,
    now: i64,
) -> anyhow::Result<()> {
    let user = m.user;
    let moved = PointsMoved {
        user_id: user,
        booking_id: m.booking.unwrap_or_default(),
        points: m.points.abs(),
        balance: after.points,
        lifetime_points: after.lifetime_points,
        tier: after.tier.as_str().to_owned(),
    };
    effects.emit_in(tx, event_type, user.to_string(), &moved).await?;
    if after.tier != before.tier {
        let changed = TierChanged {
            user_id: user,
            from: before.tier.as_str().to_owned(),
            to: after.tier.as_str().to_owned(),
            lifetime_points: after.lifetime_points,
            changed_at: from_ms(now),
        };
        effects.emit_in(tx, TIER_CHANGED, user.to_string(), &changed).await?;
    }
    Ok(())
}

/// `booking.confirmed`: the booking earns points at the member's tier now. A booking already
/// recorded (a redelivery, or a cancellation that came first) earns nothing.
pub async fn award(
    db: &Db,
    effects: &Effects,
    tx: &mut AnyConnection,
    e: &BookingConfirmed,
    now: i64,
) -> anyhow::Result<()> {
    if store::booking_points(tx, e.booking_id).await?.is_some() {
        return Ok(());
    }
    let before = store::lock_account(db, tx, e.user_id, now).await?;
    let points = points_for(e.total_cents, before.tier);
    let record = NewBookingPoints {
        booking: e.booking_id,
        user: e.user_id,
        total_cents: e.total_cents,
        tier: before.tier,
        points,
        status: "awarded",
    };
    if !store::insert_booking_points(tx, &record, now).await? || points == 0 {
        return Ok(());
    }
    let movement = Movement {
        user: e.user_id,
        kind: "earned",
        points,
        lifetime: points,
        booking: Some(e.booking_id),
        redemption: None,
        description: format!("{} seat(s), {} {}", e.seats.len(), e.total_cents, e.currency),
    };
    let after = store::move_points(tx, before, &movement, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("account {} changed under its lock", e.user_id))?;
    announce(effects, tx, POINTS_AWARDED, &movement, before, after, now).await
}

/// `booking.cancelled`: the booking is no longer confirmed, so exactly what it earned goes back
/// (lifetime points too, so a tier earned with it can be lost). Arriving before the
/// confirmation, it leaves the booking void, so the confirmation earns nothing.
pub async fn reverse(
    db: &Db,
    effects: &Effects,
    tx: &mut AnyConnection,
    e: &BookingEnded,
    now: i64,
) -> anyhow::Result<()> {
    let earned = match store::booking_points(tx, e.booking_id).await? {
        Some(earned) => earned,
        None => {
            let void = NewBookingPoints {
                booking: e.booking_id,
                user: e.user_id,
                total_cents: 0,
                tier: Tier::Bronze,
                points: 0,
                status: "void",
            };
            if store::insert_booking_points(tx, &void, now).await? {
                return Ok(());
            }
            // The confirmation committed in between (another replica): reverse what it earned.
            store::booking_points(tx, e.booking_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("booking {} vanished", e.booking_id))?
        }
    };
    if earned.status != "awarded" || !store::reverse_booking_points(tx, e.booking_id, now).await? {
        return Ok(());
    }
    if earned.points == 0 {
        return Ok(());
    }
    let before = store::lock_account(db, tx, e.user_id, now).await?;
    let why = e.reason.as_deref().unwrap_or("cancelled");
    let movement = Movement {
        user: e.user_id,
        kind: "reversed",
        points: -earned.points,
        lifetime: -earned.points,
        booking: Some(e.booking_id),
        redemption: None,
        description: format!("booking {why}"),
    };
    let after = store::move_points(tx, before, &movement, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("account {} changed under its lock", e.user_id))?;
    announce(effects, tx, POINTS_REVERSED, &movement, before, after, now).await
}

/// A member's account; all zero before their first booking.
pub async fn account(state: &AppState, user: Uuid) -> Result<Account, LoyaltyError> {
    let balance = store::balance(&state.db, user).await?;
    Ok(balance.map_or(Account::new(user, 0, 0), |b| Account::new(user, b.points, b.lifetime_points)))
}

pub async fn transactions(
    state: &AppState,
    user: Uuid,
    page: PageRequest,
) -> Result<Page<LedgerEntry>, LoyaltyError> {
    let (items, total) = store::ledger(&state.db, user, page).await?;
    Ok(Page::new(items, page, total))
}

/// What an admin says a reward is.
pub struct RewardInput<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub points_cost: i64,
    pub stock: Option<i64>,
    pub active: bool,
}

fn check(input: &RewardInput<'_>) -> Result<(), LoyaltyError> {
    let mut errors = Vec::new();
    domain::check_name(input.name, &mut errors);
    domain::check_description(input.description, &mut errors);
    domain::check_cost(input.points_cost, &mut errors);
    domain::check_stock(input.stock, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(LoyaltyError::Invalid(errors)) }
}

pub async fn create_reward(state: &AppState, input: RewardInput<'_>) -> Result<Reward, LoyaltyError> {
    check(&input)?;
    let reward = Reward {
        id: Uuid::now_v7(),
        name: input.name.to_owned(),
        description: input.description.to_owned(),
        points_cost: input.points_cost,
        stock: input.stock,
        active: input.active,
        created_at: state.clock.now(),
    };
    store::insert_reward(&state.db, &reward).await?;
    Ok(reward)
}

/// An admin's change of a reward; absent fields stay. `stock: null` is "no limit", so the
/// route tells an absent stock from a null one.
pub struct RewardChange<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub points_cost: Option<i64>,
    pub stock: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// Change a reward. The write is conditional on the stock it read, so a redemption that takes
/// one in between is never undone by the edit: the change is applied again over the new row.
pub async fn update_reward(
    state: &AppState,
    id: Uuid,
    change: RewardChange<'_>,
) -> Result<Reward, LoyaltyError> {
    for _ in 0..5 {
        let mut conn = state.db.pool.acquire().await?;
        let current = store::reward(&mut conn, id).await?.ok_or(LoyaltyError::NotFound("reward"))?;
        drop(conn);
        let next = Reward {
            name: change.name.map_or(current.name.clone(), str::to_owned),
            description: change.description.map_or(current.description.clone(), str::to_owned),
            points_cost: change.points_cost.unwrap_or(current.points_cost),
            stock: change.stock.unwrap_or(current.stock),
            active: change.active.unwrap_or(current.active),
            ..current.clone()
        };
        check(&RewardInput {
            name: &next.name,
            description: &next.description,
            points_cost: next.points_cost,
            stock: next.stock,
            active: next.active,
        })?;
        if store::update_reward(&state.db, &next, current.stock, state.clock.now_ms()).await? {
            return Ok(next);
        }
    }
    Err(LoyaltyError::Internal(anyhow::anyhow!("reward {id} kept changing under the edit")))
}

pub async fn reward(state: &AppState, who: Option<&AuthUser>, id: Uuid) -> Result<Reward, LoyaltyError> {
    let mut conn = state.db.pool.acquire().await?;
    let reward = store::reward(&mut conn, id).await?.ok_or(LoyaltyError::NotFound("reward"))?;
    if !reward.active && !who.is_some_and(AuthUser::is_admin) {
        return Err(LoyaltyError::NotFound("reward"));
    }
    Ok(reward)
}

pub async fn rewards(
    state: &AppState,
    who: Option<&AuthUser>,
    page: PageRequest,
) -> Result<Page<Reward>, LoyaltyError> {
    let (items, total) = store::rewards(&state.db, who.is_some_and(AuthUser::is_admin), page).await?;
    Ok(Page::new(items, page, total))
}

/// Spend points on a reward. The member's row is locked for the transaction and the balance
/// must cover the cost, so concurrent redemptions (any replica) never spend more than there is;
/// the stock is taken in the same transaction.
pub async fn redeem(state: &AppState, user: Uuid, reward_id: Uuid) -> Result<Redemption, LoyaltyError> {
    let now = state.clock.now_ms();
    let mut work = state.effects.begin(&state.db).await?;
    let reward = store::reward(work.conn(), reward_id).await?.ok_or(LoyaltyError::NotFound("reward"))?;
    if !reward.active {
        return Err(LoyaltyError::NotFound("reward"));
    }
    let before = store::lock_account(&state.db, work.conn(), user, now).await?;
    if before.points < reward.points_cost {
        return Err(LoyaltyError::NotEnoughPoints { have: before.points, need: reward.points_cost });
    }
    if !store::take_stock(work.conn(), reward.id, reward.points_cost, now).await? {
        return Err(LoyaltyError::OutOfStock);
    }
    let mut redemption = Redemption {
        id: Uuid::now_v7(),
        user_id: user,
        reward_id: reward.id,
        code: domain::new_code(),
        points_spent: reward.points_cost,
        created_at: from_ms(now),
        used_at: None,
    };
    // 80 random bits make a clash all but impossible; the unique index makes it harmless.
    while !store::insert_redemption(work.conn(), &redemption).await? {
        redemption.code = domain::new_code();
    }
    let movement = Movement {
        user,
        kind: "redeemed",
        points: -reward.points_cost,
        lifetime: 0,
        booking: None,
        redemption: Some(redemption.id),
        description: reward.name.clone(),
    };
    let Some(after) = store::move_points(work.conn(), before, &movement, now).await? else {
        return Err(LoyaltyError::NotEnoughPoints { have: before.points, need: reward.points_cost });
    };
    let event = RewardRedeemed {
        redemption_id: redemption.id,
        user_id: user,
        reward_id: reward.id,
        reward_name: reward.name.clone(),
        code: redemption.code.clone(),
        points_spent: reward.points_cost,
        balance: after.points,
        redeemed_at: from_ms(now),
    };
    work.emit(REWARD_REDEEMED, user.to_string(), &event).await?;
    work.commit().await?;
    Ok(redemption)
}

pub async fn redemptions(
    state: &AppState,
    user: Uuid,
    page: PageRequest,
) -> Result<Page<Redemption>, LoyaltyError> {
    let (items, total) = store::redemptions(&state.db, user, page).await?;
    Ok(Page::new(items, page, total))
}

/// A code checked at the counter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CodeCheck {
    pub redemption: Redemption,
    pub reward: Reward,
    /// It exists and has not been used.
    pub valid: bool,
}

fn canonical(code: &str) -> Result<String, LoyaltyError> {
    domain::canonical_code(code).ok_or(LoyaltyError::Invalid(vec![platform::FieldError::new(
        "code",
        "is not a redemption code (RW- and 17 symbols, the last a check symbol): mistyped?",
    )]))
}

/// What a code is worth (admin, at the counter).
pub async fn check_code(state: &AppState, code: &str) -> Result<CodeCheck, LoyaltyError> {
    let code = canonical(code)?;
    let redemption =
        store::redemption_by_code(&state.db, &code).await?.ok_or(LoyaltyError::NotFound("code"))?;
    let mut conn = state.db.pool.acquire().await?;
    let reward = store::reward(&mut conn, redemption.reward_id).await?.ok_or_else(|| {
        LoyaltyError::Internal(anyhow::anyhow!("redemption {} has no reward", redemption.id))
    })?;
    let valid = redemption.used_at.is_none();
    Ok(CodeCheck { redemption, reward, valid })
}

/// Take a code at the counter: once (409 `code-used` after that).
pub async fn use_code(state: &AppState, code: &str) -> Result<CodeCheck, LoyaltyError> {
    let code = canonical(code)?;
    if store::redemption_by_code(&state.db, &code).await?.is_none() {
        return Err(LoyaltyError::NotFound("code"));
    }
    if !store::use_code(&state.db, &code, state.clock.now_ms()).await? {
        return Err(LoyaltyError::CodeUsed);
    }
    check_code(state, &code).await
}
