//! payments' HTTP API (API.md §Payments and subscriptions).

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use contracts::{
    CloudEvent,
    event_types::{
        PAYMENT_FAILED, PAYMENT_REFUNDED, PAYMENT_SUCCEEDED, SUBSCRIPTION_ACTIVATED, SUBSCRIPTION_CANCELLED,
    },
    payments::{Card, PaymentRefunded, PaymentSettled, SubscriptionChanged},
};
use platform::{
    FieldError, Problem,
    auth::{AuthUser, Caller, ServiceOrAdmin},
    extract::{ApiJson, ApiQuery, PathId},
    idempotency,
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState, SERVICE,
    error::PaymentsError,
    processor::{self, Charge, CheckedCard},
    store::{self, Payment, Plan, Refund, Subscription},
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee payments", description = "Payments, refunds, plans and subscriptions"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_payments, create_payment))
        .routes(routes!(get_payment))
        .routes(routes!(refund))
        .routes(routes!(plans))
        .routes(routes!(subscribe))
        .routes(routes!(my_subscription, cancel_subscription));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(value).map_err(|e| Problem::from(anyhow::Error::from(e)))
}

fn check_money(amount_cents: i64, currency: &str, errors: &mut Vec<FieldError>) -> String {
    if !(1..=100_000_000).contains(&amount_cents) {
        errors.push(FieldError::new("amount_cents", "must be between 1 and 100000000"));
    }
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new("currency", "must be an ISO 4217 code such as USD"));
    }
    currency
}

fn card_checked(card: &Card, errors: &mut Vec<FieldError>) -> Option<CheckedCard> {
    processor::check(card).map_err(|e| errors.extend(e)).ok()
}

/// One charge of a card, as it is recorded.
pub struct Attempt<'a> {
    pub user_id: Uuid,
    pub reference: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub card: &'a CheckedCard,
    pub charge: &'a Charge,
}

/// Write a settled payment and its event in `tx`.
pub async fn record_payment(
    tx: &mut AnyConnection,
    state: &AppState,
    a: Attempt<'_>,
) -> anyhow::Result<Payment> {
    let Attempt { user_id, reference, amount_cents, currency, card, charge } = a;
    let (status, failure_code) = match charge {
        Charge::Succeeded => ("succeeded", None),
        Charge::Declined(code) => ("failed", Some((*code).to_owned())),
    };
    let payment = Payment {
        id: Uuid::now_v7(),
        user_id,
        status: status.to_owned(),
        failure_code: failure_code.clone(),
        amount_cents,
        refunded_cents: 0,
        currency: currency.to_owned(),
        reference: reference.to_owned(),
        card_brand: card.brand.to_owned(),
        card_last4: card.last4.clone(),
        created_at: OffsetDateTime::now_utc(),
    };
    store::insert_payment(tx, &payment).await?;
    let settled = PaymentSettled {
        payment_id: payment.id,
        user_id,
        reference: reference.to_owned(),
        amount_cents,
        currency: currency.to_owned(),
        failure_code,
    };
    let kind = if matches!(charge, Charge::Succeeded) { PAYMENT_SUCCEEDED } else { PAYMENT_FAILED };
    state.outbox.add(tx, CloudEvent::new(SERVICE, kind, payment.id.to_string(), &settled)?).await?;
    tracing::info!(payment_id = %payment.id, status, card_last4 = %payment.card_last4, "payment settled");
    Ok(payment)
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    pub amount_cents: i64,
    #[serde(default = "usd")]
    pub currency: String,
    /// What it pays for, e.g. a booking id.
    pub reference: String,
    pub user_id: Uuid,
    #[schema(value_type = Object)]
    pub payment_method: Card,
}

fn usd() -> String {
    "USD".to_owned()
}

