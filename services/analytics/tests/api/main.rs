//! analytics through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod history;
mod live;

use std::time::Duration;

use serde_json::Value;
use testkit::TestSystem;

/// `GET path` as `token` once `done` holds of the answer (or the last answer after 15 s).
pub async fn when(sys: &TestSystem, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let a = sys.get(path, Some(token)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        if done(&a.body) {
            return a.body;
        }
        last = a.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// `GET path` with `Accept: text/csv`: the status, the content type and the text.
pub async fn csv(sys: &TestSystem, path: &str, token: &str) -> (u16, String, String) {
    let res = sys
        .http
        .get(format!("{}{path}", sys.gateway))
        .bearer_auth(token)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, content_type, res.text().await.expect("text"))
}

/// A field of each item of a JSON array, summed.
pub fn sum(items: &Value, field: &str) -> i64 {
    items.as_array().expect("an array").iter().map(|i| i[field].as_i64().expect("a number")).sum()
}
