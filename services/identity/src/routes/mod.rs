//! identity's HTTP API: each handler extracts, calls [`crate::ops`] and answers.

pub mod auth;
pub mod internal;
pub mod users;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(info(title = "Marquee identity", description = "Accounts, sign-in and tokens"))]
struct ApiDoc;

/// The routes and their OpenAPI document.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(users::me, users::patch_me))
        .routes(routes!(users::my_activity))
        .routes(routes!(users::list))
        .routes(routes!(users::get_user, users::patch_user));
    let (api, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    let router = api
        .route("/.well-known/jwks.json", axum::routing::get(internal::jwks))
        .route("/internal/service-token", axum::routing::post(internal::service_token))
        .with_state(state);
    (router, openapi)
}
