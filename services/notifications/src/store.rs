//! notifications' SQL, written once for SQLite and PostgreSQL. Times are passed in, never read
//! here. Deliveries change state only by conditional updates, so two replicas never send one
//! message twice at the same time, and a replica that dies mid-send leaves a lease that runs out.

use platform::{
    db::{Db, uuid_column as uuid},
    pagination::PageRequest,
    time::from_ms,
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::{Delivery, Kind, Notification, Preferences, SmsPreferences};

pub async fn upsert_recipient(
    conn: &mut AnyConnection,
    user: Uuid,
    email: &str,
    name: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO recipients (user_id, email, name, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, name = excluded.name, updated_at = excluded.updated_at",
    )
    .bind(user.to_string())
    .bind(email)
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where to write to a user: `(email, name)`.
pub async fn recipient(db: &Db, user: Uuid) -> anyhow::Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT email, name FROM recipients WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| Ok((r.try_get("email")?, r.try_get("name")?))).transpose()
}

/// A user's preferences (the defaults when they never chose).
pub async fn preferences(conn: &mut AnyConnection, user: Uuid) -> anyhow::Result<Preferences> {
    let row = sqlx::query("SELECT email_off, sms_phone, sms_on FROM preferences WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(Preferences::new(&[], SmsPreferences { phone: None, booking_confirmed: false }));
    };
    let off: String = row.try_get("email_off")?;
    let off: Vec<Kind> = off.split(',').filter_map(Kind::parse).collect();
    let sms = SmsPreferences {
        phone: row.try_get("sms_phone")?,
        booking_confirmed: row.try_get::<i64, _>("sms_on")? != 0,
    };
    Ok(Preferences::new(&off, sms))
}

pub async fn save_preferences(db: &Db, user: Uuid, p: &Preferences, now: i64) -> anyhow::Result<()> {
    let off: Vec<&str> = p.email.iter().filter(|(_, on)| !**on).map(|(k, _)| k.as_str()).collect();
    sqlx::query(
        "INSERT INTO preferences (user_id, email_off, sms_phone, sms_on, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id) DO UPDATE SET email_off = excluded.email_off, sms_phone = excluded.sms_phone, \
         sms_on = excluded.sms_on, updated_at = excluded.updated_at",
    )
    .bind(user.to_string())
    .bind(off.join(","))
    .bind(p.sms.phone.as_deref())
    .bind(i64::from(p.sms.booking_confirmed))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A feed entry about to be written.
pub struct NewNotification<'a> {
    pub id: Uuid,
    pub user: Uuid,
    pub kind: Kind,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a serde_json::Value,
    pub at: i64,
}

pub async fn insert_notification(conn: &mut AnyConnection, n: &NewNotification<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, body, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id.to_string())
    .bind(n.user.to_string())
    .bind(n.kind.as_str())
    .bind(n.title)
    .bind(n.body)
    .bind(n.data.to_string())
    .bind(n.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message to send for a feed entry, due now.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    n: &NewNotification<'_>,
    channel: &str,
    recipient: Option<&str>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, notification_id, user_id, channel, kind, status, attempts, next_attempt_at, \
         lease_until, recipient, event_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, 0, $7, $8, $6)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(n.id.to_string())
    .bind(n.user.to_string())
    .bind(channel)
    .bind(n.kind.as_str())
    .bind(now)
    .bind(recipient)
    .bind(n.at)
    .execute(conn)
    .await?;
    Ok(())
}

fn notification_from(row: &AnyRow) -> anyhow::Result<Notification> {
    let kind: String = row.try_get("kind")?;
    let data: String = row.try_get("data")?;
    let read_at: Option<i64> = row.try_get("read_at")?;
    Ok(Notification {
        id: uuid(row, "id")?,
        kind: Kind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind:?}"))?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        data: serde_json::from_str(&data)?,
        read: read_at.is_some(),
        created_at: from_ms(row.try_get("created_at")?),
        read_at: read_at.map(from_ms),
    })
}

/// A user's feed, newest first: the page, the total and how many are unread.
pub async fn feed(db: &Db, user: Uuid, page: PageRequest) -> anyhow::Result<(Vec<Notification>, i64, i64)> {
    let rows = sqlx::query(
        "SELECT id, kind, title, body, data, created_at, read_at FROM notifications WHERE user_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(user.to_string())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let counts = sqlx::query(
        "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END), 0) AS unread \
         FROM notifications WHERE user_id = $1",
    )
    .bind(user.to_string())
    .fetch_one(&db.pool)
    .await?;
    let items = rows.iter().map(notification_from).collect::<anyhow::Result<_>>()?;
    Ok((items, counts.try_get("total")?, counts.try_get("unread")?))
}

/// One of the user's notifications.
pub async fn notification(db: &Db, user: Uuid, id: Uuid) -> anyhow::Result<Option<Notification>> {
    let row = sqlx::query(
        "SELECT id, kind, title, body, data, created_at, read_at FROM notifications WHERE id = $1 AND user_id = $2",
    )
    .bind(id.to_string())
    .bind(user.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(notification_from).transpose()
}

/// Mark read (the first time counts; reading again changes nothing).
pub async fn mark_read(db: &Db, user: Uuid, id: Option<Uuid>, now: i64) -> anyhow::Result<u64> {
    let id = id.map(|i| i.to_string()).unwrap_or_default();
    let n = sqlx::query(
        "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND ($3 = '' OR id = $3) AND read_at IS NULL",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n)
}

/// A delivery claimed for sending, with what composing it needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: Uuid,
    pub user: Uuid,
    pub channel: String,
    pub kind: Kind,
    pub attempts: i64,
    pub recipient: Option<String>,
    pub data: serde_json::Value,
    pub event_at: i64,
}

