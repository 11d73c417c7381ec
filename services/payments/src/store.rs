//! payments' SQL, written once for SQLite and PostgreSQL.

use platform::{
    db::{Db, is_unique_violation},
    pagination::PageRequest,
    time::{from_ms, now_ms, to_ms},
};
use serde::Serialize;
use sqlx::{AnyConnection, Row, any::AnyRow};
use time::OffsetDateTime;
use uuid::Uuid;

use platform::db::uuid_column as uuid;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
    pub reference: String,
    pub card_brand: String,
    pub card_last4: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Only in the answer to a charge: the reference was paid already by this payment, so this
    /// capture was refunded at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Uuid>,
}

impl Payment {
    /// What it still holds: captured minus refunded (0 for a failed one).
    pub fn held_cents(&self) -> i64 {
        if self.status == "succeeded" { self.amount_cents - self.refunded_cents } else { 0 }
    }

    pub fn view(&self) -> contracts::payments::PaymentView {
        contracts::payments::PaymentView {
            id: self.id,
            user_id: self.user_id,
            status: self.status.clone(),
            failure_code: self.failure_code.clone(),
            amount_cents: self.amount_cents,
            refunded_cents: self.refunded_cents,
            currency: self.currency.clone(),
            reference: self.reference.clone(),
            duplicate_of: self.duplicate_of,
        }
    }
}

const PAYMENT_COLUMNS: &str = "id, user_id, status, failure_code, amount_cents, refunded_cents, currency, reference, \
                               card_brand, card_last4, created_at";

fn payment_from(row: &AnyRow) -> anyhow::Result<Payment> {
    Ok(Payment {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        status: row.try_get("status")?,
        failure_code: row.try_get("failure_code")?,
        amount_cents: row.try_get("amount_cents")?,
        refunded_cents: row.try_get("refunded_cents")?,
        currency: row.try_get("currency")?,
        reference: row.try_get("reference")?,
        card_brand: row.try_get("card_brand")?,
        card_last4: row.try_get("card_last4")?,
        created_at: from_ms(row.try_get("created_at")?),
        duplicate_of: None,
    })
}

pub async fn insert_payment(tx: &mut AnyConnection, p: &Payment) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO payments (id, user_id, reference, amount_cents, refunded_cents, currency, status, failure_code, \
         card_brand, card_last4, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10)",
    )
    .bind(p.id.to_string())
    .bind(p.user_id.to_string())
    .bind(&p.reference)
    .bind(p.amount_cents)
    .bind(&p.currency)
    .bind(&p.status)
    .bind(&p.failure_code)
    .bind(&p.card_brand)
    .bind(&p.card_last4)
    .bind(to_ms(p.created_at))
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn payment(db: &Db, id: Uuid) -> anyhow::Result<Option<Payment>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&db.pool)
            .await?;
    row.as_ref().map(payment_from).transpose()
}

pub async fn payment_in(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Payment>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(tx)
            .await?;
    row.as_ref().map(payment_from).transpose()
}

pub async fn payments(
    db: &Db,
    user: Option<Uuid>,
    reference: Option<&str>,
    page: PageRequest,
) -> anyhow::Result<(Vec<Payment>, i64)> {
    let user = user.map(|u| u.to_string()).unwrap_or_default();
    let reference = reference.unwrap_or_default();
    let filter = "($1 = '' OR user_id = $1) AND ($2 = '' OR reference = $2)";
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM payments WHERE {filter}")))
            .bind(&user)
            .bind(reference)
            .fetch_one(&db.pool)
            .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(&user)
    .bind(reference)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(payment_from).collect::<anyhow::Result<_>>()?, total))
}

/// Take `amount` out of what is left to refund, in one statement: concurrent refunds can never
/// add up to more than was captured. `None` when that much is not left.
pub async fn take_refund(tx: &mut AnyConnection, id: Uuid, amount: i64) -> anyhow::Result<Option<Payment>> {
    let n = sqlx::query(
        "UPDATE payments SET refunded_cents = refunded_cents + $1 \
         WHERE id = $2 AND status = 'succeeded' AND refunded_cents + $1 <= amount_cents",
    )
    .bind(amount)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    payment_in(tx, id).await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: i64,
    /// `requested`, `duplicate-capture`, or why the payment's reference was closed.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

pub async fn insert_refund(tx: &mut AnyConnection, r: &Refund) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount_cents, reason, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(r.id.to_string())
    .bind(r.payment_id.to_string())
    .bind(r.amount_cents)
    .bind(&r.reason)
    .bind(to_ms(r.created_at))
    .execute(tx)
    .await?;
    Ok(())
}

