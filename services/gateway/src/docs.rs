//! The API reference: every deployed service's OpenAPI document merged into one at
//! `/api/openapi.json` (with the gateway's own aggregations), and Swagger UI at `/api/docs`,
//! served from files built into the binary so that it works with no internet access.
//!
//! The merged document is remade at most once a minute; a service that cannot be asked is left
//! out and named in `x-partial`, as the aggregations do.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Json, extract::State, response::IntoResponse};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use utoipa::OpenApi;

use crate::Gateway;

#[derive(OpenApi)]
#[openapi(paths(crate::aggregate::movie_details, crate::aggregate::dashboard))]
struct GatewayDoc;

/// The last merged document and when it was made.
#[derive(Default)]
pub struct DocCache(Mutex<Option<(Instant, Arc<Value>)>>);

const FRESH_FOR: Duration = Duration::from_secs(60);

pub async fn openapi(State(gateway): State<Gateway>) -> impl IntoResponse {
    let mut cached = gateway.docs.0.lock().await;
    if let Some((made, doc)) = cached.as_ref()
        && made.elapsed() < FRESH_FOR
    {
        return Json(doc.as_ref().clone());
    }
    let doc = Arc::new(merged(&gateway).await);
    // A document missing services is not kept: the next request tries them again.
    if doc["x-partial"].as_array().is_none_or(Vec::is_empty) {
        *cached = Some((Instant::now(), doc.clone()));
    }
    Json(doc.as_ref().clone())
}

/// Ask every deployed service for its document, in parallel, and merge them.
async fn merged(gateway: &Gateway) -> Value {
    let deployed = gateway.upstreams.iter().filter(|u| u.is_deployed());
    let docs = futures_util::future::join_all(
        deployed.map(|upstream| async move { (upstream.service, fetch(gateway, upstream).await) }),
    )
    .await;
    let own = serde_json::to_value(platform::server::with_bearer_scheme(GatewayDoc::openapi()));
    let mut doc = platform::openapi::complete(own.unwrap_or_else(|_| json!({})));
    let mut partial = Vec::new();
    for (service, part) in docs {
        match part {
            Some(part) => merge(&mut doc, part),
            None => partial.push(service),
        }
    }
    doc["info"] = json!({
        "title": "Marquee API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Every Marquee service behind the gateway. Errors are RFC 9457 problems \
            (application/problem+json); send `Authorization: Bearer <access_token>` where an \
            operation names the bearer scheme.",
    });
    doc["x-partial"] = json!(partial);
    platform::openapi::at_the_edge(&mut doc);
    extend(
        &mut doc["components"]["securitySchemes"],
        json!({"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}),
    );
    doc
}

async fn fetch(gateway: &Gateway, upstream: &crate::Upstream) -> Option<Value> {
    let replica = upstream.pick(None)?;
    let response = gateway
        .http
        .get(format!("{}/openapi.json", replica.url))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    response.json().await.ok()
}

/// Add `part`'s paths, component entries and tags to `doc`; the first definition of a name wins.
fn merge(doc: &mut Value, part: Value) {
    let Value::Object(part) = part else { return };
    for (key, value) in part {
        match key.as_str() {
            "paths" => extend(&mut doc["paths"], value),
            "components" => {
                let Value::Object(sections) = value else { continue };
                for (section, entries) in sections {
                    extend(&mut doc["components"][&section], entries);
                }
            }
            "tags" => {
                let Value::Array(tags) = value else { continue };
                let list = doc["tags"].as_array().cloned().unwrap_or_default();
                let mut merged = list.clone();
                for tag in tags {
                    if !list.iter().any(|t| t["name"] == tag["name"]) {
                        merged.push(tag);
                    }
                }
                doc["tags"] = Value::Array(merged);
            }
            _ => {}
        }
    }
}

fn extend(target: &mut Value, entries: Value) {
    let Value::Object(entries) = entries else { return };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (name, entry) in entries {
            target.entry(name).or_insert(entry);
        }
    }
}

/// Swagger UI at `/api/docs`, reading the merged document.
pub fn swagger_ui() -> utoipa_swagger_ui::SwaggerUi {
    utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::from("/api/openapi.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_merge_paths_components_and_tags() {
        let mut doc = json!({"paths": {"/a": {"get": {}}}, "tags": [{"name": "a"}]});
        merge(
            &mut doc,
            json!({
                "paths": {"/a": {"post": {}}, "/b": {"get": {}}},
                "components": {"schemas": {"Movie": {"type": "object"}}},
                "tags": [{"name": "a"}, {"name": "b"}],
            }),
        );
        assert_eq!(doc["paths"]["/a"], json!({"get": {}}), "the first definition wins");
        assert!(doc["paths"]["/b"].is_object());
        assert_eq!(doc["components"]["schemas"]["Movie"]["type"], "object");
        assert_eq!(doc["tags"], json!([{"name": "a"}, {"name": "b"}]));
    }
}
