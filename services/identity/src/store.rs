//! identity's SQL, written once for SQLite and PostgreSQL.

use anyhow::Context;
use platform::{
    auth::Role,
    db::{Db, is_unique_violation},
    pagination::PageRequest,
    time::{from_ms, now_ms},
};
use serde::Serialize;
use sqlx::{AnyConnection, Row, any::AnyRow};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::IdentityError;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// A user with the password hash, for sign-in only.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

const USER_COLUMNS: &str = "id, email, name, role, created_at";

fn user_from(row: &AnyRow) -> anyhow::Result<User> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: id.parse().context("stored user id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).context("stored role")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

pub async fn insert_user(tx: &mut AnyConnection, new: NewUser<'_>) -> Result<User, IdentityError> {
    let now = now_ms();
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, email_normalized, name, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id.to_string())
    .bind(new.email)
    .bind(new.email_normalized)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(new.role.as_str())
    .bind(now)
    .execute(tx)
    .await;
    match inserted {
        Ok(_) => Ok(User {
            id,
            email: new.email.to_owned(),
            name: new.name.to_owned(),
            role: new.role,
            created_at: from_ms(now),
        }),
        // The unique key decides the race between two registrations of one email.
        Err(e) if is_unique_violation(&e) => Err(IdentityError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

pub async fn credentials_by_email(db: &Db, email_normalized: &str) -> anyhow::Result<Option<Credentials>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_normalized = $1"
    )))
    .bind(email_normalized)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok(Credentials { user: user_from(&r)?, password_hash: r.try_get("password_hash")? }))
        .transpose()
}

pub async fn password_hash(db: &Db, id: Uuid) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?)
}

pub async fn user_by_id(db: &Db, id: Uuid) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from).transpose()
}

/// A page of users, optionally filtered by role and by a piece of the email or name.
pub async fn list_users(
    db: &Db,
    role: Option<Role>,
    q: Option<&str>,
    page: PageRequest,
) -> anyhow::Result<(Vec<User>, i64)> {
    let pattern = q.map(|q| format!("%{}%", q.to_lowercase().replace(['\\', '%', '_'], "")));
    let filter = "($1 = '' OR role = $1) AND ($2 = '' OR email_normalized LIKE $2 OR LOWER(name) LIKE $2)";
    let role = role.map_or("", Role::as_str);
    let pattern = pattern.unwrap_or_default();
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM users WHERE {filter}")))
            .bind(role)
            .bind(&pattern)
            .fetch_one(&db.pool)
            .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY created_at, id LIMIT $3 OFFSET $4"
    )))
    .bind(role)
    .bind(&pattern)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(user_from).collect::<anyhow::Result<_>>()?, total))
}

pub async fn update_name(db: &Db, id: Uuid, name: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn update_role(db: &Db, id: Uuid, role: Role) -> anyhow::Result<bool> {
    let n = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Change the password and revoke every refresh token of the user, in one transaction.
pub async fn update_password(db: &Db, id: Uuid, password_hash: &str) -> anyhow::Result<()> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

// --- refresh tokens -------------------------------------------------------------------------

pub async fn insert_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    family_id: Uuid,
    user_id: Uuid,
    ttl_ms: i64,
) -> anyhow::Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(token_hash)
    .bind(family_id.to_string())
    .bind(user_id.to_string())
    .bind(now)
    .bind(now + ttl_ms)
    .execute(conn)
    .await
    .context("storing a refresh token")?;
    Ok(())
}

pub struct RefreshToken {
    pub id: String,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
}

pub async fn refresh_token_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> anyhow::Result<Option<RefreshToken>> {
    let row = sqlx::query(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        let family: String = r.try_get("family_id")?;
        let user: String = r.try_get("user_id")?;
        Ok(RefreshToken {
            id: r.try_get("id")?,
            family_id: family.parse()?,
            user_id: user.parse()?,
            expires_at: r.try_get("expires_at")?,
            used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
            revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        })
    })
    .transpose()
}

/// Mark a token used, only if nobody else did first. False means it was already used: a reuse.
pub async fn mark_refresh_token_used(conn: &mut AnyConnection, id: &str) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn revoke_family(db: &Db, family_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(family_id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

// --- activity -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub id: Uuid,
    pub kind: String,
    pub subject: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
}

pub async fn insert_activity(
    conn: &mut AnyConnection,
    id: Uuid,
    user_id: Uuid,
    kind: &str,
    subject: &str,
    details: &serde_json::Value,
    occurred_at: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO activity (id, user_id, kind, subject, details, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(user_id.to_string())
    .bind(kind)
    .bind(subject)
    .bind(details.to_string())
    .bind(platform::time::to_ms(occurred_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_activity(
    db: &Db,
    user_id: Uuid,
    page: PageRequest,
) -> anyhow::Result<(Vec<Activity>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity WHERE user_id = $1")
        .bind(user_id.to_string())
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(
        "SELECT id, kind, subject, details, occurred_at FROM activity WHERE user_id = $1 \
         ORDER BY occurred_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(user_id.to_string())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let details: String = r.try_get("details")?;
            Ok(Activity {
                id: id.parse()?,
                kind: r.try_get("kind")?,
                subject: r.try_get("subject")?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                occurred_at: from_ms(r.try_get("occurred_at")?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((items, total))
}