/// A reference's row, locked for the rest of the transaction (see migration 0101).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRow {
    pub kept_payment_id: Option<Uuid>,
    pub closed: bool,
}

/// Lock the reference's row (making it if it is new): captures and closes of one reference
/// take turns. On PostgreSQL the upsert takes the row lock; SQLite has one writer at a time.
pub async fn lock_reference(
    tx: &mut AnyConnection,
    reference: &str,
    now: i64,
) -> anyhow::Result<ReferenceRow> {
    let row = sqlx::query(
        "INSERT INTO payment_references (reference, updated_at) VALUES ($1, $2) \
         ON CONFLICT (reference) DO UPDATE SET updated_at = excluded.updated_at \
         RETURNING kept_payment_id, closed_at",
    )
    .bind(reference)
    .bind(now)
    .fetch_one(tx)
    .await?;
    let kept: Option<String> = row.try_get("kept_payment_id")?;
    let closed: Option<i64> = row.try_get("closed_at")?;
    Ok(ReferenceRow { kept_payment_id: kept.and_then(|k| k.parse().ok()), closed: closed.is_some() })
}

pub async fn keep_payment(tx: &mut AnyConnection, reference: &str, payment: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE payment_references SET kept_payment_id = $1 WHERE reference = $2")
        .bind(payment.to_string())
        .bind(reference)
        .execute(tx)
        .await?;
    Ok(())
}

/// Close a locked reference (once: a second close keeps the first time and reason).
pub async fn close_reference(
    tx: &mut AnyConnection,
    reference: &str,
    reason: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE payment_references SET closed_at = $1, closed_reason = $2 WHERE reference = $3 AND closed_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(reference)
    .execute(tx)
    .await?;
    Ok(())
}

/// Every payment of a reference, oldest first.
pub async fn payments_of(tx: &mut AnyConnection, reference: &str) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE reference = $1 ORDER BY created_at, id"
    )))
    .bind(reference)
    .fetch_all(tx)
    .await?;
    rows.iter().map(payment_from).collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub max_streams: i64,
}

fn plan_from(row: &AnyRow) -> anyhow::Result<Plan> {
    Ok(Plan {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        max_streams: row.try_get("max_streams")?,
    })
}

pub async fn plans(db: &Db) -> anyhow::Result<Vec<Plan>> {
    let rows =
        sqlx::query("SELECT id, name, price_cents, currency, max_streams FROM plans ORDER BY price_cents")
            .fetch_all(&db.pool)
            .await?;
    rows.iter().map(plan_from).collect()
}

pub async fn plan(db: &Db, id: &str) -> anyhow::Result<Option<Plan>> {
    let row = sqlx::query("SELECT id, name, price_cents, currency, max_streams FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(plan_from).transpose()
}

/// A plan, read inside a unit of work.
pub async fn plan_in(tx: &mut AnyConnection, id: &str) -> anyhow::Result<Option<Plan>> {
    let row = sqlx::query("SELECT id, name, price_cents, currency, max_streams FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(tx)
        .await?;
    row.as_ref().map(plan_from).transpose()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: Uuid,
    pub user_id: Uuid,
    pub plan_id: String,
    /// `active`, `past_due` or `cancelled`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub current_period_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub current_period_end: OffsetDateTime,
    /// Cancelled by the user: it stays active until the period ends, then stops.
    pub cancel_at_period_end: bool,
    pub card_last4: String,
    #[serde(skip)]
    pub payment_token: String,
}

const SUBSCRIPTION_COLUMNS: &str = "id, user_id, plan_id, status, current_period_start, current_period_end, \
                                    cancel_at_period_end, card_last4, payment_token";

fn subscription_from(row: &AnyRow) -> anyhow::Result<Subscription> {
    Ok(Subscription {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        plan_id: row.try_get("plan_id")?,
        status: row.try_get("status")?,
        current_period_start: from_ms(row.try_get("current_period_start")?),
        current_period_end: from_ms(row.try_get("current_period_end")?),
        cancel_at_period_end: row.try_get::<i64, _>("cancel_at_period_end")? != 0,
        card_last4: row.try_get("card_last4")?,
        payment_token: row.try_get("payment_token")?,
    })
}

/// False when the user already has a live subscription (the unique index decides races).
pub async fn insert_subscription(tx: &mut AnyConnection, s: &Subscription) -> anyhow::Result<bool> {
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end, \
         payment_token, card_last4, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $8)",
    )
    .bind(s.id.to_string())
    .bind(s.user_id.to_string())
    .bind(&s.plan_id)
    .bind(to_ms(s.current_period_start))
    .bind(to_ms(s.current_period_end))
    .bind(&s.payment_token)
    .bind(&s.card_last4)
    .bind(now)
    .execute(tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The user's live subscription (active or past due).
pub async fn live_subscription(db: &Db, user: Uuid) -> anyhow::Result<Option<Subscription>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = $1 AND status IN ('active', 'past_due')"
    )))
    .bind(user.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(subscription_from).transpose()
}

