//! loyalty's SQL, written once for SQLite and PostgreSQL. Times are passed in, never read here.
//! A balance changes only in [`move_points`], which writes the ledger row with it.

use platform::{
    db::{Db, uuid_column as uuid},
    pagination::PageRequest,
    time::{from_ms, to_ms},
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::{LedgerEntry, Redemption, Reward, Tier};

/// A member's row, as read under its lock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    pub points: i64,
    pub lifetime_points: i64,
    pub tier: Tier,
}

/// The member's row, created at zero when new, locked until the transaction ends (PostgreSQL;
/// SQLite's write transaction already excludes every other writer).
pub async fn lock_account(db: &Db, tx: &mut AnyConnection, user: Uuid, now: i64) -> anyhow::Result<Balance> {
    sqlx::query(
        "INSERT INTO accounts (user_id, points, lifetime_points, tier, updated_at) VALUES ($1, 0, 0, 'bronze', $2) \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT points, lifetime_points, tier FROM accounts WHERE user_id = $1{}",
        db.for_update()
    )))
    .bind(user.to_string())
    .fetch_one(&mut *tx)
    .await?;
    balance_from(&row)
}

fn balance_from(row: &AnyRow) -> anyhow::Result<Balance> {
    let tier: String = row.try_get("tier")?;
    Ok(Balance {
        points: row.try_get("points")?,
        lifetime_points: row.try_get("lifetime_points")?,
        tier: Tier::parse(&tier).ok_or_else(|| anyhow::anyhow!("unknown tier {tier:?}"))?,
    })
}

/// A member's balance, or None before their first movement.
pub async fn balance(db: &Db, user: Uuid) -> anyhow::Result<Option<Balance>> {
    let row = sqlx::query("SELECT points, lifetime_points, tier FROM accounts WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(balance_from).transpose()
}

/// One movement: what it is, for which booking or redemption.
pub struct Movement<'a> {
    pub user: Uuid,
    pub kind: &'a str,
    /// Signed change of the balance.
    pub points: i64,
    /// Signed change of the lifetime points (0 for a redemption).
    pub lifetime: i64,
    pub booking: Option<Uuid>,
    pub redemption: Option<Uuid>,
    pub description: String,
}

/// Apply a movement to a locked account and write its ledger row; returns the balance after.
/// A spend only succeeds while the balance covers it (the conditional update decides, also
/// when two redemptions race): None when it does not.
pub async fn move_points(
    tx: &mut AnyConnection,
    before: Balance,
    m: &Movement<'_>,
    now: i64,
) -> anyhow::Result<Option<Balance>> {
    let after = Balance {
        points: before.points + m.points,
        lifetime_points: before.lifetime_points + m.lifetime,
        tier: Tier::for_lifetime(before.lifetime_points + m.lifetime),
    };
    let spend = m.points < 0 && m.kind == "redeemed";
    let n = sqlx::query(
        "UPDATE accounts SET points = points + $1, lifetime_points = lifetime_points + $2, tier = $3, updated_at = $4 \
         WHERE user_id = $5 AND points = $6 AND lifetime_points = $7 AND (NOT $8 OR points + $1 >= 0)",
    )
    .bind(m.points)
    .bind(m.lifetime)
    .bind(after.tier.as_str())
    .bind(now)
    .bind(m.user.to_string())
    .bind(before.points)
    .bind(before.lifetime_points)
    .bind(spend)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO ledger (id, user_id, kind, points, balance_after, booking_id, redemption_id, description, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(m.user.to_string())
    .bind(m.kind)
    .bind(m.points)
    .bind(after.points)
    .bind(m.booking.map(|b| b.to_string()))
    .bind(m.redemption.map(|r| r.to_string()))
    .bind(&m.description)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(Some(after))
}

/// What a booking earned, and whether it still holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingPoints {
    pub points: i64,
    pub status: String,
}

pub async fn booking_points(tx: &mut AnyConnection, booking: Uuid) -> anyhow::Result<Option<BookingPoints>> {
    let row = sqlx::query("SELECT points, status FROM booking_points WHERE booking_id = $1")
        .bind(booking.to_string())
        .fetch_optional(tx)
        .await?;
    row.map(|r| Ok(BookingPoints { points: r.try_get("points")?, status: r.try_get("status")? })).transpose()
}

pub struct NewBookingPoints<'a> {
    pub booking: Uuid,
    pub user: Uuid,
    pub total_cents: i64,
    pub tier: Tier,
    pub points: i64,
    pub status: &'a str,
}

/// Record what a booking earned (or that it is void); false when it was recorded already.
pub async fn insert_booking_points(
    tx: &mut AnyConnection,
    b: &NewBookingPoints<'_>,
    now: i64,
) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO booking_points (booking_id, user_id, total_cents, tier, points, status, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (booking_id) DO NOTHING",
    )
    .bind(b.booking.to_string())
    .bind(b.user.to_string())
    .bind(b.total_cents)
    .bind(b.tier.as_str())
    .bind(b.points)
    .bind(b.status)
    .bind(now)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// `awarded` → `reversed`; false when it was not awarded (any more).
pub async fn reverse_booking_points(tx: &mut AnyConnection, booking: Uuid, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE booking_points SET status = 'reversed', updated_at = $1 WHERE booking_id = $2 AND status = 'awarded'",
    )
    .bind(now)
    .bind(booking.to_string())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