/// Charge a card (services and admins). A declined card is still a payment: `status: failed`
/// with the processor's `failure_code`. Send an `Idempotency-Key` to make retries safe.
#[utoipa::path(post, path = "/payments", tag = "payments", request_body = PaymentRequest, security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_payment(
    State(state): State<AppState>,
    caller: ServiceOrAdmin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PaymentRequest>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /payments", caller.caller());
    Ok(idempotency::once(&state.db, &scope, key, &req, async {
        let mut errors = Vec::new();
        let currency = check_money(req.amount_cents, &req.currency, &mut errors);
        let reference = req.reference.trim();
        if reference.is_empty() || reference.len() > 200 {
            errors.push(FieldError::new("reference", "must be 1 to 200 characters"));
        }
        let card = card_checked(&req.payment_method, &mut errors);
        let Some(card) = card.filter(|_| errors.is_empty()) else {
            return Err(PaymentsError::Invalid(errors).into());
        };
        let charge = card.charge(OffsetDateTime::now_utc());
        let mut tx = state.db.pool.begin().await?;
        let payment = record_payment(
            &mut tx,
            &state,
            Attempt {
                user_id: req.user_id,
                reference,
                amount_cents: req.amount_cents,
                currency: &currency,
                card: &card,
                charge: &charge,
            },
        )
        .await?;
        tx.commit().await?;
        state.outbox.wake();
        Ok((StatusCode::CREATED, json(&payment)?))
    })
    .await)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PaymentQuery {
    /// Admins and services only: one user's payments.
    pub user_id: Option<Uuid>,
    /// What the payments were for (`booking:<id>`).
    pub reference: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Your payments, newest first (admins and services: everyone's, or one user's).
#[utoipa::path(get, path = "/payments", tag = "payments", params(PaymentQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Payment>)))]
pub async fn list_payments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PaymentQuery>,
) -> Result<ApiJson<Page<Payment>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let whose = match &caller {
        Caller::User(user) if !user.is_admin() => Some(user.id),
        _ => q.user_id,
    };
    let (items, total) = store::payments(&state.db, whose, q.reference.as_deref(), page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

/// One payment: yours, or any for an admin; anyone else's is a 404.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 404, body = Problem)))]
pub async fn get_payment(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<ApiJson<Payment>, Problem> {
    let payment = store::payment(&state.db, id).await?.filter(|p| user.can_access(p.user_id));
    Ok(ApiJson(payment.ok_or(PaymentsError::NotFound("payment"))?))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundRequest {
    /// Default: everything that is left.
    pub amount_cents: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundAnswer {
    #[serde(flatten)]
    pub refund: Refund,
    pub payment: Payment,
}

/// Refund all or part of a payment (services and admins); never more than is left, even when
/// refunds arrive at the same time.
#[utoipa::path(post, path = "/payments/{id}/refund", tag = "payments", request_body = RefundRequest,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = RefundAnswer), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn refund(
    State(state): State<AppState>,
    caller: ServiceOrAdmin,
    PathId(id): PathId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // The body is optional: none (or `{}`) refunds everything that is left.
    let req: RefundRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefundRequest::default()
    } else {
        platform::extract::parse_json(&body)?
    };
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /payments/{id}/refund", caller.caller());
    Ok(idempotency::once(&state.db, &scope, key, &req, async {
        let payment = store::payment(&state.db, id).await?.ok_or(PaymentsError::NotFound("payment"))?;
        if payment.status != "succeeded" {
            return Err(PaymentsError::NotRefundable.into());
        }
        let left = payment.amount_cents - payment.refunded_cents;
        let amount = req.amount_cents.unwrap_or(left);
        if amount <= 0 && req.amount_cents.is_some() {
            return Err(Problem::invalid_field("amount_cents", "must be positive"));
        }
        if amount <= 0 {
            return Err(PaymentsError::RefundExceeds { left }.into());
        }
        let mut tx = state.db.pool.begin().await?;
        let Some(updated) = store::take_refund(&mut tx, id, amount).await? else {
            // Give the connection back before reading again (SQLite has only one).
            tx.rollback().await?;
            let now_left =
                store::payment(&state.db, id).await?.map_or(0, |p| p.amount_cents - p.refunded_cents);
            return Err(PaymentsError::RefundExceeds { left: now_left }.into());
        };
        let refund = Refund {
            id: Uuid::now_v7(),
            payment_id: id,
            amount_cents: amount,
            created_at: OffsetDateTime::now_utc(),
        };
        store::insert_refund(&mut tx, &refund).await?;
        let event = PaymentRefunded {
            payment_id: id,
            refund_id: refund.id,
            user_id: updated.user_id,
            reference: updated.reference.clone(),
            amount_cents: amount,
            refunded_cents: updated.refunded_cents,
            currency: updated.currency.clone(),
        };
        state
            .outbox
            .add(
                &mut tx,
                CloudEvent::new(SERVICE, PAYMENT_REFUNDED, id.to_string(), &event)
                    .map_err(anyhow::Error::from)?,
            )
            .await?;
        tx.commit().await?;
        state.outbox.wake();
        Ok((StatusCode::CREATED, json(&RefundAnswer { refund, payment: updated })?))
    })
    .await)
}

/// The streaming plans.
#[utoipa::path(get, path = "/plans", tag = "subscriptions", responses((status = 200, body = Vec<Plan>)))]
pub async fn plans(State(state): State<AppState>) -> Result<ApiJson<Vec<Plan>>, Problem> {
    Ok(ApiJson(store::plans(&state.db).await?))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscribeRequest {
    pub plan_id: String,
    #[schema(value_type = Object)]
    pub payment_method: Card,
}

/// One calendar month later, on the same day where the month has it (Jan 31 → Feb 28).
pub fn add_month(t: OffsetDateTime) -> OffsetDateTime {
    let (year, month) = if t.month() == time::Month::December {
        (t.year() + 1, time::Month::January)
    } else {
        (t.year(), t.month().next())
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map_or(t + time::Duration::days(30), |d| t.replace_date(d))
}

pub fn subscription_event(s: &Subscription, plan: &Plan) -> SubscriptionChanged {
    SubscriptionChanged {
        subscription_id: s.id,
        user_id: s.user_id,
        plan_id: s.plan_id.clone(),
        max_streams: plan.max_streams,
        current_period_end: s
            .current_period_end
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

/// Subscribe to a plan: the first month is charged now (402 when declined, and nothing is
/// created); renewals are charged when each period ends. 409 when one is already active.
#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", request_body = SubscribeRequest, security(("bearer" = [])),
    responses((status = 201, body = Subscription), (status = 402, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn subscribe(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SubscribeRequest>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /subscriptions", user.id);
    Ok(idempotency::once(&state.db, &scope, key, &req, async {
        let mut errors = Vec::new();
        let plan = store::plan(&state.db, req.plan_id.trim()).await?;
        if plan.is_none() {
            errors.push(FieldError::new("plan_id", "must be basic, standard or premium"));
        }
        let card = card_checked(&req.payment_method, &mut errors);
        let (Some(plan), Some(card), true) = (plan, card, errors.is_empty()) else {
            return Err(PaymentsError::Invalid(errors).into());
        };
        if store::live_subscription(&state.db, user.id).await?.is_some() {
            return Err(PaymentsError::AlreadySubscribed.into());
        }
        let now = OffsetDateTime::now_utc();
        let subscription = Subscription {
            id: Uuid::now_v7(),
            user_id: user.id,
            plan_id: plan.id.clone(),
            status: "active".into(),
            current_period_start: now,
            current_period_end: add_month(now),
            cancel_at_period_end: false,
            card_last4: card.last4.clone(),
            payment_token: card.token.clone(),
        };
        let charge = card.charge(now);
        let reference = format!("subscription:{}", subscription.id);
        let mut tx = state.db.pool.begin().await?;
        // The processor is simulated in-process, so the charge and the subscription can share
        // one transaction; the unique index refuses a second live subscription even now. A
        // declined charge is still kept (it is a payment attempt), without a subscription.
        let declined = match charge {
            Charge::Declined(code) => Some(code),
            Charge::Succeeded => None,
        };
        if declined.is_none() && !store::insert_subscription(&mut tx, &subscription).await? {
            return Err(PaymentsError::AlreadySubscribed.into());
        }
        let attempt = Attempt {
            user_id: user.id,
            reference: &reference,
            amount_cents: plan.price_cents,
            currency: &plan.currency,
            card: &card,
            charge: &charge,
        };
        record_payment(&mut tx, &state, attempt).await?;
        if let Some(code) = declined {
            tx.commit().await?;
            state.outbox.wake();
            return Err(PaymentsError::Declined(code.to_owned()).into());
        }
        let event = CloudEvent::new(
            SERVICE,
            SUBSCRIPTION_ACTIVATED,
            subscription.id.to_string(),
            &subscription_event(&subscription, &plan),
        )
        .map_err(anyhow::Error::from)?;
        state.outbox.add(&mut tx, event).await?;
        tx.commit().await?;
        state.outbox.wake();
        Ok((StatusCode::CREATED, json(&subscription)?))
    })
    .await)
}

/// Your current subscription.
#[utoipa::path(get, path = "/subscriptions/me", tag = "subscriptions", security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 404, body = Problem)))]
pub async fn my_subscription(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<ApiJson<Subscription>, Problem> {
    Ok(ApiJson(
        store::live_subscription(&state.db, user.id).await?.ok_or(PaymentsError::NotFound("subscription"))?,
    ))
}

/// Cancel at the end of the paid period: it stays active until then and is not renewed.
#[utoipa::path(delete, path = "/subscriptions/me", tag = "subscriptions", security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 404, body = Problem)))]
pub async fn cancel_subscription(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<ApiJson<Subscription>, Problem> {
    let current =
        store::live_subscription(&state.db, user.id).await?.ok_or(PaymentsError::NotFound("subscription"))?;
    let plan = store::plan(&state.db, &current.plan_id).await?.ok_or(PaymentsError::NotFound("plan"))?;
    let mut tx = state.db.pool.begin().await?;
    if store::cancel_at_period_end(&mut tx, current.id).await? {
        let event = CloudEvent::new(
            SERVICE,
            SUBSCRIPTION_CANCELLED,
            current.id.to_string(),
            &subscription_event(&current, &plan),
        )
        .map_err(anyhow::Error::from)?;
        state.outbox.add(&mut tx, event).await?;
        tx.commit().await?;
        state.outbox.wake();
    } else {
        tx.rollback().await?;
    }
    Ok(ApiJson(
        store::live_subscription(&state.db, user.id).await?.ok_or(PaymentsError::NotFound("subscription"))?,
    ))
}