/// A subscription by id, read inside a unit of work.
pub async fn subscription_in(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Subscription>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(tx)
    .await?;
    row.as_ref().map(subscription_from).transpose()
}

pub async fn cancel_at_period_end(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE subscriptions SET cancel_at_period_end = 1, updated_at = $1 \
         WHERE id = $2 AND status = 'active' AND cancel_at_period_end = 0",
    )
    .bind(now_ms())
    .bind(id.to_string())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Claim subscriptions that are due, for one renewal pass: active ones whose period ended, and
/// past-due ones whose retry time came. Each claim is a lease whose value fences the renewal:
/// only the holder of that lease value may change the subscription ([`fence`]), so a replica
/// that stalled past its lease cannot act after the next one claimed it.
pub async fn claim_due(db: &Db, now: i64, limit: i64) -> anyhow::Result<Vec<(Subscription, i64)>> {
    let lease = now + 60_000;
    let sql = format!(
        "UPDATE subscriptions SET renewal_lease_until = $1 WHERE id IN (\
           SELECT id FROM subscriptions WHERE renewal_lease_until <= $2 \
           AND ((status = 'active' AND current_period_end <= $2) OR (status = 'past_due' AND retry_at <= $2)) \
           ORDER BY current_period_end LIMIT $3{}) \
         RETURNING {SUBSCRIPTION_COLUMNS}",
        db.skip_locked()
    );
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lease).bind(now).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((subscription_from(r)?, lease))).collect()
}

/// A claimed subscription as it is now, locked for the renewal's transaction; `None` when the
/// lease `lease` is no longer the one it holds (another replica took it over).
pub async fn fence(
    tx: &mut AnyConnection,
    id: Uuid,
    lease: i64,
    now: i64,
) -> anyhow::Result<Option<(Subscription, i64)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE subscriptions SET updated_at = $1 WHERE id = $2 AND renewal_lease_until = $3 \
         RETURNING {SUBSCRIPTION_COLUMNS}, failed_renewals"
    )))
    .bind(now)
    .bind(id.to_string())
    .bind(lease)
    .fetch_optional(tx)
    .await?;
    row.map(|r| Ok((subscription_from(&r)?, r.try_get("failed_renewals")?))).transpose()
}

/// The renewal was paid: the new period, active, the lease given back.
pub async fn renewed(
    tx: &mut AnyConnection,
    id: Uuid,
    start: OffsetDateTime,
    end: OffsetDateTime,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE subscriptions SET status = 'active', current_period_start = $1, current_period_end = $2, \
         failed_renewals = 0, retry_at = 0, renewal_lease_until = 0, updated_at = $3 WHERE id = $4",
    )
    .bind(to_ms(start))
    .bind(to_ms(end))
    .bind(now)
    .bind(id.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// The renewal was declined: past due, to be tried again at `retry_at`.
pub async fn renewal_declined(
    tx: &mut AnyConnection,
    id: Uuid,
    failed_renewals: i64,
    retry_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE subscriptions SET status = 'past_due', failed_renewals = $1, retry_at = $2, renewal_lease_until = 0, \
         updated_at = $3 WHERE id = $4",
    )
    .bind(failed_renewals)
    .bind(retry_at)
    .bind(now)
    .bind(id.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// End an active subscription now if its current period still starts at `period_start`;
/// false when it does not (renewed meanwhile) or it is not active.
pub async fn end_subscription_period(
    tx: &mut AnyConnection,
    id: Uuid,
    period_start: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE subscriptions SET status = 'cancelled', renewal_lease_until = 0, updated_at = $1 \
         WHERE id = $2 AND status = 'active' AND current_period_start = $3",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(period_start)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// End a subscription now if it is `from`; false when it was not.
pub async fn end_subscription(
    tx: &mut AnyConnection,
    id: Uuid,
    from: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE subscriptions SET status = 'cancelled', renewal_lease_until = 0, updated_at = $1 \
         WHERE id = $2 AND status = $3",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(from)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}