fn entry_from(row: &AnyRow) -> anyhow::Result<LedgerEntry> {
    let opt = |name: &str| -> anyhow::Result<Option<Uuid>> {
        let s: Option<String> = row.try_get(name)?;
        Ok(s.map(|s| s.parse()).transpose()?)
    };
    Ok(LedgerEntry {
        id: uuid(row, "id")?,
        kind: row.try_get("kind")?,
        points: row.try_get("points")?,
        balance_after: row.try_get("balance_after")?,
        booking_id: opt("booking_id")?,
        redemption_id: opt("redemption_id")?,
        description: row.try_get("description")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

/// A member's ledger, newest first.
pub async fn ledger(db: &Db, user: Uuid, page: PageRequest) -> anyhow::Result<(Vec<LedgerEntry>, i64)> {
    let rows = sqlx::query(
        "SELECT id, kind, points, balance_after, booking_id, redemption_id, description, created_at FROM ledger \
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(user.to_string())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_one(&db.pool)
        .await?;
    Ok((rows.iter().map(entry_from).collect::<anyhow::Result<_>>()?, total))
}

/// Every member whose balance is not the sum of their ledger (what `marquee check` and the
/// tests look at): `(user, balance, sum)`.
pub async fn unbalanced(db: &Db) -> anyhow::Result<Vec<(Uuid, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT a.user_id, a.points, CAST(COALESCE(SUM(l.points), 0) AS BIGINT) AS total FROM accounts a \
         LEFT JOIN ledger l ON l.user_id = a.user_id GROUP BY a.user_id, a.points \
         HAVING a.points <> CAST(COALESCE(SUM(l.points), 0) AS BIGINT)",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((uuid(r, "user_id")?, r.try_get("points")?, r.try_get("total")?))).collect()
}

const REWARD_COLUMNS: &str = "id, name, description, points_cost, stock, active, created_at";

fn reward_from(row: &AnyRow) -> anyhow::Result<Reward> {
    Ok(Reward {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        points_cost: row.try_get("points_cost")?,
        stock: row.try_get("stock")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

pub async fn insert_reward(db: &Db, r: &Reward) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO rewards (id, name, description, points_cost, stock, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(r.id.to_string())
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.points_cost)
    .bind(r.stock)
    .bind(i64::from(r.active))
    .bind(to_ms(r.created_at))
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn reward(conn: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Reward>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(reward_from).transpose()
}

/// Rewards, cheapest first; inactive ones only when asked (admins).
pub async fn rewards(db: &Db, with_inactive: bool, page: PageRequest) -> anyhow::Result<(Vec<Reward>, i64)> {
    let filter = "($1 OR active = 1)";
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE {filter} ORDER BY points_cost, name, id LIMIT $2 OFFSET $3"
    )))
    .bind(with_inactive)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM rewards WHERE {filter}")))
            .bind(with_inactive)
            .fetch_one(&db.pool)
            .await?;
    Ok((rows.iter().map(reward_from).collect::<anyhow::Result<_>>()?, total))
}

/// Write an admin's change of a reward if its stock is still `read_stock`; false when a
/// redemption took one meanwhile (or the reward is gone).
pub async fn update_reward(db: &Db, r: &Reward, read_stock: Option<i64>, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE rewards SET name = $1, description = $2, points_cost = $3, stock = $4, active = $5, updated_at = $6 \
         WHERE id = $7 AND (stock = $8 OR (stock IS NULL AND $9))",
    )
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.points_cost)
    .bind(r.stock)
    .bind(i64::from(r.active))
    .bind(now)
    .bind(r.id.to_string())
    .bind(read_stock.unwrap_or(-1))
    .bind(read_stock.is_none())
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Take one from a reward's stock if it is active at that cost and any is left; false otherwise.
pub async fn take_stock(tx: &mut AnyConnection, reward: Uuid, cost: i64, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE rewards SET stock = CASE WHEN stock IS NULL THEN NULL ELSE stock - 1 END, updated_at = $1 \
         WHERE id = $2 AND active = 1 AND points_cost = $3 AND (stock IS NULL OR stock > 0)",
    )
    .bind(now)
    .bind(reward.to_string())
    .bind(cost)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

const REDEMPTION_COLUMNS: &str = "id, user_id, reward_id, code, points_spent, created_at, used_at";

fn redemption_from(row: &AnyRow) -> anyhow::Result<Redemption> {
    Ok(Redemption {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        reward_id: uuid(row, "reward_id")?,
        code: row.try_get("code")?,
        points_spent: row.try_get("points_spent")?,
        created_at: from_ms(row.try_get("created_at")?),
        used_at: row.try_get::<Option<i64>, _>("used_at")?.map(from_ms),
    })
}

/// Insert a redemption; false when its code is taken (draw another). ON CONFLICT rather than
/// catching the violation, which would abort a PostgreSQL transaction.
pub async fn insert_redemption(tx: &mut AnyConnection, r: &Redemption) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO redemptions (id, user_id, reward_id, code, points_spent, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(r.id.to_string())
    .bind(r.user_id.to_string())
    .bind(r.reward_id.to_string())
    .bind(&r.code)
    .bind(r.points_spent)
    .bind(to_ms(r.created_at))
    .execute(tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn redemption_by_code(db: &Db, code: &str) -> anyhow::Result<Option<Redemption>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE code = $1"
    )))
    .bind(code)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(redemption_from).transpose()
}

/// Mark a code used, once; false when it was used already.
pub async fn use_code(db: &Db, code: &str, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query("UPDATE redemptions SET used_at = $1 WHERE code = $2 AND used_at IS NULL")
        .bind(now)
        .bind(code)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// A member's redemptions, newest first.
pub async fn redemptions(db: &Db, user: Uuid, page: PageRequest) -> anyhow::Result<(Vec<Redemption>, i64)> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(user.to_string())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM redemptions WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_one(&db.pool)
        .await?;
    Ok((rows.iter().map(redemption_from).collect::<anyhow::Result<_>>()?, total))
}
