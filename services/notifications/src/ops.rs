//! notifications' use cases: recording what an event tells a user (in the event's transaction),
//! the feed and its read marks, preferences, and the delivery log for admins.

use platform::pagination::PageRequest;
use serde_json::Value;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{self, Delivery, Feed, Kind, Notification, Preferences},
    error::NotificationsError,
    store::{self, NewNotification},
    templates,
};

/// The event's payload with what the feed's text shows of it in readable form.
fn feed_context(data: &Value) -> Value {
    let mut context = data.clone();
    if let (Some(cents), Some(currency)) = (data["refunded_cents"].as_i64(), data["currency"].as_str()) {
        context["refunded"] = Value::String(domain::money(cents, currency));
    }
    context
}

/// Write the feed entry for an event and the messages to send for it: an email when the user
/// takes that kind by email, an SMS for a confirmed booking when they asked for one.
pub async fn record(
    tx: &mut AnyConnection,
    kind: Kind,
    user: Uuid,
    data: &Value,
    event_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    let (title, body) = templates::feed(kind, &feed_context(data))?;
    let notification =
        NewNotification { id: Uuid::now_v7(), user, kind, title: &title, body: &body, data, at: event_at };
    store::insert_notification(tx, &notification).await?;
    let preferences = store::preferences(tx, user).await?;
    if preferences.emails(kind) {
        store::insert_delivery(tx, &notification, "email", None, now).await?;
    }
    if kind == Kind::BookingConfirmed
        && preferences.sms.booking_confirmed
        && let Some(phone) = preferences.sms.phone.as_deref()
    {
        store::insert_delivery(tx, &notification, "sms", Some(phone), now).await?;
    }
    Ok(())
}

pub async fn feed(state: &AppState, user: Uuid, page: PageRequest) -> Result<Feed, NotificationsError> {
    let (items, total, unread) = store::feed(&state.db, user, page).await?;
    Ok(Feed { items, page: page.page, per_page: page.per_page, total, unread })
}

/// Mark one of the user's notifications read (another user's is a 404).
pub async fn read(state: &AppState, user: Uuid, id: Uuid) -> Result<Notification, NotificationsError> {
    store::mark_read(&state.db, user, Some(id), state.clock.now_ms()).await?;
    store::notification(&state.db, user, id).await?.ok_or(NotificationsError::NotFound("notification"))
}

/// Mark all of the user's notifications read; how many were unread.
pub async fn read_all(state: &AppState, user: Uuid) -> Result<u64, NotificationsError> {
    Ok(store::mark_read(&state.db, user, None, state.clock.now_ms()).await?)
}

pub async fn preferences(state: &AppState, user: Uuid) -> Result<Preferences, NotificationsError> {
    let mut conn = state.db.pool.acquire().await?;
    Ok(store::preferences(&mut conn, user).await?)
}

/// A change of preferences; absent fields stay. `phone: null` removes the number.
pub struct PreferencesChange {
    pub email: std::collections::BTreeMap<String, bool>,
    pub phone: Option<Option<String>>,
    pub sms_booking_confirmed: Option<bool>,
}

pub async fn change_preferences(
    state: &AppState,
    user: Uuid,
    change: PreferencesChange,
) -> Result<Preferences, NotificationsError> {
    let mut errors = Vec::new();
    for key in change.email.keys() {
        if !Kind::parse(key).is_some_and(Kind::is_emailed) {
            let kinds: Vec<&str> = Kind::EMAILED.iter().map(|k| k.as_str()).collect();
            errors.push(platform::FieldError::new(
                format!("email.{key}"),
                format!("is not an email kind; the kinds are {}", kinds.join(", ")),
            ));
        }
    }
    if let Some(Some(phone)) = &change.phone {
        domain::check_phone(phone, &mut errors);
    }
    let mut next = preferences(state, user).await?;
    next.email.extend(change.email);
    if let Some(phone) = change.phone {
        next.sms.phone = phone;
    }
    if let Some(on) = change.sms_booking_confirmed {
        next.sms.booking_confirmed = on;
    }
    if next.sms.booking_confirmed && next.sms.phone.is_none() {
        errors.push(platform::FieldError::new("sms.booking_confirmed", "needs a phone number (sms.phone)"));
    }
    if !errors.is_empty() {
        return Err(NotificationsError::Invalid(errors));
    }
    store::save_preferences(&state.db, user, &next, state.clock.now_ms()).await?;
    Ok(next)
}

pub const STATUSES: [&str; 4] = ["pending", "sending", "sent", "failed"];

pub async fn deliveries(
    state: &AppState,
    status: Option<&str>,
    user: Option<Uuid>,
    page: PageRequest,
) -> Result<platform::pagination::Page<Delivery>, NotificationsError> {
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(NotificationsError::Invalid(vec![platform::FieldError::new(
            "status",
            "must be pending, sending, sent or failed",
        )]));
    }
    let (items, total) = store::deliveries(&state.db, status, user, page).await?;
    Ok(platform::pagination::Page::new(items, page, total))
}

/// Send a failed delivery again (admin): its tries start over. Only a failed one (409 else).
pub async fn retry(state: &AppState, id: Uuid) -> Result<Delivery, NotificationsError> {
    let current = store::delivery(&state.db, id).await?.ok_or(NotificationsError::NotFound("delivery"))?;
    if !store::requeue(&state.db, id, state.clock.now_ms()).await? {
        return Err(NotificationsError::NotFailed(current.status));
    }
    state.wake.notify_one();
    store::delivery(&state.db, id).await?.ok_or(NotificationsError::NotFound("delivery"))
}