/// Claim up to `limit` deliveries that are due (or whose sender's lease ran out) for
/// `lease_ms`: each is one conditional update, so of two replicas one wins each row.
pub async fn claim_due(db: &Db, now: i64, lease_ms: i64, limit: i64) -> anyhow::Result<Vec<Due>> {
    let due = |t: &str| {
        format!(
            "(({t}status = 'pending' AND {t}next_attempt_at <= $1) OR ({t}status = 'sending' AND {t}lease_until < $1))"
        )
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT d.id, d.user_id, d.channel, d.kind, d.attempts, d.recipient, d.event_at, n.data FROM deliveries d \
         JOIN notifications n ON n.id = d.notification_id WHERE {} ORDER BY d.next_attempt_at LIMIT $2",
        due("d.")
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let won = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET status = 'sending', lease_until = $2, attempts = attempts + 1 WHERE id = $3 AND {}",
            due("")
        )))
        .bind(now)
        .bind(now + lease_ms)
        .bind(&id)
        .execute(&db.pool)
        .await?
        .rows_affected()
            == 1;
        if !won {
            continue;
        }
        let kind: String = row.try_get("kind")?;
        let data: String = row.try_get("data")?;
        claimed.push(Due {
            id: id.parse()?,
            user: uuid(row, "user_id")?,
            channel: row.try_get("channel")?,
            kind: Kind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind:?}"))?,
            attempts: row.try_get::<i64, _>("attempts")? + 1,
            recipient: row.try_get("recipient")?,
            data: serde_json::from_str(&data)?,
            event_at: row.try_get("event_at")?,
        });
    }
    Ok(claimed)
}

/// The outcome of a send, written only while this sender still holds the claim.
pub enum Outcome<'a> {
    Sent { recipient: &'a str, provider_id: &'a str },
    Retry { error: &'a str, at: i64 },
    Failed { error: &'a str },
}

pub async fn settle(
    db: &Db,
    id: Uuid,
    attempts: i64,
    outcome: Outcome<'_>,
    now: i64,
) -> anyhow::Result<bool> {
    let claimed = "id = $1 AND status = 'sending' AND attempts = $2";
    let query = match outcome {
        Outcome::Sent { recipient, provider_id } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET status = 'sent', sent_at = $3, recipient = $4, provider_id = $5, last_error = NULL \
             WHERE {claimed}"
        )))
        .bind(id.to_string())
        .bind(attempts)
        .bind(now)
        .bind(recipient.to_owned())
        .bind(provider_id.to_owned()),
        Outcome::Retry { error, at } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, last_error = $4, lease_until = 0 WHERE {claimed}"
        )))
        .bind(id.to_string())
        .bind(attempts)
        .bind(at)
        .bind(error.to_owned()),
        Outcome::Failed { error } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET status = 'failed', last_error = $3, lease_until = 0 WHERE {claimed}"
        )))
        .bind(id.to_string())
        .bind(attempts)
        .bind(error.to_owned()),
    };
    Ok(query.execute(&db.pool).await?.rows_affected() == 1)
}

const DELIVERY_COLUMNS: &str = "id, notification_id, user_id, channel, kind, status, attempts, next_attempt_at, \
                                recipient, last_error, created_at, sent_at";

fn delivery_from(row: &AnyRow) -> anyhow::Result<Delivery> {
    let kind: String = row.try_get("kind")?;
    Ok(Delivery {
        id: uuid(row, "id")?,
        notification_id: uuid(row, "notification_id")?,
        user_id: uuid(row, "user_id")?,
        channel: row.try_get("channel")?,
        kind: Kind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind:?}"))?,
        status: row.try_get("status")?,
        attempts: row.try_get::<i64, _>("attempts")?,
        next_attempt_at: from_ms(row.try_get("next_attempt_at")?),
        recipient: row.try_get("recipient")?,
        last_error: row.try_get("last_error")?,
        created_at: from_ms(row.try_get("created_at")?),
        sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(from_ms),
    })
}

/// The delivery log, newest first, by status and/or user.
pub async fn deliveries(
    db: &Db,
    status: Option<&str>,
    user: Option<Uuid>,
    page: PageRequest,
) -> anyhow::Result<(Vec<Delivery>, i64)> {
    let filter = "($1 = '' OR status = $1) AND ($2 = '' OR user_id = $2)";
    let (status, user) =
        (status.unwrap_or_default().to_owned(), user.map(|u| u.to_string()).unwrap_or_default());
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(&status)
    .bind(&user)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM deliveries WHERE {filter}")))
            .bind(&status)
            .bind(&user)
            .fetch_one(&db.pool)
            .await?;
    Ok((rows.iter().map(delivery_from).collect::<anyhow::Result<_>>()?, total))
}

pub async fn delivery(db: &Db, id: Uuid) -> anyhow::Result<Option<Delivery>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&db.pool)
            .await?;
    row.as_ref().map(delivery_from).transpose()
}

/// A failed delivery back in the queue with its tries reset (an admin's "send again").
pub async fn requeue(db: &Db, id: Uuid, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = 0 \
         WHERE id = $2 AND status = 'failed'",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// How many deliveries are waiting and how many failed, for `/metrics`.
pub async fn backlog(db: &Db) -> anyhow::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN status IN ('pending', 'sending') THEN 1 ELSE 0 END), 0) AS waiting, \
         COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed FROM deliveries",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok((row.try_get("waiting")?, row.try_get("failed")?))
}
