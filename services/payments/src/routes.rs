//! payments' HTTP API (docs/api.md, Payments and subscriptions).

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use contracts::payments::{Card, ReferenceClosed};
use platform::{
    Problem,
    auth::{AuthUser, Caller, ServiceOrAdmin},
    extract::{ApiJson, ApiQuery, PathId},
    idempotency,
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    error::PaymentsError,
    ops,
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
        .routes(routes!(close_reference))
        .routes(routes!(plans))
        .routes(routes!(subscribe))
        .routes(routes!(my_subscription, cancel_subscription))
        .routes(routes!(entitlement));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(value).map_err(|e| Problem::from(anyhow::Error::from(e)))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_cents: i64,
    /// ISO 4217, upper case.
    #[serde(default = "usd")]
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    /// What it pays for, e.g. `booking:<id>`.
    #[schema(min_length = 1, max_length = 200)]
    pub reference: String,
    pub user_id: Uuid,
    #[schema(value_type = platform::openapi::CardSchema)]
    pub payment_method: Card,
}

fn usd() -> String {
    "USD".to_owned()
}

/// Charge a card (services and admins). A declined card is still a payment: `status: failed`
/// with the processor's `failure_code`. Send an `Idempotency-Key` to make retries safe.
#[utoipa::path(post, path = "/payments", tag = "payments", request_body = PaymentRequest, security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 403, body = Problem),
        (status = 409, description = "The reference is closed (what it paid for has ended): the card was not charged", body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_payment(
    State(state): State<AppState>,
    caller: ServiceOrAdmin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PaymentRequest>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /payments", caller.caller());
    Ok(state
        .idempotency
        .once(&scope, key, &req, async {
            let input = ops::ChargeInput {
                amount_cents: req.amount_cents,
                currency: &req.currency,
                reference: &req.reference,
                user_id: req.user_id,
                card: &req.payment_method,
            };
            let payment = ops::charge(&state, input).await?;
            Ok((StatusCode::CREATED, json(&payment)?))
        })
        .await)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    /// Admins and services only: one user's payments.
    pub user_id: Option<Uuid>,
    /// What the payments were for (`booking:<id>`).
    pub reference: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
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
    // No result window: a customer pages through their own payments, an admin through all.
    let page = PageRequest::for_operators(q.page, q.per_page)?;
    let whose = match &caller {
        Caller::User(user) if !user.is_admin() => Some(user.id),
        _ => q.user_id,
    };
    Ok(ApiJson(ops::payments(&state, whose, q.reference.as_deref(), page).await?))
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
    #[schema(minimum = 1)]
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
#[utoipa::path(post, path = "/payments/{id}/refund", tag = "payments", request_body = Option<RefundRequest>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = RefundAnswer), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn refund(
    State(state): State<AppState>,
    caller: ServiceOrAdmin,
    PathId(id): PathId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // The body is optional: none, `null` (what the document's optional body allows) or `{}`
    // refunds everything that is left.
    let text = body.trim_ascii();
    let req: RefundRequest = if text.is_empty() || text == b"null" {
        RefundRequest::default()
    } else {
        platform::extract::parse_json(&body)?
    };
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /payments/{id}/refund", caller.caller());
    Ok(state
        .idempotency
        .once(&scope, key, &req, async {
            let (refund, payment) = ops::refund(&state, id, req.amount_cents).await?;
            Ok((StatusCode::CREATED, json(&RefundAnswer { refund, payment })?))
        })
        .await)
}

/// Close what payments were for (services and admins): everything captured for the reference
/// is refunded and no later charge for it is accepted. Closing again refunds nothing more and
/// answers alike, so it is safe to retry.
#[utoipa::path(post, path = "/payments/references/{reference}/close", tag = "payments",
    request_body = CloseRequest, params(("reference" = String, Path, description = "e.g. booking:<id>", max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f/\\\\]*[^\\s.\\x00-\\x1f\\x7f-\\x9f/\\\\][^\\x00-\\x1f\\x7f-\\x9f/\\\\]*$")),
    security(("bearer" = [])),
    responses((status = 200, body = CloseAnswer), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn close_reference(
    State(state): State<AppState>,
    _caller: ServiceOrAdmin,
    axum::extract::Path(reference): axum::extract::Path<String>,
    ApiJson(req): ApiJson<CloseRequest>,
) -> Result<ApiJson<ReferenceClosed>, Problem> {
    Ok(ApiJson(ops::close_reference(&state, &reference, &req.reason).await?))
}

/// `POST /payments/references/{reference}/close`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CloseRequest {
    /// Why (`booking-cancelled`, ...); recorded with the refunds.
    #[schema(max_length = 100, pattern = "\\S", example = "booking-cancelled")]
    pub reason: String,
}

/// The reference's payments after closing it (`contracts::payments::ReferenceClosed`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CloseAnswer {
    pub reference: String,
    /// Refunded by this call.
    pub refunded_cents: i64,
    pub payments: Vec<ClosedPayment>,
}

/// A payment of a closed reference (`contracts::payments::PaymentView`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClosedPayment {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub amount_cents: i64,
    pub refunded_cents: i64,
    pub currency: String,
    pub reference: String,
    /// Set on a capture that was refunded at once because the reference was paid already.
    pub duplicate_of: Option<Uuid>,
}

/// The streaming plans.
#[utoipa::path(get, path = "/plans", tag = "subscriptions", responses((status = 200, body = Vec<Plan>)))]
pub async fn plans(State(state): State<AppState>) -> Result<ApiJson<Vec<Plan>>, Problem> {
    Ok(ApiJson(store::plans(&state.db).await?))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscribeRequest {
    #[schema(pattern = "^(basic|standard|premium)$", example = "standard")]
    pub plan_id: String,
    #[schema(value_type = platform::openapi::CardSchema)]
    pub payment_method: Card,
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
    Ok(state
        .idempotency
        .once(&scope, key, &req, async {
            let subscription = ops::subscribe(&state, user.id, &req.plan_id, &req.payment_method).await?;
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
    Ok(ApiJson(ops::cancel_subscription(&state, user.id).await?))
}

/// What a user's subscription lets them stream now (services and admins): the plan's stream
/// limit and until when the answer holds. 404 when it lets them stream nothing.
#[utoipa::path(get, path = "/subscriptions/users/{user_id}/entitlement", tag = "subscriptions", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = EntitlementSchema), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn entitlement(
    State(state): State<AppState>,
    _caller: ServiceOrAdmin,
    PathId(user): PathId,
) -> Result<ApiJson<contracts::payments::Entitlement>, Problem> {
    Ok(ApiJson(ops::entitlement(&state, user).await?))
}

/// `contracts::payments::Entitlement` as the OpenAPI document shows it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EntitlementSchema {
    user_id: Uuid,
    subscription_id: Uuid,
    plan_id: String,
    max_streams: i64,
    #[schema(format = DateTime)]
    until: String,
}
