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

pub async fn openapi(State(gateway): State<std::sync::Arc<Gateway>>) -> impl IntoResponse {
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
            Some(part) => merge(&mut doc, service, part),
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
    let request = gateway.http.get(format!("{}/openapi.json", replica.url)).timeout(Duration::from_secs(3));
    let response = gateway.http.send(request).await.ok()?.error_for_status().ok()?;
    response.json().await.ok()
}

/// Add `part`'s paths, component entries and tags to `doc`; the first definition of a path wins.
/// A component that another service already defined differently under the same name (two
/// services' `Status`) is renamed for this one (`BackupStatus`), and its references with it.
fn merge(doc: &mut Value, service: &str, mut part: Value) {
    rename_clashes(doc, service, &mut part);
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

fn rename_clashes(doc: &Value, service: &str, part: &mut Value) {
    let prefix: String = service
        .split('_')
        .flat_map(|w| w.chars().next().map(|c| c.to_ascii_uppercase()).into_iter().chain(w.chars().skip(1)))
        .collect();
    let mut renames = Vec::new();
    if let Some(sections) = part["components"].as_object_mut() {
        for (section, entries) in sections.iter_mut() {
            let Some(entries) = entries.as_object_mut() else { continue };
            let clashing: Vec<String> = entries
                .iter()
                .filter(|(name, entry)| {
                    doc["components"][section].get(name.as_str()).is_some_and(|have| have != *entry)
                })
                .map(|(name, _)| name.clone())
                .collect();
            for name in clashing {
                if let Some(entry) = entries.remove(&name) {
                    let renamed = format!("{prefix}{name}");
                    renames.push((
                        format!("#/components/{section}/{name}"),
                        format!("#/components/{section}/{renamed}"),
                    ));
                    entries.insert(renamed, entry);
                }
            }
        }
    }
    if !renames.is_empty() {
        rewrite_refs(part, &renames);
    }
}

fn rewrite_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "$ref" => {
                        if let Some((_, new)) = renames.iter().find(|(old, _)| old == s) {
                            *s = new.clone();
                        }
                    }
                    _ => rewrite_refs(v, renames),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, renames)),
        _ => {}
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
            "catalog",
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

    /// Issue 15: showtimes and backup both named a schema `Status`; the first won, and backup's
    /// answers were checked against showtimes' statuses.
    #[test]
    fn a_component_two_services_define_differently_is_renamed_for_the_second() {
        let status = |values: &[&str]| json!({"type": "string", "enum": values});
        let mut doc = json!({"components": {"schemas": {"Status": status(&["scheduled", "cancelled"]), "Page": {"type": "object"}}}});
        merge(
            &mut doc,
            "backup",
            json!({
                "paths": {"/backups": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}}}}},
                "components": {"schemas": {
                    "Status": status(&["running", "complete", "failed"]),
                    "Page": {"type": "object"},
                    "Backup": {"properties": {"status": {"$ref": "#/components/schemas/Status"}}},
                }},
            }),
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Status"], status(&["scheduled", "cancelled"]), "the first keeps its name");
        assert_eq!(schemas["BackupStatus"], status(&["running", "complete", "failed"]));
        assert!(schemas.get("BackupPage").is_none(), "the same definition is shared, not renamed");
        assert_eq!(schemas["Backup"]["properties"]["status"]["$ref"], "#/components/schemas/BackupStatus");
        let answer =
            &doc["paths"]["/backups"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(answer["$ref"], "#/components/schemas/BackupStatus");
    }
}
