//! `/health`: every configured service's readiness. The background checks' verdicts are used
//! while fresh (two check intervals); replicas without one are asked now, in parallel, so a
//! flood of `/health` calls does not become a flood of calls to every replica.
//!
//! Anyone sees whether each service is `up`, `degraded` (some replicas down) or `down`; only an
//! admin sees the replicas' addresses and each one's verdict, which map the deployment.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::Gateway;

pub async fn health(
    State(gateway): State<std::sync::Arc<Gateway>>,
    platform::auth::MaybeAuthUser(user): platform::auth::MaybeAuthUser,
) -> Response {
    let admin = user.is_some_and(|u| u.is_admin());
    let gateway = gateway.as_ref();
    let checks = gateway.upstreams.iter().flat_map(|u| u.replicas.iter().map(move |r| (u.service, r)));
    let results = futures_util::future::join_all(checks.map(|(service, replica)| {
        let http = &gateway.http;
        async move {
            let verdict = match replica.recent_verdict(gateway.health_interval * 2) {
                Some(verdict) => verdict,
                None => {
                    let verdict = crate::upstream::probe(http, &replica.url).await;
                    // The answer is fresh: let routing know it too.
                    replica.set_verdict(verdict, service);
                    verdict
                }
            };
            let ok = verdict == crate::upstream::Verdict::Ready;
            (service, replica.url.clone(), ok)
        }
    }))
    .await;
    let mut replicas = Map::new();
    let mut down = Vec::new();
    // service -> (replicas up, replicas in all)
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
    for (service, url, ok) in results {
        if !ok && !down.contains(&service) {
            down.push(service);
        }
        let count = counts.entry(service).or_default();
        count.0 += usize::from(ok);
        count.1 += 1;
        let entry = replicas.entry(service).or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(url, json!(if ok { "up" } else { "down" }));
        }
    }
    let services = if admin {
        replicas
    } else {
        counts
            .into_iter()
            .map(|(service, (up, all))| {
                let verdict = if up == all {
                    "up"
                } else if up == 0 {
                    "down"
                } else {
                    "degraded"
                };
                (service.to_owned(), json!(verdict))
            })
            .collect()
    };
    let status = if down.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if down.is_empty() { "ok" } else { "degraded" },
        "down": down,
        "services": services,
    });
    let mut response = (status, Json(body)).into_response();
    if status != StatusCode::OK {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}
