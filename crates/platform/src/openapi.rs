//! Making a service's OpenAPI document tell the whole truth. Handlers document what is theirs
//! (a 409 `seat-taken`, a 402); the answers every operation can give because of the stack it runs
//! on are added here, from what the document itself says of the operation:
//!
//! | answer | when |
//! |---|---|
//! | 400 | it takes a path or query parameter or a body (one that does not parse) |
//! | 401, 403 | it needs a bearer token (a bad one; a token of the wrong kind or role) |
//! | 404 | it has a path parameter |
//! | 413, 415 | it takes a body (too large; not JSON) |
//! | 422 | it takes a query parameter or a body (values out of range) |
//! | 503 | always (the database is down, the request timed out) |
//!
//! Problems are served as `application/problem+json`; every problem response says so.
//! [`at_the_edge`] adds what the gateway in front can answer for any operation.

use serde_json::{Map, Value, json};

/// The card in a payment request (`contracts::payments::Card`), as the OpenAPI document shows it:
/// `#[schema(value_type = platform::openapi::CardSchema)]` on the field. The processor checks the
/// Luhn digit and the expiry too, which no schema can say (422 and 402).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Card)]
pub struct CardSchema {
    #[serde(rename = "type")]
    #[schema(pattern = "^card$", example = "card")]
    pub kind: String,
    /// 12 to 19 digits; spaces and dashes between them are ignored.
    #[schema(pattern = "^[ -]*([0-9][ -]*){12,19}$", example = "4242424242424242")]
    pub number: String,
    #[schema(minimum = 1, maximum = 12, example = 12)]
    pub exp_month: i64,
    #[schema(minimum = 2000, maximum = 2100, example = 2030)]
    pub exp_year: i64,
    #[schema(pattern = "^[0-9]{3,4}$", example = "123")]
    pub cvc: String,
}

const PROBLEM_REF: &str = "#/components/schemas/Problem";
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The document with problems typed and the stack's answers added.
pub fn complete(mut doc: Value) -> Value {
    for_each_operation(&mut doc, |op| {
        retype_problems(op);
        let params: Vec<&str> = op
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p["in"].as_str()).collect())
            .unwrap_or_default();
        let (in_path, in_query) = (params.contains(&"path"), params.contains(&"query"));
        let body = op.get("requestBody").is_some();
        let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
        let mut add = |status: &str, why: &str| add_problem(op, status, why);
        if in_path || in_query || body {
            add("400", "The request could not be parsed: a path id, a query value or the body");
        }
        if secured {
            add("401", "No bearer token, or a bad, expired or forged one");
            add("403", "The token's holder may not do this");
        }
        if in_path {
            add("404", "Not found, or not yours");
        }
        if body {
            add("413", "The body is too large");
            add("415", "The body is not JSON");
        }
        if in_query || body {
            add("422", "Well-formed but invalid values, each named in `errors`");
        }
        add("503", "A dependency is down or the request took too long; see Retry-After");
    });
    ensure_problem_schema(&mut doc);
    doc
}

/// What the gateway can answer for any operation it forwards: a path it refuses, a bad token on
/// any route, a rate limit, an upstream that is down, failing or too slow.
pub fn at_the_edge(doc: &mut Value) {
    for_each_operation(doc, |op| {
        retype_problems(op);
        add_problem(op, "400", "The path was refused (dot segments, encoded slashes, empty segments)");
        add_problem(op, "401", "A bad, expired or forged bearer token (on any route)");
        add_problem(op, "429", "Rate limited; see Retry-After and RateLimit-*");
        add_problem(op, "502", "The service's answer was cut off");
        add_problem(op, "503", "The service is down or its circuit is open; see Retry-After");
        add_problem(op, "504", "The service did not answer in time");
        if op.get("requestBody").is_some() {
            add_problem(op, "413", "The body is over the gateway's limit");
        }
    });
    ensure_problem_schema(doc);
}

fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if let (true, Some(op)) = (METHODS.contains(&method.as_str()), op.as_object_mut()) {
                f(op);
            }
        }
    }
}

/// Responses whose body is a Problem are `application/problem+json`.
fn retype_problems(op: &mut Map<String, Value>) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    for response in responses.values_mut() {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { continue };
        let is_problem = content
            .get("application/json")
            .is_some_and(|c| c["schema"]["$ref"].as_str() == Some(PROBLEM_REF));
        if is_problem && let Some(json) = content.remove("application/json") {
            content.insert(crate::problem::CONTENT_TYPE.to_owned(), json);
        }
    }
}

/// Document `status` as a problem unless the handler documented it already.
fn add_problem(op: &mut Map<String, Value>, status: &str, description: &str) {
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else { return };
    responses.entry(status).or_insert_with(|| {
        json!({
            "description": description,
            "content": {crate::problem::CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        })
    });
}

/// The Problem schema, for documents whose handlers never named it.
fn ensure_problem_schema(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = json!({});
    }
    if let Some(schemas) = schemas.as_object_mut() {
        schemas.entry("Problem").or_insert_with(problem_schema);
        schemas.entry("FieldError").or_insert_with(|| {
            json!({
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            })
        });
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": "urn:marquee:problem:<code>, stable"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_s_answers_are_added_and_problems_typed() {
        let doc = json!({"paths": {"/api/v1/things/{id}": {"post": {
            "parameters": [{"in": "path", "name": "id"}],
            "requestBody": {"content": {"application/json": {}}},
            "security": [{"bearer": []}],
            "responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "409": {"content": {"application/json": {"schema": {"$ref": PROBLEM_REF}}}},
            },
        }, "get": {"responses": {"200": {}}}}}});
        let doc = complete(doc);
        let post = &doc["paths"]["/api/v1/things/{id}"]["post"]["responses"];
        for status in ["400", "401", "403", "404", "409", "413", "415", "422", "503"] {
            assert!(post[status]["content"]["application/problem+json"].is_object(), "{status}: {post}");
        }
        assert!(post["200"]["content"]["application/json"].is_object(), "answers stay JSON: {post}");
        let get = doc["paths"]["/api/v1/things/{id}"]["get"]["responses"].as_object().expect("responses");
        assert_eq!(get.keys().collect::<Vec<_>>(), ["200", "503"], "nothing it cannot answer");
        assert!(doc["components"]["schemas"]["Problem"].is_object());
    }
}
